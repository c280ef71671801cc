"""OpenAI's vector stores over collections: /v1/vector_stores (create, list, retrieve,
delete), its files (attach a stored file, list, retrieve, detach), file batches, and search,
in the shapes the ``openai`` SDK reads. A vector store is a collection; its id is the
collection's id."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest
from litegate.keys import request_tenant
from litegate.server.errors import json_body
from litegate.server.file_search import check_results

router = APIRouter()
MAX_RESULTS = 50


def _collections(request: Request) -> Any:
    return request.app.state.runtime.collections


def _store(c: dict[str, Any]) -> dict[str, Any]:
    # a file whose chunks still wait for their vectors (collections/backfill.py) is in progress:
    # searchable by its words, not yet by meaning
    pending = int(c.get("files_pending") or 0)
    return {"id": c["id"], "object": "vector_store", "created_at": int(c["created_at"]), "name": c["name"],
            "usage_bytes": c["bytes"], "status": "in_progress" if pending else "completed", "expires_after": None,
            "expires_at": None, "last_active_at": int(c["created_at"]), "metadata": c["metadata"] or {},
            "file_counts": {"in_progress": pending, "completed": c["files"] - pending, "failed": 0, "cancelled": 0,
                            "total": c["files"]}}


def _file(row: dict[str, Any], store_id: str) -> dict[str, Any]:
    status = "in_progress" if row.get("vectors_pending") else "completed"
    return {"id": row["file_id"] or row["id"], "object": "vector_store.file", "created_at": int(row["created_at"]),
            "vector_store_id": store_id, "usage_bytes": row["bytes"], "status": status, "last_error": None,
            "attributes": row["attributes"], "chunking_strategy": {"type": "static", "static": {
                "max_chunk_size_tokens": 128, "chunk_overlap_tokens": 32}}}


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None, "has_more": False}


def _create(coll: Any, owner: str | None, body: dict[str, Any]) -> dict[str, Any]:
    created = coll.create(owner, body.get("name") or "store-" + secrets.token_hex(6),
                          description=body.get("description"), attributes=body.get("metadata"))
    file_ids = body.get("file_ids") or []
    if not isinstance(file_ids, list):
        raise InvalidRequest("'file_ids' must be a list", param="file_ids")
    try:
        for fid in file_ids:
            coll.add_stored_file(owner, created["id"], fid)
    except Exception:
        coll.delete(owner, created["id"])  # a store with half its files is not what was asked for
        raise
    return coll.get(owner, created["id"])


@router.post("/v1/vector_stores")
async def create_vector_store(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    return _store(await run_in_threadpool(_create, _collections(request), request_tenant(request).owner, body))


@router.get("/v1/vector_stores")
async def list_vector_stores(request: Request) -> dict[str, Any]:
    rows = await run_in_threadpool(_collections(request).list, request_tenant(request).owner)
    return _page([_store(r) for r in rows])


@router.get("/v1/vector_stores/{store_id}")
async def get_vector_store(store_id: str, request: Request) -> dict[str, Any]:
    return _store(await run_in_threadpool(_collections(request).get, request_tenant(request).owner, store_id))


@router.delete("/v1/vector_stores/{store_id}")
async def delete_vector_store(store_id: str, request: Request) -> dict[str, Any]:
    gone = await run_in_threadpool(_collections(request).delete, request_tenant(request).owner, store_id)
    return {"id": gone["id"], "object": "vector_store.deleted", "deleted": True}


@router.post("/v1/vector_stores/{store_id}/files")
async def attach_file(store_id: str, request: Request) -> dict[str, Any]:
    """Indexed before the answer (a PDF of a hundred pages takes seconds): the file comes back
    ``completed``, so ``create_and_poll`` returns at once."""
    body = await json_body(request)
    owner, coll = request_tenant(request).owner, _collections(request)
    row = await run_in_threadpool(coll.add_stored_file, owner, store_id, body.get("file_id"), body.get("attributes"))
    return _file(row, row["collection_id"])


@router.get("/v1/vector_stores/{store_id}/files")
async def list_store_files(store_id: str, request: Request) -> dict[str, Any]:
    coll = _collections(request)
    owner = request_tenant(request).owner
    store = await run_in_threadpool(coll.get, owner, store_id)
    rows = await run_in_threadpool(coll.files, owner, store_id)
    return _page([_file(r, store["id"]) for r in rows])


@router.get("/v1/vector_stores/{store_id}/files/{file_id}")
async def get_store_file(store_id: str, file_id: str, request: Request) -> dict[str, Any]:
    row = await run_in_threadpool(_collections(request).file, request_tenant(request).owner, store_id, file_id)
    return _file(row, row["collection_id"])


@router.delete("/v1/vector_stores/{store_id}/files/{file_id}")
async def detach_file(store_id: str, file_id: str, request: Request) -> dict[str, Any]:
    await run_in_threadpool(_collections(request).remove_file, request_tenant(request).owner, store_id, file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


def _batch(job: dict[str, Any]) -> dict[str, Any]:
    status = {"queued": "in_progress"}.get(job["status"], job["status"])
    return {"id": job["id"], "object": "vector_store.files_batch", "created_at": int(job["created_at"]),
            "vector_store_id": job["collection_id"], "status": status,
            "file_counts": {"in_progress": job["total"] - job["done"] - job["failed"], "completed": job["done"],
                            "failed": job["failed"], "cancelled": 0, "total": job["total"]}}


@router.post("/v1/vector_stores/{store_id}/file_batches")
async def create_file_batch(store_id: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    file_ids, per_file = body.get("file_ids"), None
    if body.get("files") is not None:  # [{file_id, attributes?}], the newer shape
        files = body["files"]
        if file_ids is not None or not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise InvalidRequest("give 'file_ids' or 'files' (a list of {file_id, attributes}), not both",
                                 param="files")
        file_ids, per_file = [f.get("file_id") for f in files], [f.get("attributes") for f in files]
    job = await run_in_threadpool(_collections(request).jobs.submit, request_tenant(request).owner, store_id,
                                  file_ids, body.get("attributes"), per_file)
    return _batch(job)


@router.get("/v1/vector_stores/{store_id}/file_batches/{batch_id}")
async def get_file_batch(store_id: str, batch_id: str, request: Request) -> dict[str, Any]:
    return _batch(await run_in_threadpool(_collections(request).jobs.get, request_tenant(request).owner, batch_id))


def _search_args(body: dict[str, Any]) -> tuple[str, int, float]:
    query = body.get("query")
    if isinstance(query, list):
        if not query or not all(isinstance(q, str) for q in query):
            raise InvalidRequest("'query' must be a string or a non-empty list of strings", param="query")
        query = " ".join(query)
    if not isinstance(query, str):
        raise InvalidRequest("'query' must be a string or a non-empty list of strings", param="query")
    n = check_results(body.get("max_num_results", 10), "max_num_results", most=MAX_RESULTS)
    options = body.get("ranking_options") or {}
    # a ranking_options that is not an object counts as a bad threshold: 400, not a crash
    threshold = (options.get("score_threshold") if isinstance(options, dict) else options) or 0.0
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidRequest("'ranking_options' must be an object whose 'score_threshold' is a number from 0 to 1",
                             param="ranking_options.score_threshold")
    return query, n, float(threshold)


@router.post("/v1/vector_stores/{store_id}/search")
async def search_vector_store(store_id: str, request: Request) -> dict[str, Any]:
    """Scores are the fused ranking's, scaled so the best possible (first on both sides) is 1
    whichever fusion the server uses; ``attributes`` hold the chunk's provenance too (page,
    lines), as OpenAI's attribute values: strings, numbers, booleans."""
    body = await json_body(request)
    query, n, threshold = _search_args(body)
    hits = await run_in_threadpool(_collections(request).search, request_tenant(request).owner, store_id, query,
                                   top_k=n, filters=body.get("filters"))
    top = _collections(request).fusion_named().best  # first on both sides
    data = []
    for h in hits:
        score = round(min(1.0, h.score / top), 6)
        if score < threshold:
            continue
        data.append({"file_id": h.source_file_id or h.file_id, "filename": h.filename, "score": score,
                     "attributes": {k: v for k, v in {**h.attributes, "page": h.page, "line_start": h.line_start,
                                                      "line_end": h.line_end, "chunk_id": h.chunk_id}.items()
                                    if v is not None},
                     "content": [{"type": "text", "text": h.text}]})
    return {"object": "vector_store.search_results.page", "search_query": [query], "data": data,
            "has_more": False, "next_page": None}
