"""A key's daily budget holds under a burst: rounds of 12 concurrent chats against a tiny
budget end with today's spend at most the budget plus the cost of one call."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import start_server, stop_server

BUDGET = 0.00005  # a handful of calls: local tiers are priced per token (ledger.pricing)
KEY = "burst-key"
WARM = "warm-key"  # no budget: loads the model before the burst
BODY = {"model": "lite", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": "Name three colours."}]}


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("budget")
    config = root / "litegate.toml"
    config.write_text(f'[[api_key]]\nname = "burst"\nkey_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\n'
                      f"budget_usd_per_day = {BUDGET}\n"
                      f'[[api_key]]\nname = "warm"\nkey_sha256 = "{hashlib.sha256(WARM.encode()).hexdigest()}"\n')
    proc, base = start_server(root / "home", "--ctx", "2048", "--parallel", "4", "--config", str(config))
    yield base, root / "home"
    stop_server(proc)


def test_a_burst_spends_at_most_the_budget_plus_one_call(budgeted: tuple[str, Path]) -> None:
    base, home = budgeted
    headers = {"Authorization": f"Bearer {KEY}"}
    warm = httpx.post(base + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {WARM}"},
                      timeout=300)
    assert warm.status_code == 200, warm.text
    statuses: list[int] = []
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client, ThreadPoolExecutor(12) as pool:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            rounds = list(pool.map(lambda _: client.post("/v1/chat/completions", json=BODY).status_code, range(12)))
            statuses += rounds
            if all(s == 429 for s in rounds) and 200 in statuses:
                break
            time.sleep(0.2)
        client.get("/v1/report")  # flushes the ledger
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    with sqlite3.connect(home / "ledger.db") as conn:
        fingerprint = hashlib.sha256(KEY.encode()).hexdigest()[:12]
        costs = [c for (c,) in conn.execute("select cost_usd from calls where api_key = ?", (fingerprint,))]
    spend, largest = sum(costs), max(costs)
    print(json.dumps({"budget_usd": BUDGET, "spend_usd": round(spend, 9), "largest_call_usd": round(largest, 9),
                      "calls_let_in": statuses.count(200), "refused": statuses.count(429),
                      "spend_over_budget_in_calls": round(max(0.0, spend - BUDGET) / largest, 3)}))
    assert spend <= BUDGET + largest, (spend, largest)
