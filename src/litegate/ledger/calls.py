"""The ledger: one row per call (who, what, which tier, tokens, latency, cost, outcome).

SQLite under ``$LITEGATE_HOME/ledger.db`` by default; any SQLAlchemy URL works (a
PostgreSQL URL when several replicas share one ledger). The table is plain, so users can
open it and query their own history:

    sqlite3 ~/.cache/litegate/ledger.db "select feature, tier, sum(cost_usd) from calls group by 1, 2"
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine

from litegate.tenancy import OPERATOR, Tenant, filtered

OUTCOMES = ("success", "failure")

metadata = MetaData()
calls = Table(
    "calls", metadata,
    Column("id", String(64), primary_key=True),
    Column("ts", Float, nullable=False, index=True),  # unix seconds
    Column("task", String(64), nullable=False),  # classify, extract, ..., chat, completion, gemini
    Column("feature", String(200), index=True),
    Column("api_key", String(64)),  # a short fingerprint, never the key itself
    Column("tier", String(32), nullable=False),
    Column("model", String(200)),
    Column("tokens_in", Integer, default=0),
    Column("tokens_out", Integer, default=0),
    Column("tokens_cached", Integer, default=0),
    Column("latency_ms", Float),
    Column("cost_usd", Float, default=0.0),
    Column("confidence", Float),
    Column("escalated", Boolean, default=False),
    Column("escalated_from", String(32)),
    Column("shadow_tier", String(32)),
    Column("shadow_agreement", Boolean),
    Column("status", Integer, default=200),
    Column("outcome", String(16)),  # success / failure, from POST /v1/feedback
)

# a call's files: one row per call that read any (litegate.documents.attachments)
documents = Table(
    "call_documents", metadata,
    Column("call_id", String(64), primary_key=True),
    Column("files", Integer, nullable=False),
    Column("pages", Integer, default=0),
    Column("audio_seconds", Float, default=0.0),
    Column("ocr_ms", Float, default=0.0),
    Column("asr_ms", Float, default=0.0),
)

# a local call's engine time (prefill + decode as llama.cpp measured it): the price no longer
# follows it (litegate.ledger.pricing), so it is kept beside the call to show what load did
engine_time = Table(
    "call_engine_time", metadata,
    Column("call_id", String(64), primary_key=True),
    Column("engine_ms", Float, nullable=False),
)


@dataclass
class CallRecord:
    id: str
    task: str
    tier: str
    model: str | None = None
    feature: str | None = None
    api_key: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    latency_ms: float | None = None
    cost_usd: float = 0.0
    confidence: float | None = None
    escalated: bool = False
    escalated_from: str | None = None
    shadow_tier: str | None = None
    shadow_agreement: bool | None = None
    status: int = 200
    outcome: str | None = None
    ts: float = field(default_factory=time.time)


class Ledger:
    def __init__(self, url: str):
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.url = url
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:  # concurrent readers while writing
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        metadata.create_all(self.engine)

    def record(self, rec: CallRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(calls.insert().values(**asdict(rec)))

    def record_documents(self, call_id: str, usage: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(documents.insert().values(call_id=call_id, files=int(usage.get("files", 0)),
                                                   pages=int(usage.get("pages", 0)),
                                                   audio_seconds=float(usage.get("audio_seconds", 0.0)),
                                                   ocr_ms=float(usage.get("ocr_ms", 0.0)),
                                                   asr_ms=float(usage.get("asr_ms", 0.0))))

    def record_engine_time(self, call_id: str, engine_ms: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(engine_time.insert().values(call_id=call_id, engine_ms=float(engine_ms)))

    def engine_ms(self, call_id: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(engine_time.c.engine_ms).where(engine_time.c.call_id == call_id)).scalar()

    def set_outcome(self, call_id: str, outcome: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(update(calls).where(calls.c.id == call_id).values(outcome=outcome))
            return result.rowcount > 0

    def set_shadow(self, call_id: str, tier: str, agreed: bool) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(update(calls).where(calls.c.id == call_id)
                                  .values(shadow_tier=tier, shadow_agreement=agreed))
            return result.rowcount > 0

    def escalation_rate(self, feature: str | None, task: str, last: int = 200) -> tuple[float, int]:
        """Escalation rate over the last ``last`` calls of a task and feature, and how many."""
        q = (select(calls.c.escalated).where(calls.c.task == task)
             .where(calls.c.feature.is_(None) if feature is None else calls.c.feature == feature)
             .order_by(calls.c.ts.desc()).limit(last))
        with self.engine.connect() as conn:
            flags = [bool(r[0]) for r in conn.execute(q)]
        return (sum(flags) / len(flags) if flags else 0.0), len(flags)

    def spend(self, api_key: str, since: float) -> float:
        with self.engine.connect() as conn:
            total = conn.execute(select(func.sum(calls.c.cost_usd)).where(calls.c.api_key == api_key)
                                 .where(calls.c.ts >= since)).scalar()
        return float(total or 0.0)

    def cost_of(self, call_ids: list[str]) -> float:
        """The summed cost of these calls (a batch job's lines)."""
        total = 0.0
        with self.engine.connect() as conn:
            for start in range(0, len(call_ids), 500):
                total += float(conn.execute(select(func.sum(calls.c.cost_usd))
                                            .where(calls.c.id.in_(call_ids[start:start + 500]))).scalar() or 0.0)
        return total

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.id == call_id)).mappings().first()
            return dict(row) if row else None

    def rows(self, since: float | None = None, limit: int | None = None,
             tenant: Tenant = OPERATOR) -> list[dict[str, Any]]:
        q = filtered(select(calls).order_by(calls.c.ts.desc()), calls.c.api_key, tenant)
        if since is not None:
            q = q.where(calls.c.ts >= since)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def summary(self, since: float | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        """Totals per feature and tier: calls, tokens, cost, escalation rate, latency
        percentiles, and cost per successful call where feedback exists (``tenant``'s calls)."""
        cond = [calls.c.ts >= since] if since is not None else []
        own = tenant.where(calls.c.api_key)
        cond += [own] if own is not None else []
        with self.engine.connect() as conn:
            groups = conn.execute(
                select(calls.c.feature, calls.c.tier, func.count().label("calls"),
                       func.sum(calls.c.tokens_in).label("tokens_in"),
                       func.sum(calls.c.tokens_out).label("tokens_out"),
                       func.sum(calls.c.cost_usd).label("cost_usd"),
                       func.sum(func.cast(calls.c.escalated, Integer)).label("escalated"),
                       func.sum(func.cast(calls.c.outcome == "success", Integer)).label("successes"),
                       func.sum(func.cast(calls.c.outcome == "failure", Integer)).label("failures"),
                       func.count(calls.c.shadow_agreement).label("shadowed"),
                       func.sum(func.cast(calls.c.shadow_agreement, Integer)).label("shadow_agreed"))
                .where(*cond).group_by(calls.c.feature, calls.c.tier)).mappings().all()
            latencies = conn.execute(select(calls.c.feature, calls.c.tier, calls.c.latency_ms).where(*cond)).all()
        lat: dict[tuple[str | None, str], list[float]] = {}
        for feature, tier, ms in latencies:
            if ms is not None:
                lat.setdefault((feature, tier), []).append(ms)
        out = []
        for g in groups:
            values = sorted(lat.get((g["feature"], g["tier"]), []))
            successes = int(g["successes"] or 0)
            out.append({
                "feature": g["feature"], "tier": g["tier"], "calls": int(g["calls"]),
                "tokens_in": int(g["tokens_in"] or 0), "tokens_out": int(g["tokens_out"] or 0),
                "cost_usd": float(g["cost_usd"] or 0.0),
                "escalation_rate": (int(g["escalated"] or 0) / int(g["calls"])) if g["calls"] else 0.0,
                "latency_ms_p50": _pct(values, 50), "latency_ms_p95": _pct(values, 95),
                "successes": successes, "failures": int(g["failures"] or 0),
                "cost_per_success_usd": (float(g["cost_usd"] or 0.0) / successes) if successes else None,
                "shadowed": int(g["shadowed"] or 0),
                "shadow_agreement": (int(g["shadow_agreed"] or 0) / int(g["shadowed"])) if g["shadowed"] else None,
            })
        total_calls = sum(g["calls"] for g in out)
        return {"groups": sorted(out, key=lambda g: (str(g["feature"]), g["tier"])),
                "calls": total_calls, "cost_usd": sum(g["cost_usd"] for g in out),
                "cost_per_1000_calls_usd": (1000 * sum(g["cost_usd"] for g in out) / total_calls) if total_calls else 0}


def timeseries(rows: list[dict[str, Any]], since: float, until: float, buckets: int = 24) -> dict[str, Any]:
    """Cost and calls per tier in ``buckets`` equal time slices of [since, until)."""
    width = max(1e-9, (until - since) / buckets)
    tiers = sorted({r["tier"] for r in rows})
    cost = {t: [0.0] * buckets for t in tiers}
    count = {t: [0] * buckets for t in tiers}
    for r in rows:
        i = min(buckets - 1, max(0, int((r["ts"] - since) / width)))
        cost[r["tier"]][i] += r["cost_usd"] or 0.0
        count[r["tier"]][i] += 1
    return {"since": since, "until": until, "bucket_seconds": width, "tiers": tiers, "cost": cost, "calls": count}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]
