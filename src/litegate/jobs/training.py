"""Classifier training in the background: tuning an encoder takes minutes, longer than an HTTP
request should hang, so the request gets a job to poll. A job's request is written to disk
before it is queued; one worker trains one job at a time (training takes every core it is
given), and a process that starts after a crash (even kill -9) trains its unfinished jobs again
from the start, twice at most, so a job that kills the process does not kill every restart."""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from litegate.errors import LitegateError, NotFound
from litegate.tenancy import Tenant, acting_as

log = logging.getLogger("litegate.training")
ACTIVE = ("queued", "in_progress")
MAX_ATTEMPTS = 2
_STOP = ""


class TrainingJobs:
    """Jobs under ``<home>/training_jobs``, one JSON file each, trained with ``classifiers``."""

    def __init__(self, home: Path, classifiers: Any):
        self.folder = Path(home) / "training_jobs"
        self.classifiers = classifiers
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, tenant: Tenant, name: str, examples: list[dict[str, Any]], learn: bool = False,
               encoder: str | None = None, tune: Any = None) -> dict[str, Any]:
        """Check the request as training would, then queue it; the job as ``GET`` shows it."""
        key, _ = self.classifiers.plan(name, examples, encoder, tune)
        now = time.time()
        job = {"id": "ctj_" + secrets.token_hex(12), "owner": tenant.owner, "admin": tenant.admin,
               "status": "queued", "name": name, "encoder": key, "examples": len(examples), "progress": None,
               "classifier": None, "error": None, "attempts": 0, "created_at": now, "updated_at": now,
               "request": {"examples": examples, "learn": learn, "encoder": key, "tune": tune}}
        self._write(job)
        self._enqueue(job["id"])
        return self._body(job)

    def get(self, tenant: Tenant, job_id: str) -> dict[str, Any]:
        """The job, when it is ``tenant``'s (another key's job answers 404, like a missing one)."""
        job = self._read(job_id)
        if job is None or not tenant.sees(job["owner"]):
            raise NotFound(f"no training job {job_id[:80]!r}", param="job_id")
        return self._body(job)

    def resume(self) -> list[str]:
        """Queue every job a previous process left unfinished."""
        if not self.folder.is_dir():
            return []
        jobs = [j for j in (self._read(p.stem) for p in sorted(self.folder.glob("ctj_*.json"))) if j]
        ids = [j["id"] for j in sorted(jobs, key=lambda j: j["created_at"]) if j["status"] in ACTIVE]
        for job_id in ids:
            self._enqueue(job_id)
        return ids

    def wait(self, timeout: float | None = None) -> None:
        """Until the queue is empty and the last job has finished (tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)

    def close(self) -> None:
        """The worker stops after the job it is on; the rest stay queued on disk for the next process."""
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                self._queue.put(_STOP)

    @staticmethod
    def _body(job: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in job.items() if k not in ("request", "owner", "admin", "attempts")}
        return {"object": "classifier.training_job", **shown}

    def _path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def _read(self, job_id: str) -> dict[str, Any] | None:
        if not job_id.startswith("ctj_") or not job_id[4:].isalnum():
            return None
        try:
            return json.loads(self._path(job_id).read_text())
        except (OSError, ValueError):
            return None

    def _write(self, job: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        job["updated_at"] = time.time()
        tmp = self._path(job["id"]).with_suffix(".tmp")
        tmp.write_text(json.dumps(job))
        os.replace(tmp, self._path(job["id"]))

    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            self._queue.put(job_id)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="training-jobs", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                if job_id == _STOP:
                    return
                self._run(job_id)
            finally:
                self._queue.task_done()

    def _run(self, job_id: str) -> None:
        job = self._read(job_id)
        if job is None or job["status"] not in ACTIVE:
            return
        if job["attempts"] >= MAX_ATTEMPTS:
            self._finish(job, "failed", error={"code": "server_error", "message": (
                f"training stopped the server {job['attempts']} times (memory?); try fewer examples or "
                "tuning settings")})
            return
        job.update(status="in_progress", attempts=job["attempts"] + 1, progress="starting")
        self._write(job)
        last = [0.0]

        def progress(message: str) -> None:
            if time.monotonic() - last[0] >= 1.0:  # a file write a second at most
                last[0] = time.monotonic()
                job["progress"] = message
                self._write(job)

        request = job["request"]
        try:
            with acting_as(Tenant(job["owner"], job["admin"])):
                info = self.classifiers.train(job["name"], request["examples"], request["learn"],
                                              request["encoder"], request["tune"], progress=progress)
        except LitegateError as e:
            self._finish(job, "failed", error={"code": e.code or "invalid_request", "message": e.message})
        except Exception as e:  # noqa: BLE001 - a failed job says why; the worker goes on
            log.exception("training job %s failed", job_id)
            self._finish(job, "failed", error={"code": "server_error", "message": str(e)[:500]})
        else:
            self._finish(job, "succeeded", classifier={"object": "classifier", **asdict(info)})

    def _finish(self, job: dict[str, Any], status: str, **fields: Any) -> None:
        job.update(status=status, progress=None, **fields)
        self._write(job)
