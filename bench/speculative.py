"""Speculative decoding on the pro model for extraction: none vs lite-as-draft vs n-gram.

    python bench/speculative.py [--items 16] [--modes none,draft,ngram] [--draft-max 8]

Three engines on the embedded pro model (1.5B) are loaded side by side, differing only in
speculation; the same `extract` task requests (NLU++ banking texts, the general+banking
slots) run through each in turn, item by item, so machine noise hits all modes alike.
Greedy decoding: the outputs should agree; the JSON reports how often they do. Prints
JSON: per mode the median and total wall time per extraction, decode tokens/s, and the
speed-up over no speculation; and, for reference, the speed-up on verbatim rewrites (a
reply that copies its input: the case n-gram drafting is built for).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from litegate.config import Settings
from litegate.engine.catalog import LITE, PRO, ModelCache
from litegate.engine.llama import EngineOptions, LlamaEngine
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.runtime import build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--modes", default="none,draft,ngram")
    ap.add_argument("--draft-max", type=int, default=16)
    ap.add_argument("--p-min", type=float, default=0.75, help="draft mode: stop proposing below this probability")
    ap.add_argument("--ngram-n", type=int, default=5, help="ngram mode: lookup key length")
    ap.add_argument("--fields", type=int, default=8, help="how many slots to extract per item")
    args = ap.parse_args()

    settings = Settings()
    cache = ModelCache(settings.home, settings.models_dir)
    lite_path, pro_path = cache.ensure(LITE), cache.ensure(PRO)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    engines = {}
    for mode in modes:
        options = EngineOptions(threads=settings.threads, ctx=4096, parallel=1, speculative=mode,
                                draft=lite_path if mode == "draft" else None, draft_max=args.draft_max,
                                draft_p_min=args.p_min, ngram_n=args.ngram_n)
        engines[mode] = LlamaEngine(pro_path, options)
        engines[mode].warm_up()
    rt = build(settings, record=False)
    runner, registry = rt.tasks, rt.registry
    served = registry.lookup("pro")
    fields = dict(list(nlupp_fields().items())[: args.fields])
    items = nlupp_banking(folds=[0])[: args.items]

    def run(mode: str, text: str) -> tuple[float, int, dict]:
        served.engine = engines[mode]
        started = time.perf_counter()
        out = runner.run("extract", {"text": text, "fields": fields, "tier": "pro"})
        return time.perf_counter() - started, out["usage"]["completion_tokens"], out["data"]

    run(modes[0], items[0]["text"])  # first-use costs (schema compile) off the clock
    times = {m: [] for m in modes}
    tokens = {m: 0 for m in modes}
    outputs = {m: [] for m in modes}
    for i, item in enumerate(items):
        order = modes[i % len(modes):] + modes[: i % len(modes)]  # rotate who goes first
        for mode in order:
            seconds, n, data = run(mode, item["text"])
            times[mode].append(seconds)
            tokens[mode] += n
            outputs[mode].append(data)
    # the favourable case for reference: a reply that copies its input (a verbatim rewrite)
    copy_times = {m: [] for m in modes}
    passages = [" ".join(it["text"] for it in items[i:i + 6]) for i in range(0, min(len(items), 24), 6)]
    for i, passage in enumerate(passages):
        for mode in modes[i % len(modes):] + modes[: i % len(modes)]:
            body = {"messages": [{"role": "user", "content": "Repeat this text exactly, nothing else:\n" + passage}],
                    "max_tokens": 160, "temperature": 0.0}
            started = time.perf_counter()
            engines[mode].run("chat", body)
            copy_times[mode].append(time.perf_counter() - started)
    base = sum(times["none"]) if "none" in times else None
    report = {"model": pro_path.name, "draft": lite_path.name, "items": len(items), "fields": len(fields),
              "threads": settings.threads, "draft_max": args.draft_max, "p_min": args.p_min,
              "ngram_n": args.ngram_n, "load_avg": os.getloadavg()[0], "modes": {}}
    for mode in modes:
        total = sum(times[mode])
        report["modes"][mode] = {
            "p50_s": round(statistics.median(times[mode]), 3),
            "total_s": round(total, 2),
            "completion_tokens": tokens[mode],
            "tokens_per_s": round(tokens[mode] / total, 1),
            "speedup_vs_none": round(base / total, 2) if base else None,
            "same_output_as_none": (sum(a == b for a, b in zip(outputs[mode], outputs["none"])) / len(items)
                                    if "none" in outputs else None),
            "copy_total_s": round(sum(copy_times[mode]), 2),
            "copy_speedup_vs_none": round(sum(copy_times["none"]) / sum(copy_times[mode]), 2)
            if "none" in copy_times else None,
        }
    print(json.dumps(report, indent=2))
    for engine in engines.values():
        engine.close()


if __name__ == "__main__":
    main()
