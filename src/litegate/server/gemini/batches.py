"""Gemini's Files API and batch mode, for code written against google-genai.

Files: the resumable upload protocol ``files.upload`` speaks (a start request that returns
an upload URL, then chunks with ``X-Goog-Upload-Offset``, the last one finalizing), and
get, list, delete and ``:download`` of generated files (batch results).

Batches: ``batchGenerateContent`` with inline requests or a JSONL file of ``{"key",
"request"}`` lines (``fileName``); durable like OpenAI batches (``litegate.jobs.batches``): a job
survives a restart and resumes. Inline jobs answer inline; file jobs write a results file
of ``{"key", "response" | "error"}`` lines (``dest.file_name``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from litegate.chat.gemini_shapes import to_chat_request
from litegate.errors import InvalidRequest, NotFound, PayloadTooLarge, TooManyRequests
from litegate.jobs.batches import Job, count_lines
from litegate.jobs.files import StoredFile
from litegate.keys import request_feature, request_tenant
from litegate.server.bodies import BATCH_GENERATE, body
from litegate.server.errors import json_body
from litegate.server.gemini.routes import model_id, rfc3339, served_model
from litegate.server.uploads import upload_slot

router = APIRouter()  # mounted under /v1beta and /v1
upload_router = APIRouter()  # /upload/v1beta/files and /upload/v1/files

STATES = {"validating": "BATCH_STATE_PENDING", "in_progress": "BATCH_STATE_RUNNING",
          "finalizing": "BATCH_STATE_RUNNING", "cancelling": "BATCH_STATE_RUNNING",
          "completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
          "cancelled": "BATCH_STATE_CANCELLED", "expired": "BATCH_STATE_EXPIRED"}
FILE_TTL_S = 48 * 3600.0  # uploaded files live two days, as Gemini's do


def _file_name(raw: str) -> str:
    raw = raw.split("?")[0]
    return raw[len("files/"):] if raw.startswith("files/") else raw


def _file_resource(request: Request, f: StoredFile) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    generated = f.purpose == "batch_output"
    out = {"name": f"files/{f.id}", "displayName": f.filename, "mimeType": f.mime_type or "application/octet-stream",
           "sizeBytes": str(f.bytes), "createTime": rfc3339(f.created_at), "updateTime": rfc3339(f.created_at),
           "sha256Hash": base64.b64encode(bytes.fromhex(f.sha256)).decode() if f.sha256 else None,
           "uri": f"{base}/v1beta/files/{f.id}", "state": "ACTIVE", "source": "GENERATED" if generated else "UPLOADED"}
    if f.expires_at:
        out["expirationTime"] = rfc3339(f.expires_at)
    if generated:
        out["downloadUri"] = f"{base}/v1beta/files/{f.id}:download?alt=media"
    return out


def stored_gemini_file(request: Request, name: str) -> StoredFile:
    f = request.app.state.runtime.files.get(_file_name(name), request_tenant(request))
    if f.api != "gemini":
        raise NotFound(f"files/{_file_name(name)} not found")
    return f


# -- uploads --------------------------------------------------------------------------------

@dataclass
class Upload:
    path: Path
    display_name: str
    mime_type: str
    size: int | None
    owner: str | None = None  # the key that started it: only it may send the chunks
    metadata: dict[str, Any] = field(default_factory=dict)  # the start request's, for what finishes it
    offset: int = 0


class Uploads:
    """Resumable upload sessions in progress (in memory: an interrupted upload starts again)."""

    MAX_OPEN = 64
    MAX_OPEN_PER_KEY = 8

    def __init__(self, root: Path):
        self.root = root / "uploads"
        self.root.mkdir(parents=True, exist_ok=True)
        self.open: dict[str, Upload] = {}
        self.lock = threading.Lock()

    def start(self, display_name: str, mime_type: str, size: int | None, owner: str | None = None,
              metadata: dict[str, Any] | None = None) -> str:
        upload_id = secrets.token_hex(16)
        with self.lock:
            mine = [i for i, up in self.open.items() if up.owner == owner]
            if len(mine) >= self.MAX_OPEN_PER_KEY:  # the key's oldest unfinished one goes (never another key's)
                self.open.pop(mine[0]).path.unlink(missing_ok=True)
            elif len(self.open) >= self.MAX_OPEN:
                raise TooManyRequests(f"{self.MAX_OPEN} uploads are open on this server; finish or retry later",
                                      code="too_many_uploads", retry_after=5.0)
            # named for this process: a session a crash cuts short is removed at the next start
            self.open[upload_id] = Upload(self.root / f"{os.getpid()}-{upload_id}", display_name, mime_type, size,
                                          owner, dict(metadata or {}))
        return upload_id

    def get(self, upload_id: str, owner: str | None = None) -> Upload:
        with self.lock:
            up = self.open.get(upload_id)
        if up is None or up.owner != owner:
            raise NotFound("no upload in progress with this upload_id; start it again")
        return up

    def close(self, upload_id: str) -> None:
        with self.lock:
            up = self.open.pop(upload_id, None)
        if up is not None:
            up.path.unlink(missing_ok=True)


def _uploads(request: Request) -> Uploads:
    app = request.app
    if getattr(app.state, "gemini_uploads", None) is None:
        app.state.gemini_uploads = Uploads(request.app.state.runtime.files.root)
    return app.state.gemini_uploads


@upload_router.post("/files")
async def upload(request: Request) -> Response:
    files = request.app.state.runtime.files

    async def finish(up: Upload) -> dict[str, Any]:
        def store() -> StoredFile:
            with open(up.path, "rb") as source:
                return files.put_stream(source, api="gemini", purpose="user_data", filename=up.display_name or "upload",
                                        mime_type=up.mime_type, expires_at=time.time() + FILE_TTL_S,
                                        owner=request_tenant(request).owner)
        return {"file": _file_resource(request, await run_in_threadpool(store))}
    return await resumable_upload(request, finish, lambda body: given if isinstance(given := body.get("file"), dict)
                                  else {})


async def resumable_upload(request: Request, finish: Callable[[Upload], Awaitable[dict[str, Any]]],
                           metadata: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
    """The resumable upload protocol google-genai speaks: a start request (its JSON body's
    ``metadata``) that answers with an upload URL, then chunks at ``X-Goog-Upload-Offset``
    appended to a file on disk; the finalizing chunk's answer is ``finish(upload)``."""
    upload_id = request.query_params.get("upload_id")
    command = request.headers.get("x-goog-upload-command", "").replace(" ", "").lower()
    limit = int(request.app.state.runtime.settings.max_file_mb * (1 << 20))
    if upload_id is None:
        if "start" not in command.split(","):
            raise InvalidRequest("start an upload with 'X-Goog-Upload-Protocol: resumable' and "
                                 "'X-Goog-Upload-Command: start' (the protocol google-genai's upload methods speak)")
        meta = metadata(await json_body(request))
        size_header = request.headers.get("x-goog-upload-header-content-length")
        size = int(size_header) if size_header and size_header.isdigit() else None
        if size is not None and size > limit:
            raise PayloadTooLarge(f"the file is larger than the {limit >> 20} MB limit (LITEGATE_MAX_FILE_MB)")
        mime = str(meta.get("mimeType") or meta.get("mime_type")
                   or request.headers.get("x-goog-upload-header-content-type") or "application/octet-stream")[:128]
        display = meta.get("displayName") or meta.get("display_name") or ""
        new_id = _uploads(request).start(str(display)[:512], mime, size, request_tenant(request).owner, meta)
        url = str(request.url.include_query_params(upload_id=new_id))
        return Response(b"", headers={"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                      "x-goog-upload-chunk-granularity": str(8 << 20)})
    uploads = _uploads(request)
    up = uploads.get(upload_id, request_tenant(request).owner)
    offset = request.headers.get("x-goog-upload-offset", "0")
    if not offset.isdigit() or int(offset) != up.offset:
        raise InvalidRequest(f"X-Goog-Upload-Offset must be {up.offset} (bytes received so far)")
    with upload_slot(request):
        await _append_chunk(request, uploads, upload_id, up, limit)
    if "finalize" not in command.split(","):
        return Response(b"", headers={"x-goog-upload-status": "active"})
    if not up.offset:
        uploads.close(upload_id)
        raise InvalidRequest("the uploaded file is empty")
    try:
        answer = await finish(up)
    finally:
        uploads.close(upload_id)
    return JSONResponse(answer, headers={"x-goog-upload-status": "final"})


async def _append_chunk(request: Request, uploads: Uploads, upload_id: str, up: Upload, limit: int) -> None:
    """One chunk of a resumable upload, appended to its file as it arrives."""
    try:
        with open(up.path, "ab") as f:
            async for piece in request.stream():
                if up.offset + len(piece) > limit:
                    raise PayloadTooLarge(f"the file is larger than the {limit >> 20} MB limit (LITEGATE_MAX_FILE_MB)")
                await run_in_threadpool(f.write, piece)
                up.offset += len(piece)
    except PayloadTooLarge:
        uploads.close(upload_id)
        raise


# -- files ----------------------------------------------------------------------------------

@router.get("/files")
async def list_gemini_files(request: Request) -> dict[str, Any]:
    size = request.query_params.get("pageSize", "100")
    n = int(size) if size.isdigit() and 0 < int(size) <= 1000 else 100
    token = request.query_params.get("pageToken") or None
    rows = await run_in_threadpool(request.app.state.runtime.files.list, api="gemini", after=token, limit=n + 1,
                                   tenant=request_tenant(request))
    out: dict[str, Any] = {"files": [_file_resource(request, f) for f in rows[:n]]}
    if len(rows) > n:
        out["nextPageToken"] = rows[n - 1].id
    return out


@router.get("/files/{name}")
async def get_gemini_file(name: str, request: Request) -> Any:
    if name.endswith(":download"):
        return await download_gemini_file(name[:-len(":download")], request)
    return _file_resource(request, await run_in_threadpool(stored_gemini_file, request, name))


async def download_gemini_file(name: str, request: Request) -> Response:
    f = await run_in_threadpool(stored_gemini_file, request, name)
    data = await run_in_threadpool(request.app.state.runtime.files.content, f.id)
    return Response(data, media_type=f.mime_type or "application/octet-stream")


@router.delete("/files/{name}")
async def delete_gemini_file(name: str, request: Request) -> dict[str, Any]:
    f = await run_in_threadpool(stored_gemini_file, request, name)
    await run_in_threadpool(request.app.state.runtime.files.delete, f.id)
    return {}


# -- batches --------------------------------------------------------------------------------

def gemini_batch(request: Request, job: Job) -> dict[str, Any]:
    """A job as Gemini's batch operation."""
    state = STATES.get(job.status, "BATCH_STATE_UNSPECIFIED")
    meta: dict[str, Any] = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": "models/" + job.endpoint.split("/models/", 1)[-1].split(":", 1)[0],
        "displayName": job.display_name or "", "state": state, "createTime": rfc3339(job.created_at),
        "updateTime": rfc3339(max(t for t in (job.created_at, job.in_progress_at, job.completed_at,
                                               job.cancelled_at, job.failed_at) if t)),
        "batchStats": {"requestCount": str(job.total), "successfulRequestCount": str(job.completed),
                       "failedRequestCount": str(job.failed),
                       "pendingRequestCount": str(max(0, job.total - job.completed - job.failed))}}
    end = job.completed_at or job.cancelled_at or job.failed_at or job.expired_at
    if end:
        meta["endTime"] = rfc3339(end)
    if job.status in ("completed", "cancelled"):
        if job.inline:
            results = request.app.state.runtime.batches.results(job.id)
            meta["output"] = {"inlinedResponses": {"inlinedResponses": [r for _, _, r, _ in results]}}
        elif job.output_file_id:
            meta["output"] = {"responsesFile": f"files/{job.output_file_id}"}
    return {"name": job.id, "metadata": meta, "done": job.done}


def _gemini_job(request: Request, name: str) -> Job:
    name = name if name.startswith("batches/") else f"batches/{name}"
    try:
        job = request.app.state.runtime.batches.get(name, request_tenant(request))
    except NotFound:
        raise NotFound(f"{name} not found") from None
    if job.api != "gemini":
        raise NotFound(f"{name} not found")
    return job


@router.post("/models/{model}:batchGenerateContent", openapi_extra=body(BATCH_GENERATE))
async def batch_generate_content(model: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    rt = request.app.state.runtime
    name = served_model(request, model_id(model))
    batch = body.get("batch")
    if batch is None:
        batch = {}
    if not isinstance(batch, dict):
        raise InvalidRequest("batch must be an object with inputConfig")
    config = batch.get("inputConfig")
    if not isinstance(config, dict):
        raise InvalidRequest("batch.inputConfig is required: inline requests or a fileName")
    inline = config.get("requests")
    file_name = config.get("fileName")
    if file_name is not None:
        if not isinstance(file_name, str) or not file_name:
            raise InvalidRequest("batch.inputConfig.fileName must name an uploaded file (files/...)")
        source = await run_in_threadpool(stored_gemini_file, request, file_name)
        input_id, is_inline = source.id, False
        total = await run_in_threadpool(count_lines, rt.files, source.id,
                                        int(rt.settings.max_body_mb * (1 << 20)), api="gemini")
    else:
        items = inline.get("requests") if isinstance(inline, dict) else None
        if not isinstance(items, list) or not items:
            raise InvalidRequest("batch.inputConfig needs requests.requests (a non-empty list of inline requests) "
                                 "or fileName (a JSONL file uploaded with files.upload)")
        lines = []
        for i, item in enumerate(items):  # validate everything before accepting the job
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                raise InvalidRequest(f"batch request {i} has no 'request' object")
            to_chat_request(item["request"])
            lines.append(json.dumps({"request": item["request"], **({"metadata": item["metadata"]}
                                                                      if "metadata" in item else {})}))
        stored = await run_in_threadpool(rt.files.put, ("\n".join(lines) + "\n").encode(), api="gemini",
                                         purpose="batch_inline", filename="inline-requests.jsonl",
                                         mime_type="application/jsonl", owner=request_tenant(request).owner)
        input_id, is_inline, total = stored.id, True, len(lines)
    job = await run_in_threadpool(
        rt.batches.create, api="gemini", endpoint=f"/v1beta/models/{name}:generateContent", input_file_id=input_id,
        total=total, display_name=str(batch.get("displayName") or "")[:512], api_key=request_tenant(request).owner,
        feature=request_feature(request), inline=is_inline)
    request.app.state.batch_runner.start(job.id)
    return gemini_batch(request, job)


@router.get("/batches/{name}")
async def get_gemini_batch(name: str, request: Request) -> dict[str, Any]:
    job = await run_in_threadpool(_gemini_job, request, name)
    return await run_in_threadpool(gemini_batch, request, job)


@router.get("/batches")
async def list_gemini_batches(request: Request) -> dict[str, Any]:
    size = request.query_params.get("pageSize", "50")
    n = int(size) if size.isdigit() and 0 < int(size) <= 1000 else 50
    jobs, more = await run_in_threadpool(request.app.state.runtime.batches.list, "gemini",
                                         request.query_params.get("pageToken") or None, n, request_tenant(request))
    out: dict[str, Any] = {"operations": [gemini_batch(request, j) for j in jobs]}
    if more and jobs:
        out["nextPageToken"] = jobs[-1].id
    return out


@router.post("/batches/{name}:cancel")
async def cancel_gemini_batch(name: str, request: Request) -> dict[str, Any]:
    job = await run_in_threadpool(_gemini_job, request, name)
    if not job.done:
        await run_in_threadpool(request.app.state.runtime.batches.cancel, job.id)
        if not request.app.state.batch_runner.running(job.id):
            request.app.state.batch_runner.start(job.id)
    return {}


@router.delete("/batches/{name}")
async def delete_gemini_batch(name: str, request: Request) -> dict[str, Any]:
    job = await run_in_threadpool(_gemini_job, request, name)
    if not job.done:
        await run_in_threadpool(request.app.state.runtime.batches.cancel, job.id)
        await request.app.state.batch_runner.wait(job.id, 5.0)
    await run_in_threadpool(request.app.state.runtime.batches.delete, job.id)
    return {}
