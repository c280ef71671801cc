"""Fit the learned call decision on the ``tuning`` cases of bench/tool_decision_data.py and
measure it against the fixed thresholds it replaces, on the tuning and the untouched cases.

    python bench/tool_decision_fit.py cases.jsonl [--write]

Prints JSON: decision accuracy (call when one is due, no call when none is) of the fixed rule
(p_call >= 0.5 or tool_match >= 0.16) and of the learned decision, per split and per source.
With ``--write`` the fitted decision is saved as the package's shipped one
(src/litegate/chat/tool_decision.json).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from litegate.chat.decision import FEATURES, SHIPPED, fit, rule_of_thresholds


def rule_call(row: dict[str, Any]) -> bool:
    p = 1 / (1 + math.exp(-row["features"]["logit_p_call"]))
    return rule_of_thresholds(p, row["features"]["tool_match"])


def accuracy(rows: list[dict[str, Any]], decide) -> dict[str, Any]:
    if not rows:
        return {}
    out: dict[str, Any] = {"n": len(rows), "all": round(sum(decide(r) == r["call"] for r in rows) / len(rows), 3)}
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        out[source] = f"{sum(decide(r) == r['call'] for r in part)}/{len(part)}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", type=Path)
    ap.add_argument("--write", action="store_true", help="save as the shipped decision")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()]
    # an earlier negative rule ("~" ids) paired questions with tools that could answer them
    rows = [r for r in rows if not (r["source"] == "generated_related_tool" and "~~" not in r["id"])]
    tuning = [r for r in rows if r["split"] == "tuning"]
    untouched = [r for r in rows if r["split"] == "untouched"]
    sources: dict[str, int] = {}
    for r in tuning:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    model = fit([r["features"] for r in tuning], [r["call"] for r in tuning], trained_on={
        "cases": len(tuning), "sources": sources,
        "data": "BFCL v4 non-live categories (Apache-2.0, gorilla repository), generated related-tool negatives, "
                "litegate's own tuning set (chat/tool_cases.py); features measured on the lite model"})

    def learned(r: dict[str, Any]) -> bool:
        return model.probability(r["features"]) >= model.threshold

    print(json.dumps({
        "bench": "tool_decision_fit", "features": list(FEATURES),
        "coef": [round(c, 3) for c in model.coef], "intercept": round(model.intercept, 3),
        "fixed_thresholds": {"tuning": accuracy(tuning, rule_call), "untouched": accuracy(untouched, rule_call)},
        "learned": {"tuning": accuracy(tuning, learned), "untouched": accuracy(untouched, learned)},
    }, indent=2))
    if args.write:
        model.save(SHIPPED)


if __name__ == "__main__":
    main()
