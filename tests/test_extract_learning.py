"""Extraction that learns, as a user drives it: train an extractor over HTTP, extract on the
nano tier, teach the lite model with retrieved examples under grounded decoding, calibrate a
nano -> lite cascade with the CLI, then run tier auto, and eval with the CLI — the real
encoder, the real lite model, real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from litegate.evals.datasets import nlupp_banking, nlupp_fields, write_jsonl
from test_task_cli import run

FIELDS = ("amount_of_money", "date", "time", "person_name", "company_name")


def records(folds: list[int]) -> list[dict]:
    out = []
    for r in nlupp_banking(folds):
        out.append({"text": r["text"], "data": {k: v for k, v in r["data"].items() if k in FIELDS}})
    return out


@pytest.fixture(scope="module")
def trained(server: str) -> dict:
    described = {k: v for k, v in nlupp_fields().items() if k in FIELDS}
    r = httpx.post(server + "/v1/extractors", json={"name": "bank", "examples": records([0, 1]),
                                                    "fields": described}, timeout=300)
    assert r.status_code == 201, r.text
    return r.json()


def test_trained_extractor_answers_on_the_nano_tier(trained: dict, http: httpx.Client) -> None:
    assert trained["version"] >= 1 and trained["examples"] > 150 and trained["oof_f1"] > 0.3
    text = "send 250 euros to Maria Lopez on Friday"
    out = http.post("/v1/tasks/extract", json={"text": text, "extractor": "bank"}).json()
    assert out["tier"] == "nano" and out["model"].startswith("bank@v") and out["latency_ms"] < 1000
    assert set(out["data"]) == set(FIELDS)
    assert out["data"]["amount_of_money"] == "250 euros"
    for name, value in out["data"].items():  # values are copied from the text, spans point at them
        if value is not None:
            start, end = out["spans"][name]
            assert text[start:end] == value
        assert 0.0 <= out["field_confidence"][name] <= 1.0
    assert out["confidence"] == min(out["field_confidence"].values())


def test_lite_learns_from_the_extractor_under_grounded_decoding(trained: dict, http: httpx.Client) -> None:
    text = "I want to pay 40 pounds to John Smith tomorrow at 5 pm"
    out = http.post("/v1/tasks/extract", json={"text": text, "extractor": "bank", "tier": "lite"}).json()
    assert out["tier"] == "lite", out
    stated = {k: v for k, v in out["data"].items() if v is not None}
    assert stated, out  # the retrieved examples show what to pull out
    assert all(v in text for v in stated.values())  # nothing invented: runs of the text's words
    # only the stated fields are generated, not a key per absent field
    assert out["usage"]["completion_tokens"] < 12 * len(stated) + 10
    assert set(out["data"]) == set(FIELDS) and out["field_confidence"].keys() == out["data"].keys()


def test_fields_that_disagree_with_the_extractor_are_refused(trained: dict, http: httpx.Client) -> None:
    r = http.post("/v1/tasks/extract", json={"text": "x", "extractor": "bank", "fields": {"iban": ""}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "fields.iban"


def test_calibrate_then_auto_then_eval(trained: dict, home: Path, tmp_path: Path, http: httpx.Client) -> None:
    val, test = tmp_path / "val.jsonl", tmp_path / "test.jsonl"
    with open(val, "w") as f:
        write_jsonl(records([2]), f)
    with open(test, "w") as f:
        write_jsonl(records([3]), f)
    r = run(home, "calibrate", "--task", "extract", "--extractor", "bank", "--tiers", "nano,lite", "--data",
            str(val), "--limit", "8", "--target-accuracy", "0.5", "--feature", "bank-intake")
    assert r.returncode == 0, r.stderr
    policy = json.loads(r.stdout)
    assert [s["tier"] for s in policy["steps"]][0] == "nano"
    # never less accurate on what it answers than the better tier alone
    single = policy["single_tier_accuracy"]
    assert policy["accuracy_on_answered"] >= max(single.values()) - 1e-9
    out = http.post("/v1/tasks/extract", json={"text": "pay 12 dollars to Ann Lee", "extractor": "bank",
                                               "feature": "bank-intake"}).json()
    assert out["tier"] in ("nano", "lite") and out["outcome"] in ("answered", "human_review")
    r = run(home, "eval", "--task", "extract", "--extractor", "bank", "--tier", "nano", "--data", str(test),
            "--report", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["slot_f1"] > 0.3 and metrics["field_ece"] < 0.2 and metrics["items"] > 50
    assert (tmp_path / "r.html").read_text().count("<svg") >= 1


def test_train_cli_with_a_bad_line_names_it(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"text": "pay Ann", "data": {"person_name": "Bob"}}) + "\n")
    r = run(home, "train", "x", "--task", "extract", "--data", str(data))
    # named by the file's line, as the user wrote it, not by the list index
    assert r.returncode == 1 and "bad.jsonl:1: 'data.person_name'" in r.stderr and "does not occur" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
