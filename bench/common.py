"""What the benchmark scripts share: starting a `litegate serve` of their own, percentiles."""

from __future__ import annotations

import io
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


def pdf_file(objects: list[bytes], header: bytes = b"%PDF-1.4\n") -> bytes:
    """A PDF file of numbered ``objects`` (object 1 the catalog) with its cross-reference table."""
    out = io.BytesIO()
    out.write(header)
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (i, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
