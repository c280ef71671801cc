"""What the benchmark scripts share: starting a `litegate serve` of their own, percentiles."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import httpx


def start_server(port: int, args: list[str], env: dict[str, str], timeout: float = 180.0) -> subprocess.Popen:
    """A `litegate serve` on loopback ``port``, once /healthz answers; its stderr goes to a file
    (a pipe nobody reads could fill during a long run and stall it) and is shown if it exits."""
    try:  # a server already on the port would answer for ours, and two runs would mix their figures
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        raise SystemExit(f"port {port} is in use: pick another with --port")
    except httpx.TransportError:
        pass
    log = tempfile.NamedTemporaryFile("w+", prefix="litegate-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "litegate.cli", "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"litegate serve on port {port} exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.TransportError:
                time.sleep(0.2)
        proc.kill()
        raise SystemExit(f"litegate serve on port {port} did not start within {timeout:g} s")
    finally:
        log.close()  # the server keeps writing to its own handle


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]
