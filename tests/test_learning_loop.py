"""The learning loop end to end with the real encoder: a classifier trained with learn over
HTTP on a real server, calls streamed through the task API, the review queue labeled with
corrections over HTTP and the CLI, distill promoting a better version, rollback; the review
page screenshot-tested and labeled by clicking its form in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import CHROMIUM, colour_pixels, free_port, litegate_cmd
from litegate.evals.datasets import clinc150

NAME = "bank-learn"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(litegate_cmd(*args), env=dict(os.environ, LITEGATE_HOME=str(home)), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def learning(server: str, home: Path) -> dict:
    """A banking classifier trained on 2 examples per intent with learn, and 90 calls to it."""
    train = clinc150("train", domain="banking", per_label=2, seed=1)
    stream = clinc150("test", domain="banking", per_label=6, seed=2)
    with httpx.Client(base_url=server, timeout=120) as http:
        r = http.post("/v1/classifiers", json={"name": NAME, "examples": train, "learn": True})
        assert r.status_code == 201, r.text
        gold = {}
        for rec in stream:
            out = http.post("/v1/tasks/classify", json={"text": rec["text"], "classifier": NAME, "tier": "nano"})
            assert out.status_code == 200 and out.json()["model"] == f"{NAME}@v1"
            gold[out.json()["id"]] = rec["label"]
    return {"gold": gold, "test": clinc150("val", domain="banking", per_label=5, seed=3)}


def accuracy(http: httpx.Client, records: list[dict]) -> tuple[float, str]:
    right, model = 0, ""
    for rec in records:
        out = http.post("/v1/tasks/classify", json={"text": rec["text"], "classifier": NAME, "tier": "nano"}).json()
        right += out["label"] == rec["label"]
        model = out["model"]
    return right / len(records), model


def test_review_corrections_and_distill_over_http_and_cli(http: httpx.Client, home: Path, learning: dict) -> None:
    gold = learning["gold"]
    before, model = accuracy(http, learning["test"])
    assert model == f"{NAME}@v1"
    queue = http.get("/v1/review", params={"classifier": NAME, "limit": 200, "below": 1.0}).json()
    assert queue["pending"] >= 90
    # the reviewer labels the stream's calls (the accuracy checks' calls are kept too, unlabeled)
    items = [x for x in queue["data"] if x["id"] in gold][:30]
    assert len(items) == 30
    for item in items[:25]:  # a reviewer labels the most informative calls over HTTP
        r = http.post("/v1/feedback", json={"id": item["id"], "correct": {"label": gold[item["id"]]}})
        assert r.status_code == 200, r.text
    for item in items[25:]:  # ... and a few from the shell
        done = cli(home, "feedback", item["id"], "--correct", gold[item["id"]])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["correct"] == {"label": gold[item["id"]]}
    assert cli(home, "feedback", "task_missing", "--correct", "x").returncode == 1
    r = http.post(f"/v1/classifiers/{NAME}/distill")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["promoted"], body
    assert body["held_back"] == 30 and body["candidate_score"] >= body["current_score"]
    after, model = accuracy(http, learning["test"])
    assert model == f"{NAME}@v2"
    assert after >= before, (before, after)
    # nothing new since: a one-line answer and exit 0
    done = cli(home, "distill", NAME)
    assert done.returncode == 0 and done.stdout.startswith("nothing to learn"), done.stdout + done.stderr
    report = cli(home, "report", "--learning", NAME)
    assert report.returncode == 0 and "v2" in report.stdout and "held-back score" in report.stdout
    # roll back from the shell; the server answers with v1 again
    done = cli(home, "distill", NAME, "--rollback")
    assert done.returncode == 0 and "v1 answers again" in done.stdout
    assert accuracy(http, learning["test"][:1])[1] == f"{NAME}@v1"
    done = cli(home, "distill", NAME, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["version"] == 3


class Browser:
    """Headless Chromium driven over the DevTools protocol: open a page, run a line of
    script in it (a click), take a screenshot."""

    def __init__(self, profile: Path):
        self.port = free_port()
        self.proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--disable-background-networking", "--disable-component-update",
                                      "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,1400",
                                      f"--remote-debugging-port={self.port}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                pages = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
                url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
                break
            except (httpx.TransportError, StopIteration, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        from contextlib import ExitStack

        from websockets.sync.client import connect

        self._open = ExitStack()
        self.ws = self._open.enter_context(connect(url, max_size=None))
        self.next_id = 0

    def send(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def evaluate(self, script: str) -> object:
        return self.send("Runtime.evaluate", expression=script, returnByValue=True)["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href.startsWith('http')")

    def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(condition):
            assert time.monotonic() < deadline, f"timed out waiting for {condition}"
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self._open.close()
        self.proc.kill()
        self.proc.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by the README's test command")
def test_review_page_in_chromium(server: str, http: httpx.Client, learning: dict, tmp_path: Path) -> None:
    # every unlabeled call, so the reviewer finds a call of the stream whatever the tests before labeled
    page = f"{server}/dashboard/learning?classifier={NAME}&below=1&limit=200"
    pending = http.get("/v1/review", params={"classifier": NAME, "below": 1, "limit": 200}).json()
    stream_ids = [x["id"] for x in pending["data"] if x["id"] in learning["gold"]]
    assert stream_ids, "the stream leaves unlabeled calls"
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(page)
        assert browser.evaluate("document.querySelectorAll('form select').length") == min(pending["pending"], 200)
        # a reviewer picks the right label in a call's form and saves it ...
        target, label = stream_ids[0], learning["gold"][stream_ids[0]]
        form = f"document.querySelector('input[name=id][value={json.dumps(target)}]').form"
        browser.evaluate(f"{form}.querySelector('select').value = {json.dumps(label)}; "
                         f"{form}.querySelector('button').click()")
        browser.wait_for("document.body.innerText.includes('Saved the label')")
        assert browser.evaluate("location.search.includes('below=1')")  # back on the same view
        after = http.get("/v1/review", params={"classifier": NAME, "below": 1, "limit": 200}).json()
        assert after["pending"] == pending["pending"] - 1 and target not in {x["id"] for x in after["data"]}
        # ... then distills from the page
        browser.evaluate("[...document.querySelectorAll('button')].find(b => b.textContent == 'Distill now').click()")
        browser.wait_for("/v\\d promoted|not promoted/.test(document.body.innerText)")
        shot = tmp_path / "learning.png"
        browser.screenshot(shot)
    finally:
        browser.close()
    pixels = colour_pixels(shot)
    assert pixels("#3aa17e") > 100, "score bars missing"
    assert pixels("#e07b39") > 30, "per-day unsure bars missing"
    assert pixels("#3b6fd4") > 300, "the label buttons are missing"
