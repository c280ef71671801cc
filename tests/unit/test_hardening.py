"""Hostile and careless input from the reliability probe: names that end in a newline, huge label
lists, oversized feature tags, unbounded metric labels, 429s that say when to come back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import runtime
from fastapi.testclient import TestClient

from litegate.configfile import load_config
from litegate.ledger.calls import CallRecord
from litegate.ledger.metrics import MAX_FEATURE_LABELS, Metrics


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path)
    yield r
    r.close()


def test_names_must_match_whole(client: TestClient) -> None:
    examples = [{"text": t, "label": lab} for t, lab in (("a b", "x"), ("c d", "x"), ("e f", "y"), ("g h", "y"))]
    r = client.post("/v1/classifiers", json={"name": "evil\n", "examples": examples})
    assert r.status_code == 400 and r.json()["error"]["param"] == "name"
    r = client.post("/v1/extractors", json={"name": "ok", "fields": {"city\n": "the city"},
                                            "examples": [{"text": "to Oslo", "data": {"city\n": "Oslo"}}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "fields"


def test_a_huge_label_list_is_refused_before_any_per_label_work(client: TestClient) -> None:
    labels = [f"label {i}" for i in range(40_000)] + ["label 1"]
    r = client.post("/v1/tasks/classify", json={"text": "hello", "labels": labels, "tier": "lite"})
    assert r.status_code == 400 and "at most 50" in r.json()["error"]["message"]


def test_feature_header_is_bounded(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": "hi"}, headers={"X-Litegate-Feature": "f" * 201})
    assert r.status_code == 400 and r.json()["error"]["param"] == "X-Litegate-Feature"
    assert client.post("/v1/embeddings", json={"input": "hi"}, headers={"X-Litegate-Feature": "f" * 200}
                       ).status_code == 200


def test_metric_labels_for_features_are_bounded() -> None:
    metrics = Metrics()
    for i in range(MAX_FEATURE_LABELS + 50):
        metrics.observe(CallRecord(id=str(i), task="chat", tier="lite", feature=f"feature-{i}", cost_usd=1e-6))
    text = metrics.render().decode()
    series = [line for line in text.splitlines() if line.startswith("litegate_cost_usd_total{")]
    assert len(series) == MAX_FEATURE_LABELS + 1 and any('feature="other"' in line for line in series)


def keyed_runtime(tmp_path: Path, monkeypatch, key_options: str = "") -> Any:
    """A fake-engine runtime with one API key, ``sk-test``, declared as a config file does."""
    monkeypatch.setenv("TEST_KEY", "sk-test")
    path = tmp_path / "litegate.toml"
    path.write_text('[[api_key]]\nname = "t"\nkey_env = "TEST_KEY"\n' + key_options)
    rt = runtime(tmp_path)
    rt.config.api_keys = load_config(path).api_keys
    return rt


def test_every_429_carries_retry_after(tmp_path: Path, monkeypatch) -> None:
    from litegate.server import create_app

    rt = keyed_runtime(tmp_path, monkeypatch, "rate_per_minute = 1\n")
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            headers = {"Authorization": "Bearer sk-test"}
            assert client.post("/v1/embeddings", json={"input": "hi"}, headers=headers).status_code == 200
            r = client.post("/v1/embeddings", json={"input": "hi"}, headers=headers)
            assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
            g = client.post("/v1beta/models/lite:generateContent", headers={"x-goog-api-key": "sk-test"},
                            json={"contents": [{"parts": [{"text": "hi"}]}]})
            assert g.status_code == 429 and int(g.headers["Retry-After"]) >= 1
    finally:
        rt.close()


def test_tool_arguments_take_only_declared_properties() -> None:
    from litegate.chat.tools import closed

    assert closed({"type": "object", "properties": {}}) == {"type": "object", "properties": {},
                                                            "additionalProperties": False}
    nested = closed({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}},
                     "additionalProperties": True})
    assert nested["additionalProperties"] is True  # what the caller said stays
    assert nested["properties"]["a"]["additionalProperties"] is False
    assert closed({"type": "array", "items": {"type": "object", "properties": {}}})["items"][
        "additionalProperties"] is False


def test_request_bodies_over_the_limit_are_413(tmp_path: Path) -> None:
    from litegate.server import create_app

    rt = runtime(tmp_path, max_body_mb=0.01)  # 10 KB
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            big = {"input": "word " * 5000}
            r = client.post("/v1/embeddings", json=big)
            assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
            assert r.headers["connection"] == "close"  # the unread body is not taken for a next request

            def chunks():  # no Content-Length: counted as it arrives
                for _ in range(20):
                    yield b"x" * 1000

            r = client.post("/v1beta/models/lite:generateContent", content=chunks(),
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 413
            assert client.post("/v1/embeddings", json={"input": "small"}).status_code == 200
    finally:
        rt.close()


def test_host_and_browser_origin_are_checked(rt) -> None:
    from litegate.cli.serving import serve_hosts
    from litegate.server import create_app

    assert serve_hosts("0.0.0.0", None) == ["*"] and "localhost" in serve_hosts("127.0.0.1", None)
    assert serve_hosts("127.0.0.1", "a.example, b.example") == ["a.example", "b.example"]
    app = create_app(rt, close_runtime=False, allowed_hosts=serve_hosts("127.0.0.1", None))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.get("/healthz").status_code == 200
        ok = client.post("/v1/embeddings", json={"input": "hi"}, headers={"Origin": "http://localhost:8080"})
        assert ok.status_code == 200  # the server's own page
        other_port = client.post("/v1/embeddings", json={"input": "hi"}, headers={"Origin": "http://localhost:3000"})
        assert other_port.status_code == 403  # another site on this machine
        r = client.post("/v1beta/models/lite:generateContent", content='{"contents": []}',
                        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
        # refused before any route runs, in the Gemini API's own error shape
        assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
        assert "evil.example" in r.json()["error"]["message"]
        r = client.post("/v1/embeddings", json={"input": "hi"}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        r = client.post("/api/embed", json={"model": "lite", "input": "hi"}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "evil.example" in r.json()["error"]  # Ollama's shape: a string
        r = client.get("/healthz", headers={"Host": "rebound.example:8080"})  # DNS rebinding
        assert r.status_code == 421 and r.json()["error"]["code"] == "host_not_allowed"
    with TestClient(create_app(rt, close_runtime=False, allowed_hosts=["*"]), base_url="http://x.example") as c:
        assert c.get("/healthz").status_code == 200


def test_with_keys_on_urls_carry_keys_only_to_browser_pages_and_docs_are_guarded(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    from litegate.server import create_app

    rt = keyed_runtime(tmp_path, monkeypatch)
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            r = client.post("/v1/embeddings?key=sk-test", json={"input": "hi"})
            assert r.status_code == 401 and "only on the dashboard" in r.json()["error"]["message"]
            assert client.get("/dashboard?key=sk-test").status_code == 200
            assert client.get("/openapi.json").status_code == 401 and client.get("/docs").status_code == 401
            spec = client.get("/openapi.json?key=sk-test")
            assert spec.status_code == 200 and "/v1/chat/completions" in spec.json()["paths"]
            assert "openapi.json?key=sk-test" in client.get("/docs?key=sk-test").text
            health = client.get("/healthz").json()
            assert health["status"] == "ok" and "tiers" not in health and "remotes" not in health
    finally:
        rt.close()
    with TestClient(create_app(runtime(tmp_path / "open"), close_runtime=False)) as client:
        assert client.get("/openapi.json").status_code == 200 and "tiers" in client.get("/healthz").json()


def test_a_local_price_is_the_same_whatever_the_engine_time(tmp_path: Path) -> None:
    """The same request costs the same on a quiet and on a busy machine: local tiers are priced
    per token; the engine's time (what load changes) is still recorded beside the call."""
    import time

    from fakes import FakeEngine

    from litegate.chat import ChatCall, ChatCompletionRequest
    from litegate.ledger.pricing import Price, Usage

    nano = Price(usd_per_hour=3600.0)  # $1 per second: the nano tier still prices compute time
    assert nano.cost(Usage.of({}, {"prompt_ms": 200, "predicted_ms": 300}), seconds=10.0) == pytest.approx(0.5)
    assert nano.cost(Usage.of({}), seconds=2.0) == pytest.approx(2.0)  # no timings: wall time
    costs, engine_ms = [], []
    for wait_s, timings in ((0.0, {"prompt_ms": 4.0, "predicted_ms": 6.0}),  # quiet
                            (0.3, {"prompt_ms": 400.0, "predicted_ms": 6000.0})):  # a busy machine
        engine = FakeEngine(reply=lambda body, wait_s=wait_s: time.sleep(wait_s) or "the same reply")
        engine.timings = timings
        rt = runtime(tmp_path / str(wait_s), engines={"lite": engine})
        try:
            result = rt.chat.run_sync(ChatCall(ChatCompletionRequest(
                model="lite", messages=[{"role": "user", "content": "the same request"}])))
            rt.accountant.flush()
            [row] = rt.accountant.ledger.rows()
            costs.append(row["cost_usd"])
            engine_ms.append(rt.accountant.ledger.engine_ms(result["id"]))
            expected = rt.tiers["lite"].price.cost(Usage.of(result["usage"]), 0.0)
            assert row["cost_usd"] == pytest.approx(expected) and row["cost_usd"] > 0
        finally:
            rt.close()
    assert costs[0] == costs[1]
    assert engine_ms == [pytest.approx(10.0), pytest.approx(6400.0)]


def test_an_overloaded_model_is_a_503_with_retry_after_in_each_api_shape(tmp_path: Path) -> None:
    from fakes import FakeEngine

    from litegate.errors import Overloaded
    from litegate.server import create_app

    def busy(body: dict) -> str:
        raise Overloaded("lite is busy", retry_after=2.0)

    rt = runtime(tmp_path, engines={"lite": FakeEngine(reply=busy)})
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            r = client.post("/v1/chat/completions", json={"model": "lite", "messages": [{"role": "user",
                                                                                         "content": "hi"}]})
            assert r.status_code == 503 and r.headers["Retry-After"] == "2"
            assert r.json()["error"]["code"] == "overloaded"
            g = client.post("/v1beta/models/lite:generateContent", json={"contents": [{"parts": [{"text": "hi"}]}]})
            assert g.status_code == 503 and g.headers["Retry-After"] == "2"
            o = client.post("/api/chat", json={"model": "lite", "stream": False,
                                               "messages": [{"role": "user", "content": "hi"}]})
            assert o.status_code == 503 and o.headers["Retry-After"] == "2" and "busy" in o.json()["error"]
    finally:
        rt.close()


def test_a_burst_cannot_overshoot_a_daily_budget() -> None:
    """A call reserves the most it can cost while it runs, so 30 concurrent calls against a
    budget with room for 2 more let 2 in; the spend can pass the budget by one call at most."""
    import hashlib

    from litegate.errors import RateLimited
    from litegate.keys import ApiKey, KeyGuard

    class Ledger:
        def spend(self, fingerprint: str, since: float) -> float:
            return 0.0

    key = ApiKey("k", hashlib.sha256(b"k").hexdigest(), budget_usd_per_day=0.03)
    guard = KeyGuard([key], Ledger())
    guard.spent(key.fingerprint, 0.01)  # one call done: its cost counts at once, before its row is written
    passed, refused = [], 0
    for _ in range(30):
        try:
            passed.append(guard.reserve(key, 0.01))  # each call can cost at most 0.01
        except RateLimited as e:
            refused += 1
            assert e.code == "budget_exceeded" and e.retry_after == 2.0  # calls under way may leave room
    assert len(passed) == 2 and refused == 28  # 0.01 spent + 2 x 0.01 reserved = the budget, no more
    for reservation in passed:  # both end, each having cost what it reserved
        guard.spent(key.fingerprint, 0.01)
        guard.release(reservation)
    with pytest.raises(RateLimited) as e:
        guard.reserve(key, 0.01)
    assert e.value.retry_after > 60  # spent: until midnight UTC
    # a call that costs more than its bound raises the floor of every later reservation
    roomy = ApiKey("r", hashlib.sha256(b"r").hexdigest(), budget_usd_per_day=1.0)
    guard = KeyGuard([roomy], Ledger())
    guard.spent(roomy.fingerprint, 0.4)
    guard.reserve(roomy, 0.001)
    guard.reserve(roomy, 0.001)
    with pytest.raises(RateLimited):
        guard.reserve(roomy, 0.001)  # 0.4 spent + 2 x 0.4 reserved (the largest call seen, not 0.001)
