"""Cascade: thresholds from labeled data, escalation only where the next tier does better,
human_review when nobody is sure; the ledger and the response say what happened."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import litegate_cmd
from litegate.evals.datasets import clinc150, clinc150_domains, write_jsonl
from litegate.tasks.cascade import CascadePolicy, PolicyStore, Step


@pytest.fixture(scope="module")
def slice_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    folder = tmp_path_factory.mktemp("cascade")
    domains = clinc150_domains()
    intents = sorted(domains["banking"][:6] + domains["credit_cards"][:6])
    with open(folder / "train.jsonl", "w") as f:
        write_jsonl([r for r in clinc150("train", per_label=5, seed=2) if r["label"] in intents], f)
    with open(folder / "val.jsonl", "w") as f:
        write_jsonl([r for r in clinc150("val") if r["label"] in intents][:60], f)
    return folder / "train.jsonl", folder / "val.jsonl", intents


def test_calibrate_then_auto_tier_follows_the_policy(home: Path, http: httpx.Client, slice_files) -> None:
    train, val, intents = slice_files
    env = dict(os.environ, LITEGATE_HOME=str(home))
    run = lambda *a: subprocess.run(litegate_cmd(*a), env=env, capture_output=True, text=True, timeout=900)  # noqa: E731
    assert run("train", "cascade12", "--data", str(train)).returncode == 0
    r = run("calibrate", "--task", "classify", "--data", str(val), "--tiers", "nano,lite", "--classifier",
            "cascade12", "--target-accuracy", "0.97", "--feature", "cascade-test", "--limit", "36")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["accuracy_on_answered"] >= 0.97
    assert set(summary["single_tier_accuracy"]) == {"nano", "lite"}
    policy = PolicyStore(home).get("classify", "cascade-test")
    assert policy is not None and policy.steps[0].tier == "nano"
    first = policy.steps[0]
    for rec in [json.loads(line) for line in val.read_text().splitlines()][:25]:
        out = http.post("/v1/tasks/classify", json={"text": rec["text"], "classifier": "cascade12",
                                                    "labels": intents, "feature": "cascade-test"}).json()
        if out["outcome"] == "answered" and not out["escalated"]:
            assert out["tier"] == "nano" and out["confidence"] >= first.threshold
        else:
            assert out["confidence"] < first.threshold or out["escalated"]
            if out["escalated"]:
                assert out["escalated_from"] == "nano" and out["tier"] == policy.steps[1].tier


def test_hand_written_policy_escalates_and_is_in_the_ledger(home: Path, http: httpx.Client, slice_files) -> None:
    _, val, intents = slice_files
    store = PolicyStore(home)
    # a threshold above 1 means nano never answers alone: every call escalates to lite
    store.save(CascadePolicy(task="classify", feature="escalation-test",
                             steps=[Step("nano", threshold=1.01, escalate=True), Step("lite", threshold=0.999)]))
    subprocess.run(litegate_cmd("train", "cascade12b", "--data", str(slice_files[0])),
                   env=dict(os.environ, LITEGATE_HOME=str(home)), check=True, capture_output=True, timeout=600)
    rec = json.loads(val.read_text().splitlines()[0])
    out = http.post("/v1/tasks/classify", json={"text": rec["text"], "classifier": "cascade12b", "labels": intents,
                                                "feature": "escalation-test"}).json()
    assert out["escalated"] and out["escalated_from"] == "nano" and out["tier"] == "lite"
    assert out["outcome"] in ("answered", "human_review")
    assert out["usage"]["prompt_tokens"] > 0  # the lite call's tokens are counted
    from test_ledger import ledger_row

    rec = ledger_row(home, out["id"])
    assert (rec["escalated"], rec["escalated_from"], rec["tier"]) == (1, "nano", "lite")
    # a route that asks for a stronger model escalates too
    store.save(CascadePolicy(task="route", feature="route-test", steps=[Step("lite", 0.0, True), Step("lite", 0.0)]))
    out = http.post("/v1/tasks/route", json={"text": "hello", "routes": {"greeting": "hello and hi"},
                                             "feature": "route-test"}).json()
    assert out["outcome"] in ("answered", "human_review")
    if out["outcome"] == "human_review":  # only a repeated request for a stronger model ends there
        assert out["route"] == "use_stronger_model" and out["escalated"]


def test_shadow_traffic_and_escalation_budget_alarm(home: Path, http: httpx.Client, slice_files) -> None:
    from test_ledger import ledger_row

    _, val, intents = slice_files
    store = PolicyStore(home)
    # nano answers everything; every answered call is shadowed to lite; an escalation
    # budget of 0% with a policy that always escalates trips the alarm
    from litegate.tasks.cascade import Shadow

    store.save(CascadePolicy(task="classify", feature="shadow-test", steps=[Step("nano", 0.0)],
                             shadow=Shadow(tier="lite", fraction=1.0)))
    texts = [json.loads(line)["text"] for line in val.read_text().splitlines()[:3]]
    ids = [http.post("/v1/tasks/classify", json={"text": t, "classifier": "cascade12", "labels": intents,
                                                  "feature": "shadow-test"}).json()["id"] for t in texts]
    import time

    deadline = time.monotonic() + 60
    rows = []
    while time.monotonic() < deadline:
        rows = [ledger_row(home, i) for i in ids]
        if all(r and r["shadow_tier"] for r in rows):
            break
        time.sleep(0.5)
    assert all(r["shadow_tier"] == "lite" and r["shadow_agreement"] in (0, 1) for r in rows), rows
    report = http.get("/v1/report").json()
    group = next(g for g in report["groups"] if g["feature"] == "shadow-test")
    assert group["shadowed"] == 3 and 0 <= group["shadow_agreement"] <= 1

    store.save(CascadePolicy(task="classify", feature="creep", steps=[Step("nano", 1.01, True), Step("lite", 0.0)],
                             max_escalation_rate=0.0))
    for t in texts * 7:  # 21 calls, all escalated
        http.post("/v1/tasks/classify", json={"text": t, "classifier": "cascade12", "labels": intents,
                                              "feature": "creep"})
    alarms = http.get("/v1/report").json()["alarms"]
    assert any(a["feature"] == "creep" and a["escalation_rate"] == 1.0 for a in alarms), alarms
    assert 'litegate_escalation_budget_exceeded{feature="creep",task="classify"} 1.0' in http.get("/metrics").text
    assert "Escalation budget exceeded" in http.get("/dashboard").text


def test_cascade_to_the_in_process_pro_model(home: Path, http: httpx.Client) -> None:
    """lite -> pro (Qwen2.5-Coder-1.5B, in-process): the stronger local model decides."""
    store = PolicyStore(home)
    store.save(CascadePolicy(task="classify", feature="pro-test",
                             steps=[Step("lite", threshold=1.01, escalate=True), Step("pro", threshold=0.0)]))
    out = http.post("/v1/tasks/classify", json={"text": "Will it rain in Oslo tomorrow?",
                                                "labels": ["weather", "music", "sports"], "feature": "pro-test"},
                    timeout=300).json()
    assert out["tier"] == "pro" and out["model"] == "pro", out
    assert out["escalated"] and out["escalated_from"] == "lite" and out["outcome"] == "answered"
    assert out["label"] == "weather"
    from test_ledger import ledger_row

    rec = ledger_row(home, out["id"])
    assert (rec["tier"], rec["escalated_from"]) == ("pro", "lite")
