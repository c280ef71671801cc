"""Runs a task on a tier and wraps the answer: id, confidence, tier, usage, latency."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litegate.engine import LlamaEngine, ModelRegistry
from litegate.errors import InvalidRequest, LitegateError, NotFound
from litegate.nano import ClassifierStore
from litegate.tasks.request import TaskRequest
from litegate.tasks.scoring import LabelScorer


class UnknownTask(NotFound):
    """The task name is not one of TASKS."""


class TierUnavailable(InvalidRequest):
    """The requested tier cannot run here (not installed, or cannot do this task)."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def add(self, result: dict[str, Any]) -> None:
        u = result.get("usage") or {}
        self.prompt_tokens += int(u.get("prompt_tokens", 0))
        self.completion_tokens += int(u.get("completion_tokens", 0))
        self.cached_tokens += int((u.get("prompt_tokens_details") or {}).get("cached_tokens", 0))


@dataclass
class TaskOutput:
    """What a task function returns; the runner adds the envelope."""

    result: dict[str, Any]
    confidence: float
    tier: str
    model: str
    usage: Usage = field(default_factory=Usage)


class TaskRunner:
    """Owns what tasks need: the LLM registry, the nano classifiers, cached label scorers."""

    def __init__(self, registry: ModelRegistry, store: ClassifierStore, lite_model: str = "lite",
                 accountant: Any = None, policies: Any = None):
        self.registry = registry
        self.store = store
        self.lite_model = lite_model
        self.accountant = accountant  # records every call in the ledger when set
        self.policies = policies  # cascade policies (litegate.cascade.PolicyStore) for tier "auto"
        self._scorers: dict[tuple[str, tuple[str, ...]], LabelScorer] = {}
        self._lock = threading.Lock()

    # -- tiers ------------------------------------------------------------------------------

    def llm(self, tier: str) -> tuple[str, LlamaEngine]:
        """(model name, engine) for an LLM tier ("auto" and "lite" mean the lite model)."""
        if tier in ("auto", "lite"):
            return self.lite_model, self.registry.engine(self.lite_model)
        if tier == "pro":
            if "pro" not in self.registry.names():
                raise TierUnavailable("the pro tier is not installed here; install it with pip install -e '.[pro]'",
                                      param="tier", code="tier_unavailable")
            return "pro", self.registry.engine("pro")
        raise TierUnavailable(f"the {tier} tier cannot run this task; use tier 'lite' or 'pro'", param="tier",
                              code="tier_unavailable")

    def scorer(self, model: str, engine: LlamaEngine, labels: list[str]) -> LabelScorer:
        key = (model, tuple(labels))
        with self._lock:
            scorer = self._scorers.get(key)
        if scorer is None:
            scorer = LabelScorer(engine, labels)
            with self._lock:
                if len(self._scorers) > 256:
                    self._scorers.clear()
                self._scorers[key] = scorer
        return scorer

    # -- running ----------------------------------------------------------------------------

    def _cascade(self, fn: Callable[..., TaskOutput], req: TaskRequest, policy: Any) -> tuple[TaskOutput, str | None, str]:
        """Run the policy's tiers in order; returns (output, escalated_from, outcome)."""
        usage = Usage()
        out: TaskOutput | None = None
        steps = policy.steps
        for i, step in enumerate(steps):
            out = fn(self, req.model_copy(update={"tier": step.tier}))
            usage.prompt_tokens += out.usage.prompt_tokens
            usage.completion_tokens += out.usage.completion_tokens
            usage.cached_tokens += out.usage.cached_tokens
            out.usage = usage
            wants_stronger = out.result.get("route") == "use_stronger_model"
            if out.confidence >= step.threshold and not wants_stronger:
                return out, (steps[0].tier if i else None), "answered"
            if not (step.escalate or wants_stronger) or i + 1 >= len(steps):
                return out, (steps[0].tier if i else None), "human_review"
        assert out is not None
        return out, steps[0].tier, "human_review"

    def run(self, task: str, request: TaskRequest | dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        from litegate.tasks import TASKS

        fn: Callable[[TaskRunner, TaskRequest], TaskOutput] | None = TASKS.get(task)
        if fn is None:
            raise UnknownTask(f"unknown task {task!r}; tasks: {', '.join(TASKS)}", param="task",
                              code="unknown_task")
        req = request if isinstance(request, TaskRequest) else TaskRequest.model_validate(request)
        started = time.perf_counter()
        policy = self.policies.get(task, req.feature) if self.policies is not None and req.tier == "auto" else None
        escalated_from, outcome = None, "answered"
        if policy is None:
            out = fn(self, req)
        else:
            out, escalated_from, outcome = self._cascade(fn, req, policy)
        result = {
            "id": "task_" + secrets.token_hex(12),
            "task": task,
            **out.result,
            "confidence": round(float(out.confidence), 6),
            "tier": out.tier,
            "model": out.model,
            "escalated": escalated_from is not None,
            "escalated_from": escalated_from,
            "outcome": outcome,
            "feature": req.feature,
            "usage": {"prompt_tokens": out.usage.prompt_tokens, "completion_tokens": out.usage.completion_tokens,
                      "cached_tokens": out.usage.cached_tokens},
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if self.accountant is not None:
            self.accountant.task(result, api_key=api_key, budget=policy.max_escalation_rate if policy else None)
            if policy is not None and policy.shadow is not None and outcome == "answered" \
                    and policy.shadow.tier != result["tier"] and random.random() < policy.shadow.fraction:
                threading.Thread(target=self._shadow, args=(fn, req, policy.shadow.tier, result),
                                 name="shadow", daemon=True).start()
        return result

    def _shadow(self, fn: Callable[..., TaskOutput], req: TaskRequest, tier: str, result: dict[str, Any]) -> None:
        """Run the same request on a stronger tier and record whether it agreed."""
        try:
            other = fn(self, req.model_copy(update={"tier": tier}))
        except LitegateError:
            return
        keys = ("label", "labels", "route")
        agreed = all(other.result.get(k) == result.get(k) for k in keys if k in result)
        self.accountant.shadow(result["id"], tier, agreed)
