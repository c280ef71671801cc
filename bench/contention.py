"""Chat decode under contention: litegate against raw llama.cpp's server, in the same run.

    python bench/contention.py [--reps 3] [--max-tokens 64] [--hogs 2]
                               [--peers litegate llama.cpp] [--phases alone hogs neighbours mixed unit]

Every peer is its own process on the embedded lite model with the same thread budget:

- ``litegate``: ``litegate serve`` with its defaults (litegate.compute: llama.cpp threads = the
  budget less one CPU, poll 0, documents in their own pool at a lower priority);
- ``litegate-allcpus`` / ``litegate-allcpus-poll50`` / ``litegate-t1``: llama.cpp threads = the
  whole budget (the old default), also with llama.cpp's own poll level (50), or one thread:
  what the default was chosen against;
- ``llama.cpp``: llama.cpp's own HTTP server through xllamacpp, at its defaults (a thread per
  CPU, poll 50); ``llama.cpp-poll0``: the same with poll 0.

Phases, each measured on every peer in turn (requests alternate between peers, a fresh prompt
each time, single stream, ``--max-tokens`` tokens):

- ``alone``: nothing else from this script running (the machine may be shared: the load
  average is printed with every figure);
- ``hogs``: ``--hogs`` plain CPU-bound processes (``while True: pass``);
- ``neighbours``: two more llama.cpp servers, each its own process at llama.cpp's defaults,
  decoding without pause;
- ``mixed``: inside each litegate server, documents read by OCR one after another (a generated
  receipt-like page through a nano classify task with a file) and nano embeddings in a loop,
  while chat decodes; OCR pages/s and embeddings/s are reported beside it;
- ``unit``: the unit test layer's wall time against its CPU time, with ``--hogs`` CPU hogs.

Ratios are against the same peer's ``alone`` figure of this run. The ledger's price and engine
time of each litegate chat call are read back per phase: the price must not move with the load.
Prints JSON.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from common import pct, start_server
from litegate.config import Settings
from litegate.engine.catalog import LITE, ModelCache
from serve import free_port, wait_ready

HERE = Path(__file__).resolve().parent
ALL = "all"  # the whole thread budget
LITEGATE_PEERS = {"litegate": {}, "litegate-allcpus": {"LITEGATE_LLAMA_THREADS": ALL},
                  "litegate-allcpus-poll50": {"LITEGATE_LLAMA_THREADS": ALL, "LITEGATE_POLL": "50"},
                  "litegate-t1": {"LITEGATE_LLAMA_THREADS": "1"}}
RAW_PEERS = {"llama.cpp": 50, "llama.cpp-poll0": 0}  # name -> poll level


def serve_raw(model: str, port: int, threads: int, poll: int) -> None:
    """llama.cpp's own HTTP server (xllamacpp) in this process until killed."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_ctx, params.n_parallel, params.kv_unified = 4096, 4, True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.cpuparams.poll = params.cpuparams_batch.poll = poll
    params.n_threads_http = 6
    params.port, params.hostnames = port, ["127.0.0.1"]
    server = xllamacpp.Server(params)  # noqa: F841 - serves until the process ends
    while True:
        time.sleep(3600)


def start_raw(model: Path, threads: int, poll: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-raw", str(model), str(port), str(threads), str(poll)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc, f"llama.cpp on {port}", timeout=600)
    return proc, base


def stream_chat(base: str, tag: str, max_tokens: int) -> dict:
    """One streamed chat request: time to first token, decode tokens/s, the response id."""
    body = {"model": "lite", "stream": True, "temperature": 0, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": f"({tag}) Write a short note about tea."}]}
    start, first, n, call_id = time.perf_counter(), None, 0, None
    with httpx.Client(timeout=900) as client, client.stream("POST", base + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            call_id = call_id or chunk.get("id")
            for c in chunk.get("choices", []):
                if (c.get("delta") or {}).get("content"):
                    n += 1
                    first = first or time.perf_counter()
    end = time.perf_counter()
    if first is None:
        raise RuntimeError(f"{base}: no tokens")
    return {"ttft_ms": (first - start) * 1000, "tok_s": (n - 1) / (end - first) if n > 1 else 0.0, "id": call_id}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def background(target, count: int):  # noqa: ANN001 - a loop body taking (stop, index)
    stop = threading.Event()
    threads = [threading.Thread(target=target, args=(stop, i), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join(120)


@contextmanager
def hogs(n: int):
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(1)
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextmanager
def neighbours(model: Path, threads: int, max_tokens: int):
    """Two llama.cpp servers (own processes, llama.cpp's defaults) decoding without pause."""
    started = [start_raw(model, threads, 50) for _ in range(2)]

    def decode(stop: threading.Event, i: int) -> None:
        k = 0
        while not stop.is_set():
            try:
                stream_chat(started[i][1], f"neighbour {i} {k} {time.time()}", max_tokens)
            except (httpx.HTTPError, RuntimeError):
                time.sleep(0.5)
            k += 1

    try:
        with background(decode, 2):
            time.sleep(2)
            yield
    finally:
        for proc, _ in started:
            proc.kill()
            proc.wait()


def measure(bases: dict[str, str], reps: int, max_tokens: int, phase: str) -> dict[str, list[dict]]:
    """``reps`` requests per peer, alternating peers, each with a fresh prompt."""
    out: dict[str, list[dict]] = {name: [] for name in bases}
    names = list(bases)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            result = stream_chat(bases[name], f"{phase} {rep} {time.time()}", max_tokens)
            result["load"] = load1()
            out[name].append(result)
            print(f"{phase:>10} {name:>16}: {result['tok_s']:6.1f} tok/s, ttft {result['ttft_ms']:7.0f} ms, "
                  f"load {result['load']}", file=sys.stderr)
    return out


def summary(samples: list[dict]) -> dict:
    speeds = [s["tok_s"] for s in samples]
    ttfts = [s["ttft_ms"] for s in samples]
    return {"decode_tok_s_p50": round(statistics.median(speeds), 2), "ttft_ms_p50": round(statistics.median(ttfts)),
            "ttft_ms_p95": round(pct(ttfts, 95)), "load_avg": round(statistics.mean(s["load"] for s in samples), 2),
            "n": len(samples)}


def page_png() -> str:
    """A receipt-like page of printed lines (generated here), as base64 PNG."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (620, 820), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 20)
    except OSError:
        font = ImageFont.load_default()
    lines = ["CORNER GROCERY", "12 Market Street", "Receipt 20931   2025-03-14 10:42"]
    goods = "apples bread milk tea rice soap".split()
    lines += [f"Item {i:02d} {goods[i % 6]:<8} {i * 1.35:6.2f}" for i in range(1, 22)]
    lines += ["SUBTOTAL 312.40", "TAX 24.99", "TOTAL 337.39", "Thank you"]
    for i, text in enumerate(lines):
        draw.text((30, 20 + i * 29), text, fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def train_classifier(home: Path) -> None:
    from litegate.evals.datasets import clinc150
    from litegate.runtime import build

    rt = build(Settings(home=home), None)
    try:
        rt.classifiers.train("bank", clinc150("train", domain="banking", per_label=5))
    finally:
        rt.close()


def mixed(base: str, png: str, measure_chat) -> dict:  # noqa: ANN001
    """Chat measured while the same server reads a page by OCR after another and embeds texts."""
    counts = {"pages": 0, "ocr_s": [], "embeddings": 0, "refused": 0}

    def ocr(stop: threading.Event, _i: int) -> None:
        with httpx.Client(timeout=900) as client:
            while not stop.is_set():
                t = time.perf_counter()
                r = client.post(base + "/v1/tasks/classify", json={
                    "classifier": "bank", "tier": "nano", "text": "", "files": [{"mime_type": "image/png",
                                                                                 "data": png}]})
                if r.status_code == 503:
                    counts["refused"] += 1
                    time.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                r.raise_for_status()
                counts["pages"] += 1
                counts["ocr_s"].append(time.perf_counter() - t)

    def embed(stop: threading.Event, _i: int) -> None:
        with httpx.Client(timeout=900) as client:
            while not stop.is_set():
                r = client.post(base + "/v1/embeddings", json={"model": "all-minilm-l6-v2",
                                                               "input": ["how do I reset my card pin"] * 4})
                r.raise_for_status()
                counts["embeddings"] += 4
                time.sleep(0.05)

    with background(ocr, 1), background(embed, 1):
        time.sleep(2)
        started = time.perf_counter()
        chat = measure_chat()
        window = time.perf_counter() - started
    return {"chat": chat, "ocr_pages_per_s": round(counts["pages"] / window, 3),
            "ocr_s_per_page_p50": round(statistics.median(counts["ocr_s"]), 2) if counts["ocr_s"] else None,
            "embeddings_per_s": round(counts["embeddings"] / window, 1), "ocr_refused": counts["refused"]}


def ocr_alone(base: str, png: str, n: int = 3) -> float:
    times = []
    with httpx.Client(timeout=900) as client:
        for _ in range(n + 1):
            t = time.perf_counter()
            client.post(base + "/v1/tasks/classify", json={"classifier": "bank", "tier": "nano", "text": "",
                                                            "files": [{"mime_type": "image/png", "data": png}]}
                        ).raise_for_status()
            times.append(time.perf_counter() - t)
    return round(statistics.median(times[1:]), 2)  # the first builds the OCR engine


def unit_layer(n_hogs: int) -> dict:
    """The unit layer's wall and CPU time with ``n_hogs`` CPU hogs beside it."""
    env = dict(os.environ, LITEGATE_HOME=tempfile.mkdtemp(prefix="litegate-bench-unit-"))
    with hogs(n_hogs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, loads = time.perf_counter(), [load1()]
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-m", "unit", "-p", "no:cacheprovider"],
                                cwd=HERE.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            time.sleep(2)
            loads.append(load1())
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"hogs": n_hogs, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "wall_over_cpu": round(wall / cpu, 2),
            "load_avg": round(statistics.mean(loads), 2), "exit_code": proc.returncode}


def ledger_prices(home: Path, ids: dict[str, list[str]]) -> dict:
    """Per phase: the mean price and engine time of litegate's chat calls, from its ledger."""
    out = {}
    with sqlite3.connect(home / "ledger.db") as db:
        for phase, call_ids in ids.items():
            rows = [db.execute("select c.cost_usd, c.tokens_in, c.tokens_out, e.engine_ms from calls c left join "
                               "call_engine_time e on e.call_id = c.id where c.id = ?", (i,)).fetchone()
                    for i in call_ids]
            rows = [r for r in rows if r]
            if rows:
                out[phase] = {"cost_usd_mean": sum(r[0] for r in rows) / len(rows),
                              "tokens_out_mean": round(sum(r[2] for r in rows) / len(rows), 1),
                              "engine_ms_mean": round(sum(r[3] or 0 for r in rows) / len(rows), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--hogs", type=int, default=2)
    ap.add_argument("--peers", nargs="+", default=["litegate", "llama.cpp"],
                    choices=[*LITEGATE_PEERS, *RAW_PEERS])
    ap.add_argument("--phases", nargs="+", default=["alone", "hogs", "neighbours", "mixed"],
                    choices=["alone", "hogs", "neighbours", "mixed", "unit"])
    ap.add_argument("--serve-raw", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_raw:
        model, port, threads, poll = args.serve_raw
        serve_raw(model, int(port), int(threads), int(poll))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    settings = Settings()
    threads = settings.threads
    model = ModelCache(settings.home, settings.models_dir).ensure(LITE)
    procs: dict[str, subprocess.Popen] = {}
    bases: dict[str, str] = {}
    homes: dict[str, Path] = {}
    result: dict = {"bench": "contention", "threads": threads, "cpus": os.cpu_count(), "max_tokens": args.max_tokens,
                    "reps": args.reps, "hogs": args.hogs, "load_avg_at_start": list(os.getloadavg())}
    try:
        for name in args.peers:
            if name in LITEGATE_PEERS:
                homes[name] = Path(tempfile.mkdtemp(prefix=f"litegate-bench-{name}-"))
                if "mixed" in args.phases:
                    train_classifier(homes[name])
                port = free_port()
                extra = {k: str(threads) if v == ALL else v for k, v in LITEGATE_PEERS[name].items()}
                env = dict(os.environ, LITEGATE_HOME=str(homes[name]), **extra)
                procs[name] = start_server(port, ["--ctx", "4096", "--parallel", "4"], env, timeout=900)
                bases[name] = f"http://127.0.0.1:{port}"
            else:
                procs[name], bases[name] = start_raw(model, threads, RAW_PEERS[name])
        measure(bases, 1, 8, "warm-up")
        samples: dict[str, dict[str, list[dict]]] = {}
        for phase in [p for p in args.phases if p in ("alone", "hogs", "neighbours")]:
            if phase == "alone":
                samples[phase] = measure(bases, args.reps, args.max_tokens, phase)
            elif phase == "hogs":
                with hogs(args.hogs):
                    samples[phase] = measure(bases, args.reps, args.max_tokens, phase)
            else:
                with neighbours(model, threads, args.max_tokens):
                    samples[phase] = measure(bases, args.reps, args.max_tokens, phase)
        result["phases"] = {phase: {name: summary(s) for name, s in by_peer.items()}
                            for phase, by_peer in samples.items()}
        if "mixed" in args.phases:
            png = page_png()
            result["mixed"] = {}
            for name in [n for n in bases if n in LITEGATE_PEERS]:
                one = {name: bases[name]}
                result["mixed"][name] = {"ocr_s_per_page_alone": ocr_alone(bases[name], png)}
                run_ = mixed(bases[name], png, lambda one=one, name=name: measure(
                    one, args.reps, args.max_tokens, "mixed")[name])
                samples.setdefault("mixed", {})[name] = run_.pop("chat")
                result["mixed"][name].update(chat=summary(samples["mixed"][name]), **run_)
        result["ratios_to_alone"] = ratios(result, samples)
        result["prices"] = {name: ledger_prices(homes[name], {phase: [s["id"] for s in by_peer.get(name, [])]
                                                              for phase, by_peer in samples.items()})
                            for name in homes}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if "unit" in args.phases:
        result["unit_layer"] = [unit_layer(0), unit_layer(args.hogs)]
    result["load_avg_at_end"] = list(os.getloadavg())
    print(json.dumps(result, indent=1))


def ratios(result: dict, samples: dict) -> dict:
    alone = result["phases"].get("alone", {})
    out: dict = {}
    for phase, by_peer in samples.items():
        if phase == "alone":
            continue
        for name, s in by_peer.items():
            if name in alone:
                mine = summary(s)
                out.setdefault(phase, {})[name] = {
                    "decode": round(mine["decode_tok_s_p50"] / alone[name]["decode_tok_s_p50"], 3),
                    "ttft_p95": round(mine["ttft_ms_p95"] / max(alone[name]["ttft_ms_p95"], 1), 2)}
    for by_peer in out.values():
        if "litegate" in by_peer and "llama.cpp" in by_peer and by_peer["llama.cpp"]["decode"] > 0:
            by_peer["litegate_ratio_over_llama.cpp_ratio"] = round(
                by_peer["litegate"]["decode"] / by_peer["llama.cpp"]["decode"], 2)
    return out


if __name__ == "__main__":
    main()
