"""Ollama-compatible routes under /api, for the many tools built on Ollama (its Python client,
Open WebUI): chat, generate, embed, tags, show, ps, version.

A thin adapter of shapes over the chat service and the embedding service: the same checks,
context budget, ledger and costs as every other front end. Ollama streams by default, as
NDJSON (one JSON object a line); ``format`` is ``"json"`` or a JSON schema; ``options`` carry
the sampling settings.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from litegate._version import __version__
from litegate.chat import ChatCall, ChatCompletionRequest, CompletionRequest
from litegate.chat.service import ModelEntry
from litegate.engine.catalog import CATALOG
from litegate.errors import InvalidRequest, LitegateError
from litegate.keys import request_feature, request_fingerprint
from litegate.server.bodies import OLLAMA_CHAT, OLLAMA_EMBED, OLLAMA_EMBEDDINGS, OLLAMA_GENERATE, OLLAMA_SHOW, body
from litegate.server.errors import json_body
from litegate.server.limits import while_connected

router = APIRouter(prefix="/api")

_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p", "seed": "seed",
            "num_predict": "max_tokens", "stop": "stop", "repeat_penalty": "repeat_penalty",
            "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidRequest("options must be an object")
    out = {dst: options[src] for src, dst in _OPTIONS.items() if options.get(src) is not None}
    if out.get("max_tokens") is not None and out["max_tokens"] < 0:  # Ollama: -1 means "until done"
        out.pop("max_tokens")
    return out


def _format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("format")
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt}}
    raise InvalidRequest("format must be \"json\" or a JSON schema object")


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages must be a non-empty list")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages[{i}] must be an object")
        msg: dict[str, Any] = {"role": m.get("role"), "content": m.get("content") or ""}
        images = m.get("images")
        if images:  # base64 images: read by the document layer (OCR)
            if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
                raise InvalidRequest(f"messages[{i}].images must be a list of base64 strings")
            msg["content"] = [{"type": "text", "text": str(msg["content"])}] + [
                {"type": "file", "file": {"file_data": x, "filename": f"image {k + 1}"},
                 "where": f"messages[{i}].images[{k}]"} for k, x in enumerate(images)]
        if m.get("tool_calls"):
            msg["tool_calls"] = [{"id": f"call_{i}_{j}", "type": "function", "function": {
                "name": (c.get("function") or {}).get("name"),
                "arguments": json.dumps((c.get("function") or {}).get("arguments") or {})}}
                for j, c in enumerate(m["tool_calls"]) if isinstance(c, dict)]
        if m.get("role") == "tool":
            msg["tool_call_id"] = m.get("tool_call_id") or m.get("tool_name") or "tool"
        out.append(msg)
    return out


def _call(request: Request, req: ChatCompletionRequest | CompletionRequest, api: str) -> ChatCall:
    return ChatCall(req, api=api, feature=request_feature(request),
                    api_key=request_fingerprint(request))


def _counts(usage: dict[str, Any] | None, started: float) -> dict[str, Any]:
    usage = usage or {}
    total = int((time.perf_counter() - started) * 1e9)
    return {"total_duration": total, "load_duration": 0, "prompt_eval_count": usage.get("prompt_tokens", 0),
            "eval_count": usage.get("completion_tokens", 0)}


def _ollama_calls(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    calls = message.get("tool_calls")
    if not calls:
        return None
    return [{"function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
            for c in calls]


def _ndjson(lines: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for line in lines:
                yield (json.dumps(line, separators=(",", ":")) + "\n").encode()
        except LitegateError as e:
            yield (json.dumps({"error": e.message}) + "\n").encode()
    return StreamingResponse(body(), media_type="application/x-ndjson")


def _reply(run: Any, stream: bool, started: float, shape: Any) -> Any:
    """One finished object or NDJSON lines; ``shape(text, final_choice)`` puts the reply text
    where the route wants it (``message`` for chat, ``response`` for generate)."""
    name = run.model

    def done(usage: dict[str, Any] | None, finish: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        return {"model": name, "created_at": _now(), **extra, "done": True,
                "done_reason": "length" if finish == "length" else "stop", **_counts(usage, started)}

    if run.chunks is None:
        choice = run.result["choices"][0]
        final = done(run.result.get("usage"), choice.get("finish_reason"), shape(None, choice))
        if not stream:
            return JSONResponse(final)

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield final
        return _ndjson(one())
    chunks = run.chunks

    async def lines() -> AsyncIterator[dict[str, Any]]:
        finish = "stop"
        try:
            async for chunk in chunks:
                for c in chunk.get("choices", []):
                    piece = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                    if piece:
                        yield {"model": name, "created_at": _now(), **shape(piece, None), "done": False}
                    finish = c.get("finish_reason") or finish
                if not chunk.get("choices") and "usage" in chunk:
                    yield done(chunk["usage"], finish, shape("", None))
        finally:
            await chunks.aclose()
    return _ndjson(lines())


def _chat_shape(text: str | None, choice: dict[str, Any] | None) -> dict[str, Any]:
    if choice is None:
        return {"message": {"role": "assistant", "content": text}}
    message = {"role": "assistant", "content": choice["message"].get("content") or ""}
    calls = _ollama_calls(choice["message"])
    if calls:
        message["tool_calls"] = calls
    return {"message": message}


def _generate_shape(text: str | None, choice: dict[str, Any] | None) -> dict[str, Any]:
    if choice is None:
        return {"response": text}
    return {"response": choice.get("text") if "text" in choice else (choice.get("message") or {}).get("content")
            or ""}


@router.post("/chat", response_model=None, openapi_extra=body(OLLAMA_CHAT))
async def chat(request: Request) -> Any:
    body = await json_body(request)
    model = str(body.get("model") or request.app.state.runtime.default_model)
    params: dict[str, Any] = {"model": model, "messages": _messages(body.get("messages")), **_sampling(body)}
    if _format(body):
        params["response_format"] = _format(body)
    if body.get("tools"):
        params["tools"] = body["tools"]
    stream = body.get("stream", True) is not False
    started = time.perf_counter()
    call = _call(request, ChatCompletionRequest.model_validate(params), "ollama")
    run = await while_connected(request, request.app.state.runtime.chat.run(call, stream=stream))
    return _reply(run, stream, started, _chat_shape)


@router.post("/generate", response_model=None, openapi_extra=body(OLLAMA_GENERATE))
async def generate(request: Request) -> Any:
    body = await json_body(request)
    model = str(body.get("model") or request.app.state.runtime.default_model)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise InvalidRequest("prompt must be a string")
    stream = body.get("stream", True) is not False
    started = time.perf_counter()
    if body.get("raw"):
        req: ChatCompletionRequest | CompletionRequest = CompletionRequest(model=model, prompt=prompt,
                                                                           **_sampling(body))
    else:
        messages = ([{"role": "system", "content": body["system"]}] if body.get("system") else []) + [
            {"role": "user", "content": prompt}]
        params: dict[str, Any] = {"model": model, "messages": messages, **_sampling(body)}
        if _format(body):
            params["response_format"] = _format(body)
        req = ChatCompletionRequest.model_validate(params)
    run = await while_connected(request, request.app.state.runtime.chat.run(_call(request, req, "ollama"),
                                                                            stream=stream))
    return _reply(run, stream, started, _generate_shape)


@router.post("/embed", openapi_extra=body(OLLAMA_EMBED))
async def embed(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list):
        raise InvalidRequest("input must be a string or a list of strings")
    started = time.perf_counter()
    vectors, tokens = await run_in_threadpool(
        request.app.state.runtime.embeddings.embed, texts, body.get("model"), body.get("dimensions"),
        api="ollama-embed", feature=request_feature(request), api_key=request_fingerprint(request))
    return {"model": body.get("model") or "all-minilm-l6-v2", "embeddings": [[float(x) for x in v] for v in vectors],
            "total_duration": int((time.perf_counter() - started) * 1e9), "prompt_eval_count": tokens}


@router.post("/embeddings", openapi_extra=body(OLLAMA_EMBEDDINGS))
async def embeddings(request: Request) -> dict[str, Any]:
    """Ollama's older single-text route."""
    body = await json_body(request)
    vectors, _ = await run_in_threadpool(
        request.app.state.runtime.embeddings.embed, [body.get("prompt")], body.get("model"), None,
        api="ollama-embed", feature=request_feature(request), api_key=request_fingerprint(request))
    return {"embedding": [float(x) for x in vectors[0]]}


def _model_entry(m: ModelEntry) -> dict[str, Any]:
    spec = CATALOG.get(m.name)
    size = spec.size if spec is not None else (m.path.stat().st_size if m.path is not None and m.path.exists() else 0)
    digest = spec.sha256 if spec is not None else ""
    return {"name": m.name, "model": m.name, "modified_at": _now(), "size": size, "digest": digest,
            "details": {"format": "remote" if m.remote else "gguf", "family": "qwen2" if spec is not None else "",
                        "parameter_size": {"lite": "0.5B", "pro": "1.5B"}.get(m.name, ""),
                        "quantization_level": "Q4_K_M" if spec is not None else ""}}


def _models(request: Request) -> list[ModelEntry]:
    return list(request.app.state.runtime.chat.models())


@router.get("/tags")
async def tags(request: Request) -> dict[str, Any]:
    return {"models": [_model_entry(m) for m in _models(request)]}


@router.get("/ps")
async def ps(request: Request) -> dict[str, Any]:
    # a loaded model stays until the server stops; Ollama's clients want a time here
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    return {"models": [dict(_model_entry(m), size_vram=0, expires_at=until) for m in _models(request) if m.loaded]}


@router.post("/show", openapi_extra=body(OLLAMA_SHOW))
async def show(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    name = str(body.get("model") or body.get("name") or "")
    found = request.app.state.runtime.chat.target(name).model  # 404 for an unknown model
    entry = _model_entry(next(m for m in _models(request) if m.name == found))
    return {"modelfile": f"FROM {found}", "parameters": "", "template": "", "details": entry["details"],
            "model_info": {"general.architecture": entry["details"]["family"]},
            "capabilities": ["completion", "tools"], "modified_at": entry["modified_at"]}


@router.get("/version")
async def version() -> dict[str, Any]:
    return {"version": __version__}
