"""Grounded answers over a collection on a SQuAD-2-style set (answerable and unanswerable
questions): answerable F1 / exact match, "not in the documents" precision and recall, whether
the citation holds the answer, ECE of the confidence, retrieval recall@k. Prints JSON; with
--items, writes every question's output (what bench/answers_fit.py learns the abstention from).

    python bench/answers.py --set squad2 --split test
    python bench/answers.py --set docs            # litegate's own docs, bench/data/docs_qa.jsonl
    python bench/answers.py --reader /tmp/reader.npz --peer-limit 40   # the nano reader beside lite
    python bench/answers.py --nano                # the answer task on the nano tier (the shipped reader) too

With --reader (a reader saved by bench/reader_pilot.py --save), every question is also answered by
the nano extractive reader over the same top-k chunks lite is given: each chunk read, the best
span over them (start + end logits) taken, with its no-answer margin; and, on the SQuAD set, by
the reader given the question's own paragraph (the upper bound). Lite, the peer, answers the
first --peer-limit questions in the same run.

With --nano, every question is also answered by the product's own path on the nano tier (the
answer task with ``tier: "nano"``: the shipped reader over the same top-k chunks, its abstention
score), scored like lite's; with --items, its outputs go to ITEMS.nano.json (what
bench/answers_fit.py --reader fits the reader's abstention from).
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
DATA = ROOT / "bench" / "data"
sys.path.insert(0, str(ROOT / "bench"))  # reader_pilot, for --reader


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fill(rt: Any, name: str, which: str) -> int:
    """The collection the questions are asked of: SQuAD's paragraphs, or the docs/ pages."""
    from litegate.documents.types import Part
    from litegate.errors import NotFound

    try:  # a LITEGATE_HOME kept from an earlier run: start the collection afresh
        rt.collections.delete(None, name)
    except NotFound:
        pass
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


def read_chunks(rt: Any, question: str, top_k: int, windows: Any, logits_of: Any) -> dict[str, Any]:
    """The reader over the question's top-k chunks (the search the answer task makes): the best
    span of any chunk, cited to that chunk; its margin is the lowest null score less that span's."""
    from reader_pilot import read

    started = time.perf_counter()
    hits = rt.collections.search(None, "bench", question, top_k=top_k)
    searched = time.perf_counter()
    reads = [read({"question": question, "context": h.text}, windows, logits_of) for h in hits]
    best = max(range(len(reads)), key=lambda i: reads[i]["score"]) if reads else None
    done = time.perf_counter()
    if best is None:
        return {"answer": "", "found": False, "sources": [], "margin": 0.0, "latency_ms": (done - started) * 1000}
    margin = min(r["null"] for r in reads) - reads[best]["score"]
    return {"answer": reads[best]["answer"], "found": True, "sources": [{"text": hits[best].text}],
            "margin": margin, "latency_ms": (done - started) * 1000, "search_ms": (searched - started) * 1000,
            "chunks": [{"answer": r["answer"], "score": r["score"], "null": r["null"], "text": h.text}
                       for r, h in zip(reads, hits)]}  # every chunk's reading, for other ways to choose


def reader_metrics(records: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The reader always answering: answerable EM / F1, the cited chunk holding a gold answer,
    how well the no-answer margin ranks the unanswerable questions first (AUC), p50."""
    from litegate.evals.answers import answer_metrics, gold_answers
    from reader_pilot import auc

    m = answer_metrics(records, outputs)
    unanswerable = [not gold_answers(r) for r in records]
    latencies = sorted(o["latency_ms"] for o in outputs)
    out = {k: m[k] for k in ("items", "answerable", "unanswerable", "exact_match", "f1", "citation_holds_answer")}
    out["no_answer_auc"] = auc(np.array([o["margin"] for o in outputs]), np.array(unanswerable))
    out["p50_ms"] = latencies[len(latencies) // 2] if latencies else None
    if outputs and "search_ms" in outputs[0]:
        out["search_p50_ms"] = sorted(o["search_ms"] for o in outputs)[len(outputs) // 2]
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def run_reader(rt: Any, records: list[dict[str, Any]], args: argparse.Namespace, peer: int) -> dict[str, Any]:
    """The nano reader on every question, over the retrieved chunks and (SQuAD) the gold paragraph."""
    from reader_pilot import onnx_reader, read

    windows, logits_of = onnx_reader(args.reader)
    retrieved = []
    for i, rec in enumerate(records):
        retrieved.append(read_chunks(rt, rec["question"], args.top_k, windows, logits_of))
        print(f"reader {i + 1}/{len(records)} {retrieved[-1]['latency_ms']:.0f} ms {retrieved[-1]['answer'][:60]!r} "
              f"margin={retrieved[-1]['margin']:.2f} gold={rec['answers'][:1]}", file=sys.stderr, flush=True)
    report = {"reader_retrieved_all": reader_metrics(records, retrieved)}
    if 0 < peer < len(records):
        report[f"reader_retrieved_first_{peer}"] = reader_metrics(records[:peer], retrieved[:peer])
    if args.set == "squad2":
        paragraphs = {p["source"]: p["text"] for p in load_jsonl(DATA / "squad2_paragraphs.jsonl")}
        gold = []
        for rec in records:
            started = time.perf_counter()
            r = read({"question": rec["question"], "context": paragraphs[rec["paragraph"]]}, windows, logits_of)
            gold.append({"answer": r["answer"], "found": True, "margin": r["margin"],
                         "sources": [{"text": paragraphs[rec["paragraph"]]}],
                         "latency_ms": (time.perf_counter() - started) * 1000})
        report["reader_gold_paragraph_all"] = reader_metrics(records, gold)
        if 0 < peer < len(records):
            report[f"reader_gold_paragraph_first_{peer}"] = reader_metrics(records[:peer], gold[:peer])
    if args.items:
        path = args.items.with_suffix(".reader.json")
        path.write_text(json.dumps([{"record": r, "retrieved": o} for r, o in zip(records, retrieved)], indent=1),
                        encoding="utf-8")
    return report


def scored(records: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """answer_metrics' figures, p50, and the F1 had every unsure answer been given."""
    from litegate.evals.answers import answer_metrics, gold_answers, token_f1

    m = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in answer_metrics(records, outputs).items()
         if not k.startswith("_")}
    said = [o["answer"] if o.get("found") else o.get("unsure_answer", "") for o in outputs]
    f1 = [max(token_f1(s, g) for g in gold_answers(r)) if s else 0.0
          for r, s in zip(records, said) if gold_answers(r)]
    latencies = sorted(o["latency_ms"] for o in outputs)
    return {**m, "f1_always_answering": round(float(np.mean(f1)), 4) if f1 else None,
            "p50_ms": round(latencies[len(latencies) // 2]) if latencies else None}


def run_nano(rt: Any, records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The answer task on the nano tier (the shipped reader), every question."""
    outputs = []
    for i, rec in enumerate(records):
        out = rt.tasks.run("answer", {"query": rec["question"], "collection": "bench", "tier": "nano",
                                      "top_k": args.top_k})
        outputs.append(out)
        print(f"nano {i + 1}/{len(records)} {out['latency_ms']:.0f} ms found={out['found']} "
              f"{str(out['answer'])[:60]!r} gold={rec['answers'][:1]}", file=sys.stderr, flush=True)
    if args.items:
        args.items.with_suffix(".nano.json").write_text(
            json.dumps([{"record": r, "output": o} for r, o in zip(records, outputs)], indent=1), encoding="utf-8")
    return {"nano_reader_task": scored(records, outputs)}


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
        peer = min(len(records), args.peer_limit) if args.peer_limit is not None else len(records)
        readers = run_reader(rt, records, args, peer) if args.reader else {}
        outputs, latencies = [], []
        for i, rec in enumerate(records[:peer]):
            out = rt.tasks.run("answer", {"query": rec["question"], "collection": "bench", "tier": args.tier,
                                          "top_k": args.top_k})
            latencies.append(out["latency_ms"])
            outputs.append(out)
            print(f"{i + 1}/{peer} {out['latency_ms']:.0f} ms found={out['found']} "
                  f"{str(out['answer'])[:60]!r} gold={rec['answers'][:1]}", file=sys.stderr, flush=True)
        nano = run_nano(rt, records, args) if args.nano else {}
        retrieved = [[h.text for h in rt.collections.search(None, "bench", r["question"], top_k=10)]
                     for r in records]
    finally:
        rt.close()
    result: dict[str, Any] = {"set": args.set, "split": args.split if args.set == "squad2" else None,
                              "tier": args.tier, "top_k": args.top_k, "files": files, "ingest_s": round(ingest_s, 1)}
    if outputs:
        metrics = answer_metrics(records[:peer], outputs)
        if args.items:
            args.items.write_text(json.dumps([{"record": r, "output": o} for r, o in zip(records, outputs)],
                                             indent=1), encoding="utf-8")
        latencies.sort()
        result["f1_always_answering"] = scored(records[:peer], outputs)["f1_always_answering"]
        result.update({"questions": peer, "p50_ms": round(latencies[len(latencies) // 2]),
                       **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()
                          if not k.startswith("_")}})
    result.update({k: round(v, 4) for k, v in retrieval_metrics([gold_answers(r) for r in records], retrieved).items()})
    return {**result, **readers, **nano}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["squad2", "docs"], default="squad2")
    ap.add_argument("--split", choices=["tune", "test"], default="test")
    ap.add_argument("--tier", default="lite")
    ap.add_argument("--model", default="lite")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="the first N questions only")
    ap.add_argument("--items", type=Path, help="write every question's output here (JSON)")
    ap.add_argument("--reader", type=Path, help="also answer with this nano reader (bench/reader_pilot.py --save)")
    ap.add_argument("--peer-limit", type=int, help="lite answers the first N questions only (0: none; default all)")
    ap.add_argument("--nano", action="store_true", help="also the answer task on the nano tier (the shipped reader)")
    args = ap.parse_args()
    if args.peer_limit is not None and args.peer_limit < 0:
        ap.error("--peer-limit must be 0 or more")
    if args.reader is not None and not args.reader.is_file():
        ap.error(f"--reader {args.reader}: no such file")
    if args.peer_limit == 0 and not args.reader and not args.nano:
        ap.error("--peer-limit 0 leaves nothing to answer without --reader or --nano")
    os.environ.setdefault("LITEGATE_HOME", tempfile.mkdtemp(prefix="litegate-answers-"))
    load = [round(x, 2) for x in os.getloadavg()]
    result = run(args)
    print(json.dumps({"load_start": load, "load_end": [round(x, 2) for x in os.getloadavg()], **result}, indent=1))


if __name__ == "__main__":
    main()
