"""train, eval, calibrate, dataset: learning from labeled data and measuring it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from litegate.cli.common import err, fail, item_progress, runtime, sample, settings, split_pairs, work_progress
from litegate.errors import LitegateError

TierOpt = Annotated[str, typer.Option(help="auto (the cascade), nano, lite, pro or a tier of the config file")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="the LLM behind the lite tier: lite, pro or a GGUF")]


def _train(encoders: Any, task: str, name: str, examples: list[dict[str, Any]], fields: Path | None,
           learn: bool, encoder: str | None, tune: dict[str, Any] | None = None) -> Any:
    from litegate.errors import InvalidRequest
    from litegate.nano.classifier import ClassifierStore
    from litegate.nano.extractor import ExtractorStore

    if task == "classify":
        return ClassifierStore(settings().home, encoders).train(name, examples, learn=learn, encoder=encoder,
                                                                tune=tune)
    if tune is not None:
        raise InvalidRequest("--tune is for classifiers (--task classify)")
    described = None
    if fields is not None:
        try:
            described = json.loads(fields.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidRequest(f"{fields}: not a readable JSON object of field -> description ({e})") from None
    info = ExtractorStore(settings().home, encoders).train(name, examples, described, learn=learn, encoder=encoder)
    for warning in info.warnings:
        err.print(f"warning: {warning}", highlight=False)
    return info


def _extend(name: str, base: str, examples: list[dict[str, Any]]) -> Any:
    from litegate.documents.prebuilt.extend import PrebuiltStore

    return PrebuiltStore(settings().home).train(name, base, examples)


def _extended(info: Any) -> str:
    """An extended prebuilt in words: per field, the training documents it reads right before and after."""
    moved = ", ".join(f"{f} {info.right_before[f]:.2f} -> {info.right_after[f]:.2f}" for f in info.right_after)
    return (f"{info.name} v{info.version} extends {info.base} with {info.examples:,} examples; fields right on "
            f"them before -> after: {moved or 'none labeled'}")


def _trained(task: str, info: Any) -> str:
    """The result of a training in words, for the terminal (the JSON goes to stdout)."""
    if task == "classify":
        tuned = (f" (its encoder's top {info.tuned['layers']} layers tuned in {info.tuned['seconds']:.0f} s)"
                 if info.tuned else "")
        return (f"{info.name} v{info.version} trained: {info.examples:,} examples of {len(info.labels)} labels, "
                f"cross-validated accuracy {info.cv_accuracy:.2f}, in {info.train_seconds:.1f} s{tuned}")
    f1 = f", out-of-fold slot F1 {info.oof_f1:.2f}" if info.oof_f1 is not None else ""
    return (f"{info.name} v{info.version} trained: {info.examples:,} examples of {len(info.fields)} fields{f1}, "
            f"in {info.train_seconds:.1f} s")


def _scored(task: str, metrics: dict[str, Any]) -> str:
    """An eval's result in words (the JSON goes to stdout)."""
    n = metrics.get("items")
    if metrics.get("abstention_recall") is not None or metrics.get("f1") is not None:
        parts = [f"answer F1 {metrics['f1']:.2f}" if metrics.get("f1") is not None else None,
                 f"abstention precision {metrics['abstention_precision'] or 0:.2f} recall "
                 f"{metrics['abstention_recall']:.2f}" if metrics.get("abstention_recall") is not None else None,
                 f"retrieval recall@5 {metrics['retrieval_recall_at_5']:.2f}"
                 if metrics.get("retrieval_recall_at_5") is not None else None]
        head = ", ".join(p for p in parts if p) + f" on {n:,} items"
    elif metrics.get("slot_f1") is not None:
        head = f"slot F1 {metrics['slot_f1']:.2f} on {n:,} items"
    elif metrics.get("accuracy") is not None:
        ece = f", calibration error {metrics['ece']:.3f}" if metrics.get("ece") is not None else ""
        head = f"accuracy {metrics['accuracy']:.2f} on {n:,} items{ece}"
    else:
        head = f"{n} items"
    return f"eval {task}: {head}; report in {metrics['report']}"


def _calibrated(policy: Any) -> str:
    """A calibrated cascade in words: what it answers, escalates and leaves to people."""
    e = policy.expected
    steps = " then ".join(f"{s.tier} (answers at confidence {s.threshold:.2f} or above)" if s.threshold <= 1 else
                          f"{s.tier} (never answers alone)" for s in policy.steps)
    return (f"{policy.task} policy: {steps}; expected accuracy {e['accuracy_on_answered']:.2f} on what it answers, "
            f"{e['escalation_rate']:.0%} escalated, {e['human_review_rate']:.0%} to human review, "
            f"${e['cost_per_1000_usd']:.4f} per 1,000 calls")


def _by_line(e: LitegateError, data: Path) -> str:
    """A training error about ``examples.N...`` (the library's names) as FILE:LINE, the place
    in the file the user wrote (blank lines counted, as an editor counts them)."""
    import re

    found = re.match(r"examples\.(\d+)(?:\.(.+))?$", getattr(e, "param", None) or "")
    if not found:
        return e.message
    try:
        lines = data.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return e.message
    numbered = [n for n, line in enumerate(lines, 1) if line.strip()]
    index = int(found.group(1))
    if index >= len(numbered):
        return e.message
    where = f"{data}:{numbered[index]}"
    field = found.group(2)
    message = e.message.replace(f"'{e.param}'", f"'{field}'" if field else "this line", 1)
    return f"{where}: {message}"


app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def train(name: Annotated[str, typer.Argument(help="the classifier's or extractor's name (tool_decision: "
                                                   "a name for your cases)")],
          data: Annotated[Path, typer.Option(help='JSONL: {"text", "label"} per line (classify), '
                                                  '{"text", "data": {field: value}} (extract) or '
                                                  '{"messages", "tools", "call": true|false} (tool_decision)')],
          task: Annotated[str, typer.Option(help="classify (a nano classifier), extract (a nano "
                                                 "extractor) or tool_decision (when tool_choice auto calls a "
                                                 "tool)")] = "classify",
          fields: Annotated[Path | None, typer.Option(help="extract: a JSON file mapping each field to "
                                                              "its description (default: the keys seen)")] = None,
          learn: Annotated[bool, typer.Option("--learn", help="keep the texts of calls made to it, so "
                                                              "corrections and stronger tiers can teach it "
                                                              "(litegate distill)")] = False,
          encoder: Annotated[str | None, typer.Option(help="fast (default), accurate, multilingual, or auto "
                                                            "(multilingual when the data is not English); "
                                                            "see litegate encoders")] = None,
          model: Annotated[str, typer.Option("--model", "-m", help="tool_decision: the model whose call "
                                                                   "probability is measured (lite, pro or a "
                                                                   "GGUF)")] = "lite",
          base: Annotated[str | None, typer.Option(help="extend a prebuilt extractor (receipt, invoice) with "
                                                        "your examples: {\"text\", \"data\"} lines, text as "
                                                        "litegate read prints it")] = None,
          tune: Annotated[bool, typer.Option("--tune", help="classify: first tune the encoder's top layers on "
                                                            "the examples (contrastive; needs litegate[tune], "
                                                            "PyTorch, at training only)")] = False,
          tune_layers: Annotated[int | None, typer.Option(help="--tune: how many top layers to tune "
                                                                "(default 2)")] = None,
          tune_epochs: Annotated[int | None, typer.Option(help="--tune: passes over the examples "
                                                                "(default 3)")] = None
          ) -> None:
    """Train (or retrain, as a new version) a nano classifier or extractor."""
    from dataclasses import asdict

    from litegate.cli.counting import CountingEncoders
    from litegate.evals.datasets import read_jsonl

    try:
        if task not in ("classify", "extract", "tool_decision"):
            fail("--task is classify, extract or tool_decision")
        if not tune and (tune_layers is not None or tune_epochs is not None):
            fail("--tune-layers and --tune-epochs go with --tune")
        examples = read_jsonl(data)
        if base is not None:
            extended = _extend(name, base, examples)
            err.print(_extended(extended), highlight=False)
            print(json.dumps(asdict(extended)))
            return
        if task == "tool_decision":
            print(json.dumps(_train_tool_decision(name, examples, model)))
            return
        counted: list[Callable[[int], None]] = []
        encoders = CountingEncoders(settings().model_cache_dir(), lambda n: counted[0](n))
        with work_progress(f"training {name} on {len(examples):,} examples") as advance:
            counted.append(advance)
            tuning = {k: v for k, v in (("layers", tune_layers), ("epochs", tune_epochs)) if v is not None}
            info = _train(encoders, task, name, examples, fields, learn, encoder, tuning if tune else None)
    except LitegateError as e:
        fail(_by_line(e, data))
    err.print(_trained(task, info), highlight=False)
    print(json.dumps(asdict(info)))

@app.command("encoders")
def encoders_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The nano encoders: size, speed and languages (choose one with train --encoder)."""
    from litegate.nano.encoders import EncoderRegistry

    rows = EncoderRegistry(settings().model_cache_dir()).describe()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'name':<13}{'model':<24}{'dims':>5}{'MB':>6}  {'speed':<10}{'classifiers read':<18}{'extractors':<11}"
          f"{'installed':<10}languages")
    for r in rows:
        print(f"{r['name'] + (' *' if r['default'] else ''):<13}{r['model']:<24}{r['dimensions']:>5}"
              f"{r['size_mb']:>6}  {r['speed']:<10}{_reading(r['classifier_layers']):<18}"
              f"{'yes' if r['extractors'] else 'no':<11}"
              f"{'yes' if r['installed'] else 'no':<10}{r['languages']}")
    print("* the default. speed: one text per call, against fast, side by side (bench/nano.py); classifiers read: "
          "the layers a new classifier joins (the sentence vector and a lower layer, one pass); weights not "
          "installed are installed on first use.")


def _reading(layers: list[int] | None) -> str:
    return "sentence vector" if not layers else f"layers {' + '.join(map(str, layers))}"


@app.command("eval")
def eval_command(task: Annotated[str, typer.Option(help="a task with a metric: classify, route, extract, answer")],
                 data: Annotated[Path, typer.Option(help="JSONL records")],
                 classifier: str | None = None,
                 extractor: Annotated[str | None, typer.Option(help="a trained nano extractor")] = None,
                 labels: Annotated[str | None, typer.Option(help="labels for LLM tiers")] = None,
                 fields: Annotated[str | None, typer.Option(help="fields for extract")] = None,
                 collection: Annotated[str | None, typer.Option(help="answer: retrieve from this collection "
                                                                     "(else each record's context)")] = None,
                 top_k: Annotated[int, typer.Option(min=1, max=20, help="answer --collection: chunks read per "
                                                                        "question")] = 5,
                 tier: TierOpt = "auto",
                 limit: Annotated[int | None, typer.Option(help="a fixed random sample of N records")] = None,
                 report: Annotated[Path | None, typer.Option(help="HTML report path")] = None,
                 model: ModelOpt = "lite") -> None:
    """Score a task on labeled JSONL: prints JSON metrics, writes an HTML report. answer takes
    {"question", "answers": [...]} records ([] when the documents do not say) and, with
    --collection, also scores retrieval."""
    from litegate.evals.datasets import read_jsonl
    from litegate.evals.runner import evaluate, public_metrics, write_report

    rt = None
    try:
        every = read_jsonl(data)
        records = sample(every, limit)
        request: dict[str, Any] = {"tier": tier}
        if classifier:
            request["classifier"] = classifier
        if extractor:
            request["extractor"] = extractor
        if labels:
            request["labels" if task != "route" else "routes"] = split_pairs(labels)
        elif task in ("classify", "route") and not classifier:
            request["labels" if task == "classify" else "routes"] = sorted(
                {r.get("label") for r in every if isinstance(r.get("label"), str)})
        if collection:
            if task != "answer":
                fail("--collection goes with --task answer")
            request.update(collection=collection, top_k=top_k)
        if fields:
            parsed = split_pairs(fields)
            request["fields"] = {n: "" for n in parsed} if isinstance(parsed, list) else parsed
        rt = runtime(model, record=False)  # evals do not bill features; tier auto follows a calibrated policy
        with item_progress(len(records), f"eval {task}") as progress:
            bar = progress.add_task("eval", total=len(records))
            metrics = evaluate(rt.tasks, task, records, request, advance=lambda n: progress.advance(bar, n))
    except LitegateError as e:
        fail(e.message)
    finally:
        if rt is not None:
            rt.close()
    path = report or data.with_suffix(f".{task}.report.html")
    write_report(metrics, path, f"litegate eval: {task} on {data.name}")
    out = public_metrics(metrics)
    out["report"] = str(path)
    err.print(_scored(task, out), highlight=False, soft_wrap=True)
    print(json.dumps(out, indent=2))

@app.command()
def calibrate(task: Annotated[str, typer.Option(help="classify, route or extract")],
              data: Annotated[Path, typer.Option(help='labeled JSONL ({"text", "label"} or {"text", "data"})')],
              tiers: Annotated[str, typer.Option(help="tiers in order, e.g. nano,lite")] = "nano,lite",
              classifier: str | None = None,
              extractor: Annotated[str | None, typer.Option(help="extract: a trained nano extractor (its "
                                                                    "fields, and examples for LLM tiers)")] = None,
              labels: Annotated[str | None, typer.Option(help="labels for LLM tiers")] = None,
              target_accuracy: float | None = None, max_escalation: float | None = None,
              feature: Annotated[str | None, typer.Option(help="a policy for one feature only")] = None,
              limit: Annotated[int | None, typer.Option(help="a fixed random sample of N records")] = None,
              model: ModelOpt = "lite") -> None:
    """Measure each tier on labeled data and write cascade thresholds for tier 'auto'."""
    import numpy as np

    from litegate.evals.datasets import read_jsonl
    from litegate.tasks.cascade import TierResults, choose_policy

    rt = None
    try:
        if task not in ("classify", "route", "extract"):
            fail("calibrate supports --task classify, route and extract")
        if task == "extract" and not extractor:
            fail("calibrate --task extract needs --extractor NAME (its fields are what is extracted)")
        every = read_jsonl(data)
        records = sample(every, limit)
        if not records:
            fail("the calibration data is empty")
        tier_list = [t.strip() for t in tiers.split(",") if t.strip()]
        if not 1 <= len(tier_list) <= 2:
            fail("--tiers takes one or two tiers, such as nano,lite")
        rt = runtime(model, record=False)
        if task == "extract":
            from litegate.evals.metrics import field_correct

            fields = list(rt.extractors.get(extractor).info.fields)
            label_set: Any = None
        else:
            label_set = split_pairs(labels) if labels else sorted({r["label"] for r in every})
        results = []
        for tier in tier_list:
            base: dict[str, Any] = {"tier": tier}
            if task == "extract":
                base["extractor"] = extractor
            elif task == "route":
                base["routes"] = label_set
            elif "classifier" in rt.tasks.tier(tier).capabilities:
                base["classifier"] = classifier
            else:
                base["labels"] = label_set
            conf, ok, cost = [], [], []
            with item_progress(len(records), f"calibrate {tier}") as progress:
                bar = progress.add_task(tier, total=len(records))
                for rec in records:
                    answer = rt.tasks.run(task, {**base, "text": rec["text"]})
                    conf.append(answer["confidence"])
                    if task == "extract":  # a call is right when every field is (stated or null)
                        gold = rec.get("data") or rec.get("slots") or {}
                        ok.append(float(all(field_correct(gold.get(f), answer["data"].get(f)) for f in fields)))
                    else:
                        ok.append(float((answer.get("label") or answer.get("route")) == rec["label"]))
                    cost.append(answer["cost_usd"])
                    progress.advance(bar)
            results.append(TierResults(tier, np.array(conf), np.array(ok), np.array(cost)))
        policy = choose_policy(task, results, target_accuracy=target_accuracy, max_escalation=max_escalation,
                               feature=feature)
        path = rt.policies.save(policy)
    except LitegateError as e:
        fail(e.message)
    finally:
        if rt is not None:
            rt.close()
    err.print(_calibrated(policy), highlight=False, soft_wrap=True)
    print(json.dumps({"policy": str(path), "steps": [s.__dict__ for s in policy.steps], **policy.expected},
                     indent=2))

@app.command()
def dataset(name: Annotated[str, typer.Argument(help="clinc150 or nlupp")],
            split: Annotated[str, typer.Option(help="clinc150: train, val or test")] = "test",
            domain: Annotated[str | None, typer.Option(help="clinc150: keep one domain's intents (banking, "
                                                              "travel, ...)")] = None,
            per_label: Annotated[int | None, typer.Option(help="clinc150: at most N records per intent, "
                                                                "a fixed random sample (--seed)")] = None,
            include_oos: Annotated[bool, typer.Option(help="clinc150: add the out-of-scope records "
                                                           "(label \"oos\")")] = False,
            folds: Annotated[str, typer.Option(help="nlupp: the folds to write, N or N-M (of 0-19)")] = "0-19",
            seed: Annotated[int, typer.Option(help="clinc150: the sample's seed for --per-label")] = 0) -> None:
    """Write a public labeled set as JSONL to stdout (the format eval and train read)."""
    from litegate.evals import datasets as ds

    try:
        if name == "clinc150":
            records = ds.clinc150(split, domain=domain, include_oos=include_oos, per_label=per_label, seed=seed)
        elif name == "nlupp":
            lo, _, hi = folds.partition("-")
            records = ds.nlupp_banking(range(int(lo), int(hi or lo) + 1))
        else:
            fail("dataset is clinc150 or nlupp")
    except (LitegateError, OSError) as e:
        fail(getattr(e, "message", str(e)))
    try:
        ds.write_jsonl(records, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # | head: the reader has what it wanted
        sys.stderr.close()


def _train_tool_decision(name: str, lines: list[dict[str, Any]], model: str = "lite") -> dict[str, Any]:
    """The shipped call decision refitted with the user's labeled cases, saved in the home folder,
    where every server started on it picks it up."""
    from litegate.chat.decision import SHIPPED, ToolDecision, case_features, read_cases, refit
    from litegate.errors import InvalidRequest

    cases = read_cases(lines)
    if not cases:
        raise InvalidRequest("no cases in the file: one JSON object per line")
    rt = runtime(model, record=False)
    try:
        engine = rt.registry.engine(rt.default_model)
        encoder = rt.encoders.default
        base = ToolDecision.load(SHIPPED)
        rows = [case_features(engine, encoder, messages, tools, with_relevance=base.uses_relevance)
                for messages, tools, _ in cases]
    finally:
        rt.close()
    decision = refit(base, rows, [call for _, _, call in cases])
    decision.trained_on.update(user_cases_name=name, user_cases_model=model)
    path = settings().home / "tool_decision.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    decision.save(path)
    right = sum((decision.probability(r) >= decision.threshold) == call for r, (_, _, call) in zip(rows, cases))
    return {"task": "tool_decision", "path": str(path), "cases": len(cases),
            "right_on_your_cases": round(right / len(cases), 3), "trained_on": decision.trained_on}
