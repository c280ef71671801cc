"""The cascade loop (``run_policy``), pure: scripted step outputs, no tiers."""

from __future__ import annotations

import numpy as np
import pytest

from litegate.errors import InvalidRequest, SchemaViolation, TierDown
from litegate.ledger.pricing import Usage
from litegate.tasks.base import TaskOutput
from litegate.tasks.cascade import HUMAN_REVIEW, Step, TierResults, choose_policy, run_policy


def out(tier: str, confidence: float, cost: float = 1.0, tokens: int = 10, **result) -> TaskOutput:
    return TaskOutput(result=dict(result), confidence=confidence, tier=tier, model=tier,
                      usage=Usage(prompt_tokens=tokens, completion_tokens=1), cost_usd=cost)


def scripted(answers: dict[str, object]):
    calls: list[str] = []

    def attempt(tier: str):
        calls.append(tier)
        a = answers[tier]
        if isinstance(a, Exception):
            raise a
        return a
    return attempt, calls


def test_confident_first_tier_answers_alone() -> None:
    attempt, calls = scripted({"nano": out("nano", 0.9), "lite": out("lite", 0.99)})
    done = run_policy([Step("nano", 0.8, escalate=True), Step("lite", 0.5)], attempt)
    assert (done.outcome, done.output.tier, done.escalated_from, calls) == ("answered", "nano", None, ["nano"])


def test_unsure_first_tier_escalates_and_costs_add_up() -> None:
    attempt, calls = scripted({"nano": out("nano", 0.3, cost=1.0), "lite": out("lite", 0.9, cost=2.0)})
    done = run_policy([Step("nano", 0.8, escalate=True), Step("lite", 0.5)], attempt)
    assert (done.outcome, done.output.tier, done.escalated_from) == ("answered", "lite", "nano")
    assert done.output.cost_usd == 3.0 and done.output.usage.prompt_tokens == 20


def test_unsure_without_escalation_goes_to_human_review() -> None:
    attempt, calls = scripted({"nano": out("nano", 0.3), "lite": out("lite", 0.9)})
    done = run_policy([Step("nano", 0.8, escalate=False), Step("lite", 0.5)], attempt)
    assert (done.outcome, done.output.tier, calls) == (HUMAN_REVIEW, "nano", ["nano"])


def test_unsure_last_tier_goes_to_human_review() -> None:
    attempt, _ = scripted({"nano": out("nano", 0.3), "lite": out("lite", 0.4)})
    done = run_policy([Step("nano", 0.8, escalate=True), Step("lite", 0.5)], attempt)
    assert (done.outcome, done.output.tier, done.escalated_from) == (HUMAN_REVIEW, "lite", "nano")


def test_use_stronger_model_route_escalates_even_when_confident() -> None:
    attempt, calls = scripted({"lite": out("lite", 0.99, route="use_stronger_model"),
                               "pro": out("pro", 0.7, route="billing")})
    done = run_policy([Step("lite", 0.0, escalate=False), Step("pro", 0.0)], attempt)
    assert (done.output.tier, done.outcome, calls) == ("pro", "answered", ["lite", "pro"])


def test_schema_violation_escalates_to_the_next_tier() -> None:
    attempt, _ = scripted({"remote": SchemaViolation("bad"), "lite": out("lite", 0.6)})
    done = run_policy([Step("remote", 0.0, escalate=True), Step("lite", 0.0)], attempt)
    assert (done.output.tier, done.escalated_from, done.output.fallback_from) == ("lite", "remote", None)


def test_down_tier_is_skipped_and_named() -> None:
    attempt, _ = scripted({"remote": TierDown("remote", "timeout"), "lite": out("lite", 0.6)})
    done = run_policy([Step("remote", 0.0, escalate=True), Step("lite", 0.0)], attempt)
    assert (done.output.tier, done.outcome) == ("lite", "answered")
    assert (done.output.fallback_from, done.output.fallback_reason) == ("remote", "timeout")


def test_down_escalation_target_leaves_the_answer_for_review() -> None:
    attempt, _ = scripted({"lite": out("lite", 0.2), "remote": TierDown("remote", "circuit open")})
    done = run_policy([Step("lite", 0.5, escalate=True), Step("remote", 0.0)], attempt)
    assert (done.output.tier, done.outcome, done.output.fallback_from) == ("lite", HUMAN_REVIEW, "remote")


def test_only_tier_down_raises() -> None:
    attempt, _ = scripted({"remote": TierDown("remote", "refused")})
    with pytest.raises(TierDown):
        run_policy([Step("remote")], attempt)


def test_calibration_never_escalates_to_a_worse_tier() -> None:
    conf = np.array([0.9] * 50 + [0.2] * 50)
    first = TierResults("nano", conf, np.array([1.0] * 50 + [0.6] * 50), np.full(100, 1e-6))
    worse = TierResults("lite", np.full(100, 0.9), np.array([1.0] * 50 + [0.3] * 50), np.full(100, 1e-4))
    policy = choose_policy("classify", [first, worse], target_accuracy=0.95)
    assert [s.tier for s in policy.steps] == ["nano"] and policy.steps[0].escalate is False
    assert policy.expected["human_review_rate"] == 0.5


def test_calibration_escalates_where_the_next_tier_is_better() -> None:
    conf = np.array([0.9] * 50 + [0.2] * 50)
    first = TierResults("nano", conf, np.array([1.0] * 50 + [0.2] * 50), np.full(100, 1e-6))
    better = TierResults("pro", np.full(100, 0.9), np.array([1.0] * 100), np.full(100, 1e-4))
    policy = choose_policy("classify", [first, better], target_accuracy=0.95)
    assert [s.tier for s in policy.steps] == ["nano", "pro"] and policy.steps[0].escalate
    assert policy.expected["accuracy_on_answered"] == 1.0 and policy.expected["escalation_rate"] == 0.5


def test_calibrated_cascade_is_never_below_the_best_single_tier() -> None:
    # nano is right on 60%, lite on 80%: a low target must not settle for nano alone
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200)
    nano = TierResults("nano", conf, (rng.uniform(0, 1, 200) < 0.6).astype(float), np.full(200, 1e-6))
    lite = TierResults("lite", np.full(200, 0.9), (rng.uniform(0, 1, 200) < 0.8).astype(float), np.full(200, 1e-4))
    policy = choose_policy("extract", [nano, lite], target_accuracy=0.5)
    assert policy.expected["accuracy_on_answered"] >= lite.correct.mean() - 1e-9
    assert policy.steps[0].escalate and json_safe(policy.to_json())


def json_safe(text: str) -> bool:
    import json

    json.loads(text)  # no Infinity in a written policy
    return "Infinity" not in text


# -- choosing a policy from labeled results (pure: no model) ------------------------------


def synthetic(first_ok_when_confident: bool, second_better_on_low: bool) -> list[TierResults]:
    rng = np.random.default_rng(0)
    n = 400
    conf1 = rng.uniform(0, 1, n)
    ok1 = (rng.uniform(0, 1, n) < conf1).astype(float)  # calibrated first tier
    low = conf1 < 0.5
    ok2 = np.where(low, float(second_better_on_low), ok1)
    conf2 = np.where(ok2 > 0, 0.9, 0.2)
    cost1, cost2 = np.full(n, 1e-6), np.full(n, 1e-4)
    return [TierResults("nano", conf1, ok1, cost1), TierResults("lite", conf2, ok2, cost2)]


def test_escalates_only_when_the_next_tier_is_better_there() -> None:
    better = choose_policy("classify", synthetic(True, True), target_accuracy=0.9)
    assert better.steps[0].escalate and better.steps[1].tier == "lite"
    assert better.expected["accuracy_on_answered"] >= 0.9
    worse = choose_policy("classify", synthetic(True, False), target_accuracy=0.9)
    assert not worse.steps[0].escalate and len(worse.steps) == 1  # no escalation: human_review instead
    assert worse.expected["human_review_rate"] > 0 and worse.expected["escalation_rate"] == 0


def test_max_escalation_is_respected() -> None:
    policy = choose_policy("classify", synthetic(True, True), max_escalation=0.15)
    assert policy.expected["escalation_rate"] <= 0.15


def test_unreachable_target_is_a_clear_error() -> None:
    results = synthetic(True, False)
    results[0].correct[:] = 0

    with pytest.raises(InvalidRequest, match="no thresholds reach"):
        choose_policy("classify", results[:1], target_accuracy=0.99)
