"""Running pipelines: a document in, its steps in order, every step a record.

``PipelineService`` owns the loaded pipelines, the runs store, the sinks and the webhook
outbox, for one Runtime (the server makes one, ``litegate pipeline run`` another). A run:

1. ``submit``: the input becomes references (uploaded bytes are stored as files, never kept
   in the row) and an idempotency key (given, or the sha256 of the input). A key seen before
   returns that run: a failed run is taken up again from its failed step, any other is
   returned as it is. Nothing downstream (a table row, a webhook) happens twice.
2. ``execute``: each step not yet done runs (or is skipped by its ``when``); its output joins
   the scope later steps read. A failing step marks the run failed at that step with its
   error, keeping the earlier steps' outputs; a step under its ``review_below`` (or a cascade
   that answers ``human_review``, or a ``review`` step) holds the run for a person.
3. ``review``: a person approves (optionally correcting the held step's output) and the run
   goes on from the next step, or rejects it.

Why one module (over 400 lines): a run's submit, steps, review and numbers share the run's
record; step kinds, specs, stores and sinks are modules of their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litegate.errors import ConfigError, Conflict, InvalidRequest, LitegateError, NotFound
from litegate.jobs.batches import PROCESS, owner_alive
from litegate.pipelines.config import Pipeline, load_pipelines
from litegate.pipelines.expr import truthy
from litegate.pipelines.notify import Outbox
from litegate.pipelines.sinks import Sinks
from litegate.pipelines.steps import STEP_KINDS, StepContext, StepResult
from litegate.pipelines.store import DONE, RunStore, StepRecord, public_run
from litegate.tenancy import OPERATOR, Tenant, acting_as

log = logging.getLogger("litegate.pipelines")
MAX_FILES = 20


@dataclass
class RunInput:
    """A document to run: text and/or files (``{"data": bytes, "filename", "mime_type"}``,
    ``{"file_id"}`` or, locally only, ``{"path"}``), free metadata, and how to name it."""

    text: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None

    @classmethod
    def from_json(cls, body: Any) -> RunInput:
        """A request body: ``{"text", "files": [{"mime_type", "data": base64, "filename"} |
        {"file_id"}], "metadata", "input_ref"}``; files by path are refused (a server's disk
        is not the caller's)."""
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object with text and/or files")
        extra = sorted(set(body) - {"text", "files", "metadata", "input_ref", "idempotency_key"})
        if extra:
            raise InvalidRequest(f"'{extra[0]}' is not a field of a pipeline run (text, files, metadata, input_ref, "
                                 "idempotency_key)", param=extra[0])
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidRequest("'text' must be a string", param="text")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidRequest("'metadata' must be an object", param="metadata")
        raw = body.get("files") or []
        if not isinstance(raw, list) or len(raw) > MAX_FILES:
            raise InvalidRequest(f"'files' must be a list of at most {MAX_FILES} files", param="files")
        files = []
        for i, f in enumerate(raw):
            where = f"files.{i}"
            if not isinstance(f, dict):
                raise InvalidRequest(f"{where} must be an object: {{mime_type, data (base64), filename}} or "
                                     "{file_id}", param=where)
            if "path" in f:
                raise InvalidRequest(f"{where}.path: files are sent as data or a file_id, not a server path",
                                     param=where)
            if f.get("file_id"):
                files.append({"file_id": str(f["file_id"]), "filename": f.get("filename")})
                continue
            data = f.get("data")
            if not isinstance(data, str) or not data:
                raise InvalidRequest(f"{where}.data must be the file's bytes in base64 (or give a file_id)",
                                     param=f"{where}.data")
            try:
                raw_bytes = base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_" if "-" in data or "_"
                                             in data else None, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest(f"{where}.data is not valid base64", param=f"{where}.data") from None
            files.append({"data": raw_bytes, "filename": f.get("filename") if isinstance(f.get("filename"), str)
                          else None, "mime_type": f.get("mime_type") if isinstance(f.get("mime_type"), str) else None})
        if text is None and not files:
            raise InvalidRequest("a run needs 'text' or 'files'", param="text")
        ref = body.get("input_ref")
        if ref is not None and not isinstance(ref, str):
            raise InvalidRequest("'input_ref' must be a string", param="input_ref")
        return cls(text=text, files=files, metadata=metadata, ref=ref)

    def key(self) -> str:
        """The default idempotency key: the sha256 of what the run would read."""
        h = hashlib.sha256()
        h.update(json.dumps({"text": self.text, "metadata": self.metadata}, sort_keys=True, default=str).encode())
        for f in self.files:
            if "data" in f:
                h.update(hashlib.sha256(f["data"]).digest())
            elif "path" in f:
                h.update(hashlib.sha256(Path(f["path"]).read_bytes()).digest())
            elif f.get("sha256"):  # an upload already stored: named by its bytes, as if sent inline
                h.update(bytes.fromhex(f["sha256"]))
            else:
                h.update(f"file_id:{f['file_id']}".encode())
        return "sha256:" + h.hexdigest()

    def default_ref(self) -> str | None:
        if self.ref:
            return self.ref
        names: list[Any] = [f.get("filename") or f.get("path") or f.get("file_id") for f in self.files]
        names = [str(n) for n in names if n]
        if names:
            return ", ".join(names)
        return (self.text or "")[:80] or None


def check_tiers(pipelines: dict[str, Pipeline], tiers: Any) -> None:
    """A task step's tier must exist here: found at start (and by ``pipeline check``), not at
    the first contract."""
    for p in pipelines.values():
        for s in p.steps:
            if s.tier is not None and s.tier != "auto" and s.tier not in tiers:
                hint = " (install it with pip install -e '.[pro]')" if s.tier == "pro" else ""
                raise ConfigError(f"{Path(p.source).name}: step {s.name!r}: tier: there is no tier {s.tier!r} "
                                  f"here{hint}; tiers: {', '.join(tiers)}, or auto")


class PipelineService:
    def __init__(self, runtime: Any, pipelines: dict[str, Pipeline], *, workers: int = 2,
                 outbox_transport: Any = None, poll_s: float = 0.5):

        if runtime.accountant is not None:
            engine = runtime.accountant.ledger.engine
        else:
            engine = runtime.files.engine
        self.runtime = runtime
        self.pipelines = pipelines
        self.owner = PROCESS
        self.store = RunStore(engine)
        self.sinks = Sinks(engine)
        self.outbox = Outbox(engine, PROCESS, poll_s=poll_s, transport=outbox_transport)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")
        self.check_tiers()

    @classmethod
    def from_settings(cls, runtime: Any, **kwargs: Any) -> PipelineService:
        s = runtime.settings
        return cls(runtime, load_pipelines(s.pipelines, s.home, explicit=s.pipelines is not None), **kwargs)

    def check_tiers(self) -> None:
        check_tiers(self.pipelines, self.runtime.tasks.tiers)

    def start(self) -> None:
        self.outbox.start()
        self.pool.submit(self._prebuilt_ready)

    def _prebuilt_ready(self) -> None:
        """The prebuilt classifiers the steps name, trained now (once per machine, from the examples
        the package ships) rather than inside the first run's call; a run that comes first waits
        on the same lock. A failure here is the first call's to report."""
        from litegate.nano.classifier import PREBUILT

        names = {s.options.get("classifier") for p in self.pipelines.values() for s in p.steps}
        for name in sorted(n for n in names if isinstance(n, str) and n in PREBUILT):
            try:
                self.runtime.classifiers.folder(name)
            except Exception as e:  # noqa: BLE001 - the first run that asks for it reports it
                log.warning("prebuilt classifier %s not trained ahead: %s", name, e)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.outbox.close()

    def pipeline(self, name: str) -> Pipeline:
        p = self.pipelines.get(name)
        if p is None:
            known = ", ".join(self.pipelines) or "none are loaded (LITEGATE_PIPELINES, $LITEGATE_HOME/pipelines)"
            raise NotFound(f"no pipeline {name[:80]!r}; pipelines: {known}", param="name")
        return p

    # -- submitting -------------------------------------------------------------------------

    def submit(self, name: str, inp: RunInput, key: str | None = None,
               api_key: str | None = None, tenant: Tenant | None = None) -> tuple[dict[str, Any], bool]:
        """(the run, whether it needs executing): a new run, a failed one taken up again, or
        the finished one this owner (``api_key``) already made under this key. The same key
        with a different body is a Conflict; files by id must be the caller's (``tenant``)."""
        pipeline = self.pipeline(name)
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 200):
            raise InvalidRequest("the idempotency key must be 1 to 200 characters", param="idempotency_key")
        tenant = tenant if tenant is not None else (Tenant(api_key) if api_key is not None else OPERATOR)
        self._check_file_ids(inp, tenant)
        digest = inp.key()
        key = key or digest
        try:
            existing = self.store.by_key(pipeline.name, key, api_key)
        except NotFound:
            existing = None
        if existing is None:
            stored = self._store_files(inp, api_key)
            input_ = {"text": inp.text, "metadata": inp.metadata, "files": stored}
            run, created = self.store.create(pipeline.name, key, inp.default_ref(), input_, api_key, digest)
            if created:
                return run, True
            existing = run
        if existing.get("request_sha256") not in (None, digest):
            raise Conflict(f"the idempotency key {key[:80]!r} was used for another document (run {existing['id']}); "
                           "send a new key for a new document", code="idempotency_key_reused")
        if existing["status"] == "failed" and self.store.requeue(existing["id"], ("failed",)):
            return self.store.get(existing["id"]), True
        return existing, existing["status"] == "queued"

    def _check_file_ids(self, inp: RunInput, tenant: Tenant) -> None:
        """A file given by id must exist and be the caller's (NotFound otherwise: ids do not leak)."""
        for i, f in enumerate(inp.files):
            if "file_id" in f and "data" not in f:
                try:
                    self.runtime.files.get(str(f["file_id"]), tenant)
                except NotFound:
                    raise NotFound(f"files.{i}: no file {str(f['file_id'])[:80]!r}; upload it first (POST /v1/files)",
                                   param=f"files.{i}.file_id") from None

    def _store_files(self, inp: RunInput, owner: str | None = None) -> list[dict[str, Any]]:
        """Uploaded bytes become stored files (the run's owner's), so the run row holds
        references and a resumed run reads the same bytes."""
        out = []
        for f in inp.files:
            if "data" in f:
                stored = self.runtime.files.put(f["data"], api="pipeline", purpose="pipeline", owner=owner,
                                                filename=f.get("filename") or "document", mime_type=f.get("mime_type"))
                out.append({"file_id": stored.id, "filename": f.get("filename"), "mime_type": f.get("mime_type"),
                            "bytes": stored.bytes, "sha256": stored.sha256})
            elif "path" in f:
                path = Path(f["path"]).expanduser().resolve()
                out.append({"path": str(path), "filename": f.get("filename") or path.name,
                            "mime_type": f.get("mime_type")})
            else:
                out.append({k: f[k] for k in ("file_id", "filename", "mime_type", "bytes", "sha256") if k in f})
        return out

    def run(self, name: str, inp: RunInput, key: str | None = None, api_key: str | None = None) -> dict[str, Any]:
        """Submit and execute here, to the end (the CLI, tests, the Python API)."""
        run, todo = self.submit(name, inp, key, api_key)
        if todo:
            self.execute(run["id"], api_key)
        return self.show(run["id"])

    def start_run(self, run_id: str, api_key: str | None = None) -> Future[dict[str, Any]]:
        return self.pool.submit(self.execute, run_id, api_key)

    def resume_unfinished(self) -> list[str]:
        """Runs a dead process left queued or running: executed again from their first step
        not done (their finished steps are kept)."""

        resumed = []
        for run in self.store.unfinished():
            if run["pipeline"] not in self.pipelines:
                continue
            if run["status"] == "running" and owner_alive(run["owner"]):
                continue
            if run["status"] == "running":
                self.store.set(run["id"], status="queued")
            self.start_run(run["id"], run["api_key"])
            resumed.append(run["id"])
        return resumed

    # -- executing --------------------------------------------------------------------------

    def execute(self, run_id: str, api_key: str | None = None) -> dict[str, Any]:
        if not self.store.claim(run_id, self.owner):
            return self.store.get(run_id)  # done, or another worker has it
        run = self.store.get(run_id)
        api_key = api_key if api_key is not None else run["api_key"]
        try:
            # the run's steps see what its creator sees (its classifiers and extractors by name)
            with acting_as(Tenant(api_key) if api_key is not None else OPERATOR):
                return self._execute(run, api_key)
        except Exception as e:  # noqa: BLE001 - a bug must leave a failed run, never a stuck "running" one
            log.exception("pipeline run %s", run_id)
            self.store.set(run_id, status="failed", error=f"{type(e).__name__}: {e}"[:2000], finished_at=time.time())
            return self.store.get(run_id)

    def _scope(self, run: dict[str, Any], records: dict[str, StepRecord]) -> dict[str, Any]:
        input_ = json.loads(run["input"])
        files = input_.get("files") or []
        scope_input = {"text": input_.get("text"), "metadata": input_.get("metadata") or {}, "files": files,
                       "filename": next((f.get("filename") for f in files if f.get("filename")), None),
                       "ref": run["input_ref"]}
        steps = {name: (rec.output if rec.status in ("ok", "human_review") else None)
                 for name, rec in records.items() if rec.status in ("ok", "skipped", "human_review")}
        return {"input": scope_input, "run": {"id": run["id"], "pipeline": run["pipeline"]}, "steps": steps}

    def _execute(self, run: dict[str, Any], api_key: str | None) -> dict[str, Any]:
        pipeline = self.pipelines.get(run["pipeline"])
        if pipeline is None:
            self.store.set(run["id"], status="failed", error=f"pipeline {run['pipeline']!r} is not loaded here",
                           finished_at=time.time())
            return self.store.get(run["id"])
        records = {r.step: r for r in self.store.steps(run["id"])}
        scope = self._scope(run, records)
        status, failed_step, review_step, error = "succeeded", None, None, None
        for step in pipeline.steps:
            rec = records.get(step.name)
            if rec is not None and rec.status in ("ok", "skipped"):
                continue
            if step.when is not None and not truthy(step.when(scope)):
                rec = StepRecord(step.name, step.index, step.kind, "skipped")
                self.store.put_step(run["id"], rec)
                records[step.name] = rec
                scope["steps"][step.name] = None
                continue
            started = time.perf_counter()
            ctx = StepContext(runtime=self.runtime, pipeline=pipeline, step=step, scope=scope, run=run, service=self,
                              api_key=api_key)
            try:
                result: StepResult = STEP_KINDS[step.kind].run(ctx)
            except LitegateError as e:
                result, error = None, e.message  # type: ignore[assignment]
            except Exception as e:  # noqa: BLE001 - the run records any step's failure, with its reason
                log.exception("pipeline %s step %s", pipeline.name, step.name)
                result, error = None, f"{type(e).__name__}: {e}"  # type: ignore[assignment]
            latency = round((time.perf_counter() - started) * 1000, 2)
            if result is None:
                rec = StepRecord(step.name, step.index, step.kind, "failed", latency_ms=latency, error=error)
                self.store.put_step(run["id"], rec)
                records[step.name] = rec
                status, failed_step = "failed", step.name
                break
            rec = StepRecord(step.name, step.index, step.kind, "human_review" if result.review else "ok",
                             tier=result.tier, confidence=result.confidence, cost_usd=result.cost_usd,
                             latency_ms=latency, outcome=result.outcome, escalated=result.escalated,
                             call_id=result.call_id, output=result.output, error=result.review)
            self.store.put_step(run["id"], rec)
            records[step.name] = rec
            scope["steps"][step.name] = result.output
            if result.review:
                status, review_step, error = "human_review", step.name, result.review
                break
        done = [r for r in records.values() if r.status in ("ok", "human_review")]
        tiers = sorted({r.tier for r in done if r.tier and r.tier != "documents"})
        self.store.set(run["id"], status=status, failed_step=failed_step, review_step=review_step,
                       error=(f"step {failed_step!r}: {error}" if failed_step else error),
                       cost_usd=round(sum(r.cost_usd or 0.0 for r in done), 9),
                       latency_ms=round(sum(r.latency_ms or 0.0 for r in records.values()), 2),
                       escalated=any(r.escalated for r in done), tiers=",".join(tiers), finished_at=time.time())
        if status == "succeeded" and not pipeline.keep_texts:  # failed and held runs need them to go on
            self.store.forget_texts(run["id"])
        return self.store.get(run["id"])

    # -- after a run ------------------------------------------------------------------------

    def show(self, run_id: str, pipeline: str | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        run = self.store.get(run_id, pipeline, tenant)
        out = public_run(run, self.store.steps(run_id))
        out["deliveries"] = [{k: d[k] for k in ("id", "step", "status", "attempts", "last_error")}
                             for d in self.outbox.list(run_id=run_id)]
        return out

    def retry(self, run_id: str, pipeline: str | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        run = self.store.get(run_id, pipeline, tenant)
        if run["status"] != "failed" or not self.store.requeue(run_id, ("failed",)):
            raise Conflict(f"run {run_id} is {run['status']}; only a failed run is retried", code="not_failed")
        return self.store.get(run_id)

    def review(self, run_id: str, pipeline: str | None = None, *, approve: bool = True,
               output: dict[str, Any] | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        """A person's decision on a held run: approve (with corrections merged into the held
        step's output) and the run goes on from the next step, or reject it. A correction to a
        task step also reaches the ledger (outcome) and, for a learning classifier or
        extractor, its training labels."""
        run = self.store.get(run_id, pipeline, tenant)
        if run["status"] != "human_review":
            raise Conflict(f"run {run_id} is {run['status']}; only a run waiting for review takes a decision",
                           code="not_in_review")
        if not approve:
            self.store.set(run_id, status="rejected", finished_at=time.time())
            pipeline_ = self.pipelines.get(run["pipeline"])
            if pipeline_ is None or not pipeline_.keep_texts:
                self.store.forget_texts(run_id)
            return self.store.get(run_id)
        if output is not None and not isinstance(output, dict):
            raise InvalidRequest("'output' must be an object merged into the held step's output", param="output")
        rec = next(r for r in self.store.steps(run_id) if r.step == run["review_step"])
        merged = dict(rec.output or {})
        for k, v in (output or {}).items():
            merged[k] = {**merged[k], **v} if isinstance(merged.get(k), dict) and isinstance(v, dict) else v
        rec.output, rec.status, rec.outcome = merged, "ok", "reviewed"
        self.store.put_step(run_id, rec)
        if rec.call_id and rec.kind in ("classify", "extract") and self.runtime.accountant is not None:
            self._feedback(rec, output)
        self.store.set(run_id, status="queued", review_step=None, error=None, finished_at=None)
        return self.store.get(run_id)

    def _feedback(self, rec: StepRecord, correction: dict[str, Any] | None) -> None:
        try:
            if correction and self.runtime.learner is not None:
                key = "data" if rec.kind == "extract" else "label"
                right = rec.output.get(key)
                if right is not None:
                    self.runtime.learner.correct(rec.call_id, right)
            self.runtime.accountant.feedback(rec.call_id, "failure" if correction else "success")
        except LitegateError as e:  # a call to a model that does not learn: the outcome is enough
            log.info("review feedback for %s: %s", rec.call_id, e.message)
            try:
                self.runtime.accountant.feedback(rec.call_id, "failure" if correction else "success")
            except LitegateError:
                pass

    # -- numbers ----------------------------------------------------------------------------

    def stats(self, name: str, since: float | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        """What the dashboard shows: runs by status, cost per document and per step, the share
        of runs that escalated, reached each tier, went to review or failed (``tenant``'s runs)."""
        pipeline = self.pipeline(name)
        return pipeline_stats(self.store, self.outbox, pipeline.name, [(s.name, s.kind) for s in pipeline.steps],
                              since, tenant)

def pipeline_stats(store: RunStore, outbox: Outbox, name: str, step_kinds: list[tuple[str, str]] | None,
                   since: float | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
    """A pipeline's numbers from its runs in the database. ``step_kinds`` (name, kind) come from
    its file when it is loaded; None: from the recorded steps (runs made by the CLI or another
    server whose file this one does not load)."""
    if step_kinds is None:
        seen: dict[str, int] = {}
        for x in store.step_rows(name, since, tenant):
            seen[x["step"]] = min(seen.get(x["step"], x["position"]), x["position"])
        step_kinds = [(step, "") for step in sorted(seen, key=seen.__getitem__)]
    runs = store.list(name, limit=100_000, since=since, tenant=tenant)
    steps = store.step_rows(name, since, tenant)
    n = len(runs)
    finished = [r for r in runs if r["status"] not in ("queued", "running")]
    costs = sorted(r["cost_usd"] or 0.0 for r in finished)
    per_step: dict[str, dict[str, Any]] = {}
    for step, kind in step_kinds:
        rows = [x for x in steps if x["step"] == step]
        ran = [x for x in rows if x["status"] in ("ok", "human_review")]
        per_step[step] = {
            "kind": kind, "runs": len(rows), "ran": len(ran),
            "skipped": sum(1 for x in rows if x["status"] == "skipped"),
            "failed": sum(1 for x in rows if x["status"] == "failed"),
            "to_review": sum(1 for x in rows if x["status"] == "human_review"),
            "cost_usd": round(sum(x["cost_usd"] or 0.0 for x in ran), 9),
            "cost_per_run_usd": round(sum(x["cost_usd"] or 0.0 for x in ran) / n, 9) if n else 0.0,
            "latency_ms_p50": _pct(sorted(x["latency_ms"] for x in ran if x["latency_ms"] is not None), 50),
            "tiers": _count(x["tier"] for x in ran if x["tier"]),
            "escalated": sum(1 for x in ran if x["escalated"])}
    tiers: dict[str, int] = {}
    for r in finished:
        for t in (r["tiers"] or "").split(","):
            if t:
                tiers[t] = tiers.get(t, 0) + 1
    counts = _count(r["status"] for r in runs)
    return {"object": "pipeline.stats", "pipeline": name, "runs": n, "status": counts,
            "cost_usd": round(sum(costs), 9),
            "cost_per_document_usd": round(sum(costs) / len(costs), 9) if costs else 0.0,
            "cost_per_document_p50_usd": _pct(costs, 50), "cost_per_document_p95_usd": _pct(costs, 95),
            "share_escalated": _share(sum(1 for r in finished if r["escalated"]), len(finished)),
            "share_to_review": _share(counts.get("human_review", 0), len(finished)),
            "share_failed": _share(counts.get("failed", 0), len(finished)),
            "share_by_tier": {t: _share(c, len(finished)) for t, c in sorted(tiers.items())},
            "dead_letters": len(outbox.list(name, "dead", limit=100_000, tenant=tenant)),
            "pending_deliveries": len(outbox.list(name, "pending", limit=100_000, tenant=tenant)),
            "steps": per_step}


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _share(k: int, n: int) -> float:
    return round(k / n, 4) if n else 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


__all__ = ["DONE", "PipelineService", "RunInput"]
