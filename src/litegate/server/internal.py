"""Requests the server makes to itself: a batch line is answered by calling the app in
process, so it takes exactly the path an HTTP request takes (validation, tiers, ledger,
budgets, error shapes) without a socket.

The ASGI scope carries ``litegate.internal``: the creator's key fingerprint (checked against
the keys' budgets, written to the ledger) and that the work is batch work, which the engines
admit only into a free slot so interactive requests keep priority (``PRIORITY``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litegate.engine.llama import PRIORITY
from litegate.jobs.batches import Job, Retry

INTERNAL_HOST = b"litegate.internal"


async def call_app(app: Any, method: str, path: str, body: bytes, *, headers: dict[str, str] | None = None,
                   internal: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app; returns status, headers and the whole body."""
    path_only, _, query = path.partition("?")
    raw_headers = [(b"host", INTERNAL_HOST), (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path_only, "raw_path": path_only.encode(),
             "query_string": query.encode(), "root_path": "", "headers": raw_headers,
             "client": ("127.0.0.1", 0), "server": ("litegate.internal", 80), "state": {},
             "litegate.internal": internal or {}}
    sent_body = False
    gone = asyncio.Event()
    status = 500
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()  # the caller never hangs up; cancelling the call ends the request
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers.update({k.decode().lower(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    finally:
        gone.set()
    return status, out_headers, b"".join(chunks)


class AppDispatch:
    """A batch line -> the app's own route, as the job's creator."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, path: str, body: dict[str, Any], job: Job) -> tuple[int, Any]:
        headers = {"x-litegate-feature": job.feature} if job.feature else {}
        token = PRIORITY.set("batch")
        try:
            status, out_headers, raw = await call_app(self.app, "POST", path, json.dumps(body).encode(),
                                                      headers=headers,
                                                      internal={"api_key": job.api_key, "batch_id": job.id})
        finally:
            PRIORITY.reset(token)
        if status == 503 and "retry-after" in out_headers:  # the engine is full: the line waits, it is not failed
            # a slot frees within one generation: look again soon (the header's whole seconds are for clients
            # across a network; a batch line in process polls faster)
            engine_full = b'"overloaded"' in raw or b"no free slot" in raw
            raise Retry(0.1 if engine_full else min(2.0, float(out_headers.get("retry-after") or 1)))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"error": {"message": raw.decode("utf-8", "replace")[:2000]}}
        return status, parsed
