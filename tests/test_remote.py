"""A remote OpenAI-compatible tier: a second litegate process on loopback, reached through
the gateway with real HTTP; killing it mid-test triggers fallback and the circuit breaker."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from conftest import free_port, start_server, stop_server
from litegate.remote import CircuitBreaker


def test_circuit_breaker_transitions() -> None:
    b = CircuitBreaker(failures=2, reset_s=0.2)
    assert b.state == "closed"
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    time.sleep(0.25)
    assert b.state == "half-open" and b.allow()
    b.failure()  # the probe failed: open again
    assert b.state == "open"
    time.sleep(0.25)
    b.success()
    assert b.state == "closed"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, home: Path):
    remote_port = free_port()
    from litegate.models import LITE, ModelCache

    ModelCache(home).ensure(LITE)
    remote_home = tmp_path_factory.mktemp("remote-home")
    (remote_home / "models").symlink_to(home / "models")  # reuse the joined model file
    remote_proc, remote_base = start_server(remote_home, "--ctx", "2048", port=remote_port)
    config = tmp_path_factory.mktemp("cfg") / "litegate.toml"
    config.write_text(f'''
[[remote]]
name = "pro-remote"
base_url = "{remote_base}/v1"
model = "lite"
price_in_per_million = 1.0
price_out_per_million = 2.0
fallback = "lite"
max_retries = 1
timeout_s = 20
breaker_failures = 2
breaker_reset_s = 3
''')
    proc, base = start_server(home, "--ctx", "2048", "--config", str(config))
    state = {"remote_proc": remote_proc, "remote_port": remote_port, "remote_home": remote_home}
    yield base, state
    stop_server(proc)
    if state["remote_proc"].poll() is None:
        stop_server(state["remote_proc"])


def test_remote_tier_through_the_gateway(gateway, home: Path) -> None:
    base, _ = gateway
    client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
    assert "pro-remote" in [m.id for m in client.models.list().data]
    r = client.chat.completions.create(model="pro-remote", messages=[{"role": "user", "content": "Say hi"}],
                                       max_tokens=5, temperature=0)
    assert r.model == "pro-remote" and r.choices[0].message.content
    assert r.usage.completion_tokens <= 5
    assert "fallback_from" not in (r.model_extra.get("litegate") or {})
    from test_ledger import ledger_row

    rec = ledger_row(home, r.id)
    row = (rec["tier"], rec["tokens_in"], rec["tokens_out"], rec["cost_usd"])
    assert row[0] == "pro-remote"
    assert row[3] == pytest.approx((row[1] * 1.0 + row[2] * 2.0) / 1e6)
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="pro-remote", messages=[{"role": "user", "content": "Count to three"}], max_tokens=12,
        temperature=0, stream=True) if c.choices)
    assert text


def test_remote_errors_pass_through(gateway) -> None:
    base, _ = gateway
    r = httpx.post(base + "/v1/chat/completions", json={"model": "pro-remote", "messages": [
        {"role": "user", "content": "x " * 3000}]}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_killed_remote_falls_back_and_opens_the_breaker(gateway) -> None:
    base, state = gateway
    stop_server(state["remote_proc"])
    body = {"model": "pro-remote", "messages": [{"role": "user", "content": "Say ok"}], "max_tokens": 3}
    for _ in range(2):
        r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["x-litegate-fallback-from"] == "pro-remote"
        assert r.json()["litegate"]["fallback_from"] == "pro-remote" and r.json()["model"] == "lite"
    assert httpx.get(base + "/healthz").json()["remotes"]["pro-remote"]["circuit"] == "open"
    started = time.perf_counter()
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["litegate"]["fallback_from"] == "pro-remote"
    assert "circuit open" in r.json()["litegate"]["fallback_reason"]
    assert time.perf_counter() - started < 5  # no retries against an open circuit
    # bring the remote back: after the reset window a half-open probe closes the circuit
    proc, _ = start_server(state["remote_home"], "--ctx", "2048", port=state["remote_port"])
    state["remote_proc"] = proc
    time.sleep(3.2)
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200 and "fallback_from" not in r.json().get("litegate", {})
    assert httpx.get(base + "/healthz").json()["remotes"]["pro-remote"]["circuit"] == "closed"


def test_bad_config_is_a_one_line_error(tmp_path: Path, home: Path) -> None:
    import os
    import subprocess

    from conftest import litegate_cmd

    bad = tmp_path / "bad.toml"
    bad.write_text('[[remote]]\nname = "x"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\ncolour = "red"\n')
    r = subprocess.run(litegate_cmd("serve", "--config", str(bad), "--port", str(free_port())),
                       env=dict(os.environ, LITEGATE_HOME=str(home)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "unknown keys" in r.stderr and "colour" in r.stderr
