"""Which retrieved chunk's span the nano reader answers with: its readings of every chunk behind
retrieval (the answer task's search), and rules that choose among them, fit on one set and
scored on another.

The reader reads each retrieved chunk on its own, so the start + end logits of two chunks are not
on one scale (the shipped rule takes the highest). A choice over a few numbers per chunk (the
span's logits, its log-probability within its window, the chunk's no-answer score, its
retrieval rank and scores) is fit as a conditional logit over a question's chunks, on questions
of the tuning article (bench/data/squad2_tune.jsonl, plus, with --extra, the same article's other
questions from a SQuAD 1.1 *train* copy; never the test article), and scored on the test split
and on litegate's own docs set beside the shipped rule and the oracle.

    python bench/reader_choice.py --extra /tmp/train-v1.1.json [--reader PATH] [--cache DIR]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

FEATURES = ("score", "score_gap", "log_p", "log_p_gap", "null_gap", "rank", "fused", "dense", "rerank")


def questions(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """The sets: tune (with --extra, more questions of its article), test, docs."""
    from answers import DATA, load_jsonl

    tune = [r for r in load_jsonl(DATA / "squad2_tune.jsonl") if r["answers"]]
    if args.extra:
        seen = {r["question"].strip().lower() for r in tune}
        article = next(a for a in json.loads(args.extra.read_text())["data"]
                       if a["title"] == "The_Legend_of_Zelda:_Twilight_Princess")
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                if qa["question"].strip().lower() not in seen and qa["answers"]:
                    seen.add(qa["question"].strip().lower())
                    tune.append({"question": qa["question"], "answers": [a["text"] for a in qa["answers"]]})
    return {"tune": tune,
            "test": [r for r in load_jsonl(DATA / "squad2_test.jsonl") if r["answers"]],
            "docs": [r for r in load_jsonl(DATA / "docs_qa.jsonl") if r["answers"]]}


def readings(rt: Any, reader: Any, records: list[dict[str, Any]], top_k: int, label: str) -> list[list[dict]]:
    """Per question, per retrieved chunk: the reader's best span and the numbers a rule reads."""
    from litegate.evals.answers import token_f1

    out = []
    for n, rec in enumerate(records):
        hits = rt.collections.search(None, "bench", rec["question"], top_k=top_k)
        reading = reader.read(rec["question"], [h.text for h in hits])
        rows = []
        for rank, (h, s) in enumerate(zip(hits, reading.spans)):
            f1 = max(token_f1(s.text, g) for g in rec["answers"]) if s.text.strip() else 0.0
            rows.append({"rank": rank, "score": s.score, "null": s.null, "log_p": s.log_p,
                         "fused": h.score, "dense": h.scores.get("dense", 0.0), "lexical": h.scores.get("lexical", 0.0),
                         "text": s.text, "start": s.start, "chunk": h.text, "f1": f1})
        out.append(rows)
        if n % 50 == 0:
            print(f"{label} {n + 1}/{len(records)}", file=sys.stderr, flush=True)
    return out


def features(rows: list[dict[str, Any]]) -> np.ndarray:
    score = np.array([max(r["score"], -50.0) for r in rows])
    log_p = np.array([max(r["log_p"], -50.0) for r in rows])
    null = np.array([r["null"] for r in rows])
    cols = {"score": score, "score_gap": score - score.max(), "log_p": log_p, "log_p_gap": log_p - log_p.max(),
            "null_gap": null - score, "rank": np.array([float(r["rank"]) for r in rows]),
            "fused": np.array([r["fused"] for r in rows]), "dense": np.array([r["dense"] for r in rows]),
            "rerank": np.array([rerank_logit(r) for r in rows])}
    return np.stack([cols[f] for f in FEATURES], axis=1)


def rerank_logit(row: dict[str, Any]) -> float:
    """The LLM's P(Yes) for the chunk (``--rerank``) as a logit; 0 where it was not asked."""
    p = min(max(row.get("rerank", 0.5), 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def rerank(rt: Any, tier_name: str, records: list[dict[str, Any]], data: list[list[dict[str, Any]]],
           label: str) -> list[list[float]]:
    """Per question, per chunk: the tier's P(Yes) that the chunk helps answer (the search's
    ``rerank``, collections.service.rerank_score)."""
    from litegate.collections.service import rerank_score

    tier = rt.tiers[tier_name]
    out = []
    for n, (rec, rows) in enumerate(zip(records, data)):
        out.append([round(rerank_score(tier, rec["question"], r["chunk"]), 6) for r in rows])
        if n % 50 == 0:
            print(f"rerank {label} {n + 1}/{len(records)}", file=sys.stderr, flush=True)
    return out


def fit(data: list[list[dict[str, Any]]], names: tuple[str, ...], l2: float) -> np.ndarray:
    """A conditional logit over each question's chunks: P(chunk) ∝ exp(w · x), the target the
    chunks whose span scores best against the gold (questions where none scores above 0 left out)."""
    from scipy.optimize import minimize

    cols = [FEATURES.index(n) for n in names]
    xs, ys = [], []
    for rows in data:
        f1 = np.array([r["f1"] for r in rows])
        if f1.max() <= 0:
            continue
        xs.append(features(rows)[:, cols])
        ys.append((f1 == f1.max()).astype(float) / (f1 == f1.max()).sum())

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, y in zip(xs, ys):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            total -= float(y @ np.log(p + 1e-12))
            grad -= (y - p) @ x
        return total / len(xs) + l2 * float(w @ w), grad / len(xs) + 2 * l2 * w

    return np.asarray(minimize(loss, np.zeros(len(cols)), jac=True, method="L-BFGS-B").x)


CHOOSE_PROMPT = ("Each numbered candidate is a phrase taken from a document, shown in its sentence. Reply with the "
                 "number of the candidate that answers the question.")


def sentence_of(row: dict[str, Any]) -> str:
    """The sentence of the chunk that holds the span, the span marked."""
    import re

    text, start, end = row["chunk"], row["start"], row["start"] + len(row["text"])
    cuts = [0] + [m.end() for m in re.finditer(r"[.!?]\s+", text)] + [len(text)]
    lo = max(c for c in cuts if c <= start)
    hi = min([c for c in cuts if c >= end] or [len(text)])
    return (text[lo:start] + "[" + text[start:end] + "]" + text[end:hi]).strip()[:400]


def lite_choices(rt: Any, records: list[dict[str, Any]], data: list[list[dict[str, Any]]], limit: int,
                 label: str) -> list[dict[str, Any]]:
    """Lite picks among the chunks' spans (distinct texts, best reader score first), from each
    span's sentence: its probability per candidate, for rules that mix it with the reader's."""
    from litegate.evals.answers import normalize

    tier = rt.tiers["lite"]
    out = []
    for n, (rec, rows) in enumerate(zip(records[:limit], data[:limit])):
        order = sorted(range(len(rows)), key=lambda i: -rows[i]["score"])
        picked, seen = [], set()
        for i in order:
            key = normalize(rows[i]["text"])
            if rows[i]["text"].strip() and key not in seen:
                seen.add(key)
                picked.append(i)
        if len(picked) < 2:
            out.append({"candidates": picked, "p": [1.0] * len(picked)})
            continue
        listing = "\n".join(f"{k + 1}. {rows[i]['text']} -- \"{sentence_of(rows[i])}\"" for k, i in enumerate(picked))
        probs, _ = tier.label_scores([{"role": "system", "content": CHOOSE_PROMPT},
                                      {"role": "user", "content": f"Question: {rec['question']}\n{listing}\nNumber:"}],
                                     [str(k + 1) for k in range(len(picked))], max_tokens=1)
        out.append({"candidates": picked, "p": [float(probs[str(k + 1)]) for k in range(len(picked))]})
        if n % 20 == 0:
            print(f"lite {label} {n + 1}/{limit}", file=sys.stderr, flush=True)
    return out


def linear(w: np.ndarray, cols: list[int]) -> Any:
    """The rule that takes the chunk whose features score highest under ``w``."""
    return lambda rows: int(np.argmax(features(rows)[:, cols] @ w))


def with_lite(data: list[list[dict[str, Any]]], picks: list[dict[str, Any]], bar: float) -> float:
    """F1 when lite's pick replaces the reader's wherever lite's probability reaches ``bar``."""
    chosen = []
    for rows, c in zip(data, picks):
        best = int(np.argmax([r["score"] for r in rows]))
        if c["candidates"] and max(c["p"]) >= bar:
            best = c["candidates"][int(np.argmax(c["p"]))]
        chosen.append(rows[best]["f1"])
    return round(float(np.mean(chosen)), 4)


def paired(data: dict[str, list[list[dict[str, Any]]]], other: Path) -> dict[str, Any]:
    """F1 when this reader's highest score chooses the chunk and the other reader's best span in
    that chunk is the answer (questions whose searches differ between the two readings left out)."""
    out: dict[str, Any] = {}
    for name, sets in data.items():
        theirs = json.loads((other / f"{name}.json").read_text())
        same = [(a, b) for a, b in zip(sets, theirs)
                if len(a) == len(b) and all(x["chunk"] == y["chunk"] for x, y in zip(a, b))]
        chosen = [b[int(np.argmax([r["score"] for r in a]))] for a, b in same]
        out[name] = {"questions": len(same), "f1": round(float(np.mean([r["f1"] for r in chosen])), 4),
                     "this reader alone": round(float(np.mean([max(a, key=lambda r: r["score"])["f1"]
                                                               for a, _ in same])), 4),
                     "theirs alone": round(float(np.mean([max(b, key=lambda r: r["score"])["f1"]
                                                          for _, b in same])), 4)}
    return out


def scored(data: list[list[dict[str, Any]]], pick: Any) -> dict[str, float]:
    chosen = [rows[pick(rows)] for rows in data]
    return {"f1": round(float(np.mean([r["f1"] for r in chosen])), 4),
            "em_like": round(float(np.mean([r["f1"] == 1.0 for r in chosen])), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", type=Path, help="a SQuAD 1.1 train copy: more questions of the tuning article")
    ap.add_argument("--reader", type=Path, help="a reader as the package ships it (default: the shipped one)")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--lite", type=int, default=0, help="lite also chooses, on the first N questions of each set")
    ap.add_argument("--cache", type=Path, help="keep the readings here (JSON per set) for the next run")
    ap.add_argument("--span-cache", type=Path, help="another reader's readings (its --cache) of the same searches: "
                                                    "also score this reader choosing the chunk and that one "
                                                    "quoting the span (the shipped pair)")
    ap.add_argument("--rerank", metavar="TIER", help="also ask this LLM tier whether each chunk helps answer (the "
                                                     "search's rerank), as a rule and a feature")
    args = ap.parse_args()
    if args.span_cache:  # checked before minutes of reading, not after
        missing = [n for n in ("tune", "test", "docs") if not (args.span_cache / f"{n}.json").is_file()]
        if missing:
            ap.error(f"--span-cache {args.span_cache} has no readings for {', '.join(missing)} "
                     "(make them with --cache first)")
    os.environ.setdefault("LITEGATE_HOME", tempfile.mkdtemp(prefix="litegate-choice-"))
    from answers import fill
    from litegate.config import Settings
    from litegate.configfile import Config
    from litegate.nano.reader import Reader, ReaderWeights, shipped
    from litegate.nano.tuned import innermost
    from litegate.runtime import build

    load = [round(x, 2) for x in os.getloadavg()]
    sets = questions(args)
    data: dict[str, list[list[dict[str, Any]]]] = {}
    todo = {}
    for name in sets:
        path = args.cache / f"{name}.json" if args.cache else None
        if path is not None and path.is_file():
            data[name] = json.loads(path.read_text())
        else:
            todo[name] = path
    timing = {}
    rt = build(Settings(), Config(), record=False) if todo or args.lite or args.rerank else None
    try:
        if rt is not None and args.rerank and args.rerank not in rt.tiers:
            raise SystemExit(f"--rerank: no tier {args.rerank!r} (have {', '.join(sorted(rt.tiers))})")
        if rt is not None and todo:
            base = rt.encoders.get("fast")
            reader = (Reader(base, ReaderWeights.load(args.reader, innermost(base)._layers)) if args.reader
                      else shipped(base))
            filled = None
            for name, path in todo.items():
                kind = "docs" if name == "docs" else "squad2"  # tune and test ask the same collection
                if kind != filled:
                    fill(rt, "bench", kind)
                    filled = kind
                started = time.perf_counter()
                data[name] = readings(rt, reader, sets[name], args.top_k, name)
                timing[name] = round((time.perf_counter() - started) / max(1, len(sets[name])) * 1000, 1)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(data[name]))
        if rt is not None and args.rerank:
            for name in sets:
                path = args.cache / f"{name}.rerank-{args.rerank}.json" if args.cache else None
                if path is not None and path.is_file():
                    probs = json.loads(path.read_text())
                else:
                    probs = rerank(rt, args.rerank, sets[name], data[name], name)
                    if path is not None:
                        path.write_text(json.dumps(probs))
                for rows, ps in zip(data[name], probs):
                    for r, p in zip(rows, ps):
                        r["rerank"] = p
        report = scored_rules(data, args)
        if args.span_cache:
            report["choice by this reader, span by --span-cache's"] = paired(data, args.span_cache)
        rules = report.pop("rules")  # the rules themselves, not for the JSON
        report.update({"load_start": load, "reader": str(args.reader or "shipped"), "ms_per_question": timing})
        if rt is not None and args.lite:
            report["lite chooses when its p >= bar"] = lite_report(rt, sets, data, args, rules)
    finally:
        if rt is not None:
            rt.close()
    report["load_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))


def scored_rules(data: dict[str, list[list[dict[str, Any]]]], args: argparse.Namespace) -> dict[str, Any]:
    """Every rule (the fixed ones and those fitted on the tuning set) scored on every set."""
    rules: dict[str, Any] = {
        "shipped (highest score)": lambda rows: int(np.argmax([r["score"] for r in rows])),
        "highest log_p": lambda rows: int(np.argmax([r["log_p"] for r in rows])),
        "top chunk": lambda rows: 0,
        "top chunk by rerank": lambda rows: int(np.argmax([r.get("rerank", 0.0) for r in rows])),
        "oracle": lambda rows: int(np.argmax([r["f1"] for r in rows]))}
    fitted = {}
    for names in (("score", "log_p"), ("score", "log_p", "rank"), ("score", "log_p", "rank", "null_gap"),
                  ("score", "log_p", "rank", "null_gap", "fused", "dense"), ("score", "log_p", "rerank"),
                  ("score", "log_p", "rank", "rerank"), FEATURES):
        w = fit(data["tune"], names, args.l2)
        cols = [FEATURES.index(n) for n in names]
        label = "fit: " + " + ".join(names)
        fitted[label] = {n: round(float(v), 4) for n, v in zip(names, w)}
        rules[label] = linear(w, cols)
    report: dict[str, Any] = {"questions": {k: len(v) for k, v in data.items()},
                              "some_span_overlaps_the_gold": {
                                  k: round(float(np.mean([max(r["f1"] for r in rows) > 0 for rows in v])), 4)
                                  for k, v in data.items()},
                              "weights": fitted, "rules": rules}
    for name, pick in rules.items():
        report[name] = {s: scored(data[s], pick) for s in ("tune", "test", "docs")}
    return report


def lite_report(rt: Any, sets: dict[str, list[dict[str, Any]]], data: dict[str, list[list[dict[str, Any]]]],
                args: argparse.Namespace, rules: dict[str, Any]) -> dict[str, Any]:
    """Lite's picks (first --lite questions of each set) mixed with the reader's at several bars."""
    out = {}
    for name in ("tune", "test", "docs"):
        path = args.cache / f"{name}.lite.json" if args.cache else None
        if path is not None and path.is_file():
            picks = json.loads(path.read_text())
        else:
            picks = lite_choices(rt, sets[name], data[name], args.lite, name)
            if path is not None:
                path.write_text(json.dumps(picks))
        sub = data[name][:len(picks)]
        out[name] = {"questions": len(sub), **{str(bar): with_lite(sub, picks, bar) for bar in (0.0, 0.3, 0.5, 0.7)},
                     "reader alone": scored(sub, rules["shipped (highest score)"])["f1"],
                     "oracle": scored(sub, rules["oracle"])["f1"]}
    return out


if __name__ == "__main__":
    main()
