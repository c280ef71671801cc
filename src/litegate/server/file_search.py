"""File search over collections for the APIs that have it (the Responses API's ``file_search``
tool, Gemini's ``fileSearch`` tool): the question searches the named collections as the
caller, the ``answer`` task answers from the best hits, and each API cites them its own way."""

from __future__ import annotations

from typing import Any

from litegate.errors import InvalidRequest

DEFAULT_RESULTS = 5  # passages the lite model reads (its context is small)
MAX_RESULTS = 20


def check_results(n: Any, param: str, most: int = MAX_RESULTS) -> int:
    """How many results a file search asks for: an integer from 1 to ``most``."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= most:
        raise InvalidRequest(f"'{param}' must be an integer from 1 to {most}", param=param)
    return n


def search_and_answer(runtime: Any, owner: str | None, api_key: str | None, collection_ids: list[str],
                      question: str, *, top_k: int = DEFAULT_RESULTS, filters: Any = None,
                      tier: str = "auto") -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """(the hits read, each with its collection's id; the answer task's result): the
    collections of ``owner`` (the caller's tenant) searched, the ``top_k`` best hits over all of
    them answered from on ``api_key``'s ledger; no hits is "not in the documents" without a
    model call."""
    found: list[tuple[str, Any]] = []
    for ref in collection_ids:
        coll = runtime.collections.get(owner, ref)["id"]
        found += [(coll, h) for h in runtime.collections.search(owner, ref, question, top_k=top_k, filters=filters)]
    found = sorted(found, key=lambda pair: -pair[1].score)[:top_k]
    if not found:
        return [], {"answer": "not in the documents", "found": False, "citations": [], "usage": {}}
    context = [{"id": str(i + 1), "text": h.text} for i, (_, h) in enumerate(found)]
    result = runtime.tasks.run("answer", {"query": question, "context": context, "tier": tier}, api_key)
    return found, result
