"""The argument check and the made-up-values rule in use, re-run on the replies of bench/bfcl.py
dumps, so a change to either is compared with the run that made the dump on the same replies.

    python bench/bfcl_recheck.py --data DIR DUMP [DUMP ...] [--thresholds 0.5 0.9 ...] [--split tuning]
                                 [--decision [--decision-file PATH]]

For each litegate row that called: the calls as the dump holds them (after the check of the run)
go through the current check (chat/grounding.py) and the "respectively" pairing (chat/pairing.py);
the optional values the run's check had already left out (its ``grounding`` report) still count. A call that
made up values is declined where its ``p_due`` (reported by the run) is below the threshold, and the
reply is then no call (right on irrelevance only). With ``--decision``, a column ``decision``
declines as the decision in use does (its after-call mix when it has one: chat/decision.py,
``ToolDecision.declines_written``, with the called tool's name cover from the encoder); a call the
run had declined after writing it is judged again from its check's report (on irrelevance: right
when declined again). The rest is scored again with BFCL's rules (bench/bfcl.py). Prints JSON:
per category, the run's accuracy and the re-checked one for each threshold (``none``: the check
alone, nothing declined).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bfcl import CATEGORIES, check, load, openai_tools  # noqa: E402
from litegate.chat.decision import ToolDecision, call_name_cover, load_for  # noqa: E402
from litegate.chat.grounding import check_calls, kept_calls  # noqa: E402
from litegate.chat.pairing import pair_respectively  # noqa: E402
from litegate.chat.tools import parse_tools  # noqa: E402
from litegate.config import Settings  # noqa: E402
from litegate.runtime import build  # noqa: E402


def recheck(row: dict[str, Any], item: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The row's calls after the current check and pairing ({BFCL name: arguments} each), and
    how many values they made up (the run's own report included)."""
    tools, names = openai_tools(item["function"])
    back = {bfcl: ours for ours, bfcl in names.items()}
    calls = [{"name": back.get(name, name), "arguments": args} for c in row["calls"] for name, args in c.items()]
    request = item["question"][0][-1]["content"]
    text = "\n".join(m["content"] for m in item["question"][0] if isinstance(m.get("content"), str))
    checks = check_calls(calls, parse_tools(tools), text)
    # optional values the run's check already left out are no longer in the calls; required ones
    # it found made up still are, and are judged again
    before = sum(len(g.get("left_out") or []) for g in (row.get("decision") or {}).get("grounding") or [])
    kept = pair_respectively(kept_calls(calls, checks), request)
    return [{names.get(c["name"], c["name"]): c["arguments"]} for c in kept], before + sum(c.made_up for c in checks)


def declined_now(row: dict[str, Any], item: dict[str, Any], made_up: int, encoder: Any, decision: Any) -> bool:
    """Whether the decision in use declines the row's written call (None-safe: no call, no decline)."""
    grounding = (row.get("decision") or {}).get("grounding") or []
    written = next(iter(row["calls"][0])) if row["calls"] else (grounding[0]["name"] if grounding else None)
    if written is None:
        return False
    if not row["calls"]:  # declined after writing it in the run: its check's report
        made_up = sum(len(g.get("invented") or []) + len(g.get("left_out") or []) for g in grounding)
    tools, names = openai_tools(item["function"])
    back = {bfcl: ours for ours, bfcl in names.items()}
    fn = next((f for f in parse_tools(tools) if f.name == back.get(written, written)), None)
    request = item["question"][0][-1]["content"]
    return decision.declines_written(row["decision"].get("p_due"), made_up,
                                     lambda: call_name_cover(encoder, request, fn) if fn is not None else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="BFCL's bfcl_eval/data folder (non-live files)")
    ap.add_argument("dumps", type=Path, nargs="+")
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99])
    ap.add_argument("--split", choices=["tuning", "untouched", "all"], default="all")
    ap.add_argument("--decision", action="store_true", help="also decline as the decision in use does")
    ap.add_argument("--decision-file", type=Path, help="with --decision: this decision instead of the shipped one")
    args = ap.parse_args()
    decision = ToolDecision.load(args.decision_file) if args.decision_file else load_for(None)
    encoder, rt = None, None
    if args.decision:
        rt = build(Settings(home=Path(tempfile.mkdtemp())), model="lite", record=False)
        encoder = rt.encoders.default
    rows = {}
    for path in args.dumps:  # the last reply of an item wins (a resumed run)
        for line in path.read_text().splitlines():
            if line.strip() and (r := json.loads(line))["peer"] == "litegate" and r.get("decision") is not None:
                if args.split in ("all", r["split"]):
                    rows[(r["category"], r["id"])] = r
    items = {q["id"]: q for c in {c for c, _ in rows} if c in CATEGORIES for q in load(args.data, c)}
    counts: dict[str, Counter[str]] = {}
    for (category, item_id), r in sorted(rows.items()):
        c = counts.setdefault(category, Counter())
        c["n"] += 1
        c["run_right"] += r["verdict"] is None
        calls, made_up = recheck(r, items[item_id]) if r["calls"] else ([], 0)
        c["made_up"] += made_up > 0
        p_due = r["decision"].get("p_due")
        for t in ["none", *args.thresholds]:
            declined = made_up > 0 and t != "none" and p_due is not None and p_due < float(t)
            verdict = check(items[item_id], [] if declined else calls, category)
            c[f"right@{t}"] += verdict is None
        if args.decision:
            written = bool(r["calls"]) or any(g.get("kept") for g in (r["decision"].get("grounding") or []))
            if declined_now(r, items[item_id], made_up, encoder, decision):
                c["right@decision"] += category == "irrelevance"
            elif r["calls"] or not written:
                c["right@decision"] += check(items[item_id], calls, category) is None
            else:  # kept now, declined in the run: a call on irrelevance; elsewhere its verdict is unknown
                c["unknown@decision"] += category != "irrelevance"
    if rt is not None:
        rt.close()
    print(json.dumps({"bench": "bfcl_recheck", "split": args.split, "results": {
        category: {"n": c["n"], "run": round(c["run_right"] / c["n"], 3), "calls_made_up": c["made_up"],
                   **({"unknown_decision": c["unknown@decision"]} if c["unknown@decision"] else {}),
                   **{k.split("@")[1]: round(v / c["n"], 3) for k, v in sorted(c.items()) if k.startswith("right@")}}
        for category, c in sorted(counts.items())}}, indent=2))


if __name__ == "__main__":
    main()
