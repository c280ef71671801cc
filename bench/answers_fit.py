"""Fits the answer task's abstention score on a tuning split's recorded outputs (bench/answers.py
--items) and writes it where the package reads it (src/litegate/tasks/abstention.json); with
--check, scores another split's recorded outputs under the fitted score instead (its decisions
follow from the recorded signals alone: the model's call is deterministic). Prints JSON.

    python bench/answers.py --split tune --items /tmp/tune.json
    python bench/answers_fit.py /tmp/tune.json
    python bench/answers_fit.py /tmp/tune.json --check /tmp/test.json --no-write

With --reader, the nano reader's score instead (its signals, READER_FEATURES), from
bench/answers.py --nano --items outputs (ITEMS.nano.json), written to abstention_reader.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from litegate.evals.answers import answer_metrics, gold_answers, token_f1
from litegate.tasks.abstention import FEATURES, READER_FEATURES, SHIPPED_READER, AbstentionModel, fit
from litegate.tasks.spans import echo
from litegate.tasks.text import NOT_IN_DOCUMENTS

TASKS = Path(__file__).resolve().parent.parent / "src" / "litegate" / "tasks"
SHIPPED = TASKS / "abstention.json"


def candidate(output: dict[str, Any]) -> str:
    """What the model would have answered, whether or not the score let it."""
    return output["answer"] if output.get("found") else output.get("unsure_answer", "")


def rows(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[bool], list[bool]]:
    signals, right, unanswerable = [], [], []
    for item in items:
        golds, said = gold_answers(item["record"]), candidate(item["output"])
        # a signal added after the outputs were recorded is computed from what they hold
        signals.append({"echo": echo(item["record"]["question"], said) if said else None,
                        **item["output"]["signals"]})
        right.append(bool(golds and said and max(token_f1(said, g) for g in golds) >= 0.5))
        unanswerable.append(not golds)
    return signals, right, unanswerable


def decide(model: AbstentionModel, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's output as the task gives it under ``model``."""
    out = []
    for item in items:
        o, said = item["output"], candidate(item["output"])
        signals = {"echo": echo(item["record"]["question"], said) if said else None, **o["signals"]}
        p = model.p_right(signals) if said else 0.0
        found = bool(said) and p >= model.threshold
        out.append({"answer": said if found else NOT_IN_DOCUMENTS, "found": found,
                    "confidence": p if found else model.p_unanswerable(signals),
                    "sources": o.get("sources") if found else []})
    return out


def separation(model: AbstentionModel, items: list[dict[str, Any]], min_precision: float) -> dict[str, Any]:
    """How well P(right) tells unanswerable questions apart, whatever the threshold: the AUC of
    1 - P(right) for "the documents do not say", and the best abstention recall at precision
    >= ``min_precision`` over all thresholds (on a split not tuned on, an upper bound)."""
    scored = []
    for item in items:
        said = candidate(item["output"])
        signals = {"echo": echo(item["record"]["question"], said) if said else None, **item["output"]["signals"]}
        scored.append((model.p_right(signals) if said else 0.0, not gold_answers(item["record"])))
    pos = [p for p, u in scored if u]
    neg = [p for p, u in scored if not u]
    auc = sum((n > p) + 0.5 * (n == p) for p in pos for n in neg) / max(1, len(pos) * len(neg))
    best = 0.0
    for t in sorted({p for p, _ in scored} | {1.01}):
        abstained = [u for p, u in scored if p < t]
        if abstained and sum(abstained) / len(abstained) >= min_precision:
            best = max(best, sum(abstained) / max(1, len(pos)))
    return {"auc_unanswerable": round(auc, 4), "best_recall_at_precision": round(best, 4)}


def cross_validated(signals: list[dict[str, Any]], right: list[bool], unanswerable: list[bool],
                    features: tuple[str, ...], folds: int = 5) -> dict[str, Any]:
    """The AUC of 1 - P(right) for unanswerable questions, each item scored by a fit on the other
    folds of the tuning split: which signals carry over to questions not fit on."""
    scored: list[tuple[float, bool]] = []
    for k in range(folds):
        train = [i for i in range(len(signals)) if i % folds != k]
        model = fit([signals[i] for i in train], [right[i] for i in train], [unanswerable[i] for i in train],
                    features=features)
        scored += [(model.p_right(signals[i]), unanswerable[i]) for i in range(len(signals)) if i % folds == k]
    pos = [p for p, u in scored if u]
    neg = [p for p, u in scored if not u]
    return {"features": list(features),
            "cv_auc_unanswerable": round(sum((n > p) + 0.5 * (n == p) for p in pos for n in neg)
                                         / max(1, len(pos) * len(neg)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tune", type=Path, help="bench/answers.py --items output on the tuning split")
    ap.add_argument("--check", type=Path, help="score this split's recorded outputs under the fitted score")
    ap.add_argument("--min-precision", type=float, default=0.8)
    ap.add_argument("--no-write", action="store_true", help="do not replace the shipped score")
    ap.add_argument("--features", help="comma-separated signals to fit on (default: all of FEATURES)")
    ap.add_argument("--reader", action="store_true", help="the nano reader's outputs and score (READER_FEATURES)")
    args = ap.parse_args()
    tune = json.loads(args.tune.read_text(encoding="utf-8"))
    signals, right, unanswerable = rows(tune)
    features = tuple(args.features.split(",")) if args.features else READER_FEATURES if args.reader else FEATURES
    model = fit(signals, right, unanswerable, min_precision=args.min_precision, features=features)
    model.trained_on = {"items": len(tune), "unanswerable": sum(unanswerable), "right_if_answered": sum(right),
                        "data": "SQuAD 2.0 train (CC BY-SA 4.0), the tuning split (bench/data/squad2_tune.jsonl, "
                                "the article The Legend of Zelda: Twilight Princess); the signals of "
                                + ("the nano reader" if args.reader else "the embedded lite model"),
                        "min_precision": args.min_precision}
    report: dict[str, Any] = {"model": json.loads(model.to_json()),
                              "cross_validated": cross_validated(signals, right, unanswerable, features)}
    for name, path in (("tune", args.tune), ("check", args.check)):
        if path is None:
            continue
        items = json.loads(path.read_text(encoding="utf-8"))
        metrics = answer_metrics([i["record"] for i in items], decide(model, items))
        report[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()
                        if not k.startswith("_")}
        report[name].update(separation(model, items, args.min_precision))
    if not args.no_write:
        (TASKS / SHIPPED_READER if args.reader else SHIPPED).write_text(model.to_json() + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
