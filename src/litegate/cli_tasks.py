"""CLI commands for tasks, training and evals; registered on the main ``litegate`` app."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from litegate.config import Settings
from litegate.errors import InvalidRequest, LitegateError


def _runner(model: str = "lite", record: bool = True):
    from litegate.accounting import Accountant
    from litegate.embed import MiniLMEncoder
    from litegate.engine import ModelRegistry
    from litegate.ledger import Ledger
    from litegate.nano import ClassifierStore
    from litegate.tasks import TaskRunner

    from litegate.cascade import PolicyStore

    settings = Settings()
    accountant = Accountant(Ledger(settings.ledger_database_url())) if record else None
    config = os.environ.get("LITEGATE_CONFIG")  # its [[tier]]s, as for litegate serve
    from litegate.tiers import load_tiers

    tiers = load_tiers(config) if config else None
    return TaskRunner(ModelRegistry(settings, extra_specs=[model]), ClassifierStore(settings.home, MiniLMEncoder),
                      lite_model=model, accountant=accountant, policies=PolicyStore(settings.home) if record else None,
                      tiers=tiers or None)


def _sample(records: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``--limit N``: a fixed random sample of N records (files are often sorted by label, so
    the first N would be one label), in file order."""
    if not limit or limit >= len(records):
        return records
    import random

    keep = sorted(random.Random(0).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def _progress(total: int | None, description: str) -> Progress:
    from litegate.cli import err

    return Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=False, disable=not err.is_terminal and total is None)


def _split_pairs(value: str | None) -> list[str] | dict[str, str] | None:
    """'a,b,c' -> list; 'a:desc,b:desc' -> dict; a JSON list/object passes through."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError as e:
            raise InvalidRequest(f"not valid JSON: {e}") from None
    items = [v.strip() for v in value.split(",")]
    if any(":" in v for v in items):
        return {k.strip(): d.strip() for k, _, d in (v.partition(":") for v in items)}
    return items


def _stdin_lines() -> list[str]:
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"standard input is not UTF-8 text (byte {e.start})") from None


def run_task_command(task: str, text: Optional[str], base: dict[str, Any], model: str) -> None:
    """One text argument -> one JSON result; no text (or '-') -> JSONL in, JSONL out."""
    from litegate.cli import _fail
    from litegate.evals.datasets import parse_jsonl

    base = {k: v for k, v in base.items() if v is not None}
    try:
        runner = _runner(model)
        if text is not None and text != "-":
            print(json.dumps(runner.run(task, {**base, "text": text}), ensure_ascii=False))
            return
        if sys.stdin.isatty():
            _fail(f"give the text as an argument, or pipe JSONL ({{\"text\": ...}} per line) into litegate {task}")
        records = list(parse_jsonl(_stdin_lines(), "stdin"))
        with _progress(len(records), task) as progress:
            bar = progress.add_task(task, total=len(records))
            for rec in records:
                out = runner.run(task, {**base, **rec})
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
                sys.stdout.flush()
                progress.advance(bar)
    except LitegateError as e:
        _fail(e.message)
    except ValueError as e:  # pydantic validation of a request
        _fail(str(e).splitlines()[0] + ": " + " ".join(str(e).splitlines()[1:3]))
    finally:
        if "runner" in locals():
            if runner.accountant is not None:
                runner.accountant.flush()
            runner.registry.close()


TextArg = Annotated[Optional[str], typer.Argument(help="the text; omit or '-' to read JSONL from stdin")]
TierOpt = Annotated[str, typer.Option(help="auto (the cascade), nano, lite, pro or a [[tier]] of $LITEGATE_CONFIG")]
FeatureOpt = Annotated[Optional[str], typer.Option(help="a tag for cost reporting")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="the LLM behind the lite tier: lite, pro or a GGUF")]


def register(app: typer.Typer) -> None:
    @app.command()
    def classify(text: TextArg = None,
                 labels: Annotated[Optional[str], typer.Option(help="a,b,c or a:desc,b:desc or JSON")] = None,
                 classifier: Annotated[Optional[str], typer.Option(help="a trained nano classifier")] = None,
                 multi_label: Annotated[bool, typer.Option("--multi-label")] = False,
                 tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Pick the label(s) for a text, with a probability per label."""
        run_task_command("classify", text, {"labels": _split_pairs(labels), "classifier": classifier,
                                            "multi_label": multi_label, "tier": tier, "feature": feature}, model)

    @app.command()
    def extract(text: TextArg = None,
                fields: Annotated[Optional[str], typer.Option(help="name:description,... or JSON")] = None,
                schema: Annotated[Optional[Path], typer.Option(help="a JSON Schema file")] = None,
                tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Extract fields (null when not stated) with per-field confidence and spans."""
        parsed = _split_pairs(fields)
        if isinstance(parsed, list):
            parsed = {name: "" for name in parsed}
        body = {"fields": parsed, "tier": tier, "feature": feature,
                "schema": json.loads(schema.read_text()) if schema else None}
        run_task_command("extract", text, body, model)

    @app.command()
    def route(text: TextArg = None,
              routes: Annotated[Optional[str], typer.Option(help="name:description,... or JSON")] = None,
              tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Pick a destination (use_stronger_model and human_review are always options)."""
        run_task_command("route", text, {"routes": _split_pairs(routes), "tier": tier, "feature": feature}, model)

    @app.command()
    def summarize(text: TextArg = None, max_bullets: int = 5, max_words: int = 120,
                  tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Summarize within a bullet and word budget."""
        run_task_command("summarize", text, {"max_bullets": max_bullets, "max_words": max_words, "tier": tier,
                                             "feature": feature}, model)

    @app.command()
    def translate(text: TextArg = None, to: Annotated[Optional[str], typer.Option(help="target language")] = None,
                  tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Translate into a target language."""
        run_task_command("translate", text, {"target_language": to, "tier": tier, "feature": feature}, model)

    @app.command()
    def rank(query: Annotated[str, typer.Option(help="what to rank for")],
             candidates: Annotated[Path, typer.Option(help="a file with one candidate per line")],
             top_k: Optional[int] = None, tier: TierOpt = "auto", feature: FeatureOpt = None,
             model: ModelOpt = "lite") -> None:
        """Rank candidates for a query (top-k with scores)."""
        lines = [line for line in candidates.read_text(encoding="utf-8").splitlines() if line.strip()]
        run_task_command("rank", "", {"query": query, "candidates": lines, "top_k": top_k, "tier": tier,
                                      "feature": feature}, model)

    @app.command()
    def answer(query: Annotated[str, typer.Option(help="the question")],
               context: Annotated[Path, typer.Option(help="passages, one per line")],
               tier: TierOpt = "auto", feature: FeatureOpt = None, model: ModelOpt = "lite") -> None:
        """Answer from the given passages only, citing them; 'not in context' otherwise."""
        lines = [line for line in context.read_text(encoding="utf-8").splitlines() if line.strip()]
        run_task_command("answer", "", {"query": query, "context": lines, "tier": tier, "feature": feature}, model)

    @app.command()
    def train(name: Annotated[str, typer.Argument(help="the classifier's name")],
              data: Annotated[Path, typer.Option(help='JSONL, one {"text", "label"} per line')]) -> None:
        """Train (or retrain, as a new version) a nano classifier."""
        from dataclasses import asdict

        from litegate.cli import _fail
        from litegate.embed import MiniLMEncoder
        from litegate.evals.datasets import read_jsonl
        from litegate.nano import ClassifierStore

        try:
            examples = read_jsonl(data)
            store = ClassifierStore(Settings().home, MiniLMEncoder)
            info = store.train(name, examples)
        except LitegateError as e:
            _fail(e.message)
        print(json.dumps(asdict(info)))

    @app.command("eval")
    def eval_command(task: Annotated[str, typer.Option(help="classify or extract")],
                     data: Annotated[Path, typer.Option(help="JSONL records")],
                     classifier: Optional[str] = None,
                     labels: Annotated[Optional[str], typer.Option(help="labels for LLM tiers")] = None,
                     fields: Annotated[Optional[str], typer.Option(help="fields for extract")] = None,
                     tier: TierOpt = "auto",
                     limit: Annotated[Optional[int], typer.Option(help="a fixed random sample of N records")] = None,
                     report: Annotated[Optional[Path], typer.Option(help="HTML report path")] = None,
                     model: ModelOpt = "lite") -> None:
        """Score a task on labeled JSONL: prints JSON metrics, writes an HTML report."""
        from litegate.cli import _fail
        from litegate.evals.datasets import read_jsonl
        from litegate.evals.runner import evaluate, public_metrics, write_report

        try:
            every = read_jsonl(data)
            records = _sample(every, limit)
            request: dict[str, Any] = {"tier": tier}
            if classifier:
                request["classifier"] = classifier
            if labels:
                request["labels"] = _split_pairs(labels)
            elif task == "classify" and not classifier:
                request["labels"] = sorted({r.get("label") for r in every if isinstance(r.get("label"), str)})
            if fields:
                parsed = _split_pairs(fields)
                request["fields"] = {n: "" for n in parsed} if isinstance(parsed, list) else parsed
            runner = _runner(model, record=False)  # evals do not bill features
            from litegate.cascade import PolicyStore

            runner.policies = PolicyStore(Settings().home)  # tier auto follows a calibrated policy
            with _progress(len(records), f"eval {task}") as progress:
                bar = progress.add_task("eval", total=len(records))
                metrics = evaluate(runner, task, records, request, advance=lambda n: progress.advance(bar, n))
            runner.registry.close()
        except LitegateError as e:
            _fail(e.message)
        path = report or data.with_suffix(f".{task}.report.html")
        write_report(metrics, path, f"litegate eval: {task} on {data.name}")
        out = public_metrics(metrics)
        out["report"] = str(path)
        print(json.dumps(out, indent=2))

    @app.command()
    def calibrate(task: Annotated[str, typer.Option(help="classify or route")],
                  data: Annotated[Path, typer.Option(help='labeled JSONL ({"text", "label"})')],
                  tiers: Annotated[str, typer.Option(help="tiers in order, e.g. nano,lite")] = "nano,lite",
                  classifier: Optional[str] = None,
                  labels: Annotated[Optional[str], typer.Option(help="labels for LLM tiers")] = None,
                  target_accuracy: Optional[float] = None, max_escalation: Optional[float] = None,
                  feature: Annotated[Optional[str], typer.Option(help="a policy for one feature only")] = None,
                  limit: Annotated[Optional[int], typer.Option(help="a fixed random sample of N records")] = None,
                  model: ModelOpt = "lite") -> None:
        """Measure each tier on labeled data and write cascade thresholds for tier 'auto'."""
        import numpy as np

        from litegate.cascade import PolicyStore, TierResults, choose_policy
        from litegate.cli import _fail
        from litegate.evals.datasets import read_jsonl

        try:
            if task not in ("classify", "route"):
                _fail("calibrate supports --task classify and --task route")
            every = read_jsonl(data)
            records = _sample(every, limit)
            if not records:
                _fail("the calibration data is empty")
            tier_list = [t.strip() for t in tiers.split(",") if t.strip()]
            if not 1 <= len(tier_list) <= 2:
                _fail("--tiers takes one or two tiers, such as nano,lite")
            label_set = _split_pairs(labels) if labels else sorted({r["label"] for r in every})
            runner = _runner(model, record=False)
            results = []
            for tier in tier_list:
                base: dict[str, Any] = {"tier": tier}
                if task == "route":
                    base["routes"] = label_set
                elif runner.is_nano(tier):
                    base["classifier"] = classifier
                else:
                    base["labels"] = label_set
                conf, ok, cost = [], [], []
                with _progress(len(records), f"calibrate {tier}") as progress:
                    bar = progress.add_task(tier, total=len(records))
                    for rec in records:
                        out = runner.run(task, {**base, "text": rec["text"]})
                        answer = out.get("label") or out.get("route")
                        conf.append(out["confidence"])
                        ok.append(float(answer == rec["label"]))
                        cost.append(out["cost_usd"])
                        progress.advance(bar)
                results.append(TierResults(tier, np.array(conf), np.array(ok), np.array(cost)))
            runner.registry.close()
            policy = choose_policy(task, results, target_accuracy=target_accuracy, max_escalation=max_escalation,
                                   feature=feature)
            path = PolicyStore(Settings().home).save(policy)
        except LitegateError as e:
            _fail(e.message)
        print(json.dumps({"policy": str(path), "steps": [s.__dict__ for s in policy.steps], **policy.expected},
                         indent=2))

    @app.command()
    def report(since: Annotated[Optional[str], typer.Option(help="a window such as 24h, 7d or 90m")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
        """Cost, escalation, latency and cost per success, by feature and tier, from the ledger."""
        import re
        import time

        from rich.table import Table

        from litegate.cli import _fail, out
        from litegate.ledger import Ledger

        window = None
        if since:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", since.strip())
            if not m:
                _fail("--since takes a number and m, h or d, such as 24h")
            window = time.time() - float(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
        summary = Ledger(Settings().ledger_database_url()).summary(window)
        if as_json:
            print(json.dumps(summary, indent=2))
            return
        table = Table(title=f"litegate ledger: {summary['calls']} calls, ${summary['cost_usd']:.6f}, "
                            f"${summary['cost_per_1000_calls_usd']:.4f} per 1,000 calls")
        for col in ("feature", "tier", "calls", "tokens in/out", "cost $", "escalated", "p50 ms", "p95 ms",
                    "success/fail", "$ per success"):
            table.add_column(col)
        for g in summary["groups"]:
            table.add_row(str(g["feature"] or "-"), g["tier"], str(g["calls"]), f"{g['tokens_in']}/{g['tokens_out']}",
                          f"{g['cost_usd']:.6f}", f"{g['escalation_rate']:.1%}",
                          f"{g['latency_ms_p50']:.0f}" if g["latency_ms_p50"] is not None else "-",
                          f"{g['latency_ms_p95']:.0f}" if g["latency_ms_p95"] is not None else "-",
                          f"{g['successes']}/{g['failures']}",
                          f"{g['cost_per_success_usd']:.6f}" if g["cost_per_success_usd"] else "-")
        out.print(table)

    @app.command()
    def dataset(name: Annotated[str, typer.Argument(help="clinc150 or nlupp")],
                split: str = "test", domain: Optional[str] = None, per_label: Optional[int] = None,
                include_oos: bool = False, folds: str = "0-19", seed: int = 0) -> None:
        """Write a public labeled set as JSONL to stdout (the format eval and train read)."""
        from litegate.cli import _fail
        from litegate.evals import datasets as ds

        try:
            if name == "clinc150":
                records = ds.clinc150(split, domain=domain, include_oos=include_oos, per_label=per_label, seed=seed)
            elif name == "nlupp":
                lo, _, hi = folds.partition("-")
                records = ds.nlupp_banking(range(int(lo), int(hi or lo) + 1))
            else:
                _fail("dataset is clinc150 or nlupp")
        except (LitegateError, OSError) as e:
            _fail(getattr(e, "message", str(e)))
        ds.write_jsonl(records, sys.stdout)
