"""Ingest in the background: a job row lists the stored files to add to a collection and
what became of each; a worker thread works through them, one transaction per file, and a
process that starts after a crash (even kill -9) resumes the unfinished jobs. Re-adding a
file that is already in is a no-op, so a file indexed just before a crash is not indexed twice."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any

from sqlalchemy import insert, select, update

from litegate.collections.filters import check_attributes
from litegate.collections.store import jobs_table
from litegate.errors import InvalidRequest, LitegateError, NotFound
from litegate.tenancy import current

log = logging.getLogger("litegate.collections")
MAX_FILES = 10_000
ACTIVE = ("queued", "in_progress")


class IngestJobs:
    def __init__(self, collections: Any):
        self.collections = collections
        self.engine = collections.engine
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def submit(self, owner: str | None, ref: str, file_ids: list[str], attributes: dict[str, Any] | None = None,
               per_file: list[dict[str, Any] | None] | None = None) -> dict[str, Any]:
        """``attributes`` go on every file; ``per_file`` (aligned with ``file_ids``) adds to them."""
        if not isinstance(file_ids, list) or not file_ids or not all(isinstance(f, str) and f for f in file_ids):
            raise InvalidRequest("'file_ids' must be a non-empty list of file ids (from POST /v1/files)",
                                 param="file_ids")
        if len(file_ids) > MAX_FILES:
            raise InvalidRequest(f"'file_ids' holds {len(file_ids):,}; a job takes at most {MAX_FILES:,}",
                                 param="file_ids")
        attributes = check_attributes(attributes, "attributes")
        if per_file is not None:
            per_file = [check_attributes(a, f"files.{i}.attributes") for i, a in enumerate(per_file)]
        coll = self.collections.get(owner, ref)
        store = self.collections.files_store
        for i, fid in enumerate(file_ids):  # every id must exist before any work starts
            try:
                store.get(fid, current())  # the caller's own files only
            except NotFound:
                raise InvalidRequest(f"file_ids.{i}: no file {fid[:80]!r}; upload it with POST /v1/files first",
                                     param=f"file_ids.{i}") from None
        now = time.time()
        extra = per_file or [None] * len(file_ids)
        items = [{"file_id": f, "attributes": {**(attributes or {}), **(more or {})}, "status": "queued", "error": None}
                 for f, more in zip(file_ids, extra)]
        row = {"id": "vsfb_" + secrets.token_hex(12), "collection_id": coll["id"], "owner": owner, "status": "queued",
               "items": json.dumps(items), "total": len(items), "done": 0, "failed": 0, "created_at": now,
               "updated_at": now}
        with self.engine.begin() as conn:
            conn.execute(insert(jobs_table).values(**row))
        self._start(row["id"])
        return self._body(row)

    def get(self, owner: str | None, job_id: str) -> dict[str, Any]:
        t = jobs_table.c
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(t.id == job_id, t.owner.is_(None) if owner is None
                                                        else t.owner == owner)).mappings().first()
        if row is None:
            raise NotFound(f"no ingest job {job_id[:80]!r}", param="batch_id")
        return self._body(dict(row))

    @staticmethod
    def _body(row: dict[str, Any]) -> dict[str, Any]:
        items = json.loads(row["items"])
        return {"id": row["id"], "collection_id": row["collection_id"], "status": row["status"],
                "total": row["total"], "done": row["done"], "failed": row["failed"],
                "created_at": row["created_at"], "updated_at": row["updated_at"],
                "errors": [{"file_id": i["file_id"], "error": i["error"]} for i in items if i["status"] == "failed"]}

    def resume(self) -> list[str]:
        """Start a worker for every job a previous process left unfinished."""
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(jobs_table.c.id).where(jobs_table.c.status.in_(ACTIVE)))]
        for job_id in ids:
            self._start(job_id)
        return ids

    def _start(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._threads and self._threads[job_id].is_alive():
                return
            thread = threading.Thread(target=self._run, args=(job_id,), name=f"ingest-{job_id}", daemon=True)
            self._threads[job_id] = thread
        thread.start()

    def wait(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def close(self) -> None:
        self._stop.set()  # workers stop between files; the job resumes in the next process

    def _run(self, job_id: str) -> None:
        with self.engine.connect() as conn:
            row = dict(conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).mappings().one())
        items = json.loads(row["items"])
        self._save(job_id, items, "in_progress")
        for item in items:
            if self._stop.is_set():
                return
            if item["status"] in ("completed", "failed"):
                continue
            try:
                self.collections.add_stored_file(row["owner"], row["collection_id"], item["file_id"],
                                                 item["attributes"] or None)
                item["status"], item["error"] = "completed", None
            except LitegateError as e:
                item["status"], item["error"] = "failed", {"code": e.code or "invalid_document", "message": e.message}
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the job
                log.exception("ingest of %s failed", item["file_id"])
                item["status"], item["error"] = "failed", {"code": "server_error", "message": str(e)[:500]}
            self._save(job_id, items, "in_progress")
        self._save(job_id, items, "completed")

    def _save(self, job_id: str, items: list[dict[str, Any]], status: str) -> None:
        done = sum(1 for i in items if i["status"] == "completed")
        failed = sum(1 for i in items if i["status"] == "failed")
        with self.engine.begin() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(
                items=json.dumps(items), status=status, done=done, failed=failed, updated_at=time.time()))
