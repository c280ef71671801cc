"""OpenAI's Files and Batch APIs: upload a JSONL of requests, create a batch over it, poll it,
download its output and error files — what the ``openai`` SDK's ``files`` and ``batches``
do. Jobs are durable (``litegate.jobs.batches``): a server restarted after a crash resumes them.

google-genai asks for ``/v1/files`` and ``/v1/batches`` too (its default API version is v1):
those requests are answered in Gemini's shape (``litegate.server.gemini.batches``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest, NotFound
from litegate.jobs.batches import count_lines, endpoint_ok, openai_batch
from litegate.jobs.files import check_purpose
from litegate.keys import request_feature, request_tenant
from litegate.server.errors import json_body
from litegate.server.gemini.batches import (
    delete_gemini_file,
    download_gemini_file,
    get_gemini_batch,
    get_gemini_file,
    list_gemini_batches,
    list_gemini_files,
)
from litegate.server.openai.chat import gemini_client
from litegate.server.uploads import read_form, upload_slot

router = APIRouter()


def _page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None, "has_more": has_more}


def _limit(value: Any, default: int, most: int) -> int:
    try:
        n = int(value) if value is not None else default
    except ValueError:
        raise InvalidRequest(f"limit must be an integer from 1 to {most}", param="limit") from None
    if not 1 <= n <= most:
        raise InvalidRequest(f"limit must be an integer from 1 to {most}", param="limit")
    return n


# -- files ----------------------------------------------------------------------------------

@router.post("/v1/files")
async def upload_file(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("upload a file as multipart/form-data with the fields 'file' and 'purpose'")
    rt = request.app.state.runtime
    with upload_slot(request):
        form = await read_form(request, max_files=1, max_fields=20)
        try:
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                raise InvalidRequest("the 'file' field must be a file", param="file")
            if not isinstance(purpose, str) or not purpose:
                raise InvalidRequest("the 'purpose' field is required (batch, user_data, ...)", param="purpose")
            check_purpose(purpose)
            # the parser spooled the file to disk; it is copied into the store a chunk at a time
            stored = await run_in_threadpool(rt.files.put_stream, upload.file, api="openai", purpose=purpose,
                                             filename=upload.filename or "upload", mime_type=upload.content_type,
                                             owner=request_tenant(request).owner,
                                             max_bytes=int(rt.settings.max_file_mb * (1 << 20)))
        finally:
            await form.close()
    if not stored.bytes:
        await run_in_threadpool(rt.files.delete, stored.id)
        raise InvalidRequest("the file is empty", param="file")
    return stored.openai()


@router.get("/v1/files")
async def list_files(request: Request, purpose: str | None = None, limit: str | None = None,
                     after: str | None = None, order: str = "desc") -> Any:
    if gemini_client(request):

        return await list_gemini_files(request)
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'", param="order")
    n = _limit(limit, 10000, 10000)
    rows = await run_in_threadpool(request.app.state.runtime.files.list, api="openai", purpose=purpose, after=after,
                                   limit=n + 1, newest_first=order == "desc", tenant=request_tenant(request))
    return _page([r.openai() for r in rows[:n]], len(rows) > n)


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, request: Request) -> Any:
    if gemini_client(request):

        if file_id.endswith(":download"):
            return await download_gemini_file(file_id[:-len(":download")], request)
        return await get_gemini_file(file_id, request)
    stored = await run_in_threadpool(request.app.state.runtime.files.get, file_id, request_tenant(request))
    return stored.openai()


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, request: Request) -> Response:
    files = request.app.state.runtime.files
    stored = await run_in_threadpool(files.get, file_id, request_tenant(request))
    data = await run_in_threadpool(files.content, file_id, request_tenant(request))
    return Response(data, media_type=stored.mime_type or "application/octet-stream")


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> dict[str, Any]:
    if gemini_client(request):

        return await delete_gemini_file(file_id, request)
    await run_in_threadpool(request.app.state.runtime.files.delete, file_id, request_tenant(request))
    return {"id": file_id, "object": "file", "deleted": True}


# -- batches --------------------------------------------------------------------------------

COMPLETION_WINDOWS = {"24h": 86400.0}


@router.post("/v1/batches")
async def create_batch(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    rt = request.app.state.runtime
    file_id, endpoint = body.get("input_file_id"), body.get("endpoint")
    window, meta = body.get("completion_window", "24h"), body.get("metadata")
    if not isinstance(file_id, str) or not file_id:
        raise InvalidRequest("input_file_id is required", param="input_file_id")
    if not isinstance(endpoint, str) or not endpoint_ok(endpoint, rt.tasks.names()):
        raise InvalidRequest(f"endpoint {str(endpoint)[:100]!r} is not one a batch can call: /v1/chat/completions, "
                             "/v1/completions, /v1/embeddings or /v1/tasks/{task} with one of "
                             f"{', '.join(rt.tasks.names())}", param="endpoint")
    if window not in COMPLETION_WINDOWS:
        raise InvalidRequest(f"completion_window must be one of {', '.join(COMPLETION_WINDOWS)}",
                             param="completion_window")
    if meta is not None and (not isinstance(meta, dict) or len(meta) > 16
                             or not all(isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
                                        for k, v in meta.items())):
        raise InvalidRequest("metadata must be at most 16 string keys (64 characters) and string values (512)",
                             param="metadata")
    try:
        stored = await run_in_threadpool(rt.files.get, file_id, request_tenant(request))
    except NotFound:
        raise NotFound(f"no file with id {file_id[:80]!r}: upload it with POST /v1/files (purpose 'batch')",
                       param="input_file_id") from None
    if stored.purpose != "batch":
        raise InvalidRequest(f"file {file_id} was uploaded with purpose {stored.purpose!r}; a batch's input needs "
                             "purpose 'batch'", param="input_file_id")
    # every line is checked here as the runner will read it, a line at a time: the file is never held
    total = await run_in_threadpool(count_lines, rt.files, file_id, _line_limit(request), endpoint)
    feature = (meta or {}).get("feature") or request_feature(request)
    job = await run_in_threadpool(rt.batches.create, api="openai", endpoint=endpoint, input_file_id=file_id,
                                  total=total, completion_window=window, job_metadata=meta,
                                  api_key=request_tenant(request).owner, feature=feature,
                                  expires_in_s=COMPLETION_WINDOWS[window])
    request.app.state.batch_runner.start(job.id)
    return openai_batch(job)


def _line_limit(request: Request) -> int:
    return int(request.app.state.runtime.settings.max_body_mb * (1 << 20))


@router.get("/v1/batches")
async def list_batches(request: Request, after: str | None = None, limit: str | None = None) -> dict[str, Any]:
    if gemini_client(request):

        return await list_gemini_batches(request)
    jobs, more = await run_in_threadpool(request.app.state.runtime.batches.list, "openai", after,
                                         _limit(limit, 20, 100), request_tenant(request))
    return _page([openai_batch(j) for j in jobs], more)


@router.get("/v1/batches/{batch_id}")
async def get_batch(batch_id: str, request: Request) -> dict[str, Any]:
    if gemini_client(request):

        return await get_gemini_batch(batch_id, request)
    return openai_batch(await run_in_threadpool(_openai_job, request, batch_id))


def _openai_job(request: Request, batch_id: str) -> Any:
    job = request.app.state.runtime.batches.get(batch_id, request_tenant(request))
    if job.api != "openai":
        raise NotFound(f"no batch with id {batch_id[:80]!r}", param="batch_id")
    return job


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, request: Request) -> dict[str, Any]:
    store = request.app.state.runtime.batches
    await run_in_threadpool(_openai_job, request, batch_id)
    job = await run_in_threadpool(store.cancel, batch_id)
    # the runner sees it within half a second and stops; answer with what is true by then
    deadline = time.monotonic() + 2.0
    while job.status == "cancelling" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        job = await run_in_threadpool(store.get, batch_id)
    if job.status == "cancelling" and not request.app.state.batch_runner.running(batch_id):
        request.app.state.batch_runner.start(batch_id)  # nobody runs it here (e.g. after a restart): finish it
    return openai_batch(job)
