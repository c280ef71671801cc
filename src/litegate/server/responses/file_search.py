"""The Responses API's ``file_search`` tool: the last user message searches the named
vector stores (collections), the ``answer`` task answers from the hits, and the reply cites
them as ``file_citation`` annotations after a ``file_search_call`` output item."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest
from litegate.keys import request_fingerprint, request_tenant
from litegate.server.file_search import DEFAULT_RESULTS, check_results, search_and_answer


def file_search_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's file_search tool, checked; None when it has none."""
    tools = body.get("tools") or []
    found = [t for t in tools if isinstance(t, dict) and t.get("type") == "file_search"]
    if not found:
        return None
    if len(found) != len(tools):
        raise InvalidRequest("'tools': file_search cannot be combined with other tools here", param="tools")
    tool = found[0]
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("'tools[0].vector_store_ids' must be a non-empty list of vector store ids",
                             param="tools[0].vector_store_ids")
    check_results(tool.get("max_num_results", DEFAULT_RESULTS), "tools[0].max_num_results")
    return tool


def _question(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip():
            return m["content"]
    raise InvalidRequest("file_search needs a user message with text to search for", param="input")


async def file_search_response(request: Request, body: dict[str, Any], tool: dict[str, Any],
                               messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(output items, chat-shaped usage, the tier that answered)."""
    runtime = request.app.state.runtime
    question = _question(messages)
    model = body.get("model")
    tier = model if isinstance(model, str) and model in runtime.tiers else "auto"
    found, result = await run_in_threadpool(
        lambda: search_and_answer(runtime, request_tenant(request).owner, request_fingerprint(request),
                                  tool["vector_store_ids"], question,
                                  top_k=tool.get("max_num_results", DEFAULT_RESULTS), filters=tool.get("filters"),
                                  tier=tier))
    hits = [h for _, h in found]
    text = result["answer"] if result["found"] else "The documents do not say."
    annotations = []
    for pid in result["citations"]:
        hit = hits[int(pid) - 1]
        annotations.append({"type": "file_citation", "index": len(text), "file_id": hit.source_file_id or hit.file_id,
                            "filename": hit.filename})
    call: dict[str, Any] = {"type": "file_search_call", "id": "fs_" + secrets.token_hex(12), "status": "completed",
                            "queries": [question], "results": None}
    if "file_search_call.results" in (body.get("include") or []):
        call["results"] = [{"file_id": h.source_file_id or h.file_id, "filename": h.filename, "score": h.score,
                            "text": h.text, "attributes": {k: v for k, v in {**h.attributes, "page": h.page,
                                                                             "line_start": h.line_start}.items()
                                                           if v is not None}} for h in hits]
    message = {"type": "message", "id": "msg_" + secrets.token_hex(12), "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": annotations}]}
    usage = result.get("usage") or {}
    return [call, message], usage, result.get("model") or tier
