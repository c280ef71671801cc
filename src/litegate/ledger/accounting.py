"""Turns every finished call into a ledger row and metric updates. An observer: the chat
service and the task runner hand it what happened (priced by the tier that answered); it never
calls back into them."""

from __future__ import annotations

import logging
from typing import Any

from litegate.errors import FeedbackNotFound, InvalidRequest
from litegate.ledger.calls import OUTCOMES, CallRecord, Ledger
from litegate.ledger.metrics import Metrics
from litegate.ledger.writer import SerialWorker

log = logging.getLogger("litegate.ledger.accounting")


class Accountant:
    """Rows are written by a background thread, so a database round trip never sits on a
    request's path; ``flush`` waits until everything queued so far is written."""

    def __init__(self, ledger: Ledger, metrics: Metrics | None = None):
        self.ledger = ledger
        self.metrics = metrics or Metrics()
        self.alarms: dict[tuple[str, str | None], dict[str, Any]] = {}
        # updates (shadow agreement, budget checks) run after the row's insert: one queue, in order
        self._writer = SerialWorker("ledger write", log)
        self.spend_listeners: list[Any] = []  # (api_key fingerprint, cost) of every call, as it is recorded

    def flush(self, timeout: float = 10.0) -> None:
        self._writer.flush(timeout)

    def _write(self, rec: CallRecord) -> None:
        self.metrics.observe(rec)
        for listener in self.spend_listeners:
            listener(rec.api_key, rec.cost_usd or 0.0)
        self._writer.submit(lambda: self.ledger.record(rec))

    def shadow(self, call_id: str, tier: str, agreed: bool) -> None:
        self.metrics.shadow.labels(tier, str(agreed).lower()).inc()
        self._writer.submit(lambda: self.ledger.set_shadow(call_id, tier, agreed))

    def check_budget(self, task: str, feature: str | None, budget: float) -> None:
        """Raise (or clear) the "pro creep" alarm for a feature whose escalation rate over its
        recent calls exceeds its budget."""
        rate, n = self.ledger.escalation_rate(feature, task)
        key = (task, feature)
        if n >= 20 and rate > budget:
            if key not in self.alarms:
                log.warning("escalation budget exceeded: %s/%s escalates %.1f%% of its last %d calls (budget %.1f%%)",
                            task, feature, 100 * rate, n, 100 * budget)
            self.alarms[key] = {"task": task, "feature": feature, "escalation_rate": rate, "budget": budget,
                                "calls": n}
        else:
            self.alarms.pop(key, None)
        label = self.metrics.feature_label(feature)
        self.metrics.budget_exceeded.labels(task, label).set(1 if key in self.alarms else 0)

    def task(self, result: dict[str, Any], api_key: str | None = None, budget: float | None = None) -> None:
        """A task response as a row; its ``cost_usd`` was priced per tier step by the runner."""
        usage = result.get("usage") or {}
        tier = result["tier"]
        self._write(CallRecord(
            id=result["id"], task=result["task"], tier=tier, model=result.get("model"),
            feature=result.get("feature"), api_key=api_key,
            tokens_in=int(usage.get("prompt_tokens", 0)), tokens_out=int(usage.get("completion_tokens", 0)),
            tokens_cached=int(usage.get("cached_tokens", 0)), latency_ms=result.get("latency_ms"),
            cost_usd=result["cost_usd"],
            confidence=result.get("confidence"), escalated=bool(result.get("escalated")),
            escalated_from=result.get("escalated_from"),
            outcome=None))
        docs = result.get("documents")
        if docs:
            self.documents(result["id"], {"files": len(docs), "pages": sum(d["pages"] for d in docs),
                                          "audio_seconds": sum(d["seconds"] for d in docs),
                                          "ocr_ms": sum(d["ocr_ms"] for d in docs),
                                          "asr_ms": sum(d["asr_ms"] for d in docs)})
        if budget is not None:
            task, feature = result["task"], result.get("feature")
            self._writer.submit(lambda: self.check_budget(task, feature, budget))

    def chat(self, call_id: str, api: str, tier: str, model: str, usage: dict[str, Any] | None, latency_ms: float,
             cost_usd: float, feature: str | None = None, api_key: str | None = None, status: int = 200,
             engine_ms: float = 0.0) -> None:
        """A chat-shaped call (OpenAI, Gemini, Python API, CLI) as a row; ``api`` is the
        front end's kind of call (chat, completion, gemini, ...)."""
        usage = usage or {}
        self._write(CallRecord(id=call_id, task=api, tier=tier, model=model, feature=feature, api_key=api_key,
                               tokens_in=int(usage.get("prompt_tokens", 0) or 0),
                               tokens_out=int(usage.get("completion_tokens", 0) or 0),
                               tokens_cached=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
                                                 or 0),
                               latency_ms=latency_ms, status=status, cost_usd=cost_usd))
        if engine_ms > 0:
            self._writer.submit(lambda: self.ledger.record_engine_time(call_id, engine_ms))

    def documents(self, call_id: str, usage: dict[str, Any]) -> None:
        """What a call's files took to read (pages, audio seconds, OCR and speech time)."""
        self._writer.submit(lambda: self.ledger.record_documents(call_id, usage))

    def feedback(self, call_id: str, outcome: str) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise InvalidRequest(f"'outcome' must be one of {', '.join(OUTCOMES)}", param="outcome")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("'id' must be the id of an earlier response", param="id")
        self.flush()  # the call may still be on its way to the ledger
        if not self.ledger.set_outcome(call_id, outcome):
            raise FeedbackNotFound(f"no call with id {call_id!r} in the ledger", param="id", code="call_not_found")
        self.metrics.feedback.labels(outcome).inc()
        return {"id": call_id, "outcome": outcome}
