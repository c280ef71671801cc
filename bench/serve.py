"""litegate's HTTP server vs the raw llama.cpp server vs llama-cpp-python's server.

    python bench/serve.py [--reps 10] [--max-tokens 64] [--concurrency 1 4 8]
                          [--llama-cpp-python [VENV]]

Every peer is its own process on the same embedded lite model, threads and context:

- ``litegate``: ``litegate serve`` (FastAPI over xllamacpp, 4 slots);
- ``llama.cpp``: llama.cpp's own HTTP server, started through xllamacpp with the same
  parameters (4 slots, unified KV) and enough HTTP threads for every stream (its default
  on 2 cores is one, which would serialize the streams and flatter litegate);
- ``llama-cpp-python``: ``python -m llama_cpp.server`` with the same model, threads and
  context, requests queued rather than interrupting each other. It compiles llama.cpp on install (minutes), so it
  is only benchmarked when ``--llama-cpp-python`` is given; the script then creates (once) a separate venv for it
  (default ``bench/.venv-llama-cpp-python``), never touching litegate's environment.

Requests alternate between the peers, one at a time, for time to first token (a short
prompt, fresh each rep so no one profits from a prompt cache, identical across peers so
greedy outputs have the same length) and single-stream decode
speed; then aggregate decode tokens/s with 1, 4 and 8 concurrent streams, each peer in
turn, the median of ``--rounds`` runs. Peak RSS is each server process's high-water mark. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from litegate.config import Settings
from litegate.engine.catalog import LITE, ModelCache

LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stream_once(client: httpx.Client, url: str, body: dict) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    n = 0
    with client.stream("POST", url, json=body) as r:
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


def serve_raw(model: str, port: int, threads: int, ctx: int, parallel: int, http_threads: int) -> None:
    """Run llama.cpp's HTTP server (via xllamacpp) in this process until killed."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_ctx, params.n_parallel, params.kv_unified = ctx, parallel, True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.n_threads_http = http_threads
    params.port, params.hostnames = port, ["127.0.0.1"]
    server = xllamacpp.Server(params)  # noqa: F841 - serves until the process ends
    print(f"raw llama.cpp listening on {server.listening_address}", flush=True)
    while True:
        time.sleep(3600)


def ensure_llama_cpp_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import llama_cpp.server"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {LLAMA_CPP_PYTHON} into {venv} (it compiles llama.cpp: several minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON], check=True)
    return python


def wait_ready(base: str, proc: subprocess.Popen, name: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(base + "/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{name} did not become ready")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 8])
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs per peer and stream count (median)")
    ap.add_argument("--llama-cpp-python", nargs="?", const=str(HERE / ".venv-llama-cpp-python"), default=None,
                    metavar="VENV", help="also benchmark llama-cpp-python's server (installed into VENV once)")
    ap.add_argument("--serve-raw", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_raw:
        model, port, threads, ctx, parallel, http_threads = args.serve_raw
        serve_raw(model, int(port), int(threads), int(ctx), int(parallel), int(http_threads))
        return

    settings = Settings()
    model = ModelCache(settings.home).ensure(LITE)
    threads, ctx, parallel = settings.threads, settings.ctx, settings.parallel
    procs: dict[str, subprocess.Popen] = {}
    bases: dict[str, str] = {}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        port = free_port()
        procs["litegate"] = subprocess.Popen(
            [sys.executable, "-m", "litegate.cli", "serve", "--port", str(port), "--threads", str(threads),
             "--ctx", str(ctx), "--parallel", str(parallel)], **quiet)
        bases["litegate"] = f"http://127.0.0.1:{port}"
        port = free_port()
        http_threads = max(args.concurrency + [parallel]) + 2
        procs["llama.cpp"] = subprocess.Popen(
            [sys.executable, __file__, "--serve-raw", str(model), str(port), str(threads), str(ctx), str(parallel),
             str(http_threads)], **quiet)
        bases["llama.cpp"] = f"http://127.0.0.1:{port}"
        if args.llama_cpp_python:
            python = ensure_llama_cpp_python(Path(args.llama_cpp_python))
            port = free_port()
            procs["llama-cpp-python"] = subprocess.Popen(
                [str(python), "-m", "llama_cpp.server", "--model", str(model), "--n_threads", str(threads),
                 "--n_threads_batch", str(threads), "--n_ctx", str(ctx), "--port", str(port),
                 "--host", "127.0.0.1",
                 # by default a new request interrupts the one streaming; queue them instead
                 "--interrupt_requests", "False"], **quiet)
            bases["llama-cpp-python"] = f"http://127.0.0.1:{port}"
        for name, base in bases.items():
            wait_ready(base, procs[name], name)
        peers = list(bases)

        def body(tag: str, prompt: str) -> dict:
            return {"model": "lite", "stream": True, "temperature": 0, "max_tokens": args.max_tokens,
                    "messages": [{"role": "user", "content": f"({tag}) {prompt}"}]}

        ttft: dict[str, list[float]] = {p: [] for p in peers}
        tok_s: dict[str, list[float]] = {p: [] for p in peers}
        for rep in range(args.reps + 1):
            order = peers[rep % len(peers):] + peers[: rep % len(peers)]
            for name in order:
                # a fresh prompt each rep, so no one profits from a prompt cache; the same
                # prompt for every peer (each its own process), so outputs have equal length
                with httpx.Client(timeout=300) as client:  # one connection per request, for all
                    first, speed, _ = stream_once(client, bases[name] + "/v1/chat/completions",
                                                  body(f"{rep}", "Write a short note about tea."))
                if rep > 0:  # rep 0 warms up every path
                    ttft[name].append(first * 1000)
                    tok_s[name].append(speed)
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in peers}
        for round_ in range(args.rounds):
            for k, streams in enumerate(args.concurrency):
                shift = (k + round_) % len(peers)
                for name in peers[shift:] + peers[:shift]:
                    def one(i: int, name: str = name, streams: int = streams, round_: int = round_) -> int:
                        with httpx.Client(timeout=600) as client:
                            return stream_once(client, bases[name] + "/v1/chat/completions",
                                               body(f"{round_}-{streams}-{i}", "Describe a river."))[2]

                    start = time.perf_counter()
                    with ThreadPoolExecutor(streams) as pool:
                        tokens = sum(pool.map(one, range(streams)))
                    runs[name].setdefault(f"{streams}_streams_tok_s", []).append(
                        tokens / (time.perf_counter() - start))
        throughput = {name: {key: round(statistics.median(v), 1) for key, v in r.items()} for name, r in runs.items()}
        rss = {name: peak_rss_mb(proc.pid) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    results = {name: {"ttft_ms_p50": round(statistics.median(ttft[name]), 1),
                      "ttft_ms_p95": round(pct(ttft[name], 0.95), 1),
                      "decode_tok_s_p50": round(statistics.median(tok_s[name]), 1),
                      **throughput[name], "peak_rss_mb": rss[name]} for name in peers}
    ratios = {}
    for peer in peers[1:]:
        ratios[f"litegate_over_{peer}"] = {
            "ttft_p50": round(results["litegate"]["ttft_ms_p50"] / results[peer]["ttft_ms_p50"], 3),
            **{key: round(results["litegate"][key] / results[peer][key], 3)
               for key in throughput["litegate"] if results[peer].get(key)},
        }
    print(json.dumps({
        "bench": "serve",
        "machine": {"cpus": os.cpu_count(), "threads": threads, "ctx": ctx, "slots": parallel,
                    "loadavg_1m_at_end": os.getloadavg()[0]},
        "model": model.name, "reps": args.reps, "rounds": args.rounds, "max_tokens": args.max_tokens,
        "results": results, "ratios": ratios,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
