"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models.

A thin adapter of shapes over the chat service (``litegate.chat.service``), which does the
checks, the context budget, the engine or remote call and the ledger for every front end.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from litegate.chat import ChatCall, ChatCompletionRequest, ChatRun, CompletionRequest
from litegate.errors import InvalidRequest, LitegateError, RemoteRejected
from litegate.keys import request_feature, request_fingerprint
from litegate.server.errors import error_body
from litegate.server.gemini.routes import gemini_models
from litegate.server.gemini.routes import get_model as gemini_get_model
from litegate.server.limits import while_connected

router = APIRouter()


def _call(request: Request, req: ChatCompletionRequest | CompletionRequest, api: str) -> ChatCall:
    return ChatCall(req, api=api, feature=request_feature(request),
                    api_key=request_fingerprint(request))


def _sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def _stream(run: ChatRun, include_usage: bool, legacy_logprobs: bool = False) -> StreamingResponse:
    """Engine chunks as SSE. The finishing chunk waits for the usage chunk, so a client that
    did not ask for usage still gets it on the last chunk."""
    assert run.chunks is not None
    chunks = run.chunks

    async def events() -> AsyncIterator[bytes]:
        held: dict[str, Any] | None = None
        try:
            async for chunk in chunks:
                if legacy_logprobs:
                    _legacy_logprobs(chunk)
                if not chunk.get("choices") and "usage" in chunk:
                    if include_usage:
                        if held is not None:
                            yield _sse(held)
                            held = None
                        yield _sse(chunk)
                    elif held is not None:
                        held.update(usage=chunk["usage"], timings=chunk.get("timings"), litegate=chunk["litegate"])
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


def _answer(run: ChatRun, stream: bool, include_usage: bool) -> StreamingResponse | JSONResponse:
    if run.chunks is not None:
        return _stream(run, include_usage)
    assert run.result is not None
    if stream:  # tool calls are known only once the reply is complete: replayed as chunks
        return StreamingResponse(_replay_as_stream(run.result, include_usage), media_type="text/event-stream")
    response = JSONResponse(run.result)
    if run.fallback_from:
        response.headers["X-Litegate-Fallback-From"] = run.fallback_from
    return response


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    service = request.app.state.runtime.chat
    call = _call(request, req, "chat")
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    if service.relay_tier(req.model) is not None:
        try:
            relayed = await service.relay(call, await request.json(), stream=req.stream)
        except RemoteRejected as e:
            return JSONResponse(e.body if isinstance(e.body, dict) else error_body(e.message),
                                status_code=e.status_code)
        if isinstance(relayed, ChatRun):
            return _answer(relayed, req.stream, include_usage)
        if isinstance(relayed, dict):
            return JSONResponse(relayed)
        return StreamingResponse(relayed, media_type="text/event-stream")
    return _answer(await while_connected(request, service.run(call, stream=req.stream)), req.stream, include_usage)


@router.post("/v1/completions", response_model=None)
async def completions(req: CompletionRequest, request: Request) -> StreamingResponse | JSONResponse:
    run = await while_connected(request, request.app.state.runtime.chat.run(_call(request, req, "completion"),
                                                                            stream=req.stream))
    if run.chunks is not None:
        return _stream(run, bool(req.stream_options and req.stream_options.include_usage),
                       legacy_logprobs=req.logprobs is not None)
    if req.logprobs is not None:
        _legacy_logprobs(run.result)
    return JSONResponse(run.result)


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


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] | None = None  # null (litellm sends it) means float
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """OpenAI's embeddings shape over the nano encoder (all-minilm-l6-v2, 384 dimensions)."""
    if isinstance(req.input, str):
        texts = [req.input]
    elif all(isinstance(t, str) for t in req.input):
        texts = list(req.input)  # type: ignore[arg-type]
    else:
        raise InvalidRequest("'input' must be a string or a list of strings; token arrays are not supported "
                             "by this embedding model", param="input")
    service = request.app.state.runtime.embeddings
    vectors, tokens = await run_in_threadpool(
        service.embed, texts, req.model, req.dimensions, api="embeddings",
        feature=request_feature(request), api_key=request_fingerprint(request))
    data = []
    for i, v in enumerate(vectors):
        if req.encoding_format == "base64":
            value: Any = base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        else:
            value = [float(x) for x in v]
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": service.check_model(req.model),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def gemini_client(request: Request) -> bool:
    """google-genai calls GET /v1/models[/{m}] too (its default API version is v1)."""
    return "x-goog-api-client" in request.headers or "x-goog-api-key" in request.headers


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    if gemini_client(request):

        return {"models": gemini_models(request)}
    started = request.app.state.started
    data = []
    for m in request.app.state.runtime.chat.models():
        if m.remote:
            entry: dict[str, Any] = {"id": m.name, "object": "model", "created": started, "owned_by": "remote",
                                     "upstream_model": m.upstream_model, "circuit": m.circuit}
        else:
            entry = {"id": m.name, "object": "model", "created": started, "owned_by": "litegate",
                     "aliases": list(m.aliases), "loaded": m.loaded}
            if m.n_ctx is not None:
                entry["context_length"] = m.n_ctx
        data.append(entry)
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    if gemini_client(request):

        return await gemini_get_model(model_id, request)
    found = request.app.state.runtime.chat.target(model_id)  # 404 for an unknown model
    owner = "remote" if found.tier.remote else "litegate"
    return {"id": found.model, "object": "model", "created": request.app.state.started, "owned_by": owner}
