"""Fit the check a written call passes after the decision (``AfterCall`` in chat/decision.py):
one logistic regression over the decision's log-odds, whether the call made up any value and how
well the request covers the called tool's name, in place of a bar on made-up values alone.

    python bench/tool_decision_after.py --data DIR --own OWN.json DUMP [DUMP ...] [--write [--out PATH]]

Rows, all from the tuning half (BFCL's split by id hash, bench/bfcl.py) and the own tuning set:

- calls the lite model wrote on BFCL items (bench/bfcl.py ``--dump`` files): due on simple,
  multiple and parallel items, not due on irrelevance items; ``p_due`` as the run reported it;
- BFCL's possible answers standing in for the due calls of every tuning item the decision calls on
  (every parameter with its first accepted value; ``p_due`` with the call probability at the
  median of the measured cases), so the share of due calls declined is measured on all of them;
- the own tuning set's written calls (bench/tool_choice.py's JSON, ``decisions``), weighing
  ``--own-weight`` each; its held-out sets are only printed.

Each feature set is scored by cross-validation (irrelevance rows one left out at a time, due rows
in 10 folds): its cut is the lowest score that declines at most ``--budget`` of the due calls
(BFCL's) and none of the own tuning set's (with a margin). Prints JSON; ``--write`` stores the
chosen set's fit (``--features``) in the shipped decision, or with ``--out`` in a server's home
(``$LITEGATE_HOME/tool_decision.json``, which a server loads before the shipped one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bfcl import load, openai_tools  # noqa: E402
from bfcl_recheck import recheck  # noqa: E402
from litegate.chat.decision import (  # noqa: E402
    AFTER_CALL_FEATURES,
    SHIPPED,
    AfterCall,
    ToolDecision,
    after_call_features,
    call_name_cover,
    encoder_signals,
    features,
)
from litegate.chat.grounding import check_calls  # noqa: E402
from litegate.chat.tool_cases import CASES, HELDOUT2_CASES, HELDOUT_CASES  # noqa: E402
from litegate.chat.tools import parse_tools  # noqa: E402
from litegate.config import Settings  # noqa: E402
from litegate.runtime import build  # noqa: E402

DUE_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple")
OWN_MARGIN = 0.1  # on the mix's log-odds
CANDIDATES = {"made_up": ["logit_p_due", "made_up"], "name_cover": ["logit_p_due", "name_cover"],
              "made_up+name_cover": list(AFTER_CALL_FEATURES)}


def _tool(item: dict[str, Any], bfcl_name: str) -> tuple[Any, list[Any]]:
    tools, names = openai_tools(item["function"])
    back = {bfcl: ours for ours, bfcl in names.items()}
    functions = parse_tools(tools)
    return next((f for f in functions if f.name == back.get(bfcl_name, bfcl_name)), functions[0]), functions


def reply_rows(data: Path, dumps: list[Path], encoder: Any) -> list[dict[str, Any]]:
    """The calls written on tuning items (the last reply of an item wins)."""
    replies = {}
    for path in dumps:
        for line in path.read_text().splitlines():
            if line.strip() and (r := json.loads(line))["peer"] == "litegate" and r["split"] == "tuning" \
                    and (r.get("decision") or {}).get("p_due") is not None:
                replies[(r["category"], r["id"])] = r
    items = {q["id"]: q for c in {c for c, _ in replies} for q in load(data, c)}
    rows = []
    for (category, item_id), r in sorted(replies.items()):
        grounding = r["decision"].get("grounding") or []
        if not r["calls"] and not grounding:
            continue  # declined before a call was written
        item = items[item_id]
        if r["calls"]:
            calls, made_up = recheck(r, item)
            written, standing = next(iter(r["calls"][0])), bool(calls)
        else:  # declined after the call was written: its check's report stands
            made_up = sum(len(g.get("invented") or []) + len(g.get("left_out") or []) for g in grounding)
            written, standing = grounding[0]["name"], any(g.get("kept") for g in grounding)
        fn, _ = _tool(item, written)
        rows.append({"source": f"reply_{category}", "id": item_id, "due": category != "irrelevance",
                     "p_due": r["decision"]["p_due"], "made_up": made_up, "check_keeps": standing,
                     "name_cover": call_name_cover(encoder, item["question"][0][-1]["content"], fn)})
    return rows


def stand_in_rows(data: Path, encoder: Any, model: ToolDecision) -> list[dict[str, Any]]:
    """BFCL's possible answers as the due calls of every tuning item the decision calls on."""
    fill = statistics.median(r["logit_p_call"] for r in model.rows if "logit_p_call" in r)
    rows = []
    for category in DUE_CATEGORIES:
        for item in load(data, category):
            if item["split"] != "tuning":
                continue
            request = item["question"][0][-1]["content"]
            fn, functions = _tool(item, next(iter(item["truth"][0])))
            p_due = model.probability({**features(0.5, encoder_signals(encoder, request, functions)),
                                       "logit_p_call": fill})
            if p_due < model.threshold:
                continue
            _, names = openai_tools(item["function"])
            back = {bfcl: ours for ours, bfcl in names.items()}
            calls = [{"name": back[name], "arguments": {k: next(v for v in accepted if v != "")
                                                         for k, accepted in options.items()
                                                         if any(v != "" for v in accepted)}}
                     for truth in item["truth"] for name, options in truth.items()]
            text = "\n".join(m["content"] for m in item["question"][0] if isinstance(m.get("content"), str))
            made_up = sum(c.made_up for c in check_calls(calls, functions, text))
            rows.append({"source": f"standin_{category}", "id": item["id"], "due": True, "p_due": p_due,
                         "made_up": made_up, "check_keeps": True,
                         "name_cover": call_name_cover(encoder, request, fn)})
    return rows


def own_rows(own: dict[str, Any], encoder: Any) -> list[dict[str, Any]]:
    """The own sets' written calls from a bench/tool_choice.py run (its ``decisions``)."""
    rows = []
    for name, cases in (("tuning", CASES), ("heldout", HELDOUT_CASES), ("heldout2", HELDOUT2_CASES)):
        prompts = {next(m["content"] for m in reversed(messages) if m.get("role") == "user"): (tools, expected)
                   for messages, tools, expected in cases}
        for d in (own.get(name) or {}).get("decisions") or []:
            grounding = d.get("grounding") or []
            if not grounding or d.get("after_result") or d.get("p_due") is None:
                continue
            prompt = next(p for p in prompts if p.startswith(d["prompt"]))
            tools, expected = prompts[prompt]
            fn = next(f for f in parse_tools(tools) if f.name == grounding[0]["name"])
            rows.append({"source": f"own_{name}", "id": d["prompt"], "due": expected == grounding[0]["name"],
                         "p_due": d["p_due"], "check_keeps": any(g.get("kept") for g in grounding),
                         "made_up": sum(len(g.get("invented") or []) + len(g.get("left_out") or [])
                                        for g in grounding),
                         "name_cover": call_name_cover(encoder, prompt, fn)})
    return rows


def _x(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    return np.array([[after_call_features(r["p_due"], r["made_up"], lambda r=r: r["name_cover"])[k] for k in names]
                     for r in rows])


def fit_after(rows: list[dict[str, Any]], names: list[str], budget: float, own_weight: float) -> AfterCall:
    """The mix over ``names``, cut at the lowest score that declines at most ``budget`` of BFCL's
    due calls and none of the own tuning set's."""
    from sklearn.linear_model import LogisticRegression

    weights = np.array([own_weight if r["source"].startswith("own") else 1.0 for r in rows])
    x, y = _x(rows, names), np.array([r["due"] for r in rows], dtype=int)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, y, sample_weight=weights)
    scores = model.decision_function(x)
    due = np.sort(scores[(y == 1) & (weights == 1.0)])
    own_due = scores[(y == 1) & (weights != 1.0)]
    # a margin below the own tuning calls: the encoder's cosines move by a few thousandths with the
    # batch a text is encoded in, and one own call sat on the cut and fell below it end to end
    cut = min(due[int(budget * len(due))], own_due.min() - OWN_MARGIN if len(own_due) else np.inf)
    return AfterCall([float(c) for c in model.coef_[0]], float(model.intercept_[0]), float(cut), list(names))


def declined(check: AfterCall | None, row: dict[str, Any], bar: float) -> bool:
    if check is None:  # the bar on made-up values alone
        return row["made_up"] > 0 and row["p_due"] < bar
    return not check.keeps(after_call_features(row["p_due"], row["made_up"], lambda: row["name_cover"],
                                               check.features))


def cross_validate(rows: list[dict[str, Any]], names: list[str], budget: float, own_weight: float
                   ) -> dict[str, int]:
    """Irrelevance rows left out one at a time, BFCL's due rows in 10 folds; the own tuning rows
    stay in every fit."""
    negatives = [r for r in rows if not r["due"]]
    positives = [r for r in rows if r["due"] and not r["source"].startswith("own")]
    own = [r for r in rows if r["due"] and r["source"].startswith("own")]
    right = sum(not r["check_keeps"] or declined(fit_after([n for n in negatives if n is not r] + positives + own,
                                                           names, budget, own_weight), r, 0) for r in negatives)
    lost = lost_replies = 0
    for fold in np.array_split(np.random.default_rng(0).permutation(len(positives)), 10):
        held = {int(i) for i in fold}
        check = fit_after(negatives + own + [p for i, p in enumerate(positives) if i not in held], names, budget,
                          own_weight)
        for i in held:
            if declined(check, positives[i], 0):
                lost += 1
                lost_replies += positives[i]["source"].startswith("reply")
    return {"irrelevance_right": right, "irrelevance": len(negatives), "due_declined": lost,
            "due_replies_declined": lost_replies, "due": len(positives)}


def tally(rows: list[dict[str, Any]], check: AfterCall | None, bar: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        part = r["source"].split("_")[0] if not r["source"].startswith("own") else r["source"]
        c = out.setdefault(f"{part}_{'due' if r['due'] else 'not_due'}", {"n": 0, "declined": 0, "right": 0})
        c["n"] += 1
        d = declined(check, r, bar)
        c["declined"] += d
        c["right"] += (r["check_keeps"] and not d) if r["due"] else (d or not r["check_keeps"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="BFCL's bfcl_eval/data folder (non-live files)")
    ap.add_argument("dumps", type=Path, nargs="+", help="bench/bfcl.py --dump files of the tuning half")
    ap.add_argument("--own", type=Path, required=True, help="bench/tool_choice.py's JSON output (decisions)")
    ap.add_argument("--budget", type=float, default=0.02, help="the share of due calls the check may decline")
    ap.add_argument("--own-weight", type=float, default=10.0)
    ap.add_argument("--features", default="made_up+name_cover", choices=list(CANDIDATES))
    ap.add_argument("--write", action="store_true", help="store the chosen fit in the decision (--out)")
    ap.add_argument("--out", type=Path, default=SHIPPED,
                    help="where --write stores it: the shipped decision, or $LITEGATE_HOME/tool_decision.json")
    args = ap.parse_args()
    model = ToolDecision.load(SHIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), model="lite", record=False)
        encoder = rt.encoders.default
        replies = reply_rows(args.data, args.dumps, encoder)
        own = own_rows(json.loads(args.own.read_text()), encoder)
        rows = [r for r in replies + stand_in_rows(args.data, encoder, model) if r["p_due"] >= model.threshold] \
            + [r for r in own if r["source"] == "own_tuning"]
        rt.close()
    bar = model.made_up_threshold or 0.7
    report: dict[str, Any] = {"bench": "tool_decision_after", "rows": len(rows),
                              "bar": {"made_up_threshold": bar, "tuning": tally(rows, None, bar),
                                      "own_heldout": tally([r for r in own if r["source"] != "own_tuning"], None,
                                                           bar)}}
    for name, names in CANDIDATES.items():
        check = fit_after(rows, names, args.budget, args.own_weight)
        report[name] = {"fit": check.as_dict(), "cross_validated": cross_validate(rows, names, args.budget,
                                                                                   args.own_weight),
                        "tuning": tally(rows, check, bar),
                        "own_heldout": tally([r for r in own if r["source"] != "own_tuning"], check, bar)}
    print(json.dumps(report, indent=1))
    if args.write:
        model.after_call = fit_after(rows, CANDIDATES[args.features], args.budget, args.own_weight)
        model.trained_on["after_call"] = (
            f"{args.features}: BFCL's tuning half (the lite model's calls and the possible answers standing in "
            f"for due calls) and the own tuning set (weight {args.own_weight:g}); cut declining at most "
            f"{args.budget:.0%} of the due calls and none of the own tuning set's")
        model.save(args.out)


if __name__ == "__main__":
    main()
