"""Pipeline runs on the fake runtime: the real service, store, sinks, outbox and routes, with
the engine replaced. A loopback receiver checks the webhooks (signature, retries, dead
letters); a real SQLite table takes the rows."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeEngine, runtime
from fastapi.testclient import TestClient
from webhooks import Receiver

from litegate.errors import Conflict
from litegate.pipelines import PipelineService, RunInput, load_pipeline
from litegate.pipelines.notify import verify

pytestmark = pytest.mark.unit
SECRET = "test-signing-secret"

PIPELINE = """
name = "docs"
[[step]]
name = "ingest"
kind = "ingest"
[[step]]
name = "extract"
kind = "extract"
tier = "lite"
fields = { vendor = "the vendor", total = "the total" }
[[step]]
name = "doc_type"
kind = "classify"
tier = "lite"
labels = ["invoice", "contract"]
[[step]]
name = "big"
kind = "review"
when = "steps.extract.data.total > 10000"
reason = "total {{ steps.extract.data.total }} needs approval"
[[step]]
name = "summary"
kind = "summarize"
tier = "lite"
when = "'agreement' in steps.ingest.text"
[[step]]
name = "store"
kind = "write"
table = "docs_rows"
[step.columns]
vendor = "steps.extract.data.vendor"
total = { value = "steps.extract.data.total", type = "float" }
doc_type = "steps.doc_type.label"
summary = "steps.summary.summary"
[[step]]
name = "notify"
kind = "notify"
url = "RECEIVER"
secret_env = "PIPE_TEST_SECRET"
max_attempts = 3
backoff_s = 0.05
"""


def reply(body: dict[str, Any]) -> str:
    """Extraction: the vendor and total stated in the text; anything else: a short summary."""
    text = body["messages"][-1]["content"] if isinstance(body["messages"][-1]["content"], str) else ""
    if "vendor" in json.dumps(body.get("response_format") or body.get("grammar") or body["messages"][0]):
        vendor = re.search(r"Vendor: ([A-Z][\w ]+?)\n", text)
        total = re.search(r"Total: (\S+)", text)
        return json.dumps({k: v for k, v in (("vendor", vendor and vendor.group(1)),
                                             ("total", total and total.group(1))) if v})
    return "- an agreement between two parties"


@pytest.fixture()
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def setup(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PIPE_TEST_SECRET", SECRET)
    path = tmp_path / "docs.toml"
    path.write_text(PIPELINE.replace("RECEIVER", receiver.url))
    rt = runtime(tmp_path / "home", engines={"lite": FakeEngine(reply, n_ctx=4096)}, pipelines=path)
    svc = PipelineService(rt, {"docs": load_pipeline(path)}, poll_s=0.05)
    yield rt, svc, path
    svc.close()
    rt.close()


def doc(vendor: str, total: str, extra: str = "") -> RunInput:
    return RunInput(text=f"INVOICE\nVendor: {vendor}\nTotal: {total}\n{extra}", metadata={"source": "test"})


def rows(rt: Any, table: str = "docs_rows") -> list[tuple]:
    db = rt.settings.home / "ledger.db"
    with sqlite3.connect(db) as conn:
        if not conn.execute("select 1 from sqlite_master where name = ?", (table,)).fetchone():
            return []
        return conn.execute(f"select run_id, vendor, total, doc_type, summary from {table} "
                            "order by written_at").fetchall()


def test_a_run_writes_one_row_and_one_signed_webhook_and_replays_without_writing_twice(setup, receiver) -> None:
    rt, svc, _ = setup
    run = svc.run("docs", doc("Kestrel Supply", "$1,234.50"))
    assert run["status"] == "succeeded", run
    steps = {s["step"]: s for s in run["steps"]}
    assert [s["step"] for s in run["steps"]] == ["ingest", "extract", "doc_type", "big", "summary", "store", "notify"]
    assert steps["extract"]["output"]["data"] == {"vendor": "Kestrel Supply", "total": "$1,234.50"}
    assert steps["big"]["status"] == "skipped" and steps["summary"]["status"] == "skipped"
    assert steps["extract"]["tier"] == "lite" and steps["extract"]["cost_usd"] > 0 and steps["extract"]["call_id"]
    assert run["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in run["steps"]))
    assert rows(rt) == [(run["id"], "Kestrel Supply", 1234.5, "invoice", None)]
    # every task step is a ledger row tagged with the step's feature
    rt.accountant.flush()
    features = {r["feature"] for r in rt.accountant.ledger.rows()}
    assert {"docs.extract", "docs.doc_type"} <= features
    assert svc.outbox.drain(10) == 0
    [hook] = receiver.delivered
    assert verify(SECRET, hook["headers"], hook["body"])
    assert not verify("another secret", hook["headers"], hook["body"])
    payload = json.loads(hook["body"])
    assert payload["run_id"] == run["id"] and payload["steps"]["extract"]["data"]["total"] == "$1,234.50"
    # the same document again: the same run, nothing written or sent twice
    again = svc.run("docs", doc("Kestrel Supply", "$1,234.50"))
    assert again["id"] == run["id"] and again["status"] == "succeeded"
    assert len(rows(rt)) == 1 and svc.outbox.drain(2) == 0 and len(receiver.requests) == 1
    # an explicit idempotency key names the document instead of its content
    keyed = svc.run("docs", doc("Kestrel Supply", "$1,234.50", "copy"), key="mail-42")
    assert svc.run("docs", doc("Kestrel Supply", "$1,234.50", "copy"), key="mail-42")["id"] == keyed["id"]
    # the same key with another document is a mistake, refused rather than answered with the first run
    with pytest.raises(Conflict, match="used for another document"):
        svc.run("docs", doc("Other", "$1"), key="mail-42")
    assert len(rows(rt)) == 2


def test_a_failing_step_fails_the_run_there_keeps_earlier_outputs_and_a_retry_resumes(setup) -> None:
    rt, svc, _ = setup
    # a table whose columns changed: a clear error, never a silent drop
    with sqlite3.connect(rt.settings.home / "ledger.db") as conn:
        conn.execute("create table docs_rows (run_id text primary key, vendor text, amount real)")
    run = svc.run("docs", doc("Acme", "$99.00"))
    assert run["status"] == "failed" and run["failed_step"] == "store"
    assert "docs_rows exists without column(s) total, doc_type, summary" in run["error"]
    assert "step 'store'" in run["error"]
    steps = {s["step"]: s for s in run["steps"]}
    assert steps["extract"]["status"] == "ok" and steps["extract"]["output"]["data"]["vendor"] == "Acme"
    assert "notify" not in steps
    extract_call = steps["extract"]["call_id"]
    with sqlite3.connect(rt.settings.home / "ledger.db") as conn:
        conn.execute("drop table docs_rows")
    svc.sinks._tables.clear()
    again = svc.run("docs", doc("Acme", "$99.00"))  # the same document: the failed run, resumed
    assert again["id"] == run["id"] and again["status"] == "succeeded" and again["attempts"] == 2
    assert {s["step"]: s for s in again["steps"]}["extract"]["call_id"] == extract_call  # not run again
    assert rows(rt)[0][1:3] == ("Acme", 99.0)


def test_a_value_that_does_not_fit_its_column_fails_the_run_naming_the_column(setup) -> None:
    _, svc, _ = setup
    run = svc.run("docs", doc("Acme", "tbd"))
    assert run["status"] == "failed" and "columns.total: 'tbd' is not a number (float column)" in run["error"]


def test_a_review_step_holds_the_run_and_approval_goes_on_with_corrections(setup) -> None:
    rt, svc, _ = setup
    run = svc.run("docs", doc("Big Co", "$25,000.00"))
    assert run["status"] == "human_review" and run["review_step"] == "big"
    assert run["error"] == "total $25,000.00 needs approval"
    assert rows(rt) == []
    with pytest.raises(Exception, match="only a failed run is retried"):
        svc.retry(run["id"])
    svc.review(run["id"], approve=True)
    done = svc.execute(run["id"])
    assert done["status"] == "succeeded" and rows(rt)[0][1:3] == ("Big Co", 25000.0)
    # a held run can be rejected: nothing is written
    held = svc.run("docs", doc("Small Co", "$5,000,000"))
    svc.review(held["id"], approve=False)
    assert svc.store.get(held["id"])["status"] == "rejected"


def test_when_runs_the_summary_only_for_agreements(setup) -> None:
    rt, svc, _ = setup
    run = svc.run("docs", doc("Lawyers LLP", "$10.00", "This agreement binds both parties."))
    steps = {s["step"]: s for s in run["steps"]}
    assert steps["summary"]["status"] == "ok" and rows(rt)[0][4] == "- an agreement between two parties"


def test_a_webhook_that_is_down_is_retried_then_dead_lettered_and_retried_by_hand(setup, receiver) -> None:
    _, svc, _ = setup
    receiver.down = True
    run = svc.run("docs", doc("Acme", "$1.00"))
    assert run["status"] == "succeeded"  # the run does not wait on the receiver
    deadline = time.time() + 10
    while time.time() < deadline and not svc.outbox.list("docs", "dead"):
        svc.outbox.deliver_due()
        time.sleep(0.02)
    [dead] = svc.outbox.list("docs", "dead")
    assert dead["attempts"] == 3 and len(receiver.requests) == 3 and "HTTP 500" in dead["last_error"]
    assert dead["body"]["run_id"] == run["id"]  # nothing lost: the body is kept
    receiver.down = False
    assert svc.outbox.retry(dead["id"])["status"] == "pending"
    assert svc.outbox.drain(5) == 0
    assert svc.outbox.get(dead["id"])["status"] == "delivered" and len(receiver.delivered) == 1


def test_a_retried_webhook_succeeds_after_failures_with_backoff(tmp_path: Path, monkeypatch, setup) -> None:
    _, svc, _ = setup
    flaky = Receiver(fail=2)
    try:
        svc.outbox.enqueue(run_id="r1", pipeline="docs", step="notify", url=flaky.url, body={"x": 1},
                           secret_env=None, max_attempts=5, backoff_s=0.05, timeout_s=5)
        assert svc.outbox.drain(10) == 0
        [d] = svc.outbox.list("docs")
        assert d["status"] == "delivered" and d["attempts"] == 3 and len(flaky.requests) == 3
        assert "X-Litegate-Signature" not in flaky.delivered[0]["headers"]  # no secret, no signature
    finally:
        flaky.close()


def test_deliveries_survive_a_restart(tmp_path: Path, receiver, monkeypatch) -> None:
    monkeypatch.setenv("PIPE_TEST_SECRET", SECRET)
    path = tmp_path / "docs.toml"
    path.write_text(PIPELINE.replace("RECEIVER", receiver.url))
    rt = runtime(tmp_path / "home", engines={"lite": FakeEngine(reply, n_ctx=4096)})
    first = PipelineService(rt, {"docs": load_pipeline(path)})
    run = first.run("docs", doc("Acme", "$3.00"))  # the outbox worker was never started
    first.close()
    assert receiver.requests == []
    second = PipelineService(rt, {"docs": load_pipeline(path)})
    assert second.outbox.drain(5) == 0 and json.loads(receiver.delivered[0]["body"])["run_id"] == run["id"]
    second.close()
    rt.close()


def test_jsonl_writes_once_per_run(tmp_path: Path) -> None:
    path = tmp_path / "j.toml"
    path.write_text('[[step]]\nname = "s"\nkind = "summarize"\ntier = "lite"\n'
                    '[[step]]\nname = "out"\nkind = "write"\njsonl = "out/rows.jsonl"\n')
    rt = runtime(tmp_path / "home", engines={"lite": FakeEngine(reply, n_ctx=4096)})
    svc = PipelineService(rt, {"j": load_pipeline(path)})
    try:
        run = svc.run("j", RunInput(text="An agreement."))
        svc.store.requeue(run["id"], ("succeeded",))
        svc.store.put_step(run["id"], svc.store.steps(run["id"])[0].__class__("out", 1, "write", "failed"))
        svc.execute(run["id"])  # the write step again: the line is already there
        lines = (tmp_path / "out" / "rows.jsonl").read_text().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["s"] == "- an agreement between two parties"
    finally:
        svc.close()
        rt.close()


# -- over HTTP ------------------------------------------------------------------------------

@pytest.fixture()
def client(setup) -> Any:
    from litegate.server import create_app

    rt, _, _ = setup
    with TestClient(create_app(rt, close_runtime=False)) as c:
        yield c


def test_runs_over_http_json_and_multipart(client: TestClient, receiver) -> None:
    listed = client.get("/v1/pipelines").json()["data"]
    assert [p["name"] for p in listed] == ["docs"] and listed[0]["steps"][3]["when"].startswith("steps.extract")
    text = "INVOICE\nVendor: Harbor Foods\nTotal: $75.20\n"
    r = client.post("/v1/pipelines/docs/runs", json={"text": text, "metadata": {"from": "api"}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "succeeded" and run["replayed"] is False
    r2 = client.post("/v1/pipelines/docs/runs", json={"text": text, "metadata": {"from": "api"}})
    assert r2.status_code == 200 and r2.json()["id"] == run["id"] and r2.json()["replayed"] is True
    # a multipart upload, read by the document layer
    up = client.post("/v1/pipelines/docs/runs", files={"file": ("inv.txt", b"Vendor: Blue Fern\nTotal: $8.00\n",
                                                                "text/plain")},
                     data={"metadata": json.dumps({"from": "upload"})}, headers={"Idempotency-Key": "upload-1"})
    assert up.status_code == 201, up.text
    body = up.json()
    assert body["input_ref"] == "inv.txt" and body["steps"][0]["output"]["files"] == 1
    assert {s["step"]: s for s in body["steps"]}["extract"]["output"]["data"]["vendor"] == "Blue Fern"
    # the upload went to disk as a stored file; the same one again keeps no copy
    stored = len(client.app.state.runtime.files.list())
    again = client.post("/v1/pipelines/docs/runs", files={"file": ("inv.txt", b"Vendor: Blue Fern\nTotal: $8.00\n",
                                                                   "text/plain")},
                        data={"metadata": json.dumps({"from": "upload"})}, headers={"Idempotency-Key": "upload-1"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert len(client.app.state.runtime.files.list()) == stored
    # base64 files in JSON; and 202 + Location when the caller will not wait
    data = base64.b64encode(b"Vendor: Quill Co\nTotal: $3.00\n").decode()
    late = client.post("/v1/pipelines/docs/runs?wait=0", json={"files": [{"mime_type": "text/plain", "data": data,
                                                                          "filename": "q.txt"}]})
    assert late.status_code in (201, 202)
    location = late.headers.get("location") or f"/v1/pipelines/docs/runs/{late.json()['id']}"
    deadline = time.time() + 10
    while client.get(location).json()["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.05)
    assert client.get(location).json()["status"] == "succeeded"
    runs = client.get("/v1/pipelines/docs/runs").json()
    assert len(runs["data"]) == 3 and {r["input_ref"] for r in runs["data"]} >= {"inv.txt", "q.txt"}
    assert client.get("/v1/pipelines/docs/runs?status=failed").json()["data"] == []
    stats = client.get("/v1/pipelines/docs/stats").json()
    assert stats["runs"] == 3 and stats["steps"]["extract"]["cost_per_run_usd"] > 0
    assert stats["share_by_tier"] == {"lite": 1.0} and stats["share_to_review"] == 0
    page = client.get("/dashboard/pipelines")
    assert page.status_code == 200 and "Cost per document, by step" in page.text and "docs" in page.text


def test_review_and_dead_letters_over_http(client: TestClient, receiver) -> None:
    receiver.down = True
    held = client.post("/v1/pipelines/docs/runs", json={"text": "Vendor: Mega Corp\nTotal: $99,999.00\n"}).json()
    assert held["status"] == "human_review"
    queue = client.get("/v1/pipelines/docs/review").json()["data"]
    assert [q["id"] for q in queue] == [held["id"]] and queue[0]["review_step"] == "big"
    done = client.post(f"/v1/pipelines/docs/runs/{held['id']}/review?wait=10", json={"approve": True})
    assert done.status_code == 200 and done.json()["status"] == "succeeded", done.text
    svc = client.app.state.pipelines
    deadline = time.time() + 10
    while time.time() < deadline and not client.get("/v1/pipelines/docs/dead-letters").json()["data"]:
        time.sleep(0.05)
    [dead] = client.get("/v1/pipelines/docs/dead-letters").json()["data"]
    assert dead["run_id"] == held["id"] and dead["attempts"] == 3
    receiver.down = False
    assert client.post(f"/v1/pipelines/docs/dead-letters/{dead['id']}/retry").json()["status"] == "pending"
    assert svc.outbox.drain(5) == 0
    again = client.post(f"/v1/pipelines/docs/dead-letters/{dead['id']}/retry")
    assert again.status_code == 409


@pytest.mark.parametrize("path, body, status, needle", [
    ("/v1/pipelines/nope/runs", {"text": "x"}, 404, "no pipeline 'nope'; pipelines: docs"),
    ("/v1/pipelines/docs/runs", {}, 400, "a run needs 'text' or 'files'"),
    ("/v1/pipelines/docs/runs", {"text": "x", "colour": 1}, 400, "'colour' is not a field"),
    ("/v1/pipelines/docs/runs", {"files": [{"path": "/etc/passwd"}]}, 400, "not a server path"),
    ("/v1/pipelines/docs/runs", {"files": [{"data": "***"}]}, 400, "not valid base64"),
    ("/v1/pipelines/docs/runs/prun_nope", None, 404, "no run 'prun_nope'"),
])
def test_bad_requests(client: TestClient, path: str, body: Any, status: int, needle: str) -> None:
    r = client.post(path, json=body) if body is not None else client.get(path)
    assert r.status_code == status and needle in r.json()["error"]["message"], r.text


def test_a_finished_run_keeps_what_it_found_not_the_documents_text(setup) -> None:
    rt, svc, _ = setup

    def stored(run_id: str) -> tuple[dict, dict]:
        with sqlite3.connect(rt.settings.home / "ledger.db") as conn:
            inp = conn.execute("select input from pipeline_runs where id = ?", (run_id,)).fetchone()[0]
            ingest = conn.execute("select output from pipeline_steps where run_id = ? and step = 'ingest'",
                                  (run_id,)).fetchone()[0]
        return json.loads(inp), json.loads(ingest)

    done = svc.run("docs", doc("Acme", "$5.00"))
    held = svc.run("docs", doc("Big Co", "$20,000.00"))
    assert done["status"] == "succeeded" and held["status"] == "human_review"
    inp, ingest = stored(done["id"])
    assert inp["text"] is None and inp["text_chars"] == len(doc("Acme", "$5.00").text) and len(inp["text_sha256"]) == 64
    assert ingest["text"] is None and ingest["chars"] == ingest["text_chars"]
    assert "Big Co" in stored(held["id"])[0]["text"]  # a held run still needs it to go on
    svc.review(held["id"], approve=False)
    assert stored(held["id"])[0]["text"] is None  # rejected: done with it
    assert svc.run("docs", doc("Acme", "$5.00"))["id"] == done["id"]  # the same document still names the run


INGEST = '[[step]]\nname = "ingest"\nkind = "ingest"\n'


def one_pipeline(tmp_path: Path, name: str, toml: str) -> tuple[Any, PipelineService]:
    """A service running one pipeline (``toml``) on a fake runtime of its own."""
    path = tmp_path / f"{name}.toml"
    path.write_text(toml)
    rt = runtime(tmp_path / "home")
    return rt, PipelineService(rt, {name: load_pipeline(path)}, poll_s=0.05)


def test_an_extract_step_reads_the_ingested_files_lines_with_their_places_on_the_page(tmp_path: Path) -> None:
    """A prebuilt extractor after an ingest step gets the document it read (each line with its
    box on the page), not only its text; a step given its own text reads that text's lines."""
    from test_documents import text_pdf

    rt, svc = one_pipeline(tmp_path, "layout", INGEST +
                           '[[step]]\nname = "fields"\nkind = "extract"\ntier = "nano"\nextractor = "invoice"\n'
                           '[[step]]\nname = "from_text"\nkind = "extract"\ntier = "nano"\nextractor = "invoice"\n'
                           'text = "{{ steps.ingest.text }}"\n')
    try:
        pdf = text_pdf([["Kestrel Office Supply", "INVOICE", "Invoice No: INV-40917", "Date: 2024-05-02",
                         "Printer paper A4   4   $51.96", "Total due: $1,284.50"]])
        run = svc.run("layout", RunInput(files=[{"data": pdf, "filename": "kestrel.pdf",
                                                 "mime_type": "application/pdf"}]))
        assert run["status"] == "succeeded", run
        steps = {s["step"]: s["output"] for s in run["steps"]}
        paged, plain = steps["fields"]["typed"]["total"], steps["from_text"]["typed"]["total"]
        assert paged["text"] == plain["text"] == "$1,284.50" and paged["value"] == "1284.50"
        # the PDF's lines start 72 points from the left edge; the text's lines have no place but their order
        assert paged["box"]["x"] >= 72 and plain["box"]["x"] == 0
        assert steps["fields"]["data"]["invoice_number"] == "INV-40917"
    finally:
        svc.close()
        rt.close()


def test_a_run_taken_up_again_reads_its_files_again_for_the_lines_places(tmp_path: Path) -> None:
    """The documents an ingest step read live only while its run runs: a failed run taken up again
    after its ingest step reads the same files once more, so a prebuilt extractor still places
    fields by their boxes; with the files deleted by then, the ingest's text lines stand in."""
    from test_documents import text_pdf

    rt, svc = one_pipeline(tmp_path, "resume", INGEST +
                           '[[step]]\nname = "gate"\nkind = "write"\ntable = "gate_rows"\n'
                           '[step.columns]\nchars = { value = "steps.ingest.chars", type = "integer" }\n'
                           '[[step]]\nname = "fields"\nkind = "extract"\ntier = "nano"\nextractor = "invoice"\n')

    def blocked_then_open(lines: list[str]) -> dict[str, Any]:
        with sqlite3.connect(rt.settings.home / "ledger.db") as conn:
            conn.execute("drop table if exists gate_rows")
            conn.execute("create table gate_rows (run_id text primary key, other text)")
        inp = RunInput(files=[{"data": text_pdf([lines]), "filename": "inv.pdf", "mime_type": "application/pdf"}])
        first = svc.run("resume", inp)
        assert first["status"] == "failed" and first["failed_step"] == "gate", first
        with sqlite3.connect(rt.settings.home / "ledger.db") as conn:
            conn.execute("drop table gate_rows")
        svc.sinks._tables.clear()
        return first

    try:
        lines = ["Kestrel Office Supply", "INVOICE", "Invoice No: INV-40917", "Total due: $1,284.50"]
        first = blocked_then_open(lines)
        again = svc.run("resume", RunInput(files=[{"data": text_pdf([lines]), "filename": "inv.pdf",
                                                   "mime_type": "application/pdf"}]))
        assert again["id"] == first["id"] and again["status"] == "succeeded" and again["attempts"] == 2, again
        total = {s["step"]: s["output"] for s in again["steps"]}["fields"]["typed"]["total"]
        assert total["value"] == "1284.50" and total["box"]["x"] >= 72  # the PDF's place, not line order
        # the stored file deleted before the run is taken up again: the text's lines, no failure
        other = ["Osprey Traders", "INVOICE", "Invoice No: OT-118", "Total due: $310.00"]
        first = blocked_then_open(other)
        [stored] = json.loads(svc.store.get(first["id"])["input"])["files"]
        rt.files.delete(stored["file_id"])
        again = svc.run("resume", RunInput(files=[{"data": text_pdf([other]), "filename": "inv.pdf",
                                                   "mime_type": "application/pdf"}]))
        assert again["status"] == "succeeded", again
        total = {s["step"]: s["output"] for s in again["steps"]}["fields"]["typed"]["total"]
        assert total["value"] == "310.00" and total["box"]["x"] == 0
    finally:
        svc.close()
        rt.close()
