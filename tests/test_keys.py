"""Optional API keys: required once configured, with per-key rate limits and daily budgets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from conftest import start_server, stop_server

CHAT = "/v1/chat/completions"
BODY = {"model": "lite", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, home: Path):
    config = tmp_path_factory.mktemp("keys") / "litegate.toml"
    budget_key_hash = hashlib.sha256(b"budget-key").hexdigest()
    config.write_text(f'''
[[api_key]]
name = "limited"
key_env = "LITEGATE_TEST_KEY"
rate_per_minute = 3

[[api_key]]
name = "thrifty"
key_sha256 = "{budget_key_hash}"
budget_usd_per_day = 0.000000001
''')
    os.environ["LITEGATE_TEST_KEY"] = "rate-key"
    try:
        proc, base = start_server(home, "--ctx", "2048", "--config", str(config))
    finally:
        del os.environ["LITEGATE_TEST_KEY"]
    yield base
    stop_server(proc)


def test_key_required_and_checked(keyed_server: str) -> None:
    r = httpx.post(keyed_server + CHAT, json=BODY)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    r = httpx.post(keyed_server + CHAT, json=BODY, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(keyed_server + "/healthz").status_code == 200  # health stays open
    r = httpx.post(keyed_server + "/v1beta/models/lite:countTokens", json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = httpx.post(keyed_server + "/v1beta/models/lite:countTokens", json={"contents": [{"parts": [{"text": "x"}]}]},
                   headers={"x-goog-api-key": "rate-key"})
    assert r.status_code == 200


def test_rate_limit(keyed_server: str) -> None:
    headers = {"Authorization": "Bearer rate-key"}
    statuses = [httpx.post(keyed_server + CHAT, json=BODY, headers=headers, timeout=60).status_code
                for _ in range(4)]
    assert 429 in statuses and statuses[0] == 200
    r = httpx.post(keyed_server + CHAT, json=BODY, headers=headers)
    assert r.status_code == 429 and "per minute" in r.json()["error"]["message"]


def test_daily_budget(keyed_server: str) -> None:
    headers = {"Authorization": "Bearer budget-key"}
    assert httpx.post(keyed_server + CHAT, json=BODY, headers=headers, timeout=60).status_code == 200
    httpx.get(keyed_server + "/v1/report", headers=headers)  # flushes the ledger; may already be over budget
    import time

    time.sleep(2.1)  # the spend cache refreshes every 2 s
    r = httpx.post(keyed_server + CHAT, json=BODY, headers=headers, timeout=60)
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
