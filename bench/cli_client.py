"""The CLI as a client: wall time of one `litegate classify` (a nano classifier) and one
`litegate generate` (8 tokens on lite) sent to a running server, against the same commands
loading the models in their own process, in the same run.

    python bench/cli_client.py [--reps 3]

Starts its own server on a free port with a fresh home, trains a small classifier there, then
runs each command --reps times each way, interleaved. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import litegate_cmd, start_server, stop_server  # noqa: E402

EXAMPLES = [{"text": t, "label": label} for t, label in [
    ("I was charged twice", "billing"), ("refund my last payment", "billing"), ("why is my bill so high", "billing"),
    ("the app crashes on start", "bug"), ("error 500 when I save", "bug"), ("the page does not load", "bug")]]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-500:]}")
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="litegate-bench-cli-"))
    proc, base = start_server(home, "--ctx", "2048", timeout=600)
    try:
        httpx.post(f"{base}/v1/classifiers", json={"name": "tickets", "examples": EXAMPLES}, timeout=600)
        env = {k: v for k, v in os.environ.items() if k not in ("LITEGATE_URL", "LITEGATE_LOCAL")}
        env["LITEGATE_HOME"] = str(home)
        commands = {"classify": ["classify", "--classifier", "tickets", "the app will not open"],
                    "generate": ["generate", "--max-tokens", "8", "--temperature", "0", "Say hello"]}
        times: dict[str, dict[str, list[float]]] = {name: {"server": [], "local": []} for name in commands}
        for _ in range(args.reps):
            for name, cmd in commands.items():
                times[name]["server"].append(timed(litegate_cmd(*cmd, "--url", base), env))
                times[name]["local"].append(timed(litegate_cmd(*cmd, "--local"), env))
    finally:
        stop_server(proc)
    load = open("/proc/loadavg").read().split()[:3]
    out = {name: {"server_s_p50": round(statistics.median(t["server"]), 2),
                  "local_s_p50": round(statistics.median(t["local"]), 2),
                  "local_over_server": round(statistics.median(t["local"]) / statistics.median(t["server"]), 1)}
           for name, t in times.items()}
    print(json.dumps({"reps": args.reps, **out, "loadavg": load}))


if __name__ == "__main__":
    main()
