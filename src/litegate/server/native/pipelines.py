"""Pipeline routes: start runs (JSON or a multipart upload), read runs, review held runs,
dead letters, and the numbers behind ``/dashboard/pipelines``.

Each key sees, retries and reviews only the runs it started (an admin key sees all).

``POST /v1/pipelines/{name}/runs`` waits for the run up to ``?wait=`` seconds (default: the
pipeline's ``sync_wait_s``, 30) and answers 200 with it; a run still going then is answered
202 with a ``Location`` to poll (``GET /v1/pipelines/{name}/runs/{id}``). ``Idempotency-Key``
(header or ``idempotency_key``) names the document: the same key again returns the same run; the
same key with a different document is refused (409).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from litegate.errors import InvalidRequest, LitegateError, NotFound
from litegate.keys import request_tenant
from litegate.pipelines import PipelineService, RunInput
from litegate.pipelines.store import public_run
from litegate.server.uploads import read_form, upload_slot

router = APIRouter()
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "human_review", "rejected")


def service(request: Request) -> PipelineService:
    svc = getattr(request.app.state, "pipelines", None)
    if svc is None:
        raise NotFound("this server has no pipelines: put pipeline files in $LITEGATE_HOME/pipelines, or start it "
                       "with --pipelines FILE|DIR (LITEGATE_PIPELINES)")
    return svc


@router.get("/v1/pipelines")
async def list_pipelines(request: Request) -> dict[str, Any]:
    svc = getattr(request.app.state, "pipelines", None)
    return {"object": "list", "data": [p.describe() for p in svc.pipelines.values()] if svc else []}


@router.get("/v1/pipelines/{name}")
async def get_pipeline(name: str, request: Request) -> dict[str, Any]:
    return service(request).pipeline(name).describe()


async def _run_input(request: Request) -> tuple[RunInput, str | None]:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        with upload_slot(request):
            form = await read_form(request)
        files, meta, text, key, ref = [], {}, None, None, None
        for field, value in form.multi_items():
            if isinstance(value, UploadFile):  # spooled to disk: stored a chunk at a time, never read whole
                files.append(await _store_upload(request, value, field))
            elif field == "metadata":
                try:
                    meta = json.loads(value)
                except ValueError:
                    raise InvalidRequest("the 'metadata' form field must be a JSON object", param="metadata") from None
            elif field == "text":
                text = value
            elif field == "idempotency_key":
                key = value
            elif field == "input_ref":
                ref = value
            else:
                raise InvalidRequest(f"form field {field!r} is not one of file(s), text, metadata, input_ref, "
                                     "idempotency_key", param=field)
        if not isinstance(meta, dict):
            raise InvalidRequest("the 'metadata' form field must be a JSON object", param="metadata")
        if text is None and not files:
            raise InvalidRequest("a multipart run needs a file field (or a text field)", param="file")
        inp = RunInput(text=text, files=files, metadata=meta, ref=ref)
        return inp, key
    try:
        raw = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body must be JSON ({text, files, metadata}) or a multipart upload") from None
    inp = RunInput.from_json(raw)
    return inp, raw.get("idempotency_key") if isinstance(raw, dict) else None


async def _store_upload(request: Request, upload: Any, field: str) -> dict[str, Any]:
    """A run's uploaded document as a stored file of the caller's; the run refers to it by id
    (and by its sha256, which names the document when no idempotency key is given)."""
    rt = request.app.state.runtime
    mime = upload.content_type if upload.content_type not in (None, "application/octet-stream") else None
    stored = await run_in_threadpool(rt.files.put_stream, upload.file, api="pipeline", purpose="pipeline",
                                     filename=upload.filename or field, mime_type=mime,
                                     owner=request_tenant(request).owner,
                                     max_bytes=int(rt.settings.max_file_mb * (1 << 20)))
    return {"file_id": stored.id, "filename": upload.filename or field, "mime_type": mime, "sha256": stored.sha256,
            "bytes": stored.bytes, "uploaded": True}


async def _forget_unused_uploads(request: Request, inp: RunInput, run: dict[str, Any]) -> None:
    """Uploads of a request answered with an earlier run (the same document again) are not kept."""
    used = {f.get("file_id") for f in json.loads(run["input"]).get("files") or []}
    for f in inp.files:
        if f.get("uploaded") and f["file_id"] not in used:
            await run_in_threadpool(request.app.state.runtime.files.delete, f["file_id"])


@router.post("/v1/pipelines/{name}/runs")
async def create_run(name: str, request: Request, wait: float | None = None) -> JSONResponse:
    """Run a document through a pipeline."""
    svc = service(request)
    pipeline = svc.pipeline(name)
    if wait is not None and not 0 <= wait <= 600:
        raise InvalidRequest("'wait' must be between 0 and 600 seconds", param="wait")
    inp, key = await _run_input(request)
    key = request.headers.get("idempotency-key") or key
    tenant = request_tenant(request)
    try:
        run, todo = await run_in_threadpool(svc.submit, pipeline.name, inp, key, tenant.owner, tenant)
    except LitegateError:
        await _forget_unused_uploads(request, inp, {"input": "{}"})
        raise
    await _forget_unused_uploads(request, inp, run)
    if todo:
        future = svc.start_run(run["id"], tenant.owner)
        await _wait(future, pipeline.sync_wait_s if wait is None else wait)
    body = await run_in_threadpool(svc.show, run["id"])
    body["replayed"] = not todo
    if body["status"] in ("queued", "running"):
        location = f"/v1/pipelines/{pipeline.name}/runs/{run['id']}"
        return JSONResponse(body, status_code=202, headers={"Location": location})
    return JSONResponse(body, status_code=200 if not todo else 201)


@router.get("/v1/pipelines/{name}/runs")
async def list_runs(name: str, request: Request, status: str | None = None, limit: int = 50,
                    before: float | None = None) -> dict[str, Any]:
    """Runs, newest first (``?status=failed``, ``?before=<created_at>`` to page on)."""
    svc = service(request)
    svc.pipeline(name)
    if status is not None and status not in RUN_STATUSES:
        raise InvalidRequest(f"'status' must be one of {', '.join(RUN_STATUSES)}", param="status")
    if not 1 <= limit <= 1000:
        raise InvalidRequest("'limit' must be between 1 and 1000", param="limit")

    rows = await run_in_threadpool(lambda: svc.store.list(name, status, limit + 1, before,
                                                          tenant=request_tenant(request)))
    return {"object": "list", "data": [public_run(r) for r in rows[:limit]], "has_more": len(rows) > limit}


@router.get("/v1/pipelines/{name}/runs/{run_id}")
async def get_run(name: str, run_id: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(service(request).show, run_id, name, request_tenant(request))


@router.post("/v1/pipelines/{name}/runs/{run_id}/retry")
async def retry_run(name: str, run_id: str, request: Request, wait: float = 0) -> JSONResponse:
    """A failed run again, from its failed step (the earlier steps' outputs are kept)."""
    svc = service(request)
    run = await run_in_threadpool(svc.retry, run_id, name, request_tenant(request))
    return await _started(svc, run, wait)


@router.post("/v1/pipelines/{name}/runs/{run_id}/review")
async def review_run(name: str, run_id: str, request: Request, wait: float = 0) -> JSONResponse:
    """A person's decision on a held run: ``{"approve": true, "output": {corrections}}`` goes on
    from the next step; ``{"approve": false}`` rejects it."""
    svc = service(request)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("the body must be JSON: {\"approve\": true|false, \"output\": {...}}") from None
    if not isinstance(body, dict) or not isinstance(body.get("approve", True), bool):
        raise InvalidRequest("'approve' must be true or false", param="approve")
    run = await run_in_threadpool(lambda: svc.review(run_id, name, approve=body.get("approve", True),
                                                     output=body.get("output"), tenant=request_tenant(request)))
    return await _started(svc, run, wait)


async def _wait(future: Any, seconds: float) -> None:
    """Wait for a run up to ``seconds``; never cancels it (wait_for would cancel a run still
    queued in the pool, leaving it queued forever)."""
    if seconds > 0:
        await asyncio.wait([asyncio.wrap_future(future)], timeout=seconds)


async def _started(svc: PipelineService, run: dict[str, Any], wait: float) -> JSONResponse:
    if run["status"] == "queued":
        future = svc.start_run(run["id"])
        await _wait(future, min(wait, 600))
    body = await run_in_threadpool(svc.show, run["id"])
    return JSONResponse(body, status_code=202 if body["status"] in ("queued", "running") else 200)


@router.get("/v1/pipelines/{name}/review")
async def review_queue(name: str, request: Request, limit: int = 50) -> dict[str, Any]:
    """Runs waiting for a person, oldest first, with the held step and why."""
    svc = service(request)
    svc.pipeline(name)
    rows = await run_in_threadpool(lambda: svc.store.list(name, "human_review", 100_000,
                                                          tenant=request_tenant(request)))
    rows = sorted(rows, key=lambda r: r["created_at"])[:max(1, min(limit, 1000))]
    return {"object": "list", "data": [await run_in_threadpool(svc.show, r["id"]) for r in rows]}


@router.get("/v1/pipelines/{name}/deliveries")
async def deliveries(name: str, request: Request, status: str | None = None, limit: int = 100) -> dict[str, Any]:
    svc = service(request)
    svc.pipeline(name)
    if status is not None and status not in ("pending", "delivered", "dead"):
        raise InvalidRequest("'status' must be pending, delivered or dead", param="status")
    return {"object": "list", "data": await run_in_threadpool(lambda: svc.outbox.list(
        name, status, max(1, min(limit, 1000)), tenant=request_tenant(request)))}


@router.get("/v1/pipelines/{name}/dead-letters")
async def dead_letters(name: str, request: Request, limit: int = 100) -> dict[str, Any]:
    """Webhooks that failed every attempt: kept with their body and last error."""
    return await deliveries(name, request, "dead", limit)


@router.post("/v1/pipelines/{name}/dead-letters/{delivery_id}/retry")
async def retry_dead_letter(name: str, delivery_id: str, request: Request) -> dict[str, Any]:
    svc = service(request)
    svc.pipeline(name)
    return await run_in_threadpool(svc.outbox.retry, delivery_id, name, request_tenant(request))


@router.get("/v1/pipelines/{name}/stats")
async def stats(name: str, request: Request, hours: float | None = None) -> dict[str, Any]:
    import time

    svc = service(request)
    return await run_in_threadpool(svc.stats, name, time.time() - hours * 3600 if hours else None,
                                   request_tenant(request))


__all__ = ["router", "LitegateError"]
