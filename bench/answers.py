"""Grounded answers over a collection on a SQuAD-2-style set (answerable and unanswerable
questions): answerable F1 / exact match, "not in the documents" precision and recall, whether
the citation holds the answer, ECE of the confidence, retrieval recall@k. Prints JSON; with
--items, writes every question's output (what bench/answers_fit.py learns the abstention from).

    python bench/answers.py --set squad2 --split test
    python bench/answers.py --set docs            # litegate's own docs, bench/data/docs_qa.jsonl
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

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fill(rt: Any, name: str, which: str) -> int:
    """The collection the questions are asked of: SQuAD's paragraphs, or the docs/ pages."""
    from litegate.documents.types import Part

    rt.collections.create(None, name)
    if which == "squad2":
        items = [{"text": p["text"], "source": p["source"], "filename": p["source"]}
                 for p in load_jsonl(DATA / "squad2_paragraphs.jsonl")]
        return len(rt.collections.add_texts(None, name, items))
    pages = sorted((ROOT / "docs").glob("*.md"))
    for page in pages:
        rt.collections.add_file(None, name, Part("text/markdown", page.read_bytes(), page.name, filename=page.name))
    rt.collections.backfill.wait(rt.collections.get(None, name)["id"])  # every chunk's vector in
    return len(pages)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from litegate.config import Settings
    from litegate.configfile import Config
    from litegate.evals.answers import answer_metrics, gold_answers, retrieval_metrics
    from litegate.runtime import build
    from litegate.tasks import text as text_tasks

    text_tasks.RECORD_ALL_SIGNALS = True  # every signal recorded, so bench/answers_fit.py can try them all

    records = load_jsonl(DATA / (f"squad2_{args.split}.jsonl" if args.set == "squad2" else "docs_qa.jsonl"))
    records = records[: args.limit] if args.limit else records
    rt = build(Settings(), Config(), model=args.model, record=False)
    try:
        started = time.perf_counter()
        files = fill(rt, "bench", args.set)
        ingest_s = time.perf_counter() - started
        outputs, latencies = [], []
        for i, rec in enumerate(records):
            out = rt.tasks.run("answer", {"query": rec["question"], "collection": "bench", "tier": args.tier,
                                          "top_k": args.top_k})
            latencies.append(out["latency_ms"])
            outputs.append(out)
            print(f"{i + 1}/{len(records)} {out['latency_ms']:.0f} ms found={out['found']} "
                  f"{str(out['answer'])[:60]!r} gold={rec['answers'][:1]}", file=sys.stderr, flush=True)
        retrieved = [[h.text for h in rt.collections.search(None, "bench", r["question"], top_k=10)]
                     for r in records]
    finally:
        rt.close()
    metrics = answer_metrics(records, outputs)
    metrics.update(retrieval_metrics([gold_answers(r) for r in records], retrieved))
    if args.items:
        args.items.write_text(json.dumps([{"record": r, "output": o} for r, o in zip(records, outputs)], indent=1),
                              encoding="utf-8")
    latencies.sort()
    return {"set": args.set, "split": args.split if args.set == "squad2" else None, "tier": args.tier,
            "top_k": args.top_k, "files": files, "ingest_s": round(ingest_s, 1),
            "p50_ms": round(latencies[len(latencies) // 2]),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if not k.startswith("_")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["squad2", "docs"], default="squad2")
    ap.add_argument("--split", choices=["tune", "test"], default="test")
    ap.add_argument("--tier", default="lite")
    ap.add_argument("--model", default="lite")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="the first N questions only")
    ap.add_argument("--items", type=Path, help="write every question's output here (JSON)")
    args = ap.parse_args()
    os.environ.setdefault("LITEGATE_HOME", tempfile.mkdtemp(prefix="litegate-answers-"))
    load = [round(x, 2) for x in os.getloadavg()]
    result = run(args)
    print(json.dumps({"load_start": load, "load_end": [round(x, 2) for x in os.getloadavg()], **result}, indent=1))


if __name__ == "__main__":
    main()
