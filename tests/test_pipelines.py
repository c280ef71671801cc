"""The shipped intake pipeline (examples/intake.toml) on the real models: over HTTP on a real
`litegate serve` and from `litegate pipeline run` on a folder, with generated invoices and a
contract, a real SQLite table and a webhook receiver on loopback that checks the signature.
The write step is also run against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import CHROMIUM, litegate_cmd, screenshot, start_server, stop_server
from test_documents import png, render_invoice, text_pdf

sys.path.insert(0, str(Path(__file__).parent / "unit"))
from webhooks import Receiver  # noqa: E402

from litegate.pipelines.notify import verify  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "intake.toml"
SECRET = "intake-test-secret"


def invoice_pdf(vendor: str, number: str, total: str) -> bytes:
    return text_pdf([[vendor, "INVOICE", f"Invoice No: {number}", "Date: 2024-05-02", "Bill to: Jane Whitfield",
                      "Description   Qty   Amount", "Printer paper A4   4   $51.96", f"Total due: {total}",
                      "Please pay within 30 days."]])


def contract_pdf() -> bytes:
    return text_pdf([["MASTER SERVICES AGREEMENT No. SA-2024-311", "This Agreement is made on March 3, 2024",
                      "between Granite Peak Software (the Provider) and Northwind Traders (the Client).",
                      "1. Term. The initial term is 24 months and renews automatically for one-year terms.",
                      "2. Fees. The Client shall pay a monthly fee of $4,500.00.",
                      "3. Termination. Either party may terminate on 60 days written notice.",
                      "Signed for Granite Peak Software: ______", "Signed for Northwind Traders: ______"]])


def receipt_pdf() -> bytes:
    return text_pdf([["CORNER CAFE", "12 High Street, Leeds LS1 4AB", "Tel 0113 496 0000", "05/02/2024 08:41",
                      "2 LATTE 6.40", "CROISSANT 2.10", "TOTAL 8.50", "VISA 8.50", "CHANGE 0.00",
                      "Thank you for your visit!"]])


def table_rows(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select * from intake_documents order by written_at")]


def wait_for(check, timeout: float = 20.0):  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    return check()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def intake_env(receiver: Receiver) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("INTAKE_WEBHOOK_URL", "INTAKE_WEBHOOK_SECRET", "LITEGATE_PIPELINES")}
    os.environ.update(INTAKE_WEBHOOK_URL=receiver.url, INTAKE_WEBHOOK_SECRET=SECRET, LITEGATE_PIPELINES=str(EXAMPLE))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def intake_server(tmp_path_factory: pytest.TempPathFactory, intake_env: None) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("intake-home")
    proc, base = start_server(home, "--ctx", "4096")
    yield base, home
    stop_server(proc)


def test_the_intake_example_over_http(intake_server: tuple[str, Path], receiver: Receiver) -> None:
    base, home = intake_server
    with httpx.Client(base_url=base, timeout=600) as http:
        assert [p["name"] for p in http.get("/v1/pipelines").json()["data"]] == ["intake"]
        pdf = invoice_pdf("Kestrel Office Supply", "INV-40917", "$1,284.50")
        r = http.post("/v1/pipelines/intake/runs?wait=600", files={"file": ("kestrel.pdf", pdf, "application/pdf")})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "succeeded", run
        steps = {s["step"]: s for s in run["steps"]}
        assert steps["doc_type"]["output"]["label"] == "invoice" and steps["doc_type"]["tier"] == "nano"
        # the prebuilt invoice extractor read the fields the table keeps; the receipt's and the contract's
        # steps were skipped
        invoice = steps["extract_invoice"]["output"]
        assert list(invoice["data"]) == ["vendor", "invoice_number", "invoice_date", "total"]
        assert invoice["data"]["invoice_number"] == "INV-40917" and invoice["data"]["total"] == "1284.50"
        assert invoice["typed"]["total"]["text"] == "$1,284.50" and invoice["data"]["invoice_date"] == "2024-05-02"
        assert "Kestrel" in (invoice["data"]["vendor"] or "")
        assert steps["extract_receipt"]["status"] == steps["extract_contract"]["status"] == "skipped"
        sure = steps["doc_type"]["output"]["confidence"] >= 0.7
        # only contracts, and documents whose type the classifier is unsure of, get a summary
        assert (steps["summary"]["status"] == "skipped") == sure
        assert sorted(run["tiers"]) == ["lite", "nano"] and run["cost_usd"] > 0  # no pro extra needed
        assert all(steps[s]["cost_usd"] > 0 for s in ("doc_type", "priority"))  # a text layer costs nothing
        # lite is asked only for a field the extractor is unsure of: otherwise no tokens and no cost
        asked = invoice["model"] != "prebuilt:invoice"
        assert (invoice["usage"]["completion_tokens"] > 0) == asked
        assert (steps["extract_invoice"]["cost_usd"] > 0) == asked
        # the same upload again: the same run, no second row or webhook
        again = http.post("/v1/pipelines/intake/runs?wait=600", files={"file": ("kestrel.pdf", pdf, "application/pdf")})
        assert again.status_code == 200 and again.json()["id"] == run["id"] and again.json()["replayed"]
        # a contract: summarised
        c = http.post("/v1/pipelines/intake/runs?wait=600",
                      files={"file": ("msa.pdf", contract_pdf(), "application/pdf")})
        contract = c.json()
        assert contract["status"] == "succeeded", contract
        csteps = {s["step"]: s for s in contract["steps"]}
        kind = csteps["doc_type"]["output"]
        assert kind["label"] == "contract" or kind["confidence"] < 0.7  # told apart, or unsure: either way, summarised
        assert csteps["summary"]["tier"] == "lite" and csteps["summary"]["output"]["summary"]
        # a receipt: the prebuilt document_type classifier tells it from an invoice, and the receipt
        # extractor reads it on the nano tier
        rr = http.post("/v1/pipelines/intake/runs?wait=600",
                       files={"file": ("cafe.pdf", receipt_pdf(), "application/pdf")}).json()
        assert rr["status"] == "succeeded", rr
        rsteps = {s["step"]: s for s in rr["steps"]}
        assert rsteps["doc_type"]["output"]["label"] == "receipt"
        assert rsteps["extract_invoice"]["status"] == "skipped" and rsteps["extract_receipt"]["tier"] == "nano"
        assert rsteps["extract_receipt"]["output"]["data"]["total"] == "8.50"
        rsure = rsteps["doc_type"]["output"]["confidence"] >= 0.7
        assert (rsteps["summary"]["status"] == "skipped") == rsure
        listed = http.get("/v1/pipelines/intake/runs").json()["data"]
        assert {x["id"] for x in listed} == {run["id"], contract["id"], rr["id"]}
        stats = http.get("/v1/pipelines/intake/stats").json()
        assert stats["share_by_tier"]["nano"] == 1.0 and set(stats["share_by_tier"]) == {"nano", "lite"}
        summarised = 1 + (not sure) + (not rsure)  # the contract, and an invoice or receipt of unsure type
        assert stats["steps"]["summary"]["ran"] == summarised and stats["steps"]["summary"]["skipped"] == 3 - summarised
        page = http.get("/dashboard/pipelines")
        assert page.status_code == 200 and "intake" in page.text and "Share of runs reaching each tier" in page.text
        if CHROMIUM:  # what a person sees: the cost-per-step bars and the tier-share bars, drawn
            pixels = screenshot(f"{base}/dashboard/pipelines", home / "pipelines.png", home / "chromium")
            assert pixels("#3b6fd4") > 200, "cost-per-step bars missing"
            assert pixels("#e07b39") > 200, "tier-share bars missing"
    rows = table_rows(home / "ledger.db")
    assert [r["run_id"] for r in rows] == [run["id"], contract["id"], rr["id"]]
    assert rows[2]["doc_type"] == "receipt" and rows[2]["vendor"] == "CORNER CAFE" and rows[2]["total"] == "8.50"
    assert rows[0]["total"] == "$1,284.50" and rows[0]["doc_type"] == "invoice"  # the total as printed
    assert rows[0]["number"] == "INV-40917" and rows[0]["date"] == "2024-05-02"
    assert (rows[0]["summary"] is None) == sure and rows[1]["summary"]
    hooks = wait_for(lambda: [json.loads(h["body"]) for h in receiver.delivered
                              if json.loads(h["body"])["run_id"] in (run["id"], contract["id"])])
    assert sorted(h["run_id"] for h in hooks) == sorted([run["id"], contract["id"]])
    assert all(verify(SECRET, h["headers"], h["body"]) for h in receiver.delivered)


def test_the_intake_example_from_the_cli_on_a_folder(tmp_path: Path, intake_env: None, receiver: Receiver) -> None:
    docs = tmp_path / "inbox"
    docs.mkdir()
    (docs / "blue-harbor.pdf").write_bytes(invoice_pdf("Blue Harbor Logistics", "A512-7781", "$642.10"))
    (docs / "scan.png").write_bytes(png(render_invoice("INV-55120", "$229.96")))
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))
    cmd = litegate_cmd("pipeline", "run", "intake", "--input", str(docs))
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["documents"] == 2 and summary["succeeded"] == 2 and summary["webhooks_pending"] == 0
    rows = table_rows(tmp_path / "home" / "ledger.db")
    by_ref = {r["input_ref"]: r for r in rows}
    assert by_ref[str(docs / "blue-harbor.pdf")]["number"] == "A512-7781"
    assert by_ref[str(docs / "scan.png")]["total"] == "$229.96"  # read by OCR
    # run again: every document is already done; nothing is written or sent twice
    delivered = len(receiver.delivered)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and json.loads(second.stdout)["cost_usd"] == 0
    assert len(table_rows(tmp_path / "home" / "ledger.db")) == 2 and len(receiver.delivered) == delivered
    listed = subprocess.run(litegate_cmd("pipeline", "runs", "intake", "--json"), env=env, capture_output=True,
                            text=True, timeout=60)
    runs = json.loads(listed.stdout)
    assert len(runs) == 2 and all(r["status"] == "succeeded" and sorted(r["tiers"]) == ["lite", "nano"] for r in runs)
    shown = json.loads(subprocess.run(litegate_cmd("pipeline", "show", runs[0]["id"]), env=env, capture_output=True,
                                      text=True, timeout=60).stdout)
    assert [s["step"] for s in shown["steps"]][:3] == ["ingest", "doc_type", "extract_invoice"]
    assert shown["deliveries"][0]["status"] == "delivered"


def test_an_invalid_pipeline_file_stops_the_cli_and_the_server_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nname = "a"\nkind = "classify"\nlabels = ["x", "y"]\nwhen = "steps.b.label == \'x\'"\n'
                   '[[step]]\nname = "b"\nkind = "classify"\nlabels = ["x", "y"]\n')
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))
    r = subprocess.run(litegate_cmd("pipeline", "check", "--pipelines", str(bad)), env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: bad.toml: step 'a': when: names steps.b, which comes later (step #2): a step "
                                "reads only the steps before it, so the order cannot loop")
    served = subprocess.run(litegate_cmd("serve", "--port", "0", "--pipelines", str(bad)), env=env,
                            capture_output=True, text=True, timeout=120)
    assert served.returncode == 1 and "bad.toml: step 'a': when:" in served.stderr



def test_pipeline_check_refuses_a_tier_this_installation_lacks(tmp_path: Path) -> None:
    """check says what run would say, before any model loads: no "8 steps ok" for a tier that
    is not there."""
    bad = tmp_path / "tiers.toml"
    bad.write_text('[[step]]\nname = "kind"\nkind = "classify"\ntier = "gpt-9"\nlabels = ["x", "y"]\n')
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))
    r = subprocess.run(litegate_cmd("pipeline", "check", "--pipelines", str(bad)), env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "steps ok" not in r.stderr
    assert r.stderr.startswith("error: tiers.toml: step 'kind': tier: there is no tier 'gpt-9' here; tiers: nano, lite")
    good = tmp_path / "ok.toml"
    good.write_text(bad.read_text().replace("gpt-9", "lite"))
    ok = subprocess.run(litegate_cmd("pipeline", "check", "--pipelines", str(good)), env=env, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "ok: 1 steps ok (kind)" in ok.stderr


# -- PostgreSQL -----------------------------------------------------------------------------

from test_ledger_postgres import postgres_url  # noqa: E402,F401 - the fixture


def test_the_write_step_on_postgres(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    from fakes import FakeEngine, runtime
    from sqlalchemy import create_engine, text

    from litegate.pipelines import PipelineService, RunInput, load_pipeline

    path = tmp_path / "pg.toml"
    path.write_text(f'[[step]]\nname = "s"\nkind = "summarize"\ntier = "lite"\n[[step]]\nname = "out"\nkind = "write"\n'
                    f'table = "pg_docs"\nurl = "{postgres_url}"\ncolumns = {{ summary = "steps.s.summary", '
                    f'confidence = "steps.s.confidence", meta = {{ value = "input.metadata", type = "json" }} }}\n')
    rt = runtime(tmp_path / "home", engines={"lite": FakeEngine(lambda body: "- a short note")})
    svc = PipelineService(rt, {"pg": load_pipeline(path)})
    try:
        run = svc.run("pg", RunInput(text="A note.", metadata={"from": "mail"}))
        assert run["status"] == "succeeded", run
        assert svc.run("pg", RunInput(text="A note.", metadata={"from": "mail"}))["id"] == run["id"]
        engine = create_engine(postgres_url)
        with engine.connect() as conn:
            rows = conn.execute(text("select run_id, summary, meta from pg_docs")).all()
            assert [(r[0], r[1], r[2]) for r in rows] == [(run["id"], "- a short note", {"from": "mail"})]
        # the table changes under it: the next run fails at the write step, naming the difference
        with engine.begin() as conn:
            conn.execute(text("alter table pg_docs drop column confidence"))
        svc.sinks._tables.clear()
        bad = svc.run("pg", RunInput(text="Another note."))
        assert bad["status"] == "failed" and bad["failed_step"] == "out"
        assert "pg_docs exists without column(s) confidence" in bad["error"]
        assert bad["steps"][0]["status"] == "ok"  # the summary is kept
    finally:
        svc.close()
        rt.close()
