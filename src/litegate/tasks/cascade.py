"""Cascade policy: the cheapest confident tier answers; the uncertain escalate or go to a person.

A policy lists tiers in order, each with a confidence threshold and whether falling below it
escalates to the next tier or ends at ``human_review``. Escalation is only worth it where the
next tier is expected to be *more accurate on the items the first tier is unsure of* — a
pricier tier is not assumed better. ``calibrate`` measures exactly that on labeled data and
writes the thresholds; without a policy, the first tier answers everything (never escalate
without evidence).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from litegate.errors import InvalidRequest, SchemaViolation, TierDown

HUMAN_REVIEW = "human_review"


@dataclass
class Step:
    tier: str
    threshold: float = 0.0  # below this confidence the step does not answer
    escalate: bool = False  # below threshold: next tier (True) or human review (False)


@dataclass
class Shadow:
    """Also send ``fraction`` of answered calls, in the background, to ``tier``; the ledger
    records whether it agreed."""

    tier: str
    fraction: float = 0.05


@dataclass
class CascadePolicy:
    task: str
    steps: list[Step]
    feature: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    shadow: Shadow | None = None
    max_escalation_rate: float | None = None  # the escalation budget; exceeding it raises an alarm

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CascadePolicy:
        shadow = data.get("shadow")
        return cls(task=data["task"], feature=data.get("feature"), expected=data.get("expected", {}),
                   steps=[Step(**s) for s in data["steps"]], shadow=Shadow(**shadow) if shadow else None,
                   max_escalation_rate=data.get("max_escalation_rate"))


class StepOutput(Protocol):
    """What one tier's step gives the cascade loop (a TaskOutput)."""

    confidence: float
    usage: Any
    cost_usd: float
    fallback_from: str | None
    fallback_reason: str | None

    @property
    def wants_stronger(self) -> bool: ...


@dataclass
class CascadeOutcome:
    output: Any  # the answering step's output, its usage and cost summed over every step run
    escalated_from: str | None
    outcome: str  # "answered" or "human_review"


def run_policy(steps: list[Step], attempt: Callable[[str], Any]) -> CascadeOutcome:
    """Run the steps' tiers in order with ``attempt(tier)``: the first confident answer wins;
    below a step's threshold the call escalates (when the step allows it) or goes to human
    review. A reply that breaks the schema is a clear signal to escalate; a tier that is down
    (and has no ``fallback`` of its own) is skipped for the next one, and when it was the last,
    the answer so far goes to human review naming the down tier. Pure: no I/O of its own."""
    out: Any = None
    at = 0  # the step whose output ``out`` is
    down: tuple[str, str] | None = None
    usage, cost = None, 0.0

    def done(outcome: str) -> CascadeOutcome:
        if down is not None and out.fallback_from is None:
            out.fallback_from, out.fallback_reason = down
        return CascadeOutcome(out, steps[0].tier if at else None, outcome)

    for i, step in enumerate(steps):
        last = i + 1 >= len(steps)
        try:
            step_out = attempt(step.tier)
        except (SchemaViolation, TierDown) as e:
            if isinstance(e, TierDown):
                down = down or (step.tier, e.reason)
            if out is None and last:
                raise
            if last:
                return done(HUMAN_REVIEW)
            continue
        if usage is None:
            usage = step_out.usage
        else:
            usage.add(step_out.usage)
        cost += step_out.cost_usd
        out, at = step_out, i
        out.usage, out.cost_usd = usage, cost
        wants_stronger = out.wants_stronger
        if out.confidence >= step.threshold and not wants_stronger:
            return done("answered")
        if not (step.escalate or wants_stronger) or last:
            return done(HUMAN_REVIEW)
    return done(HUMAN_REVIEW)


class PolicyStore:
    """Policies under ``<home>/policies/<task>[--<feature>].json``."""

    def __init__(self, home: Path):
        self.dir = Path(home) / "policies"

    def _path(self, task: str, feature: str | None) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", feature) if feature else None
        return self.dir / (f"{task}--{safe}.json" if safe else f"{task}.json")

    def save(self, policy: CascadePolicy) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(policy.task, policy.feature)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(policy.to_json())
        tmp.replace(path)
        return path

    def get(self, task: str, feature: str | None) -> CascadePolicy | None:
        for path in ([self._path(task, feature)] if feature else []) + [self._path(task, None)]:
            if path.is_file():
                return CascadePolicy.from_dict(json.loads(path.read_text()))
        return None


@dataclass
class TierResults:
    """One tier's answers on a labeled set: confidence and correctness per item."""

    tier: str
    confidence: np.ndarray
    correct: np.ndarray
    cost_usd: np.ndarray


def _candidates(conf: np.ndarray) -> list[float]:
    qs = np.unique(np.quantile(conf, np.linspace(0, 0.95, 39)))
    return [0.0] + [float(q) for q in qs] + [float(np.inf)]  # inf: every item is below


def choose_policy(task: str, results: list[TierResults], target_accuracy: float | None = None,
                  max_escalation: float | None = None, feature: str | None = None) -> CascadePolicy:
    """Thresholds for a one- or two-tier cascade on measured results.

    With ``target_accuracy``: the cheapest policy (fewest human reviews, then least cost)
    whose accuracy on the items it answers meets the target. With ``max_escalation``: the
    policy with the most correct automated answers that escalates at most that share.
    Escalating is allowed only when the next tier is more accurate than the first on the
    items below the first tier's threshold. A policy is never less accurate on what it
    answers than the best single tier is on everything.
    """
    if target_accuracy is None and max_escalation is None:
        raise InvalidRequest("give --target-accuracy or --max-escalation")
    first = results[0]
    second = results[1] if len(results) > 1 else None
    n = len(first.correct)
    floor = max(float(r.correct.mean()) for r in results) - 1e-9
    best: tuple[tuple[float, ...], CascadePolicy] | None = None
    for t1 in _candidates(first.confidence):
        low = first.confidence < t1
        options: list[tuple[bool, float]] = [(False, 0.0)]
        if second is not None and low.any() and second.correct[low].mean() > first.correct[low].mean():
            options += [(True, t2) for t2 in _candidates(second.confidence[low])]
        for escalate, t2 in options:
            o = _outcome(first, second if escalate else None, low, t2)
            accuracy = o.correct / o.answered if o.answered else 0.0
            if accuracy < floor:
                continue
            if target_accuracy is not None:
                if accuracy < target_accuracy or (max_escalation is not None and o.escalation > max_escalation):
                    continue
                key: tuple[float, ...] = (o.human, o.cost)
            else:
                if o.escalation > max_escalation:  # type: ignore[operator]
                    continue
                key = (-o.correct, o.cost)
            steps = [Step(first.tier, threshold=min(t1, 1.01), escalate=escalate)]
            if escalate and second is not None:
                steps.append(Step(second.tier, threshold=t2, escalate=False))
            policy = CascadePolicy(task=task, feature=feature, steps=steps, expected={
                "items": n, "accuracy_on_answered": accuracy, "automated_correct_rate": o.correct / n,
                "escalation_rate": o.escalation, "human_review_rate": o.human,
                "cost_per_1000_usd": float(1000 * o.cost / n),
                "single_tier_accuracy": {r.tier: float(r.correct.mean()) for r in results}})
            if best is None or key < best[0]:
                best = (key, policy)
    if best is None:
        goal = f"an accuracy of {target_accuracy:.0%}" if target_accuracy is not None else "the escalation cap"
        raise InvalidRequest(f"no thresholds reach {goal} on the answered items while staying at least as "
                             f"accurate as the best single tier ({floor:.1%}); lower the target or improve the tiers")
    return best[1]


@dataclass(frozen=True)
class _Outcome:
    """What a cascade policy does on the measured items: correct and answered counts, the shares
    escalated and sent to people, and the cost."""

    correct: float
    answered: int
    escalation: float
    human: float
    cost: float


def _outcome(first: TierResults, second: TierResults | None, low: np.ndarray, t2: float) -> _Outcome:
    """The first tier answers where it is sure (not ``low``); with ``second``, the unsure items go
    to it and it answers those where its confidence reaches ``t2``; the rest go to people."""
    if second is None:
        answered = ~low
        return _Outcome(float((first.correct * answered).sum()), int(answered.sum()), 0.0, float(low.mean()),
                        float(first.cost_usd.sum()))
    ok2 = low & (second.confidence >= t2)
    correct = first.correct * ~low + second.correct * ok2
    return _Outcome(float(correct.sum()), int((~low | ok2).sum()), float(low.mean()), float((low & ~ok2).mean()),
                    float(first.cost_usd.sum() + second.cost_usd[low].sum()))
