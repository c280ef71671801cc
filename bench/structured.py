"""Constrained vs unconstrained decode speed on the same prompts, in one run; schema compile time.

    python bench/structured.py [--reps 3] [--max-tokens 96]

Prints JSON. Both arms see identical messages (the schema is described in the system
prompt either way); only the grammar differs. Arms alternate per prompt so that machine
noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from litegate.chat import ChatCompletionRequest, prepare_chat  # noqa: E402
from litegate.chat.structured import compile_schema  # noqa: E402
from litegate.config import Settings  # noqa: E402
from litegate.engine import ModelRegistry  # noqa: E402
from schema_corpus import corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--model", default="lite")
    args = ap.parse_args()

    cases = corpus()
    compile_ms = []
    for _, _, schema in cases:
        compile_ms.append(min(compile_schema(schema).compile_ms for _ in range(3)))

    registry = ModelRegistry(Settings(parallel=1), extra_specs=[args.model])
    engine = registry.engine(args.model)
    speeds: dict[str, list[float]] = {"constrained": [], "unconstrained": []}
    tokens: dict[str, int] = {"constrained": 0, "unconstrained": 0}
    for rep in range(args.reps):
        for _, prompt, schema in cases:
            prepared = prepare_chat(ChatCompletionRequest(
                messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=args.max_tokens,
                response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
            free = {k: v for k, v in prepared.body.items() if k != "grammar"}
            arms = [("constrained", prepared.body), ("unconstrained", free)]
            if rep % 2:
                arms.reverse()
            for arm, body in arms:
                result = engine.run("chat", body)
                t = result["timings"]
                if t["predicted_n"] >= 8:
                    speeds[arm].append(t["predicted_per_second"])
                    tokens[arm] += t["predicted_n"]
    registry.close()
    med = {arm: statistics.median(v) for arm, v in speeds.items()}
    print(json.dumps({
        "bench": "structured",
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "schemas": len(cases), "reps": args.reps,
        "decode_tok_s_median": {k: round(v, 1) for k, v in med.items()},
        "decode_tok_s_mean": {k: round(statistics.mean(v), 1) for k, v in speeds.items()},
        "tokens": tokens,
        "ratio_constrained_over_unconstrained": round(med["constrained"] / med["unconstrained"], 3),
        "target_ratio": 0.9,
        "schema_compile_ms": {"median": round(statistics.median(compile_ms), 2), "max": round(max(compile_ms), 2)},
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
