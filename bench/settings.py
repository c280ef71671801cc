"""Engine settings on this machine: threads and slots, measured on the lite model.

    python bench/settings.py [--threads 1 2] [--parallel 1 2 4 8] [--streams 1 8] [--max-tokens 48]

For each (threads, slots) pair an engine is loaded and driven in-process (no HTTP, so only
llama.cpp is measured): time to first token of a short prompt on an idle engine, and
aggregate decode tokens/s with N concurrent requests. Prints JSON; the README's
performance section explains the defaults with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from litegate.config import Settings
from litegate.engine.catalog import LITE, ModelCache
from litegate.engine.llama import EngineOptions, LlamaEngine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--parallel", type=int, nargs="*", default=[1, 2, 4, 8])
    ap.add_argument("--streams", type=int, nargs="*", default=[1, 8])
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    path = ModelCache(Settings().home).ensure(LITE)
    rows = []
    for threads in args.threads:
        for parallel in args.parallel:
            engine = LlamaEngine(path, EngineOptions(threads=threads, ctx=8192, parallel=parallel))
            tag = f"t{threads}p{parallel}"

            def run(i: int, tag: str = tag, engine: LlamaEngine = engine) -> tuple[float, int]:
                started = time.perf_counter()
                r = engine.run("chat", {"messages": [{"role": "user", "content": f"({tag}-{i}) Describe a lake."}],
                                        "max_tokens": args.max_tokens, "temperature": 0})
                return time.perf_counter() - started, r["usage"]["completion_tokens"]

            run(-1)
            ttft = []
            for rep in range(args.reps):
                r = engine.run("chat", {"messages": [{"role": "user", "content": f"({tag}-ttft-{rep}) Hi"}],
                                        "max_tokens": 1, "temperature": 0})
                ttft.append(r["timings"]["prompt_ms"] + r["timings"]["predicted_ms"])
            row = {"threads": threads, "slots": parallel, "ttft_ms_p50": round(statistics.median(ttft), 1)}
            for streams in args.streams:
                started = time.perf_counter()
                with ThreadPoolExecutor(streams) as pool:
                    results = list(pool.map(run, range(streams * 100, streams * 100 + streams)))
                wall = time.perf_counter() - started
                row[f"{streams}_streams_tok_s"] = round(sum(n for _, n in results) / wall, 1)
                row[f"{streams}_streams_p50_request_s"] = round(statistics.median(t for t, _ in results), 2)
            rows.append(row)
            engine.close()
    print(json.dumps({"bench": "settings", "model": path.name, "cpus": os.cpu_count(),
                      "loadavg_1m": os.getloadavg()[0], "rows": rows,
                      "at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


if __name__ == "__main__":
    main()
