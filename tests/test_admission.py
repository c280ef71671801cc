"""Admission control on a real server: with one slot and a waiting line of one, a burst gets
fast 503s with Retry-After for what does not fit — every client gets an answer, none hangs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from conftest import TEST_CTX, start_server, stop_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    import os

    home = tmp_path_factory.mktemp("admission-home")
    os.environ["LITEGATE_QUEUE"] = "1"
    try:
        proc, base = start_server(home, "--ctx", str(TEST_CTX), "--parallel", "1")
    finally:
        del os.environ["LITEGATE_QUEUE"]
    yield base
    stop_server(proc)


def test_a_burst_beyond_slots_and_queue_is_refused_fast_with_retry_after(small_server: str, tmp_path: Path) -> None:
    async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.post("/v1/chat/completions", json={
            "model": "lite", "max_tokens": 60, "temperature": 0,
            "messages": [{"role": "user", "content": f"Write a long story about the number {i}."}]})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=small_server, timeout=120) as client:
            return await asyncio.gather(*(one(client, i) for i in range(8)))

    answers = asyncio.run(burst())
    codes = sorted(r.status_code for r in answers)
    assert set(codes) <= {200, 503} and codes.count(200) >= 2 and codes.count(503) >= 1, codes
    for r in answers:
        if r.status_code == 503:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "overloaded"
    # the line drains: the next request is served
    with httpx.Client(base_url=small_server, timeout=120) as client:
        r = client.post("/v1/chat/completions", json={"model": "lite", "max_tokens": 5,
                                                      "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"model": "lite", "max_tokens": 400, "temperature": 0,
                              "messages": [{"role": "user", "content": "Write a very long story about a ship."}]}),
    ("/api/chat", {"model": "lite", "stream": False, "options": {"num_predict": 400, "temperature": 0},
                   "messages": [{"role": "user", "content": "Write a very long story about a ship."}]}),
])
def test_a_non_streamed_request_whose_client_leaves_is_cancelled(server: str, path: str, body: dict) -> None:
    import time

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server + path, json=body, timeout=httpx.Timeout(10, read=1.5))
    deadline = time.monotonic() + 5
    active = None
    while time.monotonic() < deadline:
        active = httpx.get(server + "/healthz").json()["active_requests"]
        if active == 0:
            break
        time.sleep(0.2)
    # 400 tokens take 10+ s here; the engine is free within a few seconds of the client leaving
    assert active == 0


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    import os

    home = tmp_path_factory.mktemp("deadline-home")
    os.environ["LITEGATE_DECODE_DEADLINE_S"] = "2"
    try:
        proc, base = start_server(home, "--ctx", str(TEST_CTX))
    finally:
        del os.environ["LITEGATE_DECODE_DEADLINE_S"]
    yield base
    stop_server(proc)


def test_a_runaway_generation_is_stopped_at_the_decode_deadline(deadline_server: str) -> None:
    import json
    import time

    body = {"model": "lite", "max_tokens": 1500, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}]}
    started = time.monotonic()
    r = httpx.post(deadline_server + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout", r.text
    assert time.monotonic() - started < 30  # 1,500 tokens would take a minute or more here
    events = []
    with httpx.stream("POST", deadline_server + "/v1/chat/completions", json=dict(body, stream=True),
                      timeout=120) as s:
        for line in s.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    assert len(events) > 3 and "decode deadline" in events[-1]["error"]["message"]
    assert httpx.get(deadline_server + "/healthz").json()["active_requests"] == 0
