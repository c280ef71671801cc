"""The dashboard renders real charts from the ledger, checked in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import CHROMIUM, screenshot


def make_traffic(http: httpx.Client) -> None:
    for i, feature in enumerate(["support", "support", "search", "billing"]):
        out = http.post("/v1/tasks/rank", json={"query": f"query {i}", "candidates": ["alpha", "beta"],
                                                "feature": feature}).json()
        http.post("/v1/feedback", json={"id": out["id"], "outcome": "success" if i % 2 == 0 else "failure"})
    http.post("/v1/tasks/classify", json={"text": "will it rain", "labels": ["weather", "music"],
                                          "feature": "assistant"})


def test_dashboard_html_has_charts_from_the_ledger(http: httpx.Client) -> None:
    make_traffic(http)
    r = http.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert page.count('class="bar"') >= 5  # stacked cost bars plus feature/escalation/latency bars
    for label in ("Cost over time", "Cost by feature", "Escalation rate", "Latency", "support", "billing"):
        assert label in page
    assert "<script" not in page and "http://" not in page.split("</style>")[1]  # self-contained
    assert http.get("/dashboard?hours=0").status_code == 400


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by the README's test command")
def test_dashboard_screenshot_shows_the_charts(http: httpx.Client, server: str, tmp_path: Path) -> None:
    make_traffic(http)
    # a tall window: the latency card is the last one, and an escalated call adds rows above it
    pixels = screenshot(f"{server}/dashboard", tmp_path / "dashboard.png", tmp_path / "profile", size="1200,2000")
    # each chart's bars are drawn in its own colour; all of them must be visible on screen
    assert pixels("#3b6fd4") > 400, "cost bars missing"
    assert pixels("#e07b39") > 50, "escalation or second-tier bars missing"
    assert pixels("#3aa17e") > 200, "latency bars missing"
