"""The task runner over declared tasks and scripted tiers: policy defaults, capabilities,
fallback, pricing, observers (ledger, shadowing), request checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes import ProviderError, ScriptedProvider, ScriptedTier, completion, runtime

from litegate.errors import InvalidRequest, SchemaViolation, TierUnavailable, UnknownTask
from litegate.tasks import TASKS
from litegate.tasks.cascade import CascadePolicy, Shadow, Step
from litegate.tasks.runner import FinishedTask, Shadowing
from litegate.tiers import TIER_KINDS, TierConfig

LABELS = ["billing", "bug", "account"]


def step(token: str, alts: dict[str, float]) -> dict:
    return {"token": token, "logprob": math.log(alts[token]),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alts.items()]}


def labelling(answer: str, p: float = 0.8):
    """A provider that names ``answer`` with probability p and splits the rest."""
    def handler(body, schema):
        if "logprobs" not in body:
            return completion(json.dumps({"data": {}}))
        others = [lab for lab in LABELS if lab != answer]
        alts = {answer: p, **{o: (1 - p) / len(others) for o in others}}
        return completion(answer, prompt_tokens=50, completion_tokens=2, logprobs=[step(answer, alts)])
    return handler


@pytest.fixture()
def scripted(monkeypatch):
    monkeypatch.setitem(TIER_KINDS, "scripted", ScriptedTier)
    ScriptedTier.providers.clear()
    return ScriptedTier.providers


def make(tmp_path: Path, scripted, **tiers):
    """tiers: name -> (handler, TierConfig keyword arguments)."""
    configs = [TierConfig("nano", "nano")]
    for name, (handler, extra) in tiers.items():
        scripted[name] = ScriptedProvider(handler)
        configs.append(TierConfig(name, "scripted", model="m", **extra))
    rt = runtime(tmp_path, tiers=configs)
    for name in tiers:
        rt.tiers[name].resilience._sleep = lambda s: None
    return rt


def train(rt) -> None:
    examples = [{"text": t, "label": lab} for lab, texts in {
        "billing": ["charged twice on my card", "refund my payment", "invoice amount is wrong"],
        "bug": ["the app crashes on start", "button does nothing when clicked", "error 500 on save"],
        "account": ["reset my password", "change my email address", "delete my account please"]}.items()
        for t in texts]
    rt.classifiers.train("support", examples)


def test_scripted_tier_classifies_from_text_logprobs_and_prices_tokens(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug", 0.8), {"price_in_per_million": 1.0}))
    out = rt.tasks.run("classify", {"text": "it crashes", "labels": LABELS})
    assert (out["label"], out["tier"], out["outcome"]) == ("bug", "a", "answered")
    assert out["scores"]["bug"] == pytest.approx(0.8) and out["confidence"] == pytest.approx(0.8)
    assert out["cost_usd"] == pytest.approx(50 / 1e6)
    rt.close()


def test_default_cascade_uses_nano_only_when_a_classifier_is_named(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug"), {}))
    train(rt)
    spec = TASKS["classify"]
    with_clf = rt.tasks.default_policy(spec, spec.request(text="x", classifier="support"))
    without = rt.tasks.default_policy(spec, spec.request(text="x", labels=LABELS))
    assert [s.tier for s in with_clf.steps] == ["nano", "a"] and [s.tier for s in without.steps] == ["a"]
    out = rt.tasks.run("classify", {"text": "my card was charged twice", "classifier": "support"})
    assert (out["tier"], out["label"], out["model"]) == ("nano", "billing", "support@v1")
    assert set(out["scores"]) == set(LABELS) and sum(out["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    rt.close()


def test_a_tier_without_the_capability_is_refused_by_name(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug"), {}))
    with pytest.raises(TierUnavailable, match="nano tier \\(nano\\) cannot run summarize; use a"):
        rt.tasks.run("summarize", {"text": "long text", "tier": "nano"})
    with pytest.raises(TierUnavailable, match="no tier 'zeta'"):
        rt.tasks.run("classify", {"text": "x", "labels": LABELS, "tier": "zeta"})
    with pytest.raises(InvalidRequest, match="nano tier needs 'classifier'"):
        rt.tasks.run("classify", {"text": "x", "tier": "nano"})
    rt.close()


def test_request_checks_name_the_field_and_task(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug"), {}))
    with pytest.raises(UnknownTask):
        rt.tasks.run("dance", {"text": "x"})
    with pytest.raises(InvalidRequest, match="'routes' is not a field of this task \\(classify\\)"):
        rt.tasks.run("classify", {"text": "x", "routes": ["a"]})
    with pytest.raises(InvalidRequest, match="'text'"):
        rt.tasks.run("classify", {"text": "x" * 100_001, "labels": LABELS})
    with pytest.raises(InvalidRequest, match="'labels' names 'bug' more than once"):
        rt.tasks.run("classify", {"text": "x", "labels": ["bug", "bug"]})
    rt.close()


def test_a_down_tier_falls_back_to_its_fallback(tmp_path: Path, scripted) -> None:
    def down(body, schema):
        raise ProviderError(503)

    rt = make(tmp_path, scripted, a=(down, {"fallback": "b", "max_retries": 1}), b=(labelling("account"), {}))
    out = rt.tasks.run("classify", {"text": "reset password", "labels": LABELS, "tier": "a"})
    assert (out["tier"], out["fallback_from"], out["label"]) == ("b", "a", "account")
    assert "2 attempts" in out["fallback_reason"] and len(scripted["a"].calls) == 2
    rt.close()


def test_extract_through_a_remote_tier_is_schema_checked_and_grounded(tmp_path: Path, scripted) -> None:
    replies = iter(['{"order": "A-17", "email": "ann@example.com"}', '{"order": 17}'])
    rt = make(tmp_path, scripted, a=(lambda body, schema: completion(next(replies)), {}))
    request = {"text": "Order A-17 please, mail bob@example.com", "fields": {"order": "", "email": ""}, "tier": "a"}
    out = rt.tasks.run("extract", request)
    # a value that is not in the text is an invention: replaced by null with confidence 0
    assert out["data"] == {"order": "A-17", "email": None} and out["field_confidence"]["email"] == 0.0
    assert out["spans"]["order"] == [6, 10]
    with pytest.raises(SchemaViolation):
        rt.tasks.run("extract", request)
    rt.close()


def test_the_ledger_observer_writes_one_row_with_the_summed_cost(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug", 0.4), {"price_in_per_million": 1.0}),
              b=(labelling("bug", 0.9), {"price_in_per_million": 10.0}))
    rt.policies.save(CascadePolicy("classify", [Step("a", 0.5, escalate=True), Step("b", 0.5)]))
    out = rt.tasks.run("classify", {"text": "crash", "labels": LABELS, "feature": "triage"})
    assert (out["tier"], out["escalated_from"]) == ("b", "a")
    assert out["cost_usd"] == pytest.approx(50 * 1.0 / 1e6 + 50 * 10.0 / 1e6)
    rt.accountant.flush()
    row = rt.accountant.ledger.get(out["id"])
    assert (row["tier"], row["feature"], row["escalated"], row["escalated_from"]) == ("b", "triage", True, "a")
    assert row["cost_usd"] == pytest.approx(out["cost_usd"])
    rt.close()


def test_shadowing_records_agreement(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug"), {}), b=(labelling("billing"), {}))
    shadowing = Shadowing(rt.tasks, rt.accountant, sample=lambda: 0.0, background=False)
    rt.tasks.observers = [o for o in rt.tasks.observers if not isinstance(o, Shadowing)] + [shadowing]
    policy = CascadePolicy("classify", [Step("a")], shadow=Shadow("b", 0.5))
    rt.policies.save(policy)
    out = rt.tasks.run("classify", {"text": "crash", "labels": LABELS})
    rt.accountant.flush()
    row = rt.accountant.ledger.get(out["id"])
    assert (row["shadow_tier"], row["shadow_agreement"]) == ("b", False)
    # a sample above the fraction is not shadowed
    calls = len(scripted["b"].calls)
    Shadowing(rt.tasks, rt.accountant, sample=lambda: 0.9, background=False)(
        FinishedTask(TASKS["classify"], TASKS["classify"].request(text="x", labels=LABELS), out, policy, None))
    assert len(scripted["b"].calls) == calls
    rt.close()


def test_rank_runs_on_the_encoder_by_default_and_on_an_llm_by_name(tmp_path: Path, scripted) -> None:
    def yes_no(body, schema):
        relevant = "Passage: refund" in body["messages"][-1]["content"]
        p = 0.9 if relevant else 0.2
        tok = "Yes" if relevant else "No"
        return completion(tok, logprobs=[step(tok, {"Yes": p, "No": 1 - p})])

    rt = make(tmp_path, scripted, a=(yes_no, {}))
    request = {"query": "refund policy", "candidates": ["weather today", "refund policy details", "cats"]}
    out = rt.tasks.run("rank", request)
    assert out["tier"] == "nano" and out["ranking"][0]["index"] == 1
    out = rt.tasks.run("rank", {**request, "tier": "a", "top_k": 2})
    assert [r["index"] for r in out["ranking"]] == [1, 0] and out["ranking"][0]["score"] == pytest.approx(0.9)
    rt.close()


def test_every_declared_task_has_a_request_model_and_a_capability() -> None:
    for name, spec in TASKS.items():
        assert spec.name == name and spec.runs and spec.summary
        assert set(spec.runs) <= {"chat", "labels", "classifier", "extractor", "embed", "reader"}
        assert {"tier", "feature"} <= set(spec.request.model_fields)


def test_a_calibrated_policy_skips_tiers_that_cannot_take_the_request(tmp_path: Path, scripted) -> None:
    rt = make(tmp_path, scripted, a=(labelling("bug"), {}))
    rt.policies.save(CascadePolicy("classify", [Step("nano", 0.9, escalate=True), Step("a", 0.0)]))
    out = rt.tasks.run("classify", {"text": "it crashes", "labels": LABELS})  # no classifier: nano cannot
    assert (out["tier"], out["escalated"], out["outcome"]) == ("a", False, "answered")
    rt.policies.save(CascadePolicy("classify", [Step("nano", 0.9)]))
    out = rt.tasks.run("classify", {"text": "it crashes", "labels": LABELS})  # nothing left: the default
    assert out["tier"] == "a"
    rt.close()
