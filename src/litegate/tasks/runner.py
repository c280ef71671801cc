"""Runs a task on a tier and wraps the answer: id, confidence, tier, usage, latency."""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litegate.cascade import CascadePolicy, Step
from litegate.engine import LlamaEngine, ModelRegistry
from litegate.errors import InvalidRequest, LitegateError, NotFound
from litegate.ledger import Prices
from litegate.nano import ClassifierStore
from litegate.tasks.request import TaskRequest
from litegate.tasks.scoring import LabelScorer
from litegate.tiers import SchemaViolation, TierConfig, TierDown, apply_prices, default_tiers, make_tier

log = logging.getLogger("litegate.tasks")


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
    cost_usd: float = 0.0
    fallback_from: str | None = None
    fallback_reason: str | None = None


class TaskRunner:
    """Owns what tasks need: the tiers (LLM registry, remote clients, nano classifiers), the
    cascade policies and cached label scorers."""

    def __init__(self, registry: ModelRegistry, store: ClassifierStore, lite_model: str = "lite",
                 accountant: Any = None, policies: Any = None, tiers: list[TierConfig] | None = None):
        self.registry = registry
        self.store = store
        self.lite_model = lite_model
        self.accountant = accountant  # records every call in the ledger when set
        self.policies = policies  # cascade policies (litegate.cascade.PolicyStore) for tier "auto"
        configs = tiers or default_tiers(lite_model, "pro" in registry.names())
        self.order = [c.name for c in configs]  # the cascade order
        self.tier_configs = {c.name: c for c in configs}
        # the built-in tiers stay addressable by name
        self.tier_configs.setdefault("nano", TierConfig("nano", "nano", usd_per_hour=0.05))
        self.tier_configs.setdefault("lite", TierConfig("lite", "local", model=lite_model))
        if "pro" in registry.names():
            self.tier_configs.setdefault("pro", TierConfig("pro", "local", model="pro"))
        for cfg in self.tier_configs.values():
            if cfg.kind == "local" and cfg.model:
                registry.add(cfg.model)
        # one price table: the ledger's when there is one (it also prices chat calls)
        self.prices = accountant.prices if accountant is not None else Prices()
        apply_prices(self.prices, self.tier_configs.values())
        self._tiers: dict[str, Any] = {}
        self._scorers: dict[tuple[str, tuple[str, ...]], LabelScorer] = {}
        self._lock = threading.Lock()

    # -- tiers ------------------------------------------------------------------------------

    def is_nano(self, tier: str) -> bool:
        cfg = self.tier_configs.get(tier)
        return cfg is not None and cfg.kind == "nano"

    def nano_tier(self) -> TierConfig:
        return next((self.tier_configs[n] for n in self.order if self.tier_configs[n].kind == "nano"),
                    self.tier_configs["nano"])

    def llm_tiers(self) -> list[str]:
        return [n for n in self.order if self.tier_configs[n].kind != "nano"]

    def llm(self, tier: str) -> Any:
        """The LLM tier named ``tier`` ("auto": the first in cascade order): a LocalTier or a
        RemoteTier, both with ``chat`` and ``label_scores``."""
        if tier == "auto":
            names = self.llm_tiers()
            if not names:
                raise TierUnavailable("no LLM tier is configured", param="tier", code="tier_unavailable")
            tier = names[0]
        cfg = self.tier_configs.get(tier)
        if cfg is None:
            if tier == "pro":
                raise TierUnavailable("the pro tier is not installed here; install it with pip install -e '.[pro]'",
                                      param="tier", code="tier_unavailable")
            raise TierUnavailable(f"there is no tier {tier!r}; tiers: {', '.join(self.tier_configs)}",
                                  param="tier", code="tier_unavailable")
        if cfg.kind == "nano":
            raise TierUnavailable(f"the {tier} tier (nano) cannot run this task; use an LLM tier such as "
                                  f"{', '.join(self.llm_tiers()) or 'lite'}", param="tier", code="tier_unavailable")
        with self._lock:
            obj = self._tiers.get(tier)
            if obj is None:
                obj = self._tiers[tier] = make_tier(cfg, self)
        return obj

    def describe_tiers(self) -> list[dict[str, Any]]:
        """The tiers in cascade order (then the other addressable ones), with circuit states."""
        names = self.order + [n for n in self.tier_configs if n not in self.order]
        out = []
        for name in names:
            cfg = self.tier_configs[name]
            item: dict[str, Any] = {"name": name, "kind": cfg.kind, "in_cascade": name in self.order}
            if cfg.model:
                item["model"] = cfg.model
            obj = self._tiers.get(name)
            if obj is not None and hasattr(obj, "breaker"):
                item["circuit"] = obj.breaker.state
            out.append(item)
        return out

    def default_policy(self, task: str, req: TaskRequest) -> CascadePolicy:
        """No calibrated policy: the first tier that can do the task answers; the next tiers
        only see a request on a clear signal (a use_stronger_model route, a schema violation)."""
        tiers = self.llm_tiers()
        nano_first = (task == "classify" and (req.classifier or self.nano_tier().classifier)) or task == "rank"
        if nano_first:
            tiers = [self.nano_tier().name] + ([] if task == "rank" else tiers)
        if not tiers:
            raise TierUnavailable(f"no configured tier can run {task}", param="tier", code="tier_unavailable")
        return CascadePolicy(task=task, steps=[Step(t, 0.0, escalate=True) for t in tiers])

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

    def _step(self, fn: Callable[..., TaskOutput], req: TaskRequest, tier: str) -> TaskOutput:
        """Run one tier, falling back to the tier's ``fallback`` when it is down; the output
        carries its cost."""
        started = time.perf_counter()
        try:
            out = fn(self, req.model_copy(update={"tier": tier}))
        except TierDown as e:
            cfg = self.tier_configs.get(tier)
            if cfg is None or not cfg.fallback:
                raise
            log.warning("%s; falling back to %s", e.message, cfg.fallback)
            out = self._step(fn, req, cfg.fallback)
            out.fallback_from, out.fallback_reason = tier, e.reason
            return out
        seconds = time.perf_counter() - started
        out.cost_usd += self.prices.cost(out.tier, out.usage.prompt_tokens, out.usage.completion_tokens, seconds)
        return out

    def _cascade(self, fn: Callable[..., TaskOutput], req: TaskRequest, policy: Any) -> tuple[TaskOutput, str | None, str]:
        """Run the policy's tiers in order; returns (output, escalated_from, outcome).

        A tier that is down (and has no ``fallback`` of its own) is skipped for the next one;
        when it was the last, the answer so far goes to human review, saying which tier was
        down."""
        usage, cost = Usage(), 0.0
        out: TaskOutput | None = None
        at = 0  # the step whose output ``out`` is
        down: tuple[str, str] | None = None
        steps = policy.steps

        def done(outcome: str) -> tuple[TaskOutput, str | None, str]:
            assert out is not None
            if down is not None and out.fallback_from is None:
                out.fallback_from, out.fallback_reason = down
            return out, (steps[0].tier if at else None), outcome

        for i, step in enumerate(steps):
            last = i + 1 >= len(steps)
            try:
                step_out = self._step(fn, req, step.tier)
            except SchemaViolation:
                if last and out is None:
                    raise
                if last:
                    return done("human_review")
                continue  # a reply that breaks the schema is a clear signal to escalate
            except TierDown as e:
                down = down or (step.tier, e.reason)
                if last and out is None:
                    raise
                if last:
                    return done("human_review")
                continue
            out, at = step_out, i
            usage.prompt_tokens += out.usage.prompt_tokens
            usage.completion_tokens += out.usage.completion_tokens
            usage.cached_tokens += out.usage.cached_tokens
            out.usage = usage
            cost += out.cost_usd
            out.cost_usd = cost
            wants_stronger = out.result.get("route") == "use_stronger_model"
            if out.confidence >= step.threshold and not wants_stronger:
                return done("answered")
            if not (step.escalate or wants_stronger) or last:
                return done("human_review")
        return done("human_review")

    def run(self, task: str, request: TaskRequest | dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        from litegate.tasks import TASKS

        fn: Callable[[TaskRunner, TaskRequest], TaskOutput] | None = TASKS.get(task)
        if fn is None:
            raise UnknownTask(f"unknown task {task!r}; tasks: {', '.join(TASKS)}", param="task",
                              code="unknown_task")
        req = request if isinstance(request, TaskRequest) else TaskRequest.model_validate(request)
        started = time.perf_counter()
        policy = None
        if req.tier == "auto":
            policy = self.policies.get(task, req.feature) if self.policies is not None else None
            cascade = policy or self.default_policy(task, req)
        else:
            cascade = CascadePolicy(task=task, steps=[Step(req.tier)])
        out, escalated_from, outcome = self._cascade(fn, req, cascade)
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
            "cost_usd": round(out.cost_usd, 9),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if out.fallback_from:
            result["fallback_from"], result["fallback_reason"] = out.fallback_from, out.fallback_reason
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
            other = self._step(fn, req, tier)
        except LitegateError:
            return
        keys = ("label", "labels", "route")
        agreed = all(other.result.get(k) == result.get(k) for k in keys if k in result)
        self.accountant.shadow(result["id"], tier, agreed)
