"""Several requests are decoded at the same time, not one after another."""

from __future__ import annotations

import threading
import time

import httpx


def test_concurrent_streams_interleave(server: str) -> None:
    n = 3
    arrivals: dict[int, list[float]] = {i: [] for i in range(n)}
    errors: list[str] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        body = {"model": "lite", "prompt": f"Story number {i}: Once upon a time", "max_tokens": 40,
                "temperature": 0, "stream": True}
        with httpx.Client(base_url=server, timeout=120) as c:
            barrier.wait()
            with c.stream("POST", "/v1/completions", json=body) as r:
                if r.status_code != 200:
                    errors.append(r.read().decode())
                    return
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        arrivals[i].append(time.monotonic())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(len(a) >= 20 for a in arrivals.values()), {i: len(a) for i, a in arrivals.items()}
    # If the engine served one request at a time, each stream would finish before the next
    # one produced its first token. Concurrent decoding makes every stream start before
    # any other stream has finished.
    first = [a[0] for a in arrivals.values()]
    last = [a[-1] for a in arrivals.values()]
    assert max(first) < min(last), (first, last)
