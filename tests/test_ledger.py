"""Every call lands in the ledger; feedback marks outcomes; /metrics and the report show it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from conftest import litegate_cmd


def ledger_row(home: Path, call_id: str, wait: float = 5.0) -> dict | None:
    """The row for ``call_id``; the ledger is written in the background, so allow a moment."""
    deadline = time.monotonic() + wait
    while True:
        con = sqlite3.connect(home / "ledger.db")
        con.row_factory = sqlite3.Row
        row = con.execute("select * from calls where id = ?", (call_id,)).fetchone()
        con.close()
        if row or time.monotonic() > deadline:
            return dict(row) if row else None
        time.sleep(0.05)


def test_task_call_is_a_ledger_row_and_feedback_marks_it(http: httpx.Client, home: Path) -> None:
    out = http.post("/v1/tasks/classify", json={"text": "Is it going to snow?", "labels": ["weather", "music"],
                                                "feature": "ledger-test"},
                    headers={"Authorization": "Bearer secret-key-1"}).json()
    row = ledger_row(home, out["id"])
    assert row is not None
    assert row["task"] == "classify" and row["tier"] == "lite" and row["feature"] == "ledger-test"
    assert row["tokens_in"] == out["usage"]["prompt_tokens"] and row["tokens_out"] == out["usage"]["completion_tokens"]
    assert row["cost_usd"] > 0 and row["latency_ms"] > 0 and abs(row["confidence"] - out["confidence"]) < 1e-9
    assert row["api_key"] and "secret" not in row["api_key"]  # a fingerprint, never the key
    assert row["outcome"] is None

    r = http.post("/v1/feedback", json={"id": out["id"], "outcome": "success"})
    assert r.status_code == 200, r.text
    assert ledger_row(home, out["id"])["outcome"] == "success"

    report = http.get("/v1/report").json()
    group = next(g for g in report["groups"] if g["feature"] == "ledger-test")
    assert group["successes"] == 1 and group["cost_per_success_usd"] == group["cost_usd"]


def test_feedback_errors(http: httpx.Client) -> None:
    r = http.post("/v1/feedback", json={"id": "task_nope", "outcome": "success"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "id"
    out = http.post("/v1/tasks/rank", json={"query": "q", "candidates": ["a", "b"]}).json()
    r = http.post("/v1/feedback", json={"id": out["id"], "outcome": "great"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "outcome"


def test_chat_calls_are_recorded(http: httpx.Client, home: Path) -> None:
    out = http.post("/v1/chat/completions", json={"model": "lite", "max_tokens": 3,
                                                  "messages": [{"role": "user", "content": "hi"}]},
                    headers={"X-Litegate-Feature": "chat-feature"}).json()
    row = ledger_row(home, out["id"])
    assert row["task"] == "chat" and row["tier"] == "lite" and row["feature"] == "chat-feature"
    assert row["tokens_out"] == out["usage"]["completion_tokens"]


def test_metrics_count_calls(http: httpx.Client) -> None:
    http.post("/v1/tasks/rank", json={"query": "cats", "candidates": ["dogs", "kittens"]})
    text = http.get("/metrics").text
    line = next(line for line in text.splitlines()
                if line.startswith('litegate_requests_total{') and 'task="rank"' in line and 'tier="nano"' in line)
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert "litegate_request_latency_seconds_bucket" in text and "litegate_tokens_total" in text


def test_report_cli(http: httpx.Client, home: Path) -> None:
    http.post("/v1/tasks/rank", json={"query": "cats", "candidates": ["dogs", "kittens"], "feature": "cli-report"})
    http.get("/v1/report")  # waits for the server's background ledger writer
    env = dict(os.environ, LITEGATE_HOME=str(home), COLUMNS="200")
    r = subprocess.run(litegate_cmd("report", "--json", "--since", "1h"), env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert any(g["feature"] == "cli-report" and g["tier"] == "nano" for g in summary["groups"])
    r = subprocess.run(litegate_cmd("report"), env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "cli-report" in r.stdout
    r = subprocess.run(litegate_cmd("report", "--since", "yesterday"), env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "--since" in r.stderr


def test_every_key_header_is_fingerprinted_the_same_way(http: httpx.Client, home: Path) -> None:
    """Budgets are summed by fingerprint, so a key must get the same one whichever header carries it."""
    import hashlib

    expected = hashlib.sha256(b"shared-key").hexdigest()[:12]
    body = {"query": "q", "candidates": ["a", "b"]}
    ids = [http.post("/v1/tasks/rank", json=body, headers=h).json()["id"]
           for h in ({"Authorization": "Bearer shared-key"}, {"x-goog-api-key": "shared-key"})]
    ids.append(http.post("/v1beta/models/lite:generateContent", headers={"Authorization": "Bearer shared-key"},
                         json={"contents": [{"parts": [{"text": "hi"}]}],
                               "generationConfig": {"maxOutputTokens": 1}}).json()["responseId"])
    assert [ledger_row(home, i)["api_key"] for i in ids] == [expected] * 3
