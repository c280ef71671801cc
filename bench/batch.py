"""Batch throughput: a batch job against the client loop teams write today, in one run.

    python bench/batch.py [--lines 3000] [--llm-lines 48] [--concurrency 32] [--no-ray] [--port 8478]

Nano classify (a classifier trained here on CLINC150 banking, 10 examples per intent) over
``--lines`` CLINC150 test utterances, answered four ways:

- ``client_loop``: single HTTP requests to a running ``litegate serve`` from an asyncio client
  (``asyncio.gather`` under a semaphore of ``--concurrency``): what teams write today;
- ``server_batch``: the same lines as an OpenAI batch job on that server (upload, create,
  poll every 0.1 s until completed);
- ``client_loop_uncoalesced``: the same client loop against a server with ``LITEGATE_COALESCE=0``
  (each request's forward pass alone, as before coalescing);
- ``local_executor``: ``litegate batch run`` (answering time, after its models loaded);
- ``ray_executor``: the Ray executor on a local Ray with one actor (the actor already up).

And lite-tier classify with a shared prefix (the same labels and instructions on every line)
over ``--llm-lines`` lines: client loop (concurrency 8) against a batch job. Reports items/s,
the ratios, the server's peak RSS and the machine's load average. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import start_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def client_loop(base: str, bodies: list[dict], concurrency: int, path: str) -> tuple[float, int]:
    sem = asyncio.Semaphore(concurrency)
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        async def one(body: dict) -> None:
            nonlocal failures
            async with sem:
                r = await client.post(path, json=body)
                failures += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started, failures


def server_batch(base: str, bodies: list[dict], path: str) -> tuple[float, dict]:
    lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": path, "body": b}) + "\n"
                    for i, b in enumerate(bodies))
    with httpx.Client(base_url=base, timeout=120) as c:
        f = c.post("/v1/files", files={"file": ("in.jsonl", io.BytesIO(lines.encode()))},
                   data={"purpose": "batch"}).json()
        started = time.perf_counter()
        job = c.post("/v1/batches", json={"input_file_id": f["id"], "endpoint": path,
                                          "completion_window": "24h"}).json()
        while job["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.1)
            job = c.get(f"/v1/batches/{job['id']}").json()
        return time.perf_counter() - started, job


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=3000)
    ap.add_argument("--llm-lines", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--port", type=int, default=8478)
    args = ap.parse_args()

    from litegate.config import Settings
    from litegate.deploy.batch_files import Owner
    from litegate.evals.datasets import clinc150
    from litegate.jobs.batches import Line
    from litegate.runtime import build

    home = Path(tempfile.mkdtemp(prefix="litegate-bench-batch-"))
    env = dict(os.environ, LITEGATE_HOME=str(home))
    os.environ["LITEGATE_HOME"] = str(home)
    settings = Settings(home=home)
    train = clinc150("train", domain="banking", per_label=10)
    texts = [r["text"] for r in clinc150("test")]
    texts = (texts * (args.lines // len(texts) + 1))[:args.lines]
    rt = build(settings, None)
    rt.classifiers.train("bank", train)
    bodies = [{"text": t, "classifier": "bank"} for t in texts]
    path = "/v1/tasks/classify"
    result: dict = {"lines": len(bodies), "concurrency": args.concurrency}

    proc = start_server(args.port, ["--ctx", "4096"], env)
    base = f"http://127.0.0.1:{args.port}"
    try:
        asyncio.run(client_loop(base, bodies[:100], args.concurrency, path))  # warm up
        secs, failures = asyncio.run(client_loop(base, bodies, args.concurrency, path))
        result["client_loop"] = {"items_per_s": round(len(bodies) / secs, 1), "failures": failures}
        secs, job = server_batch(base, bodies, path)
        result["server_batch"] = {"items_per_s": round(len(bodies) / secs, 1), "status": job["status"],
                                  "counts": job["request_counts"], "cost_usd": job.get("cost_usd")}
        llm = [{"text": t, "labels": ["banking", "travel", "cooking", "work", "other"], "tier": "lite"}
               for t in texts[:args.llm_lines]]
        asyncio.run(client_loop(base, llm[:4], 8, path))
        secs, failures = asyncio.run(client_loop(base, llm, 8, path))
        result["lite_client_loop"] = {"items_per_s": round(len(llm) / secs, 2), "failures": failures}
        secs, job = server_batch(base, llm, path)
        result["lite_server_batch"] = {"items_per_s": round(len(llm) / secs, 2), "status": job["status"],
                                       "counts": job["request_counts"]}
        result["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)

    # the client loop against the server as it was before concurrent nano calls were coalesced
    proc = start_server(args.port, ["--ctx", "4096"], dict(env, LITEGATE_COALESCE="0"))
    try:
        asyncio.run(client_loop(base, bodies[:100], args.concurrency, path))
        secs, failures = asyncio.run(client_loop(base, bodies, args.concurrency, path))
        result["client_loop_uncoalesced"] = {"items_per_s": round(len(bodies) / secs, 1), "failures": failures}
    finally:
        proc.terminate()
        proc.wait(30)
    rt.close()

    lines = [Line(i, f"r{i}", path, b) for i, b in enumerate(bodies)]
    (home / "in.jsonl").write_text("".join(json.dumps({"custom_id": ln.custom_id, "method": "POST", "url": path,
                                                       "body": ln.body}) + "\n" for ln in lines))
    run = subprocess.run([sys.executable, "-m", "litegate.cli", "batch", "run", str(home / "in.jsonl"), "-o",
                          str(home / "out.jsonl"), "--concurrency", str(args.concurrency)],
                         env=env, capture_output=True, text=True)
    summary = json.loads(run.stdout) if run.returncode == 0 else {"error": run.stderr[-500:]}
    result["local_executor"] = {"items_per_s": summary.get("items_per_s"), "error": summary.get("error")}
    sink: list = []

    if not args.no_ray:
        try:
            from litegate.deploy.ray_executor import RayPool

            pool = RayPool(settings, "lite", Owner("bench", feature="bench"), workers=1)
            try:
                pool.run(lines[:100], args.concurrency, sink.append, block=100)
                started = time.perf_counter()
                pool.run(lines, args.concurrency, sink.append, block=256)
                secs = time.perf_counter() - started
                result["ray_executor"] = {"items_per_s": round(len(lines) / secs, 1), "workers": 1}
            finally:
                pool.close()
        except Exception as e:  # noqa: BLE001 - Ray missing or failing is reported, not fatal to the other rows
            result["ray_executor"] = {"error": f"{type(e).__name__}: {e}"}

    loop = result["client_loop"]["items_per_s"]
    result["ratios"] = {
        "server_batch_vs_client_loop": round(result["server_batch"]["items_per_s"] / loop, 2),
        "local_executor_vs_client_loop": round((result["local_executor"]["items_per_s"] or 0) / loop, 2),
        "server_batch_vs_uncoalesced_client_loop": round(result["server_batch"]["items_per_s"]
                                                         / result["client_loop_uncoalesced"]["items_per_s"], 2),
        "lite_batch_vs_client_loop": round(result["lite_server_batch"]["items_per_s"]
                                           / result["lite_client_loop"]["items_per_s"], 2),
    }
    if "items_per_s" in result.get("ray_executor", {}):
        result["ratios"]["ray_vs_local_executor"] = round(result["ray_executor"]["items_per_s"]
                                                          / (result["local_executor"]["items_per_s"] or 1), 2)
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
