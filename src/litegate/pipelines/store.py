"""Runs are records: ``pipeline_runs`` (one row per document through a pipeline),
``pipeline_steps`` (one row per step of a run) and ``pipeline_deliveries`` (the webhook
outbox), beside the ledger in the same database, so a user can query them like the calls:

    sqlite3 ~/.cache/litegate/ledger.db \\
      "select step, count(*), avg(cost_usd), sum(tier = 'pro') from pipeline_steps group by 1"

A run is unique per (pipeline, owner, idempotency key): starting it again with the same body
returns the existing run (a failed one is taken up again from its failed step), so nothing
downstream runs twice; the same key with another body is a conflict. A run's owner is the key
that started it (``api_key``, ``litegate.tenancy``): another key neither sees it nor reuses it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from litegate.errors import NotFound
from litegate.ledger.calls import metadata
from litegate.ledger.migrations import add_missing_columns, widen_column
from litegate.tenancy import OPERATOR, Tenant, filtered

runs_table = Table(
    "pipeline_runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline", String(64), nullable=False, index=True),
    # scoped to its owner: "<key fingerprint>/<the caller's key>" (the caller's key alone when anonymous)
    Column("idempotency_key", String(256), nullable=False),
    Column("request_sha256", String(80)),  # what the key was first sent with: the same key, another body -> 409
    Column("status", String(16), nullable=False, index=True),  # queued running succeeded failed human_review rejected
    Column("input_ref", String(1000)),  # what a person recognises: a file name, a path, a line id
    Column("input", Text, nullable=False),  # JSON: text, files (references, never bytes), metadata
    Column("api_key", String(64)),
    Column("failed_step", String(64)),
    Column("review_step", String(64)),
    Column("error", Text),
    Column("cost_usd", Float, default=0.0),
    Column("latency_ms", Float),
    Column("escalated", Boolean, default=False),  # any step's cascade escalated
    Column("tiers", String(200)),  # the tiers its steps ran on, comma-separated
    Column("owner", String(128)),  # the process running it (litegate.jobs.batches.PROCESS)
    Column("attempts", Integer, default=0),
    Column("created_at", Float, nullable=False, index=True),
    Column("started_at", Float),
    Column("finished_at", Float),
    UniqueConstraint("pipeline", "idempotency_key", name="uq_pipeline_run_key"),
)
steps_table = Table(
    "pipeline_steps", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # ok skipped failed human_review
    Column("tier", String(32)),
    Column("confidence", Float),
    Column("cost_usd", Float, default=0.0),
    Column("latency_ms", Float),
    Column("outcome", String(16)),  # the task's outcome: answered / human_review
    Column("escalated", Boolean, default=False),
    Column("call_id", String(64)),  # the ledger row of a task step
    Column("output", Text),  # JSON
    Column("error", Text),
    Column("ts", Float, nullable=False, index=True),
)
deliveries_table = Table(
    "pipeline_deliveries", metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("pipeline", String(64), nullable=False, index=True),
    Column("step", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes posted (signed as they are)
    Column("secret_env", String(200)),
    Column("status", String(16), nullable=False, index=True),  # pending delivered dead
    Column("attempts", Integer, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("backoff_s", Float, nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("next_at", Float, nullable=False, index=True),
    Column("lease_until", Float),
    Column("owner", String(128)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("dead_at", Float),
    UniqueConstraint("run_id", "step", name="uq_delivery_run_step"),
)

DONE = ("succeeded", "human_review", "rejected")
ACTIVE = ("queued", "running")


@dataclass
class StepRecord:
    step: str
    position: int
    kind: str
    status: str
    tier: str | None = None
    confidence: float | None = None
    cost_usd: float = 0.0
    latency_ms: float | None = None
    outcome: str | None = None
    escalated: bool = False
    call_id: str | None = None
    output: Any = None
    error: str | None = None
    ts: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "status": self.status, "tier": self.tier,
                "confidence": self.confidence, "cost_usd": round(self.cost_usd or 0.0, 9),
                "latency_ms": self.latency_ms, "outcome": self.outcome, "escalated": self.escalated,
                "call_id": self.call_id, "output": self.output, "error": self.error}


class RunStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, tables=[runs_table, steps_table, deliveries_table])
        add_missing_columns(engine, runs_table)
        widen_column(engine, runs_table, "idempotency_key", 256)

    # -- runs -------------------------------------------------------------------------------

    def create(self, pipeline: str, key: str, input_ref: str | None, input_: dict[str, Any],
               api_key: str | None = None, request_sha256: str | None = None) -> tuple[dict[str, Any], bool]:
        """(the run, created): a new queued run, or the one this owner (``api_key``) already
        made under this key."""
        row: dict[str, Any]  # mixed values: ids are str
        row = {"id": "prun_" + secrets.token_hex(12), "pipeline": pipeline, "idempotency_key": scoped_key(api_key, key),
               "status": "queued", "input_ref": (input_ref or "")[:1000] or None, "input": json.dumps(input_),
               "api_key": api_key, "request_sha256": request_sha256, "cost_usd": 0.0, "created_at": time.time(),
               "attempts": 0}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(runs_table).values(**row))
        except IntegrityError:
            return self.by_key(pipeline, key, api_key), False
        return self.get(row["id"]), True

    def by_key(self, pipeline: str, key: str, api_key: str | None = None) -> dict[str, Any]:
        """The run this owner started under ``key``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.pipeline == pipeline)
                               .where(runs_table.c.idempotency_key == scoped_key(api_key, key))).mappings().first()
        if row is None:
            raise NotFound(f"no run of {pipeline!r} with idempotency key {key[:80]!r}")
        return dict(row)

    def get(self, run_id: str, pipeline: str | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.id == run_id)).mappings().first()
        if row is None or (pipeline is not None and row["pipeline"] != pipeline) or not tenant.sees(row["api_key"]):
            raise NotFound(f"no run {run_id[:80]!r}" + (f" of pipeline {pipeline!r}" if pipeline else ""),
                           param="run_id")
        return dict(row)

    def claim(self, run_id: str, owner: str, statuses: tuple[str, ...] = ("queued",)) -> bool:
        """Take a run to execute it: only one process runs a run at a time."""
        with self.engine.begin() as conn:
            done = conn.execute(update(runs_table).where(runs_table.c.id == run_id)
                                .where(runs_table.c.status.in_(statuses))
                                .values(status="running", owner=owner, started_at=time.time(),
                                        attempts=runs_table.c.attempts + 1))
            return done.rowcount == 1

    def set(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(**values))

    def requeue(self, run_id: str, statuses: tuple[str, ...]) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(update(runs_table).where(runs_table.c.id == run_id)
                                .where(runs_table.c.status.in_(statuses))
                                .values(status="queued", error=None, failed_step=None, finished_at=None))
            return done.rowcount == 1

    def list(self, pipeline: str | None = None, status: str | None = None, limit: int = 50,
             before: float | None = None, since: float | None = None,
             tenant: Tenant = OPERATOR) -> list[dict[str, Any]]:
        q = filtered(select(runs_table).order_by(runs_table.c.created_at.desc(), runs_table.c.id),
                     runs_table.c.api_key, tenant)
        if pipeline is not None:
            q = q.where(runs_table.c.pipeline == pipeline)
        if status is not None:
            q = q.where(runs_table.c.status == status)
        if before is not None:
            q = q.where(runs_table.c.created_at < before)
        if since is not None:
            q = q.where(runs_table.c.created_at >= since)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.limit(limit)).mappings()]

    def pipeline_names(self, since: float | None = None, tenant: Tenant = OPERATOR) -> builtins.list[str]:
        """Every pipeline with runs here (run by a server or the CLI) that ``tenant`` may see."""
        q = filtered(select(runs_table.c.pipeline).distinct(), runs_table.c.api_key, tenant)
        if since is not None:
            q = q.where(runs_table.c.created_at >= since)
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(q))

    def forget_texts(self, run_id: str) -> None:
        """A finished run keeps what its steps found, not the document: the input's text and
        the text an ingest step read become their length and sha256 (nothing but learning
        keeps texts, and it keeps its own)."""
        run = self.get(run_id)
        input_ = json.loads(run["input"])
        if isinstance(input_.get("text"), str):
            input_.update(text=None, **_fingerprint(input_["text"]))
            self.set(run_id, input=json.dumps(input_))
        for rec in self.steps(run_id):
            if rec.kind == "ingest" and isinstance(rec.output, dict) and isinstance(rec.output.get("text"), str):
                rec.output = {**rec.output, "text": None, **_fingerprint(rec.output["text"])}
                self.put_step(run_id, rec)

    def unfinished(self) -> builtins.list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(runs_table).where(runs_table.c.status.in_(ACTIVE))
                                                  .order_by(runs_table.c.created_at)).mappings()]

    # -- steps ------------------------------------------------------------------------------

    def steps(self, run_id: str) -> builtins.list[StepRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(steps_table).where(steps_table.c.run_id == run_id)
                                .order_by(steps_table.c.position)).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d.pop("run_id")
            d["output"] = json.loads(d["output"]) if d["output"] else None
            d["escalated"] = bool(d["escalated"])
            out.append(StepRecord(**d))
        return out

    def put_step(self, run_id: str, rec: StepRecord) -> None:
        """The step's record, replacing an earlier attempt's (a failed step run again)."""
        values = {**rec.__dict__, "output": json.dumps(rec.output, default=str) if rec.output is not None else None}
        with self.engine.begin() as conn:
            conn.execute(delete(steps_table).where(steps_table.c.run_id == run_id)
                         .where(steps_table.c.step == rec.step))
            conn.execute(insert(steps_table).values(run_id=run_id, **values))

    def step_rows(self, pipeline: str, since: float | None = None,
                  tenant: Tenant = OPERATOR) -> builtins.list[dict[str, Any]]:
        q = (select(steps_table.c.run_id, steps_table.c.step, steps_table.c.position, steps_table.c.status,
                    steps_table.c.tier, steps_table.c.cost_usd, steps_table.c.latency_ms, steps_table.c.escalated,
                    steps_table.c.confidence)
             .join(runs_table, runs_table.c.id == steps_table.c.run_id).where(runs_table.c.pipeline == pipeline))
        if since is not None:
            q = q.where(runs_table.c.created_at >= since)
        q = filtered(q, runs_table.c.api_key, tenant)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def counts(self, pipeline: str, since: float | None = None, tenant: Tenant = OPERATOR) -> dict[str, int]:
        q = filtered(select(runs_table.c.status, func.count()).where(runs_table.c.pipeline == pipeline),
                     runs_table.c.api_key, tenant)
        if since is not None:
            q = q.where(runs_table.c.created_at >= since)
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(q.group_by(runs_table.c.status))}


def _fingerprint(text: str) -> dict[str, Any]:
    return {"text_chars": len(text), "text_sha256": hashlib.sha256(text.encode()).hexdigest()}


def scoped_key(owner: str | None, key: str) -> str:
    """An idempotency key as stored: prefixed by its owner's fingerprint, so two keys' runs
    never meet (an anonymous owner's keys are stored as given, as before owners existed)."""
    return key if owner is None else f"{owner}/{key}"


def caller_key(run: dict[str, Any]) -> str:
    """The idempotency key as its caller sent it."""
    key: str
    key, owner = run["idempotency_key"], run.get("api_key")
    return key[len(owner) + 1:] if owner is not None and key.startswith(owner + "/") else key


def public_run(run: dict[str, Any], steps: list[StepRecord] | None = None) -> dict[str, Any]:
    """A run as the API and the CLI show it."""
    out = {"object": "pipeline.run", "id": run["id"], "pipeline": run["pipeline"], "status": run["status"],
           "idempotency_key": caller_key(run), "input_ref": run["input_ref"],
           "cost_usd": round(run["cost_usd"] or 0.0, 9), "latency_ms": run["latency_ms"],
           "escalated": bool(run["escalated"]), "tiers": run["tiers"].split(",") if run["tiers"] else [],
           "failed_step": run["failed_step"], "review_step": run["review_step"], "error": run["error"],
           "attempts": run["attempts"], "created_at": run["created_at"], "finished_at": run["finished_at"]}
    if steps is not None:
        out["steps"] = [s.public() for s in steps]
    return out
