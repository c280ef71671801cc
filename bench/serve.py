"""litegate's HTTP API vs the raw llama.cpp HTTP server on the same loaded model.

    python bench/serve.py [--reps 10] [--max-tokens 64]

Both front ends sit on one engine (xllamacpp's C++ server also listens on a private port),
so the difference is exactly what litegate's HTTP layer adds. Requests alternate between
the two, one at a time. Prints JSON: time to first token p50/p95 for a short prompt and
single-stream decode tokens/s, as seen by a streaming client.
"""

from __future__ import annotations

import argparse
import json
import resource
import os
import statistics
import threading
import time

import httpx
import uvicorn

from concurrent.futures import ThreadPoolExecutor

from litegate.config import Settings
from litegate.engine import ModelRegistry
from litegate.server import create_app


def stream_once(client: httpx.Client, url: str, body: dict, headers: dict) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    n = 0
    with client.stream("POST", url, json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for c in chunk.get("choices", []):
                if (c.get("delta") or {}).get("content"):
                    n += 1
                    if first is None:
                        first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - start, (n - 1) / (end - first) if n > 1 else 0.0, n


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--port", type=int, default=8399)
    ap.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 8])
    args = ap.parse_args()

    settings = Settings()
    registry = ModelRegistry(settings, extra_specs=["lite"])
    engine = registry.engine("lite")
    config = uvicorn.Config(create_app(registry, "lite", close_registry=False), host="127.0.0.1", port=args.port,
                            log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    peers = {
        "litegate": (f"http://127.0.0.1:{args.port}/v1/chat/completions", {}),
        "llama.cpp": (engine.listening_address + "/v1/chat/completions",
                      {"Authorization": f"Bearer {engine.api_key}"}),
    }
    results: dict[str, dict[str, list[float]]] = {p: {"ttft": [], "tok_s": []} for p in peers}
    if True:
        for rep in range(args.reps + 1):
            order = list(peers) if rep % 2 == 0 else list(reversed(peers))
            for name in order:
                url, headers = peers[name]
                # a fresh prompt each time, so neither side profits from the other's cache
                body = {"model": "lite", "stream": True, "temperature": 0, "max_tokens": args.max_tokens,
                        "messages": [{"role": "user", "content": f"({rep}-{name}) Write a short note about tea."}]}
                with httpx.Client(timeout=120) as client:  # one connection per request, for both
                    ttft, tok_s, _ = stream_once(client, url, body, headers)
                if rep > 0:  # rep 0 warms up both paths
                    results[name]["ttft"].append(ttft * 1000)
                    results[name]["tok_s"].append(tok_s)
    # Aggregate decode throughput with several concurrent streams, each front end in turn.
    throughput: dict[str, dict[str, float]] = {name: {} for name in peers}
    for streams in args.concurrency:
        for name in (list(peers) if streams % 2 else list(reversed(peers))):
            url, headers = peers[name]

            def one(i: int, url: str = url, headers: dict = headers, name: str = name, streams: int = streams) -> int:
                body = {"model": "lite", "stream": True, "temperature": 0, "max_tokens": args.max_tokens,
                        "messages": [{"role": "user", "content": f"({streams}-{i}-{name}) Describe a river."}]}
                with httpx.Client(timeout=300) as client:
                    return stream_once(client, url, body, headers)[2]

            start = time.perf_counter()
            with ThreadPoolExecutor(streams) as pool:
                tokens = sum(pool.map(one, range(streams)))
            throughput[name][f"{streams}_streams_tok_s"] = round(tokens / (time.perf_counter() - start), 1)
    server.should_exit = True
    time.sleep(0.3)
    registry.close()
    summary = {name: {"ttft_ms_p50": round(statistics.median(r["ttft"]), 1),
                      "ttft_ms_p95": round(pct(r["ttft"], 0.95), 1),
                      "decode_tok_s_p50": round(statistics.median(r["tok_s"]), 1)} for name, r in results.items()}
    print(json.dumps({
        "bench": "serve",
        "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "loadavg_1m": os.getloadavg()[0]},
        "reps": args.reps, "max_tokens": args.max_tokens, "results": summary,
        "aggregate_throughput": throughput,
        "peak_rss_mb_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ttft_ratio_litegate_over_llamacpp": round(summary["litegate"]["ttft_ms_p50"] / summary["llama.cpp"]["ttft_ms_p50"], 3),
        "tok_s_ratio_litegate_over_llamacpp": round(summary["litegate"]["decode_tok_s_p50"] / summary["llama.cpp"]["decode_tok_s_p50"], 3),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
