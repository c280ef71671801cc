"""Uploads stream to disk: the server's resident memory while four ~199 MB files upload at
once (OpenAI Files API, multipart), beside one upload alone in the same run; a fifth upload
past the per-key cap is answered 429. Prints JSON.

    python bench/uploads.py [--mb 199] [--parallel 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from common import start_server
from litegate.server.uploads import PER_KEY


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The largest resident size of ``pid`` while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self) -> PeakRss:
        self.before = rss_mb(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def upload(base: str, path: Path) -> int:
    with open(path, "rb") as f:
        r = httpx.post(base + "/v1/files", files={"file": (path.name, f)}, data={"purpose": "user_data"},
                       timeout=600)
    return r.status_code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=199)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--port", type=int, default=8793)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="litegate-uploads-"))
    files = []
    for i in range(args.parallel + 1):
        path = work / f"upload{i}.bin"
        with open(path, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        files.append(path)
    env = dict(os.environ, LITEGATE_HOME=str(work / "home"))
    proc = start_server(args.port, ["--ctx", "2048"], env)
    base = f"http://127.0.0.1:{args.port}"
    try:
        with PeakRss(proc.pid) as one:
            single = upload(base, files[0])
        with PeakRss(proc.pid) as many, ThreadPoolExecutor(args.parallel + 1) as pool:
            jobs = [pool.submit(upload, base, p) for p in files[:args.parallel]]
            time.sleep(1.0)  # the four are under way: one more from the same caller is past the cap
            extra = upload(base, files[args.parallel]) if args.parallel >= PER_KEY else None
            statuses = [j.result() for j in jobs]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)  # the five upload files and the server's home: ~2.5 GB
    load = os.getloadavg()[0]
    print(json.dumps({
        "file_mb": args.mb, "one_upload": {"status": single, "rss_before_mb": round(one.before),
                                           "rss_delta_mb": round(one.peak - one.before, 1)},
        f"{args.parallel}_parallel": {"statuses": statuses, "rss_before_mb": round(many.before),
                                      "rss_delta_mb": round(many.peak - many.before, 1),
                                      "uploaded_mb": args.mb * args.parallel},
        "one_more_past_the_cap": extra, "load_average_1m": round(load, 2)}, indent=1))


if __name__ == "__main__":
    main()
