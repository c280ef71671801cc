"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models.

Requests are validated here, in full, before they reach llama.cpp: its own server accepts
``max_tokens: -1`` and silently clips over-long prompts, which a gateway must not.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from litegate.engine import LlamaEngine, ModelRegistry
from litegate.errors import ContextLengthExceeded, InvalidRequest, LitegateError
from litegate.server.errors import error_body

router = APIRouter()


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def engine_message(self, index: int) -> dict[str, Any]:
        content = self.content
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if part.type != "text" or part.text is None:
                    raise InvalidRequest(
                        f"'messages.{index}.content.{j}': content parts of type {part.type!r} are not "
                        "supported by this model; send text parts",
                        param=f"messages.{index}.content.{j}.type",
                    )
                texts.append(part.text)
            content = "".join(texts)
        role = "system" if self.role == "developer" else self.role
        msg: dict[str, Any] = {"role": role, "content": content if content is not None else ""}
        if self.name:
            msg["name"] = self.name
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            msg["tool_call_id"] = self.tool_call_id
        return msg


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and any(not s for s in v):
            raise ValueError("stop sequences must be non-empty strings")
        return v

    def sampling(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
                    "frequency_penalty", "repeat_penalty"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.stop is not None:
            out["stop"] = [self.stop] if isinstance(self.stop, str) else self.stop
        return out


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int]
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def _model_name(request: Request, requested: str | None) -> str:
    return requested or request.app.state.default_model


def _check_common(req: SamplingFields) -> None:
    if req.n != 1:
        raise InvalidRequest("'n': only n=1 is supported; send several requests instead", param="n")


def _check_budget(engine: LlamaEngine, prompt_tokens: int, max_tokens: int | None) -> None:
    if prompt_tokens >= engine.n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but the model's context holds {engine.n_ctx}; "
            "shorten the prompt",
            prompt_tokens=prompt_tokens, n_ctx=engine.n_ctx,
        )
    if max_tokens is not None and prompt_tokens + max_tokens > engine.n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {max_tokens}, together "
            f"{prompt_tokens + max_tokens}, but the model's context holds {engine.n_ctx}; "
            f"lower max_tokens to at most {engine.n_ctx - prompt_tokens}",
            prompt_tokens=prompt_tokens, n_ctx=engine.n_ctx, param="max_tokens",
        )


def _max_tokens_field(engine: LlamaEngine, value: int | None, param: str) -> None:
    if value is not None and value >= engine.n_ctx:
        raise InvalidRequest(
            f"'{param}' is {value} but the model's context holds {engine.n_ctx} tokens in all; "
            f"ask for fewer",
            param=param,
        )


def _sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


async def _stream_response(engine: LlamaEngine, kind: Literal["chat", "completion"], body: dict[str, Any],
                           model: str, include_usage: bool, started: float,
                           legacy_logprobs: bool = False) -> StreamingResponse | JSONResponse:
    """Start the generation and wait for its first chunk before answering, so that an
    engine error still becomes a proper HTTP status instead of a broken 200 stream."""
    chunks = engine.astream(kind, body)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except LitegateError:
        await chunks.aclose()
        raise

    async def events() -> AsyncIterator[bytes]:
        held: dict[str, Any] | None = None  # the finishing chunk, waiting for usage
        try:
            pending = [first] if first is not None else []
            async for chunk in _chain(pending, chunks):
                chunk["model"] = model
                if legacy_logprobs:
                    _legacy_logprobs(chunk)
                if not chunk.get("choices") and "usage" in chunk:
                    chunk.setdefault("litegate", {})["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
                    if include_usage:
                        if held is not None:
                            yield _sse(held)
                            held = None
                        yield _sse(chunk)
                    elif held is not None:
                        held["usage"] = chunk["usage"]
                        held["timings"] = chunk.get("timings")
                        held["litegate"] = chunk["litegate"]
                        yield _sse(held)
                        held = None
                    continue
                if held is not None:
                    yield _sse(held)
                    held = None
                if any(c.get("finish_reason") for c in chunk.get("choices", [])):
                    held = chunk
                    continue
                yield _sse(chunk)
            if held is not None:
                yield _sse(held)
        except LitegateError as e:
            yield _sse(error_body(e.message, error_type=e.error_type, code=e.code))
        finally:
            await chunks.aclose()
        yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _chain(first: list[dict[str, Any]], rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in first:
        yield item
    async for item in rest:
        yield item


def _legacy_logprobs(response: dict[str, Any]) -> None:
    """llama.cpp answers text completions with chat-style logprobs; OpenAI's legacy
    completions API (and its SDK) expects tokens / token_logprobs / top_logprobs."""
    for choice in response.get("choices", []):
        lp = choice.get("logprobs")
        if not isinstance(lp, dict) or "content" not in lp:
            continue
        tokens, token_lps, tops, offsets = [], [], [], []
        offset = 0
        for item in lp.get("content") or []:
            tokens.append(item.get("token", ""))
            token_lps.append(item.get("logprob"))
            tops.append({t.get("token", ""): t.get("logprob") for t in item.get("top_logprobs", [])})
            offsets.append(offset)
            offset += len(item.get("token", ""))
        choice["logprobs"] = {"tokens": tokens, "token_logprobs": token_lps, "top_logprobs": tops,
                              "text_offset": offsets}


def _finish(response: dict[str, Any], model: str, started: float) -> dict[str, Any]:
    response["model"] = model
    response.setdefault("litegate", {})["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return response


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    started = time.perf_counter()
    model = _model_name(request, req.model)
    registry = _registry(request)
    registry.lookup(model)  # 404 before any validation that needs the engine
    _check_common(req)
    if not req.messages:
        raise InvalidRequest("'messages' must contain at least one message", param="messages")
    if req.tools:
        raise InvalidRequest("'tools' are not supported yet", param="tools")
    if req.response_format and req.response_format.get("type") not in (None, "text"):
        raise InvalidRequest("'response_format': only type 'text' is supported yet", param="response_format")
    engine = await _load(registry, model)
    max_tokens = req.max_completion_tokens or req.max_tokens
    _max_tokens_field(engine, max_tokens, "max_completion_tokens" if req.max_completion_tokens else "max_tokens")
    messages = [m.engine_message(i) for i, m in enumerate(req.messages)]
    prompt_tokens = await engine.acall(engine.count_chat_tokens, messages)
    _check_budget(engine, prompt_tokens, max_tokens)
    body: dict[str, Any] = {"messages": messages, **req.sampling()}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if req.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = req.top_logprobs or 0
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await _stream_response(engine, "chat", body, model, include_usage, started)
    result = await engine.arun("chat", body)
    return JSONResponse(_finish(result, model, started))


@router.post("/v1/completions", response_model=None)
async def completions(req: CompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    started = time.perf_counter()
    model = _model_name(request, req.model)
    registry = _registry(request)
    registry.lookup(model)
    _check_common(req)
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
    engine = await _load(registry, model)
    _max_tokens_field(engine, req.max_tokens, "max_tokens")
    prompt_tokens = len(prompt) if isinstance(prompt, list) else await engine.acall(engine.count_tokens, prompt)
    _check_budget(engine, prompt_tokens, req.max_tokens)
    body: dict[str, Any] = {"prompt": prompt, **req.sampling()}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.logprobs is not None:
        body["logprobs"] = req.logprobs
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await _stream_response(engine, "completion", body, model, include_usage, started,
                                      legacy_logprobs=req.logprobs is not None)
    result = await engine.arun("completion", body)
    if req.logprobs is not None:
        _legacy_logprobs(result)
    return JSONResponse(_finish(result, model, started))


async def _load(registry: ModelRegistry, model: str) -> LlamaEngine:
    served = registry.lookup(model)
    if served.engine is not None:
        return served.engine
    import asyncio

    return await asyncio.to_thread(registry.engine, model)


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    registry = _registry(request)
    data = []
    for served in registry.served():
        entry: dict[str, Any] = {"id": served.name, "object": "model", "created": request.app.state.started,
                                 "owned_by": "litegate", "aliases": list(served.aliases),
                                 "loaded": served.engine is not None}
        if served.engine is not None:
            entry["context_length"] = served.engine.n_ctx
        data.append(entry)
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    served = _registry(request).lookup(model_id)
    return {"id": served.name, "object": "model", "created": request.app.state.started, "owned_by": "litegate"}
