"""Gemini context caching: time to first token of a follow-up question over a ~2,000-token
context, with the context in a cachedContent vs sent inline, in one run.

    python bench/context_cache.py [--reps 5] [--context-tokens 2000]

Prints JSON. Uses the real google-genai client against an in-process litegate server.
Each uncached request gets a fresh context (a different document), so no prefix is reused
by accident; each cached request asks a new question over the same cached document.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

import uvicorn
from google import genai
from google.genai import types

from litegate.config import Settings
from litegate.runtime import build
from litegate.server import create_app

WORDS = "river stone lamp garden window harbor violin pepper meadow lantern copper falcon".split()


def document(seed: int, tokens: int) -> str:
    lines, i = [], 0
    while len(" ".join(lines).split()) < tokens * 0.7:
        w = WORDS[(seed * 7 + i) % len(WORDS)]
        lines.append(f"Record {seed}-{i}: the item in box {i} is a {w}.")
        i += 1
    return " ".join(lines)


def ttft(client: genai.Client, **kwargs) -> float:
    start = time.perf_counter()
    for chunk in client.models.generate_content_stream(**kwargs):
        if chunk.text:
            return time.perf_counter() - start
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--context-tokens", type=int, default=2000)
    ap.add_argument("--port", type=int, default=8398)
    args = ap.parse_args()

    rt = build(Settings(), record=False)
    rt.registry.engine("lite")
    server = uvicorn.Server(uvicorn.Config(create_app(rt, close_runtime=False), host="127.0.0.1",
                                           port=args.port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{args.port}"))
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=8)

    cached_doc = document(0, args.context_tokens)
    cache = client.caches.create(model="lite", config=types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part(text=cached_doc)])], ttl="600s"))
    ctx_tokens = cache.usage_metadata.total_token_count
    uncached, cached, reused = [], [], []
    for rep in range(args.reps):
        question = f"What is the item in box {rep + 3}?"
        doc = document(rep + 1, args.context_tokens)
        uncached.append(ttft(client, model="lite", contents=[
            types.Content(role="user", parts=[types.Part(text=doc)]),
            types.Content(role="user", parts=[types.Part(text=question)])], config=config))
        cfg = types.GenerateContentConfig(temperature=0, max_output_tokens=8, cached_content=cache.name)
        cached.append(ttft(client, model="lite", contents=question, config=cfg))
        r = client.models.generate_content(model="lite", contents=question + " ", config=cfg)
        reused.append(r.usage_metadata.cached_content_token_count or 0)
    client.caches.delete(name=cache.name)
    server.should_exit = True
    time.sleep(0.3)
    rt.close()
    p50u, p50c = statistics.median(uncached), statistics.median(cached)
    print(json.dumps({
        "bench": "context_cache",
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "context_tokens": ctx_tokens, "reps": args.reps,
        "ttft_ms_p50": {"uncached": round(p50u * 1000, 1), "cached": round(p50c * 1000, 1)},
        "ttft_ms_all": {"uncached": [round(x * 1000) for x in uncached], "cached": [round(x * 1000) for x in cached]},
        "speedup": round(p50u / p50c, 2), "target_speedup": 5.0,
        "cached_content_token_count_reported": reused,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
