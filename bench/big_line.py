"""Validate before work: a classify batch with one 31 MB text among its lines, against the
same batch without it and against no batch at all, in one run on one server. The big line
must fail on its own (into the error file) without the server decoding or encoding it.
Prints the server's peak RSS over its idle baseline for each batch, and the p50/p95 of
interactive classify requests made while each batch runs and while nothing else does, with
the load averages before and after. Prints JSON.

    python bench/big_line.py [--lines 10000] [--mb 31] [--idle-s 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import pct, start_server
from uploads import PeakRss

EXAMPLES = [{"text": t, "label": lab} for lab, texts in {
    "billing": ["my invoice is wrong", "charge on my card twice", "refund my payment", "update billing address"],
    "shipping": ["where is my parcel", "package arrived late", "track my order", "delivery address change"],
}.items() for t in texts]


def batch(base: str, lines: list[str]) -> dict:
    body = "".join(json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/tasks/classify",
                               "body": {"classifier": "support", "text": t}}) + "\n" for i, t in enumerate(lines))
    f = httpx.post(base + "/v1/files", files={"file": ("in.jsonl", body.encode())}, data={"purpose": "batch"},
                   timeout=600).json()
    job = httpx.post(base + "/v1/batches", json={"input_file_id": f["id"], "endpoint": "/v1/tasks/classify",
                                                 "completion_window": "24h"}, timeout=600).json()
    while job["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.2)
        job = httpx.get(f"{base}/v1/batches/{job['id']}", timeout=60).json()
    return job


def interactive(base: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=300) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.post("/v1/tasks/classify", json={"classifier": "support", "text": "where is my parcel"})
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)


def idle(base: str, pid: int, seconds: float) -> dict:
    """Interactive classify with no batch running: the peer for the latencies below."""
    stop, latencies = threading.Event(), []
    worker = threading.Thread(target=interactive, args=(base, stop, latencies))
    with PeakRss(pid) as rss:
        worker.start()
        time.sleep(seconds)
        stop.set()
        worker.join()
    return {"rss_mb": round(rss.before, 1), "rss_peak_mb": round(rss.peak, 1), **_latency(latencies)}


def _latency(latencies: list[float]) -> dict:
    return {"interactive_p50_ms": round(pct(latencies, 50), 1), "interactive_p95_ms": round(pct(latencies, 95), 1),
            "interactive_calls": len(latencies)}


def run(base: str, pid: int, lines: list[str], baseline_mb: float) -> dict:
    stop, latencies = threading.Event(), []
    worker = threading.Thread(target=interactive, args=(base, stop, latencies))
    started = time.monotonic()
    with PeakRss(pid) as rss:
        worker.start()
        job = batch(base, lines)
        stop.set()
        worker.join()
    errors = []
    if job.get("error_file_id"):
        text = httpx.get(f"{base}/v1/files/{job['error_file_id']}/content", timeout=60).text
        errors = [json.loads(s)["error"]["code"] for s in text.splitlines() if s.strip()]
    return {"status": job["status"], "counts": job["request_counts"], "error_codes": sorted(set(errors)),
            "seconds": round(time.monotonic() - started, 1), "rss_peak_over_idle_mb": round(rss.peak - baseline_mb, 1),
            "rss_peak_over_start_mb": round(rss.peak - rss.before, 1), **_latency(latencies)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10000)
    ap.add_argument("--mb", type=int, default=31)
    ap.add_argument("--idle-s", type=float, default=30.0, help="seconds of interactive calls with no batch")
    ap.add_argument("--port", type=int, default=8794)
    args = ap.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="litegate-bigline-"))
    proc = start_server(args.port, ["--ctx", "2048"], dict(os.environ, LITEGATE_HOME=str(work)))
    base = f"http://127.0.0.1:{args.port}"
    try:
        r = httpx.post(base + "/v1/classifiers", json={"name": "support", "examples": EXAMPLES}, timeout=300)
        r.raise_for_status()
        texts = [f"question {i} about my {'invoice' if i % 2 else 'parcel'}" for i in range(args.lines)]
        quiet = idle(base, proc.pid, args.idle_s)  # also warms the classifier up
        plain = run(base, proc.pid, texts, quiet["rss_peak_mb"])
        big = run(base, proc.pid, texts[:-1] + ["word " * (args.mb * (1 << 20) // 5)], quiet["rss_peak_mb"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)  # the server's home (its copy of the 31 MB file)
    print(json.dumps({"lines": args.lines, "big_line_mb": args.mb, "no_batch": quiet, "without_big_line": plain,
                      "with_big_line": big, "load_average_before": [round(x, 2) for x in load_before],
                      "load_average_after": [round(x, 2) for x in os.getloadavg()]}, indent=1))


if __name__ == "__main__":
    main()
