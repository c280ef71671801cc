"""The call decision in use re-decided on the items of a bench/bfcl.py dump made with the fixed
thresholds (``LITEGATE_TOOL_DECISION=rule``), so the two decisions are compared on the same items
and the same replies.

    python bench/bfcl_redecide.py --data DIR DUMP [DUMP ...]

The fixed rule calls on almost every item, so its dump holds the call each item would get. For each
litegate row, the learned decision (the user's refit one in LITEGATE_HOME, else the shipped one) is
computed from the call probability the reply reports and the encoder's signals: where it declines,
the outcome is no call (right on irrelevance, wrong elsewhere); where it calls and the rule called
too, the outcome is the rule's (the same call, the same argument check); where it calls and the rule
did not, the outcome is unknown and counted apart. Prints JSON per peer and category.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bfcl import CATEGORIES, load, openai_tools  # noqa: E402
from litegate.chat.decision import encoder_signals, features, load_for  # noqa: E402
from litegate.chat.tools import parse_tools  # noqa: E402
from litegate.config import Settings  # noqa: E402
from litegate.runtime import build  # noqa: E402


def outcome(row: dict[str, Any], learned_call: bool) -> bool | None:
    rule_called = bool(row["decision"]["call"] or row["decision"].get("grounding"))
    if not learned_call:
        return row["category"] == "irrelevance"
    return (row["verdict"] is None) if rule_called else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="BFCL's bfcl_eval/data folder (non-live files)")
    ap.add_argument("dumps", type=Path, nargs="+")
    args = ap.parse_args()
    rows = [json.loads(line) for path in args.dumps for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["peer"].startswith("litegate") and r.get("decision")]
    items = {q["id"]: q for c in {r["category"] for r in rows} if c in CATEGORIES for q in load(args.data, c)}
    model = load_for(Settings().home)
    if model is None:
        raise SystemExit("no learned decision to compare (the shipped tool_decision.json is missing)")
    counts: dict[str, Counter[str]] = {}
    latency: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), model="lite", record=False)
        encoder = rt.encoders.default
        for r in rows:
            q = items[r["id"]]
            signals = encoder_signals(encoder, q["question"][0][-1]["content"],
                                      parse_tools(openai_tools(q["function"])[0]))
            learned_call = model.probability(features(r["decision"]["p_call"], signals)) >= model.threshold
            ok = outcome(r, learned_call)
            c = counts.setdefault(f"{r['peer']}/{r['category']}", Counter())
            c["n"] += 1
            c["rule_right"] += r["verdict"] is None
            c["learned_right"] += bool(ok)
            c["learned_unknown"] += ok is None
            c["learned_declined"] += not learned_call
            latency.setdefault(f"{r['peer']}/{r['category']}", []).append(r["latency_ms"])
        rt.close()
    loads = [r["load_1m"] for r in rows if "load_1m" in r]
    print(json.dumps({"bench": "bfcl_redecide", "threshold": model.threshold, "results": {
        key: {**c, "rule_accuracy": round(c["rule_right"] / c["n"], 3),
              "learned_accuracy": round(c["learned_right"] / c["n"], 3),
              "latency_p50_s_of_the_rule_run": round(statistics.median(latency[key]) / 1000, 1)}
        for key, c in sorted(counts.items())},
        "load_1m_during_the_run": {"median": statistics.median(loads), "min": min(loads), "max": max(loads)}
        if loads else None}, indent=2))


if __name__ == "__main__":
    main()
