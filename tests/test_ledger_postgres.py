"""The ledger on a real PostgreSQL server, started by the test from the Debian package."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from litegate.ledger.calls import CallRecord, Ledger

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() \
    else None


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root, run it as the package's postgres user
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if PG_BIN is None:
        pytest.skip("PostgreSQL server not installed (Debian package postgresql)")
    data = Path(tempfile.mkdtemp(prefix="litegate-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                                 f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def test_ledger_on_postgres(postgres_url: str) -> None:
    ledger = Ledger(postgres_url)
    now = time.time()
    ledger.record(CallRecord(id="a", task="classify", tier="nano", feature="f1", tokens_in=0, latency_ms=9.5,
                             cost_usd=1e-6, confidence=0.9, ts=now))
    ledger.record(CallRecord(id="b", task="classify", tier="lite", feature="f1", tokens_in=40, tokens_out=2,
                             latency_ms=120.0, cost_usd=3e-6, confidence=0.6, escalated=True, escalated_from="nano",
                             ts=now))
    assert ledger.set_outcome("a", "success") and not ledger.set_outcome("zzz", "success")
    assert ledger.get("b")["escalated_from"] == "nano"
    summary = ledger.summary(now - 60)
    groups = {(g["feature"], g["tier"]): g for g in summary["groups"]}
    assert groups[("f1", "nano")]["successes"] == 1
    assert groups[("f1", "lite")]["escalation_rate"] == 1.0
    assert summary["calls"] == 2 and abs(summary["cost_usd"] - 4e-6) < 1e-12
    # a second Ledger on the same URL (another replica) sees the same rows
    assert Ledger(postgres_url).get("a")["outcome"] == "success"


def test_learning_examples_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """The examples table lives beside the ledger: corrections, review and distill on PostgreSQL."""
    from litegate.config import Settings
    from litegate.configfile import Config
    from litegate.evals.datasets import clinc150
    from litegate.runtime import build

    rt = build(Settings(home=tmp_path, ledger_url=postgres_url), Config())
    try:
        rt.classifiers.train("pg-bank", clinc150("train", domain="banking", per_label=3, seed=4), learn=True)
        stream = clinc150("test", domain="banking", per_label=2, seed=5)
        ids = {rt.tasks.run("classify", {"text": r["text"], "classifier": "pg-bank", "tier": "nano"})["id"]: r["label"]
               for r in stream}
        queue = rt.learner.review("classifier", "pg-bank", limit=10, below=1.0)
        assert queue["pending"] == len(stream) and len(queue["data"]) == 10
        for item in queue["data"]:
            rt.learner.correct(item["id"], {"label": ids[item["id"]]})
        result = rt.learner.distill("classifier", "pg-bank")
        assert result["held_back"] == 10 and result["labels"]["human"] == 10
        assert result["promoted"] == (result["candidate_score"] >= result["current_score"])
        assert rt.learner.curve("classifier", "pg-bank")["human_labels"] == 10
        assert rt.learner.purge("classifier", "pg-bank") == len(stream)
    finally:
        rt.close()
