"""Prometheus metrics per tier and task, in a registry the app owns (no global state)."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from litegate.ledger.calls import CallRecord

MAX_FEATURE_LABELS = 100  # distinct feature values with their own series; later ones count as "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.total_cost_usd = 0.0  # everything this process has spent (litegate batch run's progress bar)
        self._total_lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.requests = Counter("litegate_requests", "Calls served", ["task", "tier", "status"],
                                registry=self.registry)
        self.latency = Histogram("litegate_request_latency_seconds", "Call latency", ["task", "tier"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("litegate_tokens", "Tokens processed", ["tier", "kind"], registry=self.registry)
        self.cost = Counter("litegate_cost_usd", "Estimated cost", ["feature", "tier"], registry=self.registry)
        self.escalations = Counter("litegate_escalations", "Calls escalated past their first tier",
                                   ["task", "from_tier", "to_tier"], registry=self.registry)
        self.shadow = Counter("litegate_shadow_calls", "Shadow calls by tier and agreement", ["tier", "agreed"],
                              registry=self.registry)
        self.budget_exceeded = Gauge("litegate_escalation_budget_exceeded",
                                     "1 while a feature escalates more than its budget", ["task", "feature"],
                                     registry=self.registry)
        self.feedback = Counter("litegate_feedback", "Outcomes reported through /v1/feedback", ["outcome"],
                                registry=self.registry)
        self._features: set[str] = set()

    def watch_documents(self, pool: Any) -> None:
        """The document pool's queue (litegate.documents.pool), read at each scrape."""
        for name, doc, read in (
                ("litegate_documents_waiting", "Files waiting for a document worker", lambda: pool.waiting),
                ("litegate_documents_running", "Files being read (OCR, speech, rendering)", lambda: pool.running),
                ("litegate_documents_queue_limit", "Files that may wait before new ones get a 503",
                 lambda: pool.queue),
                ("litegate_documents_refused", "Files refused because the document queue was full",
                 lambda: pool.refused)):
            Gauge(name, doc, registry=self.registry).set_function(read)

    def feature_label(self, feature: str | None) -> str:
        """A feature's label value: the first MAX_FEATURE_LABELS distinct ones keep their name
        (the ledger keeps every name), so the metrics cannot grow without bound."""
        if not feature:
            return ""
        if feature in self._features:
            return feature
        if len(self._features) < MAX_FEATURE_LABELS:
            self._features.add(feature)
            return feature
        return "other"

    def observe(self, rec: CallRecord) -> None:
        self.requests.labels(rec.task, rec.tier, str(rec.status)).inc()
        if rec.latency_ms is not None:
            self.latency.labels(rec.task, rec.tier).observe(rec.latency_ms / 1000.0)
        for kind, n in (("in", rec.tokens_in), ("out", rec.tokens_out), ("cached", rec.tokens_cached)):
            if n:
                self.tokens.labels(rec.tier, kind).inc(n)
        if rec.cost_usd:
            self.cost.labels(self.feature_label(rec.feature), rec.tier).inc(rec.cost_usd)
            with self._total_lock:
                self.total_cost_usd += rec.cost_usd
        if rec.escalated and rec.escalated_from:
            self.escalations.labels(rec.task, rec.escalated_from, rec.tier).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
