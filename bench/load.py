"""Load and soak on loopback: does litegate answer every client under a burst, and stay flat
over time?

    python bench/load.py [--clients 200] [--queue 16] [--soak-seconds 600] [--port 8477]

Starts its own `litegate serve` (lite model, a private home, `LITEGATE_QUEUE=--queue`), then:

1. **Burst**: ``--clients`` concurrent non-streamed chat requests (small ``max_tokens``), each
   with a generous client timeout. Every client must get a 200, or a 503/429 that carries
   ``Retry-After``; a timeout or a dropped connection counts as a failure. Reports the status
   counts, p50/p99 latency per status, and the server's RSS before and after.
2. **Soak**: ``--soak-seconds`` of mixed traffic from a few closed-loop clients (chat, a
   classify task on the nano tier, embeddings), RSS sampled every 10 s; reports the RSS slope
   (least squares, MB per minute) and requests served per minute, first minute against last.

Prints one JSON object. Loopback only; nothing is sent anywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from common import pct, start_server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct1(values: list[float], q: float) -> float | None:
    return round(pct(values, q), 1) if values else None


def start(port: int, queue: int, home: str) -> subprocess.Popen:
    return start_server(port, ["--ctx", "4096"], dict(os.environ, LITEGATE_HOME=home, LITEGATE_QUEUE=str(queue)))


async def burst(base: str, clients: int, max_tokens: int) -> dict:
    results: list[tuple[str, float]] = []

    async def one(client: httpx.AsyncClient, i: int) -> None:
        started = time.perf_counter()
        try:
            r = await client.post("/v1/chat/completions", json={
                "model": "lite", "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": f"Give me one fact about the number {i}."}]})
            ok_refusal = r.status_code in (429, 503) and r.headers.get("retry-after", "").isdigit()
            kind = "200" if r.status_code == 200 else (f"{r.status_code}+retry-after" if ok_refusal
                                                       else f"{r.status_code} without retry-after")
        except httpx.TimeoutException:
            kind = "timeout"
        except httpx.TransportError:
            kind = "dropped"
        results.append((kind, (time.perf_counter() - started) * 1000))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        await client.post("/v1/chat/completions", json={"model": "lite", "max_tokens": 1,
                                                       "messages": [{"role": "user", "content": "hi"}]})
        started = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(clients)))
        wall = time.perf_counter() - started
    by_kind: dict[str, list[float]] = {}
    for kind, ms in results:
        by_kind.setdefault(kind, []).append(ms)
    failures = sum(len(v) for k, v in by_kind.items() if k not in ("200", "503+retry-after", "429+retry-after"))
    return {"clients": clients, "wall_s": round(wall, 1), "failures": failures,
            "statuses": {k: {"n": len(v), "p50_ms": pct1(v, 50), "p99_ms": pct1(v, 99)} for k, v in by_kind.items()}}


async def soak(base: str, pid: int, seconds: float) -> dict:
    served: list[float] = []
    errors: list[str] = []
    samples: list[tuple[float, float]] = []
    stop = time.monotonic() + seconds
    t0 = time.monotonic()

    async def worker(client: httpx.AsyncClient, k: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            kind = (k + i) % 3
            try:
                if kind == 0:
                    r = await client.post("/v1/chat/completions", json={
                        "model": "lite", "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"Name a colour ({i})."}]})
                elif kind == 1:
                    r = await client.post("/v1/tasks/classify", json={
                        "text": f"my card was charged twice ({i})", "labels": ["billing", "shipping", "other"],
                        "tier": "lite"})
                else:
                    r = await client.post("/v1/embeddings", json={"input": [f"text number {i}", "another text"]})
                if r.status_code == 200:
                    served.append(time.monotonic() - t0)
                else:
                    errors.append(str(r.status_code))
            except httpx.HTTPError as e:
                errors.append(type(e).__name__)

    async def sampler() -> None:
        while time.monotonic() < stop:
            samples.append((time.monotonic() - t0, rss_mb(pid)))
            await asyncio.sleep(10)

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await asyncio.gather(sampler(), *(worker(client, k) for k in range(4)))
    xs, ys = [s[0] / 60 for s in samples], [s[1] for s in samples]
    slope = None
    if len(xs) >= 2:
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den, 3) if den else 0.0
    minutes = max(1, int(seconds // 60))
    per_minute = [sum(1 for t in served if m * 60 <= t < (m + 1) * 60) for m in range(minutes)]
    return {"seconds": seconds, "served": len(served), "errors": len(errors),
            "error_kinds": sorted(set(errors))[:10], "served_per_minute": per_minute,
            "rss_mb_first": round(ys[0], 1) if ys else None, "rss_mb_last": round(ys[-1], 1) if ys else None,
            "rss_slope_mb_per_min": slope, "rss_samples": len(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--port", type=int, default=8477)
    args = ap.parse_args()
    out: dict = {"bench": "load", "queue": args.queue, "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as home:
        proc = start(args.port, args.queue, home)
        base = f"http://127.0.0.1:{args.port}"
        try:
            out["rss_mb_start"] = round(rss_mb(proc.pid), 1)
            out["burst"] = asyncio.run(burst(base, args.clients, args.max_tokens))
            out["rss_mb_after_burst"] = round(rss_mb(proc.pid), 1)
            if args.soak_seconds > 0:
                out["soak"] = asyncio.run(soak(base, proc.pid, args.soak_seconds))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
