"""Labeled cases for the learned call decision (litegate/chat/decision.py), with their signals.

    python bench/tool_decision_data.py --bfcl DIR --out cases.jsonl [--per-category 30] [--threads 1]

For each case, one line: where it came from, its split, whether a call is due, and the
decision's features (the lite model's own call probability from one short constrained pass,
and the encoder's signals). Cases:

- BFCL's non-live categories (Apache-2.0): simple, multiple, parallel, parallel_multiple (a
  call is due) and irrelevance (none is), split by bench/bfcl.py's id hash;
- generated hard negatives: a BFCL simple question paired with the most similar tool of
  another item that is not a near copy of its own (a related tool that cannot answer it);
- the project's own sets (chat/tool_cases.py): the tuning set in ``tuning``, the two held-out
  sets in ``untouched``. Cases right after a tool result are left out (a fixed rule decides those).

The fit (bench/tool_decision_fit.py) uses only ``tuning`` lines.

``--relevance WORDING ...`` measures only the relevance pass instead (the model's yes/no on whether
the best-matching tool can answer the request, chat/decision.py), one probability per wording in
``WORDINGS``; bench/tool_decision_fit.py joins these lines to the others by id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bfcl import load, openai_tools, split_of  # noqa: E402
from litegate.chat.decision import (  # noqa: E402
    RELEVANCE_LABELS,
    RELEVANCE_QUESTION,
    best_function,
    encoder_signals,
    features,
    last_user_text,
    parameter_listing,
    relevance,
    tool_text,
)
from litegate.chat.request import ChatCompletionRequest, prepare_chat  # noqa: E402
from litegate.chat.tool_cases import CASES, HELDOUT2_CASES, HELDOUT_CASES  # noqa: E402
from litegate.chat.tools import ANSWER_PREFIX, CALL_PREFIX, parse_tools  # noqa: E402
from litegate.config import Settings  # noqa: E402
from litegate.runtime import build  # noqa: E402
from litegate.tiers.scoring import LabelScorer  # noqa: E402

# wordings of the relevance question tried on the tuning half; "exact" is the shipped one
WORDINGS = {
    "exact": RELEVANCE_QUESTION,
    "would": 'A user wrote: "{request}"\nA function is available: {name}: {description} Its parameters: '
             "{parameters}.\nWould calling this function, with values from the user's message, give the user "
             "what they asked for? Answer yes or no.",
    # asked after the chat prompt itself (the tool listing and the request), so its prefix is cached
    "followup": "Before you reply: can the function {name} do exactly what I asked, with values from my "
                "message? Answer yes or no.",
}
NEAR_COPY = 0.6  # tools at least this similar to the item's own are not negatives
LESS_SIMILAR = 0.75  # nor tools at least this close to the question, relative to its own tool


def _order(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()


def bfcl_cases(data: Path, per_category: int, splits: tuple[str, ...] = ("tuning", "untouched")
               ) -> list[dict[str, Any]]:
    out = []
    for category in ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance"):
        items = sorted(load(data, category), key=lambda q: _order(q["id"]))
        halves = [[q for q in items if q["split"] == split][:per_category or None] for split in splits]
        for q in interleave(halves):  # both splits grow together when a run is cut short
            out.append({"source": f"bfcl_{category}", "id": q["id"], "split": q["split"],
                        "messages": q["question"][0], "tools": openai_tools(q["function"])[0],
                        "call": category != "irrelevance"})
    return out


def hard_negatives(data: Path, encoder: Any, count: int) -> list[dict[str, Any]]:
    """A simple question with the most similar tool of another item that still cannot answer
    it: one clearly less similar to the question than its own tool, and not a near copy of it
    (the most similar one often can: "Who discovered the neutron?" and a scientist-for-discovery tool)."""
    items = sorted(load(data, "simple"), key=lambda q: _order(q["id"]))
    tools = [openai_tools(q["function"])[0][0] for q in items]
    functions = [parse_tools([t])[0] for t in tools]
    questions = [q["question"][0][-1]["content"] for q in items]
    q_vec = encoder.encode(questions)
    t_vec = encoder.encode([tool_text(f) for f in functions])
    out = []
    for i, q in enumerate(items[:count]):
        similar = t_vec @ q_vec[i]
        near_copy = t_vec @ t_vec[i]
        for j in np.argsort(-similar):
            if j != i and similar[j] < LESS_SIMILAR * similar[i] and near_copy[j] < NEAR_COPY \
                    and functions[j].name != functions[i].name:
                out.append({"source": "generated_related_tool", "id": f"{q['id']}~~{items[j]['id']}",
                            "split": split_of(q["id"]), "messages": q["question"][0], "tools": [tools[j]],
                            "call": False})
                break
    return out


def project_cases() -> list[dict[str, Any]]:
    out = []
    for name, cases, split in (("tuning", CASES, "tuning"), ("heldout", HELDOUT_CASES, "untouched"),
                               ("heldout2", HELDOUT2_CASES, "untouched")):
        for k, (messages, tools, expected) in enumerate(cases):
            if messages[-1].get("role") == "tool":
                continue
            out.append({"source": f"project_{name}", "id": f"{name}_{k}", "split": split, "messages": messages,
                        "tools": tools, "call": expected is not None})
    return sorted(out, key=lambda c: _order(c["id"]))  # calls and answers mixed when a run is cut short


def interleave(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out, k = [], 0
    while any(k < len(g) for g in groups):
        out += [g[k] for g in groups if k < len(g)]
        k += 1
    return out


def relevance_row(scorer: LabelScorer, encoder: Any, case: dict[str, Any], wordings: list[str]
                  ) -> dict[str, Any]:
    """The relevance pass's yes probability for each wording, on the best-matching tool."""
    prepared = prepare_chat(ChatCompletionRequest(messages=case["messages"], tools=case["tools"],
                                                  tool_choice="auto", temperature=0))
    request = last_user_text(case["messages"]) or ""
    fn = best_function(encoder, request, prepared.functions)
    row: dict[str, Any] = {k: case[k] for k in ("source", "id", "split", "call")}
    row.update(best=fn.name, relevance={}, ms={})
    for name in wordings:
        started = time.perf_counter()
        if name == "followup":
            question = WORDINGS[name].format(name=fn.name, parameters=parameter_listing(fn))
            scores, _ = scorer.score(prepared.body["messages"] + [{"role": "user", "content": question}], max_tokens=1)
            row["relevance"][name] = float(scores[RELEVANCE_LABELS[0]])
        else:
            row["relevance"][name] = relevance(scorer, request, fn, WORDINGS[name])
        row["ms"][name] = round((time.perf_counter() - started) * 1000)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bfcl", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-category", type=int, default=30, help="BFCL items per category and split")
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--splits", nargs="+", choices=["tuning", "untouched"], default=["tuning", "untouched"],
                    help="which halves to measure (the fit reads only the tuning half)")
    ap.add_argument("--encoder-only", action="store_true",
                    help="only the encoder's signals (no LLM pass: seconds, for every case; --per-category 0 = all)")
    ap.add_argument("--sources", nargs="+", default=None,
                    help="only cases of these sources (bfcl_irrelevance, generated_related_tool, project_heldout, ...)")
    ap.add_argument("--relevance", nargs="+", choices=sorted(WORDINGS), default=None,
                    help="measure only the relevance pass, in these wordings")
    args = ap.parse_args()
    done = set()
    if args.out.exists():  # resume
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), **({"threads": args.threads} if args.threads else {}))
        rt = build(settings, model="lite", record=False)
        encoder = rt.encoders.default
        engine = None if args.encoder_only else rt.registry.engine(rt.default_model)
        scorer = None if engine is None else LabelScorer(engine, [CALL_PREFIX, ANSWER_PREFIX])
        yes_no = None if engine is None else LabelScorer(engine, RELEVANCE_LABELS)
        by_source: dict[str, list[dict[str, Any]]] = {}
        cases = bfcl_cases(args.bfcl, args.per_category, tuple(args.splits)) \
            + hard_negatives(args.bfcl, encoder, args.negatives) + project_cases()
        for case in [c for c in cases if c["split"] in args.splits and c["source"] in (args.sources or [c["source"]])]:
            by_source.setdefault(case["source"], []).append(case)
        with args.out.open("a") as out:
            for case in interleave(list(by_source.values())):
                if case["id"] in done:
                    continue
                if args.relevance and yes_no is not None:
                    out.write(json.dumps(relevance_row(yes_no, encoder, case, args.relevance)) + "\n")
                    out.flush()
                    continue
                started = time.perf_counter()
                req = ChatCompletionRequest(messages=case["messages"], tools=case["tools"], tool_choice="auto",
                                            temperature=0)
                prepared = prepare_chat(req)
                signals = encoder_signals(encoder, last_user_text(case["messages"]) or "", prepared.functions)
                row = {k: case[k] for k in ("source", "id", "split", "call")}
                if scorer is None:
                    row["features"] = signals
                else:
                    scores, _ = scorer.score(prepared.body["messages"])
                    row["features"] = features(float(scores[CALL_PREFIX]), signals)
                    row["p_call"] = float(scores[CALL_PREFIX])
                row["ms"] = round((time.perf_counter() - started) * 1000)
                out.write(json.dumps(row) + "\n")
                out.flush()
        rt.close()


if __name__ == "__main__":
    main()
