"""Collection routes: /v1/collections (create, list, get, delete), its files (add a stored
file, a text, texts or an upload; list; remove), background ingest jobs, and search."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from litegate.collections.service import guess_type
from litegate.documents.types import Part
from litegate.errors import InvalidRequest
from litegate.keys import request_tenant
from litegate.server.errors import json_body

router = APIRouter()


def _collections(request: Request) -> Any:
    return request.app.state.runtime.collections


@router.post("/v1/collections", status_code=201)
async def create_collection(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(_collections(request).create, request_tenant(request).owner, body.get("name"),
                                   description=body.get("description"), attributes=body.get("metadata"))


@router.get("/v1/collections")
async def list_collections(request: Request) -> dict[str, Any]:
    rows = await run_in_threadpool(_collections(request).list, request_tenant(request).owner)
    return {"object": "list", "data": rows}


@router.get("/v1/collections/{ref}")
async def get_collection(ref: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_collections(request).get, request_tenant(request).owner, ref)


@router.delete("/v1/collections/{ref}")
async def delete_collection(ref: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_collections(request).delete, request_tenant(request).owner, ref)


@router.get("/v1/collections/{ref}/files")
async def list_collection_files(ref: str, request: Request) -> dict[str, Any]:
    rows = await run_in_threadpool(_collections(request).files, request_tenant(request).owner, ref)
    return {"object": "list", "data": rows}


@router.delete("/v1/collections/{ref}/files/{file_ref}")
async def remove_collection_file(ref: str, file_ref: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_collections(request).remove_file, request_tenant(request).owner, ref, file_ref)


@router.post("/v1/collections/{ref}/files", status_code=201)
async def add_collection_file(ref: str, request: Request) -> dict[str, Any]:
    """JSON: {file_id} (a stored file), {text, source?, filename?}, {texts: [...]}, or
    {data: base64, filename, mime_type?}; each with optional "attributes". Or a multipart
    upload with the field 'file'."""
    owner, coll = request_tenant(request).owner, _collections(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("the 'file' field must be a file", param="file")
        data = await upload.read()
        part = Part(guess_type(upload.filename, upload.content_type), data, "file", filename=upload.filename)
        return await run_in_threadpool(coll.add_file, owner, ref, part)
    body = await json_body(request)
    attributes = body.get("attributes")
    if "file_id" in body:
        return await run_in_threadpool(coll.add_stored_file, owner, ref, body["file_id"], attributes)
    if "texts" in body:
        if not isinstance(body["texts"], list) or not body["texts"]:
            raise InvalidRequest("'texts' must be a non-empty list of {text, source?, attributes?}", param="texts")
        rows = await run_in_threadpool(coll.add_texts, owner, ref, body["texts"])
        return {"object": "list", "data": rows}
    if "text" in body:
        return await run_in_threadpool(coll.add_text, owner, ref, body["text"], source=body.get("source"),
                                       filename=body.get("filename"), attributes=attributes)
    if "data" in body:
        try:
            data = base64.b64decode(body["data"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise InvalidRequest("'data' must be base64", param="data") from None
        name = body.get("filename")
        part = Part(guess_type(name, body.get("mime_type")), data, "data", filename=name)
        return await run_in_threadpool(coll.add_file, owner, ref, part, source=body.get("source"),
                                       attributes=attributes)
    raise InvalidRequest("send one of 'file_id', 'text', 'texts' or 'data' (base64 with 'filename'), or a multipart "
                         "'file'", param="file_id")


@router.post("/v1/collections/{ref}/jobs", status_code=201)
async def start_ingest_job(ref: str, request: Request) -> dict[str, Any]:
    """Add many stored files in the background; poll GET .../jobs/{id} for progress."""
    body = await json_body(request)
    return await run_in_threadpool(_collections(request).jobs.submit, request_tenant(request).owner, ref,
                                   body.get("file_ids"), body.get("attributes"))


@router.get("/v1/collections/{ref}/jobs/{job_id}")
async def get_ingest_job(ref: str, job_id: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_collections(request).jobs.get, request_tenant(request).owner, job_id)


@router.post("/v1/collections/{ref}/search")
async def search_collection(ref: str, request: Request) -> dict[str, Any]:
    """{query, top_k?, filters?, mode?: hybrid|lexical|dense, rerank?: a tier name}."""
    body = await json_body(request)
    rerank = body.get("rerank")
    tier = None
    if rerank:
        if not isinstance(rerank, str):
            raise InvalidRequest("'rerank' names an LLM tier (lite, pro, ...)", param="rerank")
        tier = request.app.state.runtime.tasks.tier(rerank)
        if "labels" not in tier.capabilities:
            raise InvalidRequest(f"the {rerank} tier cannot score yes/no; rerank with an LLM tier", param="rerank")
    hits = await run_in_threadpool(_collections(request).search, request_tenant(request).owner, ref, body.get("query"),
                                   top_k=body.get("top_k", 10), filters=body.get("filters"),
                                   mode=body.get("mode", "hybrid"), rerank=tier, fusion=body.get("fusion"))
    return {"object": "list", "query": body.get("query"), "data": [h.as_dict() | {"where": h.where()} for h in hits]}
