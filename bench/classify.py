"""Decision latency of classify: nano tier vs lite tier, lite with a cold vs cached prefix.

    python bench/classify.py [--n 40]

Prints JSON. In-process through TaskRunner (the code behind POST /v1/tasks/classify),
on CLINC150 banking texts (15 intents). "Cold" gives every call a fresh label order, so the
instructions+labels prefix is never in the KV cache; "cached" keeps one label order, so only
the new text is prefilled. The nano classifier is trained here on 10 examples per intent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from litegate.config import Settings
from litegate.evals.datasets import clinc150, clinc150_domains
from litegate.runtime import build


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))], 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    settings = Settings()
    intents = clinc150_domains()["banking"]
    texts = [r["text"] for r in clinc150("test") if r["label"] in intents]
    random.Random(0).shuffle(texts)
    texts = texts[: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(settings.model_copy(update={"home": Path(tmp)}), record=False)
        runner = rt.tasks
        rt.classifiers.train("bench", [r for r in clinc150("train", per_label=10) if r["label"] in intents])
        rt.registry.engine("lite")
        time.sleep(3)  # let the engine's warm-up finish
        runner.run("classify", {"text": "warm up", "classifier": "bench"})
        lat: dict[str, list[float]] = {"nano": [], "lite_cold": [], "lite_cached": []}
        rng = random.Random(1)
        for text in texts:
            lat["nano"].append(runner.run("classify", {"text": text, "classifier": "bench"})["latency_ms"])
            shuffled = intents[:]
            rng.shuffle(shuffled)
            lat["lite_cold"].append(runner.run("classify", {"text": text, "labels": shuffled})["latency_ms"])
            lat["lite_cached"].append(runner.run("classify", {"text": text, "labels": intents})["latency_ms"])
        rt.close()
    print(json.dumps({
        "bench": "classify", "items": len(texts), "labels": len(intents),
        "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "loadavg_1m": os.getloadavg()[0]},
        "latency_ms": {k: {"p50": pct(v, 50), "p95": pct(v, 95), "mean": round(statistics.mean(v), 2)}
                       for k, v in lat.items()},
        "targets_ms_p50": {"nano": 15, "lite_cached": 150},
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
