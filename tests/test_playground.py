"""The playground in headless Chromium: a task on two tiers side by side, a prompt on the lite
model, and the same call as curl, Python and CLI, each of which gives the same answer when run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import CHROMIUM, colour_pixels
from test_learning_loop import Browser

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by the README's test command")


def cards(browser: Browser) -> dict[str, dict[str, str]]:
    return browser.evaluate("""Object.fromEntries([...document.querySelectorAll('#results .result')].map(c =>
        [c.dataset.tier, Object.fromEntries([...c.querySelectorAll('[data-field]')].map(
            f => [f.dataset.field, f.textContent]))]))""")


def test_a_task_on_two_tiers_side_by_side_and_the_call_to_copy(server: str, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"{server}/playground")
        browser.wait_for("document.body.dataset.ready === '1'")
        browser.evaluate("document.getElementById('mode').value = 'rank'; document.getElementById('mode').onchange()")
        tiers = browser.evaluate("[...document.querySelectorAll('#tiers input')].map(i => i.value)")
        assert tiers[:3] == ["auto", "nano", "lite"]
        browser.evaluate("for (const i of document.querySelectorAll('#tiers input')) "
                         "i.checked = ['auto', 'nano'].includes(i.value); document.getElementById('run').click()")
        browser.wait_for("document.getElementById('results').dataset.done === '1'", timeout=300)
        shown = cards(browser)
        assert set(shown) == {"auto", "nano"}, shown
        for card in shown.values():
            ranking = json.loads(card["answer"])
            assert ranking[0]["text"] == "Every laptop comes with a two-year warranty.", card
            assert float(card["confidence"]) > 0 and card["cost"].startswith("$") and card["latency"].endswith(" ms")
        shot = tmp_path / "playground.png"
        browser.screenshot(shot)
        assert colour_pixels(shot)("#3aa17e") > 300, "the result cards are not drawn"
        # the same call, copied: curl, Python and the CLI answer the same
        code = {}
        for view in ("curl", "python", "cli"):
            browser.evaluate(f"document.querySelector('[data-view={view}]').click()")
            code[view] = browser.evaluate("document.getElementById('code').textContent")
        assert "/v1/tasks/rank" in code["curl"] and "litegate rank --url" in code["cli"]
        for view, cmd in (("curl", ["bash", "-c", code["curl"]]), ("python", [sys.executable, "-c", code["python"]]),
                          ("cli", ["bash", "-c", code["cli"].replace("litegate ", f"{sys.executable} -m litegate.cli ",
                                                                    1)])):
            done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (view, done.stderr)
            assert "two-year warranty" in done.stdout, (view, done.stdout)
        # a trained classifier on the nano tier, and the CLI line that names it
        examples = [{"text": t, "label": label} for t, label in [
            ("I was charged twice", "billing"), ("refund my last payment", "billing"),
            ("the app crashes on start", "bug"), ("error 500 when I save", "bug")]]
        assert httpx.post(f"{server}/v1/classifiers", json={"name": "pg-tickets", "examples": examples},
                          timeout=300).status_code == 201
        browser.evaluate("document.getElementById('mode').value = 'classify';"
                         "document.getElementById('mode').onchange();"
                         "document.getElementById('trained').value = 'pg-tickets';"
                         "for (const i of document.querySelectorAll('#tiers input')) i.checked = i.value === 'nano';"
                         "document.getElementById('run').click()")
        browser.wait_for("document.getElementById('results').dataset.done === '2'", timeout=300)
        assert cards(browser)["nano"]["answer"] == "billing"
        browser.evaluate("document.querySelector('[data-view=cli]').click()")
        assert "--classifier 'pg-tickets'" in browser.evaluate("document.getElementById('code').textContent")
    finally:
        browser.close()


def test_a_prompt_on_the_lite_model_and_an_error_in_its_card(server: str, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"{server}/playground")
        browser.wait_for("document.body.dataset.ready === '1'")
        models = browser.evaluate("[...document.querySelectorAll('#tiers input')].map(i => i.value)")
        assert "lite" in models
        browser.evaluate("document.getElementById('text').value = 'What is the capital of France? One word.';"
                         "for (const i of document.querySelectorAll('#tiers input')) i.checked = i.value === 'lite';"
                         "document.getElementById('run').click()")
        browser.wait_for("document.getElementById('results').dataset.done === '1'", timeout=600)
        lite = cards(browser)["lite"]
        assert "Paris" in lite["answer"] and lite["cost"].startswith("$") and "out" in lite["tokens"]
        # a schema that is not JSON: said in the card, nothing sent
        browser.evaluate("document.getElementById('schema').value = '{not json';"
                         "document.getElementById('run').click()")
        browser.wait_for("document.getElementById('results').dataset.done === '2'")
        assert "not JSON" in cards(browser)["lite"]["error"]
    finally:
        browser.close()
    assert httpx.get(f"{server}/", follow_redirects=False).headers["location"] == "/dashboard"
