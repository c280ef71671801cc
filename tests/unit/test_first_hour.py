"""What a newcomer trips over in the first hour, each fixed and kept fixed: the feature tag on
task routes and batch lines, a body sent without Content-Type, the server's root, the
dashboards' wording and CLI runs on the pipelines page, dead letters, training errors by file
and line, option help, the warm-up in /healthz, batch ids in a narrow terminal, distill's
verdict."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fakes import runtime
from fastapi.testclient import TestClient
from typer.testing import CliRunner

RANK = {"query": "refund policy", "candidates": ["weather today", "refund policy details"]}


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path)
    yield r
    r.close()


def _features(rt) -> list[str | None]:
    rt.accountant.flush()
    return [r["feature"] for r in rt.accountant.ledger.rows()]


def test_task_routes_take_the_feature_header_and_the_body_wins(client: TestClient, rt) -> None:
    assert client.post("/v1/tasks/rank", json=RANK, headers={"X-Litegate-Feature": "search"}).status_code == 200
    assert client.post("/v1/tasks/rank", json={**RANK, "feature": "own"},
                       headers={"X-Litegate-Feature": "search"}).status_code == 200
    assert sorted(_features(rt)) == ["own", "search"]
    bad = client.post("/v1/tasks/rank", json=RANK, headers={"X-Litegate-Feature": "x" * 500})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "X-Litegate-Feature"


def test_batch_task_lines_are_ledgered_under_the_jobs_feature(client: TestClient, rt) -> None:
    lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/tasks/rank", "body": RANK}) + "\n"
                    for i in range(3))
    up = client.post("/v1/files", files={"file": ("in.jsonl", lines.encode())}, data={"purpose": "batch"}).json()
    job = client.post("/v1/batches", json={"input_file_id": up["id"], "endpoint": "/v1/tasks/rank",
                                           "completion_window": "24h", "metadata": {"feature": "nightly"}}).json()
    deadline = time.monotonic() + 20
    while (job := client.get(f"/v1/batches/{job['id']}").json())["status"] != "completed":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert _features(rt) == ["nightly"] * 3


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/x-www-form-urlencoded"}])
def test_a_json_body_without_its_content_type_says_which_header_to_send(client: TestClient, headers: dict) -> None:
    r = client.post("/v1/tasks/rank", content=json.dumps(RANK).encode(), headers=headers)
    error = r.json()["error"]
    assert r.status_code == 400 and error["code"] == "invalid_content_type"
    assert "Content-Type: application/json" in error["message"] and "valid dictionary" not in error["message"]
    broken = client.post("/v1/tasks/rank", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"


def test_the_root_opens_the_dashboard(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/dashboard"
    assert client.get("/?hours=2", follow_redirects=False).headers["location"] == "/dashboard?hours=2"


def test_the_dashboard_says_what_feedback_there_is_and_its_window_in_words(client: TestClient, rt) -> None:
    page = client.get("/dashboard?hours=1").text
    assert "last hour" in page and "no feedback yet" in page and "last 1 hours" not in page
    call = client.post("/v1/tasks/rank", json=RANK).json()
    assert client.post("/v1/feedback", json={"id": call["id"], "outcome": "failure"}).status_code == 200
    page = client.get("/dashboard").text
    assert "no success yet (1 failure)" in page and "no feedback yet" not in page and "last 24 hours" in page
    assert "last 7 days" in client.get("/dashboard?hours=168").text


def test_the_pipelines_page_shows_runs_of_pipelines_this_server_does_not_load(client: TestClient, rt) -> None:
    from litegate.pipelines.store import RunStore, StepRecord

    assert "No pipeline runs" in client.get("/dashboard/pipelines").text
    store = RunStore(rt.accountant.ledger.engine)  # what `litegate pipeline run` writes
    run, _ = store.create("intake", "k1", "inbox/a.pdf", {})
    store.put_step(run["id"], StepRecord("extract", 1, "extract", "ok", tier="lite", cost_usd=0.0002, latency_ms=900))
    store.set(run["id"], status="succeeded", cost_usd=0.0002, tiers="lite", finished_at=time.time())
    page = client.get("/dashboard/pipelines").text
    assert "intake" in page and "succeeded 1" in page and "extract" in page and "No pipeline runs" not in page


def test_a_receivers_html_error_page_becomes_one_readable_line() -> None:
    from litegate.pipelines.notify import response_summary

    page = ('<!DOCTYPE HTML>\n<html lang="en">\n<head><meta charset="utf-8"><title>Error response</title>'
            '<style>body{color:red}</style></head>\n<body>\n<h1>Error response</h1>\n<p>Error code: 501</p>\n'
            "<p>Message: Unsupported method (&#x27;POST&#x27;).</p>\n</body>\n</html>\n")
    line = response_summary(page, "text/html;charset=utf-8")
    assert line == "Error response Error code: 501 Message: Unsupported method ('POST')."
    assert response_summary('{"error": "quota"}', "application/json") == '{"error": "quota"}'
    assert len(response_summary("<html><body>" + "x " * 500 + "</body></html>", "")) == 160


def test_training_errors_name_the_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from litegate.cli import app

    monkeypatch.setenv("LITEGATE_HOME", str(tmp_path / "home"))
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "pay Ann 20 euros", "data": {"person": "Ann"}}\n\n'
                    '{"text": "pay Bob 5 euros", "data": {"person": "Robert"}}\n')
    r = CliRunner().invoke(app, ["train", "pay", "--task", "extract", "--data", str(data)])
    assert r.exit_code == 1
    assert f"{data}:3: 'data.person': 'Robert' does not occur in the text" in " ".join(r.output.split())
    assert "examples.1" not in r.output
    data.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    r = CliRunner().invoke(app, ["train", "t", "--data", str(data)])
    assert r.exit_code == 1 and f"{data}:2: 'label' must be a non-empty string" in " ".join(r.output.split())


def test_every_dataset_option_has_help() -> None:
    import typer

    from litegate.cli import app

    dataset = typer.main.get_command(app).commands["dataset"]
    assert all(p.help for p in dataset.params if p.name != "help"), [p.name for p in dataset.params if not p.help]


def test_the_warm_up_is_not_an_active_request() -> None:
    """The engine's own warm-up request is not a user's: /healthz reads active_requests."""
    from litegate.engine.llama import LlamaEngine

    seen: list[int] = []

    class Server:
        def handle_chat_completions(self, body: dict) -> dict:
            seen.append(engine.active_requests)
            return {"choices": [{"message": {"content": "{}"}}]}

    engine = LlamaEngine.__new__(LlamaEngine)  # the real methods over a stand-in for llama.cpp's server
    engine._server, engine._active, engine._active_lock, engine._closed = Server(), 0, threading.Lock(), False
    engine.warm_up()
    engine._run("chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert seen == [0, 1] and engine.active_requests == 0


def test_batch_list_prints_whole_ids_in_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    batch_id = "batch_5d5c109e4f0a4b7fb2a1c3d4e5f60718"
    listing = {"data": [{"id": batch_id, "status": "completed", "endpoint": "/v1/tasks/classify",
                         "request_counts": {"completed": 3, "failed": 0, "total": 3}, "created_at": 1_700_000_000,
                         "cost_usd": 0.0001}]}

    class Batches(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Batches)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from litegate.cli import app

        monkeypatch.setenv("COLUMNS", "60")
        r = CliRunner().invoke(app, ["batch", "list", "--url", f"http://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
    assert r.exit_code == 0 and batch_id in r.output and "…" not in r.output


def test_distill_says_what_a_promotion_means() -> None:
    from litegate.learning.loop import promoted_message

    assert promoted_message(3, 2, 0.91, 0.84, 40, "accuracy", []) == \
        "v3 promoted: accuracy 0.91 on 40 new labels held back from its training, v2 scored 0.84"
    tie = promoted_message(2, 1, 0.0, 0.0, 2, "accuracy", ["card_declined"])
    assert tie.startswith("v2 promoted: no version answered the 2 new labels right") and "0.000" not in tie
    assert "it learned card_declined, which v1 did not know" in tie
    assert promoted_message(2, 1, 0.8, 0.8, 10, "slot_f1", []) == \
        "v2 promoted: as good as v1 on 10 new labels (slot F1 0.80 both)"
