"""Task commands as a user runs them: one text, JSONL in and out, train, eval with a report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import litegate_cmd
from litegate.evals.datasets import clinc150, clinc150_domains, write_jsonl


def run(home: Path, *args: str, input: bytes | str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LITEGATE_HOME=str(home))
    return subprocess.run(litegate_cmd(*args), env=env, capture_output=True, timeout=600, input=input,
                          text=not isinstance(input, bytes))


def test_classify_one_text(home: Path) -> None:
    r = run(home, "classify", "--labels", "billing,bug,account", "I was charged twice for one order")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["label"] == "billing" and set(out["scores"]) == {"billing", "bug", "account"}


def test_classify_jsonl_stdin_to_jsonl_stdout(home: Path) -> None:
    lines = "\n".join(json.dumps({"text": t}) for t in ["refund my money", "the page crashes", "reset my login"])
    r = run(home, "classify", "--labels", "billing,bug,account", input=lines)
    assert r.returncode == 0, r.stderr
    outs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(outs) == 3 and all(o["label"] in ("billing", "bug", "account") for o in outs)


def test_cli_errors_are_one_line(home: Path) -> None:
    for args, needle in [(("classify", "--labels", "a", "x"), "at least 2"),
                         (("classify", "--labels", "a,a", "x"), "more than once"),
                         (("classify", "--classifier", "nope", "x"), "no classifier named"),
                         (("extract", "--fields", "", "x"), "fields")]:
        r = run(home, *args)
        assert r.returncode == 1, (args, r.stdout)
        lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], (args, r.stderr)
    r = run(home, "classify", "--labels", "a,b", input=b'{"text": "\xff"}\n')
    assert r.returncode == 1 and b"UTF-8" in r.stderr


def test_train_then_eval_writes_metrics_and_report(home: Path, tmp_path: Path) -> None:
    intents = clinc150_domains()["utility"][:6]
    train = [r for r in clinc150("train", per_label=10) if r["label"] in intents]
    test = [r for r in clinc150("test") if r["label"] in intents][:90]
    with open(tmp_path / "train.jsonl", "w") as f:
        write_jsonl(train, f)
    with open(tmp_path / "test.jsonl", "w") as f:
        write_jsonl(test, f)
    r = run(home, "train", "utility6", "--data", str(tmp_path / "train.jsonl"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["labels"] == sorted(intents)
    report = tmp_path / "report.html"
    r = run(home, "eval", "--task", "classify", "--data", str(tmp_path / "test.jsonl"), "--classifier", "utility6",
            "--report", str(report))
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    for key in ("accuracy", "macro_f1", "ece", "accuracy_at_50pct_coverage", "accuracy_at_80pct_coverage",
                "accuracy_at_90pct_coverage", "latency_ms_p50", "latency_ms_p95", "tokens"):
        assert key in metrics, key
    assert metrics["accuracy"] >= 0.8 and 0 <= metrics["ece"] <= 0.3
    assert metrics["accuracy_at_50pct_coverage"] >= metrics["accuracy"] - 1e-9
    page = report.read_text()
    assert "<svg" in page and "reliability" in page and "coverage-accuracy" in page


def test_eval_extract_on_nlupp(home: Path, tmp_path: Path) -> None:
    from litegate.evals.datasets import nlupp_banking

    records = [r for r in nlupp_banking([0]) if r["data"]][:6]
    with open(tmp_path / "x.jsonl", "w") as f:
        write_jsonl(records, f)
    r = run(home, "eval", "--task", "extract", "--data", str(tmp_path / "x.jsonl"),
            "--fields", "amount_of_money,person_name,date,time,company_name")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert 0 <= metrics["slot_f1"] <= 1 and metrics["items"] == 6
