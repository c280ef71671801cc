"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models.

Requests are validated here, in full, before they reach llama.cpp: its own server accepts
``max_tokens: -1`` and silently clips over-long prompts, which a gateway must not.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from litegate.chat import ChatCompletionRequest, CompletionRequest, PreparedChat, prepare_chat
from litegate.engine import LlamaEngine, ModelRegistry
from litegate.errors import ContextLengthExceeded, InvalidRequest, LitegateError
from litegate.server.errors import error_body

router = APIRouter()


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def _model_name(request: Request, requested: str | None) -> str:
    return requested or request.app.state.default_model


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


def _surely_fits(engine: LlamaEngine, messages: list[dict[str, Any]], max_tokens: int | None) -> bool:
    """Whether the prompt fits without counting it. Every token of a byte-level or
    byte-fallback vocabulary covers at least one byte, so the messages' UTF-8 size (as JSON,
    which only adds) plus the chat template's own tokens bound the prompt; when even that
    bound fits, the exact count (a loopback round trip, ~1 ms) is skipped."""
    bound = len(json.dumps(messages, ensure_ascii=False).encode()) + 16 * len(messages) + 256
    return bound + (max_tokens or 0) < engine.n_ctx


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
                           legacy_logprobs: bool = False,
                           prepared: PreparedChat | None = None,
                           http_request: Request | None = None) -> StreamingResponse | JSONResponse:
    """Start the generation and wait for its first chunk before answering, so that an
    engine error still becomes a proper HTTP status instead of a broken 200 stream."""
    chunks = await engine.astream_started(kind, body)

    async def events() -> AsyncIterator[bytes]:
        held: dict[str, Any] | None = None  # the finishing chunk, waiting for usage
        text: list[str] = []  # the JSON so far, checked against the schema at the end
        try:
            async for chunk in chunks:
                chunk["model"] = model
                if legacy_logprobs:
                    _legacy_logprobs(chunk)
                if not chunk.get("choices") and "usage" in chunk:
                    chunk.setdefault("litegate", {})["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
                    if http_request is not None:
                        _account(http_request, chunk.get("id") or "", kind, model, chunk["usage"],
                                 chunk["litegate"]["latency_ms"])
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
                if prepared is not None and prepared.mode == "json":
                    for c in chunk.get("choices", []):
                        text.append((c.get("delta") or {}).get("content") or "")
                        if c.get("finish_reason") == "stop":
                            prepared.check_text("".join(text))
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


def _finish(response: dict[str, Any], model: str, started: float, request: Request | None = None,
            kind: str = "chat") -> dict[str, Any]:
    response["model"] = model
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    response.setdefault("litegate", {})["latency_ms"] = latency_ms
    if request is not None:
        _account(request, response.get("id") or "", kind, model, response.get("usage"), latency_ms)
    return response


def _account(request: Request, call_id: str, kind: str, model: str, usage: dict[str, Any] | None,
             latency_ms: float) -> None:
    from litegate.keys import request_fingerprint

    request.app.state.accountant.llm(call_id, kind, model, usage, latency_ms,
                                     feature=request.headers.get("x-litegate-feature"),
                                     api_key=request_fingerprint(request))


_SSE_EVENT_END = re.compile(rb"\r?\n\r?\n")


async def _chain_first(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for piece in rest:
        yield piece


def _note_usage(event: bytes, seen: dict[str, Any]) -> bool:
    """Remember a relayed SSE event's id and usage; False for the usage-only event (the
    relay drops it unless the client asked for usage)."""
    if not event.startswith(b"data: {"):
        return True
    try:
        chunk = json.loads(event[6:])
    except ValueError:
        return True
    seen.setdefault("id", chunk.get("id"))
    if chunk.get("usage"):
        seen["usage"] = chunk["usage"]
        return bool(chunk.get("choices"))
    return True


async def _remote_chat(req: ChatCompletionRequest, request: Request, remote: Any,
                       started: float) -> StreamingResponse | JSONResponse | None:
    """Forward to a remote model; None means it is down and the caller should fall back."""
    from litegate.remote import RemoteRejected, RemoteUnavailable

    body = await request.json()
    body.pop("model", None)
    name = remote.config.name
    try:
        if req.stream:
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            body["stream_options"] = {"include_usage": True}  # for the ledger; dropped below if unasked
            chunks = remote.stream(body)
            first = await anext(chunks)

            async def relay() -> AsyncIterator[bytes]:
                seen: dict[str, Any] = {}
                buffer = b""
                async for piece in _chain_first(first, chunks):
                    buffer += piece
                    *events, buffer = _SSE_EVENT_END.split(buffer)
                    out = [e for e in events if _note_usage(e, seen) or wants_usage]
                    if out:
                        yield b"\n\n".join(out) + b"\n\n"
                if buffer:
                    yield buffer
                _account(request, seen.get("id") or "remote_" + str(int(started * 1e6)), "chat", name,
                         seen.get("usage"), (time.perf_counter() - started) * 1000)
            return StreamingResponse(relay(), media_type="text/event-stream")
        result = await remote.chat(body)
    except RemoteRejected as e:
        return JSONResponse(e.body if isinstance(e.body, dict) else error_body(e.message), status_code=e.status_code)
    except (RemoteUnavailable, StopAsyncIteration) as e:
        request.state.fallback_reason = getattr(e, "message", "the remote stream ended at once")
        return None
    result["model"] = name
    return JSONResponse(_finish(result, name, started, request))


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    started = time.perf_counter()
    model = _model_name(request, req.model)
    remotes = getattr(request.app.state, "remotes", {})
    fallback_from = None
    if model in remotes:
        remote = remotes[model]
        answered = await _remote_chat(req, request, remote, started)
        if answered is not None:
            return answered
        if not remote.config.fallback:
            from litegate.remote import RemoteUnavailable

            raise RemoteUnavailable(request.state.fallback_reason)
        fallback_from, model = model, remote.config.fallback
    registry = _registry(request)
    registry.lookup(model)  # 404 before any validation that needs the engine
    prepared = prepare_chat(req)
    engine = (await registry.aengine(model))[1]
    max_tokens = prepared.body.get("max_tokens")
    _max_tokens_field(engine, max_tokens, "max_completion_tokens" if req.max_completion_tokens else "max_tokens")
    if not _surely_fits(engine, prepared.messages, max_tokens):
        prompt_tokens = await engine.acall(engine.count_chat_tokens, prepared.messages)
        _check_budget(engine, prompt_tokens, max_tokens)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    if req.stream and prepared.mode == "tools":
        # Tool calls are only known once the whole reply is parsed: generate, then stream
        # the result as chunks so streaming clients still work.
        result = prepared.finish(await engine.arun("chat", prepared.body))
        return StreamingResponse(_replay_as_stream(_finish(result, model, started, request), include_usage),
                                 media_type="text/event-stream")
    if req.stream:
        return await _stream_response(engine, "chat", prepared.body, model, include_usage, started,
                                      prepared=prepared, http_request=request)
    result = prepared.finish(await engine.arun("chat", prepared.body))
    if fallback_from:
        result.setdefault("litegate", {}).update(fallback_from=fallback_from,
                                                 fallback_reason=request.state.fallback_reason)
    response = JSONResponse(_finish(result, model, started, request))
    if fallback_from:
        response.headers["X-Litegate-Fallback-From"] = fallback_from
    return response


async def _replay_as_stream(result: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    base = {"id": result.get("id"), "object": "chat.completion.chunk", "created": result.get("created"),
            "model": result.get("model")}
    for choice in result.get("choices", []):
        message = choice.get("message") or {}
        yield _sse(dict(base, choices=[{"index": choice.get("index", 0), "finish_reason": None,
                                        "delta": {"role": "assistant", "content": message.get("content")}}]))
        if message.get("tool_calls"):
            calls = [dict(call, index=i) for i, call in enumerate(message["tool_calls"])]
            yield _sse(dict(base, choices=[{"index": choice.get("index", 0), "finish_reason": None,
                                            "delta": {"tool_calls": calls}}]))
        last = dict(base, choices=[{"index": choice.get("index", 0), "delta": {},
                                    "finish_reason": choice.get("finish_reason")}])
        if not include_usage:
            last.update(usage=result.get("usage"), timings=result.get("timings"), litegate=result.get("litegate"))
        yield _sse(last)
    if include_usage:
        yield _sse(dict(base, choices=[], usage=result.get("usage"), timings=result.get("timings"),
                        litegate=result.get("litegate")))
    yield _sse("[DONE]")


@router.post("/v1/completions", response_model=None)
async def completions(req: CompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    started = time.perf_counter()
    model = _model_name(request, req.model)
    registry = _registry(request)
    registry.lookup(model)
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
    engine = (await registry.aengine(model))[1]
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
                                      legacy_logprobs=req.logprobs is not None, http_request=request)
    result = await engine.arun("completion", body)
    if req.logprobs is not None:
        _legacy_logprobs(result)
    return JSONResponse(_finish(result, model, started, request, kind="completion"))


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    registry = _registry(request)
    data = [{"id": name, "object": "model", "created": request.app.state.started, "owned_by": "remote",
             "upstream_model": r.config.model, "circuit": r.breaker.state}
            for name, r in getattr(request.app.state, "remotes", {}).items()]
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
