"""Gemini's ``fileSearch`` tool on generateContent: the last user turn searches the named File
Search stores (collections), the answer task answers from the hits, and the reply carries
``groundingMetadata``: the chunks read (``retrievedContext``) and which of them support the
answer (``groundingSupports``, byte offsets into the reply as Gemini counts them). Also
metadata filters in Gemini's syntax (``author = "Graves" AND year > 1950``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from litegate.chat.gemini_shapes import to_gemini_response
from litegate.errors import InvalidRequest
from litegate.keys import request_fingerprint, request_tenant
from litegate.server.file_search import DEFAULT_RESULTS, check_results, search_and_answer

STORE_PREFIX = "fileSearchStores/"
MAX_FILTER_CHARS = 2000
MAX_FILTER_DEPTH = 8
_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>)'
                    r'|(?P<paren>[()])|(?P<word>[A-Za-z_][\w.\-]*))')


def store_id(name: Any, param: str) -> str:
    """``fileSearchStores/ID`` (or a bare id) as the collection's id."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest(f"'{param}' must be a File Search store's name (fileSearchStores/...)", param=param)
    return name[len(STORE_PREFIX):] if name.startswith(STORE_PREFIX) else name


def file_search_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's fileSearch tool, checked; None when it has none."""
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        return None  # the chat request's own check names the error
    found = [t.get("fileSearch", t.get("file_search")) for t in tools if isinstance(t, dict)
             and ("fileSearch" in t or "file_search" in t)]
    if not found:
        return None
    if len(found) != len(tools):
        raise InvalidRequest("'tools': fileSearch cannot be combined with other tools here", param="tools")
    tool = found[0]
    if not isinstance(tool, dict):
        raise InvalidRequest("'tools[0].fileSearch' must be an object", param="tools[0].fileSearch")
    names = tool.get("fileSearchStoreNames", tool.get("file_search_store_names"))
    if not isinstance(names, list) or not names:
        raise InvalidRequest("'tools[0].fileSearch.fileSearchStoreNames' must be a non-empty list of store names",
                             param="tools[0].fileSearch.fileSearchStoreNames")
    top_k = check_results(tool.get("topK", tool.get("top_k", DEFAULT_RESULTS)), "tools[0].fileSearch.topK")
    raw_filter = tool.get("metadataFilter", tool.get("metadata_filter"))
    return {"stores": [store_id(n, "tools[0].fileSearch.fileSearchStoreNames") for n in names], "top_k": top_k,
            "filters": parse_filter(raw_filter) if raw_filter else None}


def parse_filter(text: Any) -> dict[str, Any]:
    """A Gemini metadata filter (comparisons joined by AND / OR, parentheses) as a collection filter."""
    param = "tools[0].fileSearch.metadataFilter"
    if not isinstance(text, str) or len(text) > MAX_FILTER_CHARS:
        raise InvalidRequest(f"'{param}' must be a string of at most {MAX_FILTER_CHARS} characters", param=param)
    tokens, at = [], 0
    while at < len(text.rstrip()):
        m = _TOKEN.match(text, at)
        if m is None:
            raise InvalidRequest(f"'{param}': cannot read {text[at:at + 20].strip()!r}; write comparisons such as "
                                 'author = "Graves" AND year > 1950', param=param)
        tokens.append((m.lastgroup, m.group(m.lastgroup or "")))
        at = m.end()
    parsed, rest = _or(tokens, param, 0)
    if rest:
        raise InvalidRequest(f"'{param}': unexpected {rest[0][1]!r}", param=param)
    return parsed


def _or(tokens: list[tuple[str | None, str]], param: str, depth: int) -> tuple[dict[str, Any], list]:
    return _joined(tokens, param, depth, "OR", _and)


def _and(tokens: list[tuple[str | None, str]], param: str, depth: int) -> tuple[dict[str, Any], list]:
    return _joined(tokens, param, depth, "AND", _term)


def _joined(tokens: list, param: str, depth: int, word: str, inner: Any) -> tuple[dict[str, Any], list]:
    parts = []
    first, tokens = inner(tokens, param, depth)
    parts.append(first)
    while tokens and tokens[0] == ("word", word):
        nxt, tokens = inner(tokens[1:], param, depth)
        parts.append(nxt)
    return (parts[0] if len(parts) == 1 else {"type": word.lower(), "filters": parts}), tokens


def _term(tokens: list, param: str, depth: int) -> tuple[dict[str, Any], list]:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidRequest(f"'{param}' nests deeper than {MAX_FILTER_DEPTH} levels", param=param)
    if tokens and tokens[0] == ("paren", "("):
        inside, rest = _or(tokens[1:], param, depth + 1)
        if not rest or rest[0] != ("paren", ")"):
            raise InvalidRequest(f"'{param}': a '(' is not closed", param=param)
        return inside, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[1][0] != "op" or tokens[2][0] not in ("str", "num"):
        raise InvalidRequest(f"'{param}': expected a comparison such as key = \"value\" or key > 3", param=param)
    kind, raw = tokens[2]
    value: Any = raw[1:-1].replace('\\"', '"') if kind == "str" else float(raw) if "." in raw else int(raw)
    return {"type": _OPS[tokens[1][1]], "key": tokens[0][1], "value": value}, tokens[3:]


def _question(body: dict[str, Any]) -> str:
    for turn in reversed(body.get("contents") or []):
        if isinstance(turn, dict) and turn.get("role", "user") == "user":
            text = " ".join(p["text"] for p in turn.get("parts") or [] if isinstance(p, dict)
                            and isinstance(p.get("text"), str)).strip()
            if text:
                return text
    raise InvalidRequest("fileSearch needs a user turn with text to search for", param="contents")


async def grounded_generate(request: Request, model: str, body: dict[str, Any],
                            tool: dict[str, Any]) -> dict[str, Any]:
    """generateContent answered from File Search stores, with Gemini's grounding metadata."""
    runtime = request.app.state.runtime
    question = _question(body)
    tier = model if model in runtime.tiers else "auto"
    found, result = await run_in_threadpool(
        lambda: search_and_answer(runtime, request_tenant(request).owner, request_fingerprint(request),
                                  tool["stores"], question,
                                  top_k=tool["top_k"], filters=tool["filters"], tier=tier))
    text = result["answer"] if result["found"] else "The documents do not say."
    chat_shaped = {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                   "usage": result.get("usage") or {}}
    response = to_gemini_response(chat_shaped, model, {})
    chunks = [{"retrievedContext": {"title": h.filename, "text": h.text,
                                    "documentName": f"{STORE_PREFIX}{coll}/documents/{h.file_id}",
                                    "fileSearchStore": STORE_PREFIX + coll,
                                    **({"pageNumber": h.page} if h.page is not None else {})}} for coll, h in found]
    cited = [int(pid) - 1 for pid in result.get("citations") or [] if str(pid).isdigit()
             and 0 < int(pid) <= len(found)]
    supports = []
    if cited:
        supports.append({"segment": {"startIndex": 0, "endIndex": len(text.encode("utf-8")), "text": text},
                         "groundingChunkIndices": cited,
                         "confidenceScores": [round(float(result.get("confidence", 1.0)), 4)] * len(cited)})
    response["candidates"][0]["groundingMetadata"] = {"groundingChunks": chunks, "groundingSupports": supports,
                                                      "retrievalQueries": [question]}
    return response
