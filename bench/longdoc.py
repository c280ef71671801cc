"""A document far longer than the context (a generated 1,000-page text PDF): read and chunk
time and peak memory for all of it; the map-reduce summary with the lite tier on its first
pages, projected to the whole from the measured time per call. Prints JSON.

    python bench/longdoc.py --pages 1000 --run-pages 6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from litegate.collections.chunking import chunk_document
from litegate.collections.longdoc import WINDOW_CHARS, LongSummary, windows
from litegate.collections.service import MAX_FILE_BYTES, MAX_PAGES
from litegate.documents import Limits, Part, read

sys.path.insert(0, str(Path(__file__).parent))
from retrieval import text_pdf  # noqa: E402


def prose(source: Path | None) -> list[str]:
    """Words to fill pages with: a BEIR corpus's abstracts when given, else the project's docs."""
    if source is not None:
        with (source / "corpus.jsonl").open(encoding="utf-8") as f:
            return " ".join(json.loads(line)["text"] for _, line in zip(range(4000), f)).split()
    docs = Path(__file__).parent.parent / "docs"
    return " ".join(p.read_text(encoding="utf-8") for p in sorted(docs.glob("*.md"))).split()


def book(pages: int, words: list[str]) -> bytes:
    """Pages of 46 lines of 12 words, each page opening with a numbered heading."""
    out, at = [], 0
    for p in range(pages):
        lines = [f"Section {p + 1}"]
        for _ in range(45):
            lines.append(" ".join(words[(at + i) % len(words)] for i in range(12)))
            at += 12
        out.append(lines)
    return text_pdf(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--run-pages", type=int, default=6, help="pages summarized for real (0: read and chunk only)")
    ap.add_argument("--beir", type=Path, help="a BEIR folder whose corpus.jsonl gives the prose")
    ap.add_argument("--model", default="lite")
    args = ap.parse_args()
    report: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    words = prose(args.beir)
    data = book(args.pages, words)
    limits = Limits(max_pages=MAX_PAGES, max_bytes=MAX_FILE_BYTES)
    tracemalloc.start()
    started = time.perf_counter()
    doc = read(Part("application/pdf", data, "book.pdf", filename="book.pdf"), limits)
    read_s = time.perf_counter() - started
    chunks = chunk_document(doc, overlap_chars=0)
    groups = windows([c.text for c in chunks], WINDOW_CHARS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report["whole"] = {"pages": doc.pages, "pdf_bytes": len(data), "text_chars": len(doc.text),
                       "read_s": round(read_s, 2), "chunks": len(chunks), "map_windows": len(groups),
                       "python_peak_mb_read_and_chunk": round(peak / 2**20, 1),
                       "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.run_pages:
        report["run"] = summarize_first(args, words)
        per_call = report["run"]["seconds"] / report["run"]["calls"]
        calls = len(groups) + len(groups) // 5 + 2  # map calls, plus about one merge per 20 points of 3
        report["projection_whole"] = {"calls": calls, "hours_at_measured_s_per_call": round(calls * per_call / 3600, 2)}
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


def summarize_first(args: argparse.Namespace, words: list[str]) -> dict[str, Any]:
    from litegate.config import Settings
    from litegate.configfile import Config
    from litegate.runtime import build

    doc = read(Part("application/pdf", book(args.run_pages, words), "first.pdf", filename="first.pdf"),
               Limits(max_pages=MAX_PAGES, max_bytes=MAX_FILE_BYTES))
    rt = build(Settings(), Config(), model=args.model, record=False)
    try:
        ticks: list[tuple[int, int, float]] = []
        started = time.perf_counter()
        result = LongSummary(rt.tasks.tier("lite"), max_points=6,
                             progress=lambda d, t: ticks.append((d, t, round(time.perf_counter() - started, 1)))
                             ).run(doc)
        seconds = time.perf_counter() - started
    finally:
        rt.close()
    cited = [p for p in result["points"] if p["citations"]]
    return {"pages": args.run_pages, "calls": result["calls"], "windows": result["windows"],
            "seconds": round(seconds, 1), "usage": result["usage"], "points": len(result["points"]),
            "points_with_citations": len(cited), "progress": ticks, "summary": result["points"]}


if __name__ == "__main__":
    main()
