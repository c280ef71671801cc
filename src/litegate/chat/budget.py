"""The checks a chat request must pass before a local model sees it: max_tokens against the
context, the prompt's token count (skipped when a byte bound already proves it fits), and a
legacy text completion's body."""

from __future__ import annotations

import json
from typing import Any

from litegate.chat.request import CompletionRequest
from litegate.errors import ContextLengthExceeded, InvalidRequest


def surely_fits(n_ctx: int, messages: list[dict[str, Any]], max_tokens: int | None) -> bool:
    """Whether the prompt fits without counting it. Every token of a byte-level or
    byte-fallback vocabulary covers at least one byte, so the messages' UTF-8 size (as JSON,
    which only adds) plus the chat template's own tokens bound the prompt; when even that
    bound fits, the exact count (a loopback round trip, ~1 ms) is skipped."""
    bound = len(json.dumps(messages, ensure_ascii=False).encode()) + 16 * len(messages) + 256
    return bound + (max_tokens or 0) < n_ctx


def check_max_tokens(n_ctx: int, value: int | None, param: str) -> None:
    if value is not None and value >= n_ctx:
        raise InvalidRequest(f"'{param}' is {value} but the model's context holds {n_ctx} tokens in all; "
                             "ask for fewer", param=param)


def check_budget(n_ctx: int, prompt_tokens: int, max_tokens: int | None) -> None:
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but the model's context holds {n_ctx}; shorten the prompt",
            prompt_tokens=prompt_tokens, n_ctx=n_ctx)
    if max_tokens is not None and prompt_tokens + max_tokens > n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {max_tokens}, together "
            f"{prompt_tokens + max_tokens}, but the model's context holds {n_ctx}; "
            f"lower max_tokens to at most {n_ctx - prompt_tokens}",
            prompt_tokens=prompt_tokens, n_ctx=n_ctx, param="max_tokens")


def completion_body(req: CompletionRequest) -> dict[str, Any]:
    """Checks of a legacy text completion request, and its engine body."""
    req.check_single_choice()
    if req.echo:
        raise InvalidRequest("'echo' is not supported", param="echo")
    if req.suffix:
        raise InvalidRequest("'suffix' is not supported", param="suffix")
    prompt: str | list[int]
    if isinstance(req.prompt, list) and req.prompt and isinstance(req.prompt[0], str):
        if len(req.prompt) != 1:
            raise InvalidRequest("'prompt': send one prompt per request", param="prompt")
        prompt = req.prompt[0]
    else:
        prompt = req.prompt  # type: ignore[assignment]
    if not prompt:
        raise InvalidRequest("'prompt' must not be empty", param="prompt")
    body: dict[str, Any] = {"prompt": prompt, **req.sampling()}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.logprobs is not None:
        body["logprobs"] = req.logprobs
    return body
