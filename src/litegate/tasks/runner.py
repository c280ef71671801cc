"""Runs a declared task through a cascade of tiers and wraps the answer: id, confidence,
tier, usage, cost, latency, outcome.

Layered like an HTTP client's send: ``run`` (validate, pick the policy, envelope, observers)
-> ``run_policy`` (the cascade loop, pure) -> ``step`` (one tier, its fallback when down, its
price) -> the task function on the tier. Accounting and shadowing are observers of a finished
call; nothing below calls back up.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from litegate.documents import as_prompt
from litegate.errors import InvalidRequest, LitegateError, TierUnavailable, UnknownTask
from litegate.tasks.base import MAX_TEXT_CHARS, TaskContext, TaskOutput, TaskRequest, TaskSpec
from litegate.tasks.cascade import CascadePolicy, Step, run_policy
from litegate.tasks.registry import TASKS
from litegate.tiers.base import Tier
from litegate.tiers.fallback import call_with_fallback

log = logging.getLogger("litegate.tasks")


@dataclass
class FinishedTask:
    """What observers see once a task call has its answer."""

    spec: TaskSpec
    request: TaskRequest
    result: dict[str, Any]
    policy: CascadePolicy | None  # the calibrated policy followed, if any
    api_key: str | None
    context: TaskContext | None = None  # the request's view of the models (what it read and encoded)


Observer = Callable[[FinishedTask], None]
ShadowListener = Callable[[FinishedTask, str, TaskOutput], None]  # (the call, the shadow tier, its answer)


def validate(spec: TaskSpec, payload: TaskRequest | dict[str, Any]) -> TaskRequest:
    """A request for ``spec`` from a dict (or another task's request); pydantic problems become
    one InvalidRequest naming the field."""
    if isinstance(payload, spec.request):
        return payload
    if isinstance(payload, TaskRequest):
        payload = payload.model_dump(by_alias=True, exclude_unset=True)
    try:
        return spec.request.model_validate(payload)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        message = "is not a field of this task" if first.get("type") == "extra_forbidden" else first.get("msg")
        raise InvalidRequest(f"'{field}' {message} ({spec.name})" if field else f"{message} ({spec.name})",
                             param=field or None) from None


class TaskRunner:
    """Holds the tiers (cascade order first), the policies and the observers."""

    def __init__(self, tiers: dict[str, Any], order: list[str], context: TaskContext | None = None,
                 policies: Any = None, observers: list[Observer] | None = None):
        self.tiers = tiers
        self.order = order  # the default cascade order
        self.context = context or TaskContext()
        self.policies = policies  # calibrated policies (litegate.tasks.cascade.PolicyStore) for tier "auto"
        self.observers: list[Observer] = list(observers or [])

    # -- lookups ----------------------------------------------------------------------------

    def _read_files(self, req: TaskRequest) -> Any:
        """A request's ``files`` as text, before the request's own text (what was read, or None)."""
        files = getattr(req, "files", None)
        if not files:
            return None
        if self.context.attachments is None:
            raise InvalidRequest("files need the document layer, which this runner was built without", param="files")

        read = self.context.attachments.read([self.context.attachments.task_part(f, f"files.{i}")
                                             for i, f in enumerate(files)])
        text = "\n\n".join(t for t in (req.text, as_prompt(read.documents)) if t)  # type: ignore[attr-defined]
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"the text and the files' text come to {len(text):,} characters; the limit is "
                                 f"{MAX_TEXT_CHARS:,}: send fewer pages or a shorter file", param="files")
        req.text = text  # type: ignore[attr-defined]
        req._documents = read.documents  # type: ignore[attr-defined]
        return read

    def prefetch(self, task: str, bodies: list[Any]) -> None:
        """Work a block of requests can share, done once ahead of them (a batch job's next
        lines): classify requests that name a classifier and may run on a nano tier get their
        answers from one batched forward pass. Each request still runs its own path after."""
        if task != "classify":
            return
        nano = [t for t in self.tiers.values() if hasattr(t, "prefetch")]
        if not nano:
            return
        by_name: dict[str, list[str]] = {}
        spec = self.spec(task)
        for b in bodies:
            if (isinstance(b, dict) and isinstance(b.get("classifier"), str) and isinstance(b.get("text"), str)
                    and b.get("tier") in (None, "auto", *(t.name for t in nano)) and _valid(spec, b)):
                by_name.setdefault(b["classifier"], []).append(b["text"])
        for name, texts in by_name.items():
            try:
                nano[0].prefetch(name, texts)
            except LitegateError:  # an unknown classifier: each line gets its own error
                continue

    @staticmethod
    def names() -> list[str]:
        return list(TASKS)

    def spec(self, task: str) -> TaskSpec:
        spec = TASKS.get(task)
        if spec is None:
            raise UnknownTask(f"unknown task {task!r}; tasks: {', '.join(TASKS)}", param="task", code="unknown_task")
        return spec

    def tier(self, name: str) -> Tier:
        tier: Tier | None = self.tiers.get(name)
        if tier is None:
            if name == "pro":
                raise TierUnavailable("the pro tier is not installed here; install it with pip install -e '.[pro]'")
            raise TierUnavailable(f"there is no tier {name!r}; tiers: {', '.join(self.tiers)}")
        return tier

    def describe_tiers(self) -> list[dict[str, Any]]:
        """The tiers in cascade order, then the other addressable ones."""
        names = self.order + [n for n in self.tiers if n not in self.order]
        return [dict(self.tiers[n].describe(), in_cascade=n in self.order) for n in names]

    def default_policy(self, spec: TaskSpec, req: TaskRequest) -> CascadePolicy:
        """No calibrated policy: the first tier that can take the request answers; the next
        only see it on a clear signal (a use_stronger_model route, a schema violation, a tier
        that is down)."""
        tiers = [n for n in self.order if spec.can_run(self.tiers[n], req)]
        if not tiers:
            raise TierUnavailable(f"no configured tier can run {spec.name} for this request")
        return CascadePolicy(task=spec.name, steps=[Step(t, 0.0, escalate=True) for t in tiers])

    # -- running ----------------------------------------------------------------------------

    def step(self, spec: TaskSpec, req: TaskRequest, name: str, context: TaskContext | None = None) -> TaskOutput:
        """Run one tier, or its fallbacks while each is down (``tiers.fallback``); the output
        carries the price of the work of the tier that answered. ``context``: the request's
        view of the models (what it read and encoded), else the runner's."""

        def attempt(tier: Tier) -> TaskOutput:
            fn = spec.function_for(tier)
            if fn is None:
                able = [n for n in self.order if spec.function_for(self.tiers[n]) is not None]
                raise TierUnavailable(f"the {tier.name} tier ({tier.kind}) cannot run {spec.name}; use "
                                      f"{', '.join(able) or 'an LLM tier'}")
            started = time.perf_counter()
            out = fn(context or self.context, tier, req)
            out.cost_usd += tier.cost(out.usage, time.perf_counter() - started)
            return out

        out, fell = call_with_fallback(self.tier(name), attempt, self.tier)
        if fell is not None:
            out.fallback_from, out.fallback_reason = fell.tier, fell.reason
        return out

    def run(self, task: str, request: TaskRequest | dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        spec = self.spec(task)
        req = validate(spec, request)
        started = time.perf_counter()
        context = self.context.for_request()
        read = self._read_files(req)
        if spec.prepare is not None:
            spec.prepare(self.context, req, api_key)
        policy = None
        if req.tier == "auto":
            policy = self.policies.get(task, req.feature) if self.policies is not None else None
            # a calibrated policy's steps that cannot take this request are passed over (a
            # policy calibrated with an extractor says nothing about a request with bare fields)
            steps = [s for s in policy.steps if s.tier in self.tiers and spec.can_run(self.tiers[s.tier], req)] \
                if policy is not None else []
            if not steps:
                policy = None
                steps = self.default_policy(spec, req).steps
        else:
            self.tier(req.tier)
            steps = [Step(req.tier)]
        done = run_policy(steps, lambda name: self.step(spec, req, name, context))
        out = done.output
        result = {
            "id": "task_" + secrets.token_hex(12),
            "task": task,
            **out.result,
            "confidence": round(float(out.confidence), 6),
            "tier": out.tier,
            "model": out.model,
            "escalated": done.escalated_from is not None,
            "escalated_from": done.escalated_from,
            "outcome": done.outcome,
            "feature": req.feature,
            "usage": out.usage.as_dict(),
            "cost_usd": round(out.cost_usd, 9),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if out.fallback_from:
            result["fallback_from"], result["fallback_reason"] = out.fallback_from, out.fallback_reason
        if read is not None:
            result["documents"] = read.summary(with_text=bool(getattr(req, "document_text", False)))
            result["cost_usd"] = round(out.cost_usd + read.cost_usd, 9)
        finished = FinishedTask(spec, req, result, policy, api_key, context)
        for observe in self.observers:
            try:
                observe(finished)
            except Exception as e:  # noqa: BLE001 - an observer must not fail the user's call
                log.error("task observer failed: %s", e)
        return result


class Shadowing:
    """An observer: sends a policy's ``shadow.fraction`` of answered calls, in the background,
    to the shadow tier and records whether it agreed; ``listeners`` (the learner) also see the
    shadow tier's answer."""

    def __init__(self, runner: TaskRunner, accountant: Any, sample: Callable[[], float] = random.random,
                 background: bool = True, listeners: list[ShadowListener] | None = None):
        self.runner = runner
        self.accountant = accountant
        self.sample = sample
        self.background = background
        self.listeners = list(listeners or [])

    def __call__(self, done: FinishedTask) -> None:
        shadow = done.policy.shadow if done.policy is not None else None
        if shadow is None or done.result["outcome"] != "answered" or shadow.tier == done.result["tier"]:
            return
        if self.sample() >= shadow.fraction:
            return
        if self.background:
            threading.Thread(target=self.compare, args=(done, shadow.tier), name="shadow", daemon=True).start()
        else:
            self.compare(done, shadow.tier)

    def compare(self, done: FinishedTask, tier: str) -> None:
        try:
            other = self.runner.step(done.spec, done.request, tier)
        except LitegateError:
            return
        self.accountant.shadow(done.result["id"], tier, done.spec.agree(other.result, done.result))
        for listen in self.listeners:
            try:
                listen(done, tier, other)
            except Exception as e:  # noqa: BLE001 - a listener must not break shadowing
                log.error("shadow listener failed: %s", e)


def accounting_observer(accountant: Any) -> Observer:
    """An observer that writes each finished task as a ledger row (and checks the escalation
    budget of a calibrated policy)."""

    def observe(done: FinishedTask) -> None:
        accountant.task(done.result, api_key=done.api_key,
                        budget=done.policy.max_escalation_rate if done.policy else None)

    return observe


def _valid(spec: TaskSpec, body: dict[str, Any]) -> bool:
    """Whether a request passes its task's checks (sizes, shapes): only those are worth work
    done ahead (a 31 MB text must fail on its own, not be encoded first)."""
    text = body.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return False
    try:
        validate(spec, body)
    except (LitegateError, ValueError):
        return False
    return True
