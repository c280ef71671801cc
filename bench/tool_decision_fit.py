"""Fit the learned call decision on the ``tuning`` cases of bench/tool_decision_data.py and
measure it against the fixed thresholds it replaces, on the tuning and the untouched cases.

    python bench/tool_decision_fit.py MEASURED.jsonl [--encoder-rows ENCODER.jsonl] [--own-weight W]
                                     [--relevance-rows RELEVANCE.jsonl [--wording W]]
                                     [--recall R] [--against SAVED.json] [--write]

``MEASURED`` holds cases with the lite model's call probability (an LLM pass each);
``ENCODER`` (``--encoder-only``) every case with the encoder's signals alone (a measured case
takes its encoder signals from there, so a signal added since its LLM pass is read too). The
encoder stage is fitted on every tuning case, the mix with the model's probability on the
measured ones. Prints JSON: each encoder signal's AUC alone, and decision accuracy (a call when
one is due, none when none is) of the fixed rule (p_call >= 0.5 or tool_match >= 0.16) and of the
learned decision on the measured cases,
per split and source, and of the learned decision on every case with the call probability at
the measured cases' median (``--against`` scores an earlier saved decision the same way).
``--recall R`` sets the decision's threshold on the tuning cases: the highest that still calls
on a share R of the due calls there (a missed call costs the user more than an extra one the
argument check may still drop). ``--relevance-rows`` (``tool_decision_data.py --relevance``) adds the
model's yes/no on the best tool to the mix, fitted on the tuning cases where it was measured (with the
call probability at its median where that was not measured); the recall rule still takes every due
tuning call (the relevance at its median where it was not measured), and the decision is scored
before (``--against``) and after on every case where the relevance was measured, with the signal's
own AUC. With ``--write`` the decision is saved as the package's shipped one
(src/litegate/chat/tool_decision.json).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from litegate.chat.decision import ENCODER_FEATURES, FEATURES, SHIPPED, ToolDecision, fit, logit, rule_of_thresholds


def read(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # an earlier negative rule ("~" ids) paired questions with tools that could answer them
    return [r for r in rows if not (r["source"] == "generated_related_tool" and "~~" not in r["id"])]


def rule_call(row: dict[str, Any]) -> bool:
    p = 1 / (1 + math.exp(-row["features"]["logit_p_call"]))
    return rule_of_thresholds(p, row["features"]["tool_match"])


def accuracy(rows: list[dict[str, Any]], decide: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    if not rows:
        return {}
    out: dict[str, Any] = {"n": len(rows), "all": round(sum(decide(r) == r["call"] for r in rows) / len(rows), 3)}
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        out[source] = f"{sum(decide(r) == r['call'] for r in part)}/{len(part)}"
    return out


def threshold_for_recall(probabilities: list[float], recall: float) -> float:
    """The highest threshold at which a share ``recall`` of the due calls still get called."""
    ordered = sorted(probabilities, reverse=True)
    k = max(0, min(len(ordered) - 1, math.ceil(recall * len(ordered)) - 1))
    return round(min(0.5, ordered[k]), 4)


def with_encoder_signals(row: dict[str, Any], encoder_row: dict[str, Any] | None) -> dict[str, Any]:
    """A measured case with the encoder's signals of its encoder-only row (measured by the current
    code, so a signal added since the call probability was measured is there too)."""
    if encoder_row is None:
        return row
    return {**row, "features": {**encoder_row["features"], "logit_p_call": row["features"]["logit_p_call"]}}


def median_p_call(measured: list[dict[str, Any]]) -> float:
    """The call log-odds that stands in for cases whose call probability was not measured."""
    median = sorted(r["features"]["logit_p_call"] for r in measured if r["split"] == "tuning")
    return median[len(median) // 2] if median else 0.0


def with_relevance(rows: dict[str, dict[str, Any]], path: Path, wording: str, fill: float) -> None:
    """Add the relevance pass's log-odds (one wording) to the rows measured in ``path``."""
    for line in read(path):
        row = rows.get(line["id"])
        if row is None or wording not in line["relevance"]:
            continue
        row["features"] = {"logit_p_call": fill, **row["features"],
                           "logit_relevance": logit(line["relevance"][wording])}
        row["p_relevant"] = line["relevance"][wording]


def fitted(tuning: list[dict[str, Any]], fill: float, own_weight: float, recall: float) -> ToolDecision:
    """The decision fitted on the tuning rows."""
    sources: dict[str, int] = {}
    for r in tuning:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    weights = [own_weight if r["source"].startswith("project") else 1.0 for r in tuning]
    trained_on = {
        "cases": len(tuning), "with_p_call": sum("p_call" in r for r in tuning), "sources": sources,
        "own_weight": own_weight,
        "data": "BFCL v4 non-live categories (Apache-2.0, gorilla repository; the tuning half by id hash), "
                "generated related-tool negatives, litegate's own tuning set (chat/tool_cases.py); "
                "the model's call probability measured on the lite model"}
    # the encoder signals every row carries (rows recorded before a signal was added lack it)
    present = tuple(k for k in ENCODER_FEATURES if all(k in r["features"] for r in tuning))
    model = fit([r["features"] for r in tuning], [r["call"] for r in tuning], weights, trained_on, present)
    if recall:
        due = [r for r in tuning if r["call"]]  # the relevance pass at its median where it was not measured
        model.threshold = threshold_for_recall(
            [model.probability({"logit_p_call": fill, **r["features"]}) for r in due], recall)
        model.trained_on["threshold"] = f"highest keeping {recall:.0%} of the tuning half's due calls"
    return model


def relevance_report(rows: list[dict[str, Any]], models: dict[str, ToolDecision], fill: float
                     ) -> dict[str, Any]:
    """On the cases with the relevance pass measured: the signal's AUC alone, and each decision's
    accuracy per split and source (with how often the new one needed the pass)."""
    out: dict[str, Any] = {}
    for split in ("tuning", "untouched"):
        part = [r for r in rows if r["split"] == split and "p_relevant" in r]
        if not part:
            continue
        auc = {}
        for name, keep in (("all", lambda r: True), ("bfcl_and_generated", lambda r: not r["source"].startswith(
                "project")), ("own", lambda r: r["source"].startswith("project"))):
            sub = [r for r in part if keep(r)]
            if len({r["call"] for r in sub}) == 2:
                auc[name] = round(roc_auc_score([r["call"] for r in sub], [r["p_relevant"] for r in sub]), 3)
        out[split] = {"auc_of_the_signal_alone": auc}
        for name, model in models.items():
            out[split][name] = accuracy(part, lambda r, m=model: m.probability({"logit_p_call": fill, **r["features"]})
                                        >= m.threshold)
        new = models["learned"]
        out[split]["relevance_pass_needed"] = sum(
            new.settled({"logit_p_call": fill, **r["features"]}) is None for r in part) / len(part)
    return out


def signal_auc(everything: dict[str, list[dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    """Each signal's AUC alone against "a call is due", per split, on BFCL with the generated negatives
    and on the project's own cases apart (where the encoder is weakest)."""
    out: dict[str, Any] = {}
    for split, rows in everything.items():
        for part, keep in (("bfcl_and_generated", False), ("own", True)):
            sub = [r for r in rows if r["source"].startswith("project") == keep]
            if len({r["call"] for r in sub}) == 2:
                out.setdefault(split, {})[part] = {k: round(roc_auc_score(
                    [r["call"] for r in sub], [r["features"][k] for r in sub]), 3) for k in names}
    return out


def scored(model: ToolDecision, fill: float, measured: dict[str, list[dict[str, Any]]],
           everything: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def on_measured(r: dict[str, Any]) -> bool:
        return model.probability(r["features"]) >= model.threshold

    def on_all(r: dict[str, Any]) -> bool:
        return model.probability({"logit_p_call": fill, **r["features"]}) >= model.threshold

    return {"threshold": model.threshold,
            "measured_cases": {s: accuracy(rows, on_measured) for s, rows in measured.items()},
            "all_cases_at_median_p_call": {s: accuracy(rows, on_all) for s, rows in everything.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("measured", type=Path)
    ap.add_argument("--encoder-rows", type=Path, help="cases with the encoder's signals only (many more)")
    ap.add_argument("--own-weight", type=float, default=1.0,
                    help="weight of the project's own cases against BFCL's and the generated ones")
    ap.add_argument("--recall", type=float, default=0.0,
                    help="threshold: the highest keeping this share of the tuning half's due calls (0: 0.5)")
    ap.add_argument("--against", type=Path, help="also score this saved decision (a tool_decision.json) the same way")
    ap.add_argument("--relevance-rows", type=Path, help="tool_decision_data.py --relevance lines to add to the mix")
    ap.add_argument("--wording", default="exact", help="which wording of the relevance question to use")
    ap.add_argument("--write", action="store_true", help="save as the shipped decision")
    args = ap.parse_args()
    by_id = {r["id"]: r for r in (read(args.encoder_rows) if args.encoder_rows else [])}
    measured = [with_encoder_signals(r, by_id.get(r["id"])) for r in read(args.measured)]
    by_id.update({r["id"]: r for r in measured})  # a measured case replaces its encoder-only row
    fill = median_p_call(measured)
    if args.relevance_rows:
        with_relevance(by_id, args.relevance_rows, args.wording, fill)
    model = fitted([r for r in by_id.values() if r["split"] == "tuning"], fill, args.own_weight, args.recall)
    split = {s: [r for r in measured if r["split"] == s] for s in ("tuning", "untouched")}
    everything = {s: [r for r in by_id.values() if r["split"] == s] for s in ("tuning", "untouched")}
    print(json.dumps({
        "bench": "tool_decision_fit", "features": list(FEATURES),
        "encoder_coef": [round(c, 3) for c in model.coef], "mix": [round(c, 3) for c in model.mix],
        "auc_per_signal": signal_auc(everything, model.encoder_features),
        "fixed_thresholds_measured_cases": {s: accuracy(rows, rule_call) for s, rows in split.items()},
        "learned": scored(model, fill, split, everything),
        **({"against": {"path": str(args.against), **scored(ToolDecision.load(args.against), fill, split,
                                                              everything)}} if args.against else {}),
        **({"relevance": {"wording": args.wording, "mix": model.mix, "range": model.relevance_range,
                          **relevance_report(list(by_id.values()), {"learned": model, **(
                              {"against": ToolDecision.load(args.against)} if args.against else {})}, fill)}}
           if args.relevance_rows else {}),
    }, indent=2))
    if args.write:
        model.save(SHIPPED)


if __name__ == "__main__":
    main()
