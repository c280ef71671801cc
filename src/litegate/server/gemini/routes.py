"""Gemini-compatible routes under /v1beta, for code written against google-genai.

generateContent, streamGenerateContent (SSE), countTokens, embedContent /
batchEmbedContents, and explicit context caching (cachedContents). A cached content is a prompt prefix: on
creation its KV state is computed once; requests that name it put the same prefix first, so
llama.cpp's prompt cache (slots plus a host-RAM cache) restores that state instead of
prefilling it again. ``cachedContentTokenCount`` reports the tokens actually reused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from litegate.chat import ChatCall
from litegate.chat.gemini_shapes import contents_to_messages, to_chat_request, to_gemini_response
from litegate.errors import InvalidRequest, LitegateError, NotFound, TooManyRequests
from litegate.keys import request_feature, request_fingerprint, request_tenant
from litegate.nano.embeddings import MODEL
from litegate.server.bodies import BATCH_EMBED, CACHE, CACHE_UPDATE, COUNT_TOKENS, EMBED, GENERATE, body
from litegate.server.errors import json_body
from litegate.server.gemini.grounding import file_search_tool, grounded_generate
from litegate.server.gemini.shape import google_status
from litegate.server.limits import while_connected
from litegate.tenancy import OPERATOR, Tenant

log = logging.getLogger("litegate.gemini")
router = APIRouter()  # mounted under /v1beta and /v1 (google-genai 3.x defaults to v1)

MAX_CACHES = 100
DEFAULT_TTL_S = 3600.0


def _now() -> float:
    return time.time()


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


MAX_TTL_S = 366 * 86400.0  # a cached content lives at most a year


def _parse_ttl(value: Any) -> float:
    m = re.fullmatch(r"\s*(\d{1,12}(?:\.\d{1,9})?)s\s*", str(value))
    if not m:
        raise InvalidRequest(f"ttl {str(value)[:40]!r} must be a duration in seconds such as '300s'")
    seconds = float(m.group(1))
    if not 0 < seconds <= MAX_TTL_S:
        raise InvalidRequest(f"ttl must be more than 0 and at most {MAX_TTL_S:.0f}s (a year)")
    return seconds


def _parse_time(value: Any) -> float:
    if not isinstance(value, str):
        raise InvalidRequest("expireTime must be an RFC 3339 timestamp string such as '2026-01-01T00:00:00Z'")
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        raise InvalidRequest(f"expireTime {value[:40]!r} is not an RFC 3339 timestamp") from None
    if ts > _now() + MAX_TTL_S:
        raise InvalidRequest("expireTime is more than a year away")
    return ts


@dataclass
class CachedContent:
    name: str
    model: str
    display_name: str
    body: dict[str, Any]  # systemInstruction, contents, tools, toolConfig
    prefix_tokens: int
    create_time: float
    update_time: float
    expire_time: float
    owner: str | None = None  # the key that made it (litegate.tenancy)

    def resource(self) -> dict[str, Any]:
        return {"name": self.name, "model": f"models/{self.model}", "displayName": self.display_name,
                "createTime": rfc3339(self.create_time), "updateTime": rfc3339(self.update_time),
                "expireTime": rfc3339(self.expire_time),
                "usageMetadata": {"totalTokenCount": self.prefix_tokens}}


class GeminiState:
    """Cached contents of one app (in memory: they end with the process; batch jobs are durable,
    see litegate.server.gemini.batches)."""

    def __init__(self) -> None:
        self.caches: dict[str, CachedContent] = {}
        self.lock = threading.Lock()

    def live_cache(self, name: str, tenant: Tenant = OPERATOR) -> CachedContent:
        name = name if name.startswith("cachedContents/") else f"cachedContents/{name}"
        with self.lock:
            self._expire()
            cache = self.caches.get(name)
        if cache is None or not tenant.sees(cache.owner):
            raise NotFound(f"cached content {name} not found (it may have expired)")
        return cache

    def _expire(self) -> None:
        now = _now()
        for key in [k for k, c in self.caches.items() if c.expire_time <= now]:
            del self.caches[key]


def _state(request: Request) -> GeminiState:
    return request.app.state.gemini


def model_id(raw: str) -> str:
    return raw[len("models/"):] if raw.startswith("models/") else raw


def served_model(request: Request, model: str) -> str:
    """The served name (404 for an unknown model), before anything is loaded."""
    return request.app.state.runtime.chat.target(model).model


def _call(request: Request, body: dict[str, Any]) -> tuple[ChatCall, dict[str, Any]]:
    chat_req, wants = to_chat_request(body)
    return ChatCall(chat_req, api="gemini", feature=request_feature(request),
                    api_key=request_fingerprint(request)), wants


def _with_cache(body: dict[str, Any], state: GeminiState, model: str,
                tenant: Tenant) -> tuple[dict[str, Any], CachedContent | None]:
    name = body.get("cachedContent")
    if not name:
        return body, None
    cache = state.live_cache(str(name), tenant)
    if cache.model != model:
        raise InvalidRequest(f"{cache.name} was created for model {cache.model}, not {model}")
    for key in ("systemInstruction", "tools", "toolConfig"):
        if body.get(key) and cache.body.get(key):
            raise InvalidRequest(f"{key} is already part of {cache.name}; it cannot be set again on the request")
    merged = dict(body)
    merged["contents"] = list(cache.body.get("contents") or []) + list(body.get("contents") or [])
    for key in ("systemInstruction", "tools", "toolConfig"):
        if cache.body.get(key):
            merged[key] = cache.body[key]
    return merged, cache


async def _generate(request: Request, model: str, body: dict[str, Any]) -> dict[str, Any]:
    name = served_model(request, model)
    if (tool := file_search_tool(body)) is not None:
        return await grounded_generate(request, name, body, tool)
    body, cache = _with_cache(body, _state(request), name, request_tenant(request))
    call, wants = _call(request, body)
    call.request.model = name
    run = await request.app.state.runtime.chat.run(call)
    result = run.result
    cached = 0
    if cache is not None:
        reused = int(((result.get("usage") or {}).get("prompt_tokens_details") or {}).get("cached_tokens", 0))
        cached = min(reused, cache.prefix_tokens)
    return to_gemini_response(result, name, wants, cached_tokens=cached)


def gemini_models(request: Request) -> list[dict[str, Any]]:
    """The served models as Gemini model resources (chat models, then the embedding model)."""
    rt = request.app.state.runtime
    out = []
    for m in rt.chat.models():
        n_ctx = m.n_ctx or rt.settings.ctx
        out.append({"name": f"models/{m.name}", "baseModelId": m.name, "version": "litegate",
                    "displayName": m.name, "description": f"{m.name}, served by litegate",
                    "inputTokenLimit": n_ctx, "outputTokenLimit": n_ctx,
                    "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens",
                                                   "createCachedContent", "batchGenerateContent"]})

    out.append({"name": f"models/{MODEL}", "baseModelId": MODEL, "version": "litegate", "displayName": MODEL,
                "description": "sentence embeddings (384 dimensions)", "inputTokenLimit": 128,
                "outputTokenLimit": 1, "supportedGenerationMethods": ["embedContent", "batchEmbedContents"]})
    return out


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"models": gemini_models(request)}


@router.get("/models/{model}")
async def get_model(model: str, request: Request) -> dict[str, Any]:
    name = model_id(model)
    for item in gemini_models(request):
        if item["name"] == f"models/{name}" or item["baseModelId"].lower() == name.lower():
            return item
    request.app.state.runtime.chat.target(name)  # the usual 404, naming what exists
    raise NotFound(f"models/{name} not found")


@router.post("/models/{model}:generateContent", openapi_extra=body(GENERATE))
async def generate_content(model: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    # a batch runs on after its request ended; a direct call ends when its client goes away
    return await while_connected(request, _generate(request, model_id(model), body))


@router.post("/models/{model}:streamGenerateContent", response_model=None, openapi_extra=body(GENERATE))
async def stream_generate_content(model: str, request: Request) -> StreamingResponse:
    body = await json_body(request)
    name = served_model(request, model_id(model))
    sse = request.query_params.get("alt") == "sse"

    def frame(obj: dict[str, Any]) -> bytes:
        data = json.dumps(obj, separators=(",", ":"))
        return f"data: {data}\r\n\r\n".encode() if sse else (data + "\n").encode()

    media_type = "text/event-stream" if sse else "application/json"
    if (tool := file_search_tool(body)) is not None:  # answered whole: one frame with its grounding
        grounded = await grounded_generate(request, name, body, tool)

        async def one() -> AsyncIterator[bytes]:
            yield frame(grounded)
        return StreamingResponse(one(), media_type=media_type)
    body, cache = _with_cache(body, _state(request), name, request_tenant(request))
    call, wants = _call(request, body)
    call.request.model = name
    run = await request.app.state.runtime.chat.run(call, stream=True)
    if run.chunks is None:  # tool calls (known once the reply is complete) and remote tiers
        result = run.result

        async def single() -> AsyncIterator[bytes]:
            yield frame(to_gemini_response(result, name, wants))
        return StreamingResponse(single(), media_type=media_type)
    chunks = run.chunks

    async def events() -> AsyncIterator[bytes]:
        finish = "stop"
        try:
            async for chunk in chunks:
                for choice in chunk.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield frame({"candidates": [{"content": {"role": "model", "parts": [{"text": delta}]},
                                                     "index": 0}], "modelVersion": name,
                                     "responseId": chunk.get("id")})
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                if "usage" in chunk and not chunk.get("choices"):
                    u = chunk["usage"]
                    reused = int((u.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
                    meta = {"promptTokenCount": u["prompt_tokens"], "candidatesTokenCount": u["completion_tokens"],
                            "totalTokenCount": u["total_tokens"], "thoughtsTokenCount": 0}
                    if cache is not None:
                        meta["cachedContentTokenCount"] = min(reused, cache.prefix_tokens)
                    yield frame({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                                 "finishReason": {"length": "MAX_TOKENS"}.get(finish, "STOP"),
                                                 "index": 0}], "usageMetadata": meta, "modelVersion": name,
                                 "responseId": chunk.get("id")})
        except LitegateError as e:
            yield frame({"error": {"code": e.status_code, "message": e.message,
                                   "status": google_status(e.status_code)}})
        finally:
            await chunks.aclose()

    return StreamingResponse(events(), media_type=media_type)


@router.post("/models/{model}:countTokens", openapi_extra=body(COUNT_TOKENS))
async def count_tokens(model: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    name = served_model(request, model_id(model))  # an unknown model is a 404 before the body is read
    if "generateContentRequest" in body:
        body = body["generateContentRequest"]
        if not isinstance(body, dict):
            raise InvalidRequest("generateContentRequest must be an object")
    _, _, total = await request.app.state.runtime.chat.count(name, contents_to_messages(body))
    return {"totalTokens": total}


def _embed_texts(request: Request, model: str, items: list[Any]) -> list[dict[str, Any]]:
    """``items``: embedContent-shaped objects ({"content", "outputDimensionality"})."""
    texts, dims = [], set()
    for i, item in enumerate(items):
        content = item.get("content") if isinstance(item, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            raise InvalidRequest(f"requests[{i}].content.parts must be a non-empty list of parts")
        text = "".join(str(p.get("text", "")) for p in parts)
        if not text.strip():
            raise InvalidRequest(f"requests[{i}]: nothing to embed")
        texts.append(text)
        dim = item.get("outputDimensionality")
        if dim is not None:
            if isinstance(dim, bool) or not isinstance(dim, int):
                raise InvalidRequest(f"requests[{i}].outputDimensionality must be an integer")
            dims.add(dim)
    if len(dims) > 1:
        raise InvalidRequest("every request of a batch must ask for the same outputDimensionality")
    vectors, _ = request.app.state.runtime.embeddings.embed(
        texts, model, next(iter(dims), None), api="gemini-embed", feature=request_feature(request),
        api_key=request_fingerprint(request), param="requests")
    return [{"values": [float(x) for x in v]} for v in vectors]


@router.post("/models/{model}:embedContent", openapi_extra=body(EMBED))
async def embed_content(model: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    embeddings = await run_in_threadpool(_embed_texts, request, model_id(model), [body])
    return {"embedding": embeddings[0]}


@router.post("/models/{model}:batchEmbedContents", openapi_extra=body(BATCH_EMBED))
async def batch_embed_contents(model: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    reqs = body.get("requests")
    if not isinstance(reqs, list) or not reqs:
        raise InvalidRequest("requests must be a non-empty list")
    return {"embeddings": await run_in_threadpool(_embed_texts, request, model_id(model), reqs)}


# -- cachedContents ---------------------------------------------------------------------

@router.post("/cachedContents", openapi_extra=body(CACHE))
async def create_cache(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    model = model_id(str(body.get("model") or ""))
    if not model:
        raise InvalidRequest("model is required")
    prefix = {k: body[k] for k in ("systemInstruction", "contents", "tools", "toolConfig") if body.get(k)}
    if not prefix.get("contents") and not prefix.get("systemInstruction"):
        raise InvalidRequest("a cached content needs contents or a systemInstruction")
    messages = contents_to_messages({**prefix, "contents": prefix.get("contents") or
                                     [{"role": "user", "parts": [{"text": ""}]}]})
    name, n_ctx, tokens = await request.app.state.runtime.chat.count(model, messages)
    if tokens >= n_ctx:
        raise InvalidRequest(f"the cached content is {tokens} tokens; the model's context holds {n_ctx}")
    now = _now()
    expire = _parse_time(body["expireTime"]) if body.get("expireTime") else now + (
        _parse_ttl(body["ttl"]) if body.get("ttl") else DEFAULT_TTL_S)
    if expire <= now:
        raise InvalidRequest("expireTime is in the past")
    state = _state(request)
    with state.lock:
        state._expire()
        owner = request_tenant(request).owner  # counted per key: one key filling them blocks only itself
        if sum(1 for c in state.caches.values() if c.owner == owner) >= MAX_CACHES:
            raise TooManyRequests(f"at most {MAX_CACHES} cached contents per key may exist at once; delete some")
        cache = CachedContent(name="cachedContents/" + secrets.token_hex(10), model=name,
                              display_name=str(body.get("displayName", "")), body=prefix, prefix_tokens=tokens,
                              create_time=now, update_time=now, expire_time=expire,
                              owner=owner)
        state.caches[cache.name] = cache
    # Compute the prefix's KV state now, so the first request that uses it finds it cached.
    await request.app.state.runtime.chat.prefill(name, messages)
    return cache.resource()


@router.get("/cachedContents/{name}")
async def get_cache(name: str, request: Request) -> dict[str, Any]:
    return _state(request).live_cache(name, request_tenant(request)).resource()


@router.get("/cachedContents")
async def list_caches(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        state._expire()
        tenant = request_tenant(request)
        items = [c.resource() for c in state.caches.values() if tenant.sees(c.owner)]
    return {"cachedContents": items}


@router.patch("/cachedContents/{name}", openapi_extra=body(CACHE_UPDATE))
async def update_cache(name: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    cache = _state(request).live_cache(name, request_tenant(request))
    mask = {m.strip() for m in request.query_params.get("updateMask", "").split(",") if m.strip()}
    now = _now()
    if body.get("expireTime") and (not mask or "expireTime" in mask or "expire_time" in mask):
        cache.expire_time = _parse_time(body["expireTime"])
    elif body.get("ttl") and (not mask or "ttl" in mask):
        cache.expire_time = now + _parse_ttl(body["ttl"])
    else:
        raise InvalidRequest("only ttl or expireTime can be updated")
    cache.update_time = now
    return cache.resource()


@router.delete("/cachedContents/{name}")
async def delete_cache(name: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    cache = state.live_cache(name, request_tenant(request))
    with state.lock:
        state.caches.pop(cache.name, None)
    return {}
