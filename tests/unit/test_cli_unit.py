"""CLI commands in-process (typer's runner): task commands made from the declarations, the
report printed whole when piped, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import fakes
import pytest
from typer.testing import CliRunner

from litegate.cli import app
from litegate.ledger.calls import CallRecord, Ledger


@pytest.fixture()
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LITEGATE_HOME", str(tmp_path))
    monkeypatch.delenv("LITEGATE_CONFIG", raising=False)
    monkeypatch.setattr("litegate.cli.tasks.runtime",
                        lambda model="lite", **kw: fakes.runtime(tmp_path, engines={
                            "lite": fakes.FakeEngine(lambda body: "- first point\n- second point")}))
    return tmp_path


def test_every_task_has_a_command_with_its_fields_as_options() -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["--help"]).output
    for name in ("classify", "extract", "route", "summarize", "translate", "rank", "answer"):
        assert name in help_text
    translate = runner.invoke(app, ["translate", "--help"]).output
    assert "--to" in translate and "--tier" in translate and "--feature" in translate
    rank = runner.invoke(app, ["rank", "--help"]).output
    assert "--candidates" in rank and "--top-k" in rank


def test_task_command_runs_one_text(home: Path) -> None:
    r = CliRunner().invoke(app, ["summarize", "--max-bullets", "1", "a long text about things"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["task"] == "summarize" and out["bullets"] == ["first point"]


def test_task_command_reads_jsonl_and_ignores_gold_fields(home: Path) -> None:
    lines = "\n".join(json.dumps({"text": t, "label": "spam"}) for t in ("one text", "two text")) + "\n"
    r = CliRunner().invoke(app, ["classify", "--labels", "spam,ham"], input=lines)
    assert r.exit_code == 0, r.output
    results = [json.loads(line) for line in r.stdout.strip().splitlines() if line.startswith("{")]
    assert len(results) == 2 and all(o["label"] in ("spam", "ham") for o in results)
    # a field that is neither the task's nor a gold answer is still refused
    r = CliRunner().invoke(app, ["summarize"], input=json.dumps({"text": "t", "colour": "red"}) + "\n")
    assert r.exit_code == 1 and "'colour' is not a field of this task (summarize)" in r.output


def test_task_command_errors_are_one_line(home: Path) -> None:
    r = CliRunner().invoke(app, ["classify", "--labels", "a", "text"])
    assert r.exit_code == 1 and "needs at least 2 entries" in r.output
    r = CliRunner().invoke(app, ["rank", "--query", "q", "--candidates", str(home / "missing.txt")])
    assert r.exit_code == 1 and "cannot read" in r.output
    r = CliRunner().invoke(app, ["extract", "--extractor", "receipt", "--fields", "total,total", "TOTAL 8.50"])
    assert r.exit_code == 1 and "--fields names 'total' twice" in r.output


def test_report_piped_is_never_cut(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LITEGATE_HOME", str(tmp_path))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    feature = "a-rather-long-feature-name-for-invoices"
    ledger.record(CallRecord(id="c1", task="classify", tier="lite", feature=feature, tokens_in=1234,
                             tokens_out=56, latency_ms=150.0, cost_usd=0.000123456))
    monkeypatch.setenv("COLUMNS", "60")
    r = CliRunner().invoke(app, ["report"])
    assert r.exit_code == 0, r.output
    assert feature in r.stdout and "0.000123" in r.stdout and "1234/56" in r.stdout and "…" not in r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("feature"))
    assert "$ per success" in header


def test_train_tool_decision_refits_the_shipped_decision_with_your_cases(tmp_path: Path, monkeypatch) -> None:
    from litegate.chat.decision import SHIPPED, ToolDecision
    from litegate.chat.tool_cases import WEATHER

    monkeypatch.setenv("LITEGATE_HOME", str(tmp_path))
    monkeypatch.setattr("litegate.cli.training.runtime", lambda model="lite", **kw: fakes.runtime(
        tmp_path, engines={"lite": fakes.FakeEngine(lambda body: "x")}))
    cases = tmp_path / "cases.jsonl"
    lines = [{"messages": [{"role": "user", "content": text}], "tools": [WEATHER], "call": call}
             for text, call in (("weather in Oslo", True), ("thanks, bye", False))]
    cases.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    r = CliRunner().invoke(app, ["train", "mine", "--task", "tool_decision", "--data", str(cases)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["cases"] == 2 and out["trained_on"]["user_cases"] == 2
    mine = ToolDecision.load(tmp_path / "tool_decision.json")
    assert len(mine.rows) == len(ToolDecision.load(SHIPPED).rows) + 2
    cases.write_text(json.dumps(lines[0]) + "\n" + json.dumps({**lines[1], "call": "no"}) + "\n")
    bad = CliRunner().invoke(app, ["train", "mine", "--task", "tool_decision", "--data", str(cases)])
    assert bad.exit_code != 0 and "line 2" in bad.output and "Traceback" not in bad.output
