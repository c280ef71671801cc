"""What litegate adds in front of a remote OpenAI-compatible tier.

    python bench/overhead.py [--reps 60]

Prints JSON. A litegate server process on loopback plays the remote; a second litegate
server process (the gateway) declares it as a remote model in its config file; the client is
this script, as in a deployment where each is its own process. The same small request
(max_tokens 1, temperature 0, identical prompt, so the remote answers from its prompt cache)
goes alternately straight to the remote and through the gateway; the difference of the
latency percentiles is the gateway's overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from common import pct, start_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--port", type=int, default=8396)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        remote = start_server(args.port, [], dict(env, LITEGATE_LEDGER_URL=f"sqlite:///{Path(tmp) / 'remote.db'}"))
        config = Path(tmp) / "litegate.toml"
        config.write_text(f'[[remote]]\nname = "remote"\nbase_url = "http://127.0.0.1:{args.port}/v1"\n'
                          'model = "lite"\n')
        gateway = start_server(args.port + 1, ["--config", str(config)],
                               dict(env, LITEGATE_LEDGER_URL=f"sqlite:///{Path(tmp) / 'gw.db'}"))
        time.sleep(5)  # both engines finish their background warm-up
        body = {"messages": [{"role": "user", "content": "Reply with the word ok."}], "max_tokens": 1,
                "temperature": 0}
        targets = {"direct": (f"http://127.0.0.1:{args.port}/v1/chat/completions", "lite"),
                   "gateway": (f"http://127.0.0.1:{args.port + 1}/v1/chat/completions", "remote")}
        times: dict[str, list[float]] = {"direct": [], "gateway": []}
        with httpx.Client(timeout=60) as client:
            for rep in range(args.reps + 3):
                for name in (("direct", "gateway") if rep % 2 else ("gateway", "direct")):
                    url, model = targets[name]
                    start_t = time.perf_counter()
                    r = client.post(url, json=dict(body, model=model))
                    elapsed = (time.perf_counter() - start_t) * 1000
                    r.raise_for_status()
                    if rep >= 3:  # warm-up
                        times[name].append(elapsed)
        for proc in (remote, gateway):
            proc.terminate()
            proc.wait(timeout=30)
    summary = {name: {"p50_ms": round(pct(v, 50), 2), "p95_ms": round(pct(v, 95), 2),
                      "mean_ms": round(statistics.mean(v), 2)} for name, v in times.items()}
    print(json.dumps({
        "bench": "overhead", "reps": args.reps,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "latency": summary,
        "overhead_ms": {"p50": round(summary["gateway"]["p50_ms"] - summary["direct"]["p50_ms"], 2),
                        "p95": round(summary["gateway"]["p95_ms"] - summary["direct"]["p95_ms"], 2)},
        "target_overhead_p50_ms": 2.0,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
