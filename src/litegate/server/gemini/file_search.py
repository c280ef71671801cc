"""Gemini's File Search stores over collections, for code written against google-genai:
``file_search_stores`` create / get / list / delete, ``upload_to_file_search_store`` (the
resumable upload protocol) and ``import_file`` (a file uploaded through the Files API), their
operations, and ``documents`` list / get / delete. A store is a collection (its id is the
collection's id); a document is one of its files. Files are read and indexed before the
operation is answered, so every operation comes back ``done``."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from litegate.collections.service import guess_type
from litegate.documents.attachments import Part
from litegate.errors import Conflict, InvalidRequest, NotFound
from litegate.keys import request_tenant
from litegate.server.errors import json_body
from litegate.server.gemini.batches import Upload, resumable_upload, stored_gemini_file
from litegate.server.gemini.grounding import STORE_PREFIX
from litegate.server.gemini.routes import rfc3339

router = APIRouter()  # mounted under /v1beta and /v1
upload_router = APIRouter()  # /upload/v1beta and /upload/v1
MAX_PAGE = 20  # Gemini's page size limit for stores and documents


def _collections(request: Request) -> Any:
    return request.app.state.runtime.collections


def _store(c: dict[str, Any]) -> dict[str, Any]:
    return {"name": STORE_PREFIX + c["id"], "displayName": c["description"] or c["name"],
            "createTime": rfc3339(c["created_at"]), "updateTime": rfc3339(c["created_at"]),
            "activeDocumentsCount": str(c["files"]), "pendingDocumentsCount": "0", "failedDocumentsCount": "0",
            "sizeBytes": str(c["bytes"])}


def _metadata_out(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "numericValue": v} if isinstance(v, (int, float)) and not isinstance(v, bool)
            else {"key": k, "stringValue": str(v)} for k, v in attributes.items()]


def _metadata_in(raw: Any, param: str = "customMetadata") -> dict[str, Any]:
    """Gemini's customMetadata list as a file's attributes (what filters match)."""
    if raw is None:
        return {}
    if not isinstance(raw, list) or len(raw) > 20:
        raise InvalidRequest(f"'{param}' must be a list of at most 20 {{key, stringValue | numericValue}} objects",
                             param=param)
    out: dict[str, Any] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidRequest(f"'{param}[{i}]' needs a 'key' string", param=param)
        text = item.get("stringValue", item.get("string_value"))  # google-genai sends its own field names
        number = item.get("numericValue", item.get("numeric_value"))
        if isinstance(text, str):
            out[item["key"]] = text
        elif isinstance(number, (int, float)) and not isinstance(number, bool):
            out[item["key"]] = number
        else:
            raise InvalidRequest(f"'{param}[{i}]' needs a stringValue or a numericValue (string lists are not "
                                 "supported here)", param=param)
    return out


def _document(store: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"{STORE_PREFIX}{store}/documents/{row['id']}", "displayName": row["filename"],
            "state": "STATE_ACTIVE", "sizeBytes": str(row["bytes"]), "mimeType": row["mime_type"],
            "createTime": rfc3339(row["created_at"]), "updateTime": rfc3339(row["created_at"]),
            "customMetadata": _metadata_out(row["attributes"])}


def _operation(store: str, doc_id: str, kind: str) -> dict[str, Any]:
    middle = "upload/operations" if kind == "upload" else "operations"
    response_type = ("UploadToFileSearchStoreResponse" if kind == "upload" else "ImportFileResponse")
    return {"name": f"{STORE_PREFIX}{store}/{middle}/{doc_id}", "done": True,
            "response": {"@type": f"type.googleapis.com/google.ai.generativelanguage.v1main.{response_type}",
                         "parent": STORE_PREFIX + store, "documentName": f"{STORE_PREFIX}{store}/documents/{doc_id}"}}


def _page(request: Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    size = request.query_params.get("pageSize", "10")
    n = min(int(size), MAX_PAGE) if size.isdigit() and int(size) > 0 else 10
    token = request.query_params.get("pageToken") or ""
    start = int(token) if token.isdigit() else 0
    out: dict[str, Any] = {key: items[start:start + n]}
    if start + n < len(items):
        out["nextPageToken"] = str(start + n)
    return out


# -- stores ---------------------------------------------------------------------------------

def _create(coll: Any, owner: str | None, display: Any) -> dict[str, Any]:
    if display is not None and (not isinstance(display, str) or len(display) > 512):
        raise InvalidRequest("'displayName' must be a string of at most 512 characters", param="displayName")
    name = (display or "").strip()
    try:
        if name:
            return coll.create(owner, name, description=display)
    except (InvalidRequest, Conflict):
        pass  # a display name need not be unique, nor a valid collection name: the collection gets its own
    return coll.create(owner, "file-search-" + secrets.token_hex(6), description=display)


@router.post("/fileSearchStores")
async def create_store(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    created = await run_in_threadpool(_create, _collections(request), request_tenant(request).owner,
                                      body.get("displayName"))
    return _store(created)


@router.get("/fileSearchStores")
async def list_stores(request: Request) -> dict[str, Any]:
    rows = await run_in_threadpool(_collections(request).list, request_tenant(request).owner)
    return _page(request, [_store(c) for c in rows], "fileSearchStores")


@router.get("/fileSearchStores/{store}")
async def get_store(store: str, request: Request) -> dict[str, Any]:
    return _store(await run_in_threadpool(_collections(request).get, request_tenant(request).owner, store))


@router.delete("/fileSearchStores/{store}")
async def delete_store(store: str, request: Request) -> dict[str, Any]:
    coll, owner = _collections(request), request_tenant(request).owner
    found = await run_in_threadpool(coll.get, owner, store)
    if found["files"] and request.query_params.get("force", "").lower() not in ("true", "1"):
        raise InvalidRequest(f"{STORE_PREFIX}{store} has {found['files']} documents; delete them first or pass "
                             "force=true", param="force", code="store_not_empty")
    await run_in_threadpool(coll.delete, owner, store)
    return {}


# -- files into a store ---------------------------------------------------------------------

@upload_router.post("/fileSearchStores/{store}:uploadToFileSearchStore")
async def upload_to_store(store: str, request: Request) -> Any:
    coll, owner = _collections(request), request_tenant(request).owner
    await run_in_threadpool(coll.get, owner, store)  # an unknown store is a 404 before any byte is taken

    async def finish(up: Upload) -> dict[str, Any]:
        attributes = _metadata_in(up.metadata.get("customMetadata"))
        filename = up.display_name or "upload"
        data = await run_in_threadpool(up.path.read_bytes)
        part = Part(guess_type(filename, up.mime_type), data, "file", filename=filename)
        row = await run_in_threadpool(lambda: coll.add_file(owner, store, part, source=filename,
                                                            attributes=attributes))
        return _operation(row["collection_id"], row["id"], "upload")

    def metadata(body: dict[str, Any]) -> dict[str, Any]:
        _metadata_in(body.get("customMetadata"))  # checked before any byte is taken
        return body
    return await resumable_upload(request, finish, metadata)


@router.post("/fileSearchStores/{store}:importFile")
async def import_file(store: str, request: Request) -> dict[str, Any]:
    coll, owner = _collections(request), request_tenant(request).owner
    await run_in_threadpool(coll.get, owner, store)  # another key's store is not found, whatever the body
    body = await json_body(request)
    name = body.get("fileName")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'fileName' must name a file uploaded with files.upload (files/...)", param="fileName")
    attributes = _metadata_in(body.get("customMetadata"))
    stored = await run_in_threadpool(stored_gemini_file, request, name)
    row = await run_in_threadpool(lambda: coll.add_stored_file(owner, store, stored.id, attributes=attributes))
    return _operation(row["collection_id"], row["id"], "import")


@router.get("/fileSearchStores/{store}/operations/{op}")
async def get_import_operation(store: str, op: str, request: Request) -> dict[str, Any]:
    return await _finished(request, store, op, "import")


@router.get("/fileSearchStores/{store}/upload/operations/{op}")
async def get_upload_operation(store: str, op: str, request: Request) -> dict[str, Any]:
    return await _finished(request, store, op, "upload")


async def _finished(request: Request, store: str, op: str, kind: str) -> dict[str, Any]:
    try:
        row = await run_in_threadpool(_collections(request).file, request_tenant(request).owner, store, op)
    except NotFound:
        raise NotFound(f"no operation {STORE_PREFIX}{store}/operations/{op[:64]}") from None
    return _operation(row["collection_id"], row["id"], kind)


# -- documents ------------------------------------------------------------------------------

@router.get("/fileSearchStores/{store}/documents")
async def list_documents(store: str, request: Request) -> dict[str, Any]:
    rows = await run_in_threadpool(_collections(request).files, request_tenant(request).owner, store)
    return _page(request, [_document(r["collection_id"], r) for r in rows], "documents")


@router.get("/fileSearchStores/{store}/documents/{doc}")
async def get_document(store: str, doc: str, request: Request) -> dict[str, Any]:
    row = await run_in_threadpool(_collections(request).file, request_tenant(request).owner, store, doc)
    return _document(row["collection_id"], row)


@router.delete("/fileSearchStores/{store}/documents/{doc}")
async def delete_document(store: str, doc: str, request: Request) -> dict[str, Any]:
    await run_in_threadpool(_collections(request).remove_file, request_tenant(request).owner, store, doc)
    return {}

