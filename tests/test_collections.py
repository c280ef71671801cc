"""Collections on a real server: the openai SDK's vector stores (files, search, file
batches), the answer task grounded in a collection on the lite model, and the CLI, all with
the real MiniLM encoder and the document layer."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from conftest import CHROMIUM, litegate_cmd, screenshot
from test_documents import text_pdf

HANDBOOK = """# Leave

Employees get 25 days of paid leave per year. Unused leave expires at the end of March.

# Equipment

Every new employee receives a laptop on their first day. Lost laptops are replaced once.

# Expenses

Travel expenses are reimbursed within 14 days of submitting the receipt.
"""


@pytest.fixture()
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="not-needed", max_retries=0)


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_vector_stores_through_the_openai_sdk(client: openai.OpenAI) -> None:
    handbook = client.files.create(file=("handbook.md", HANDBOOK.encode()), purpose="assistants")
    pdf = text_pdf([["Safety rules for the warehouse."], ["Forklifts may only be driven by certified staff.",
                                                           "Helmets are required in aisle 4."]])
    manual = client.files.create(file=("safety.pdf", pdf, "application/pdf"), purpose="assistants")
    store = client.vector_stores.create(name=_name("kb"))
    assert store.object == "vector_store" and store.file_counts.total == 0
    attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=handbook.id,
                                                 attributes={"dept": "hr"})
    assert attached.status == "completed" and attached.id == handbook.id
    client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=manual.id,
                                               attributes={"dept": "ops"})
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 2
    assert {f.id for f in client.vector_stores.files.list(vector_store_id=store.id)} == {handbook.id, manual.id}

    results = client.vector_stores.search(vector_store_id=store.id, query="how many vacation days do I get?",
                                          max_num_results=3)
    top = results.data[0]
    assert top.file_id == handbook.id and top.filename == "handbook.md"
    assert "25 days of paid leave" in top.content[0].text and 0 < top.score <= 1
    assert [r.score for r in results.data] == sorted((r.score for r in results.data), reverse=True)

    forklift = client.vector_stores.search(vector_store_id=store.id, query="who can drive a forklift")
    assert forklift.data[0].file_id == manual.id and forklift.data[0].attributes["page"] == 2
    only_hr = client.vector_stores.search(vector_store_id=store.id, query="forklift",
                                          filters={"type": "eq", "key": "dept", "value": "hr"})
    assert {r.file_id for r in only_hr.data} == {handbook.id}

    client.vector_stores.files.delete(vector_store_id=store.id, file_id=manual.id)
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_file_batches_index_in_the_background(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"note{i}.txt", f"Note {i}: the door code is {1000 + i}.".encode()),
                               purpose="assistants").id for i in range(3)]
    blank = client.files.create(file=("blank.txt", b"   \n"), purpose="assistants").id
    store = client.vector_stores.create(name=_name("batch"))
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=ids + [blank],
                                                              poll_interval_ms=200)
    assert batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.failed) == (3, 1)
    hits = client.vector_stores.search(vector_store_id=store.id, query="door code of note 2")
    assert "1002" in hits.data[0].content[0].text


def test_bad_input_through_the_sdk_is_a_clear_4xx(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name=_name("empty"))
    with pytest.raises(openai.BadRequestError, match="is empty"):
        client.vector_stores.search(vector_store_id=store.id, query="anything")
    for n in (0, 51, True):  # checked before the store is searched
        with pytest.raises(openai.BadRequestError, match="'max_num_results' must be an integer from 1 to 50"):
            client.vector_stores.search(vector_store_id=store.id, query="anything", max_num_results=n)
    blank = client.files.create(file=("blank.txt", b" \n\n "), purpose="assistants")
    with pytest.raises(openai.BadRequestError, match="reads as no text"):
        client.vector_stores.files.create(vector_store_id=store.id, file_id=blank.id)
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0  # nothing half-indexed
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope")


def test_answer_from_a_collection_cites_the_chunk_or_abstains(server: str) -> None:
    name = _name("handbook")
    with httpx.Client(base_url=server, timeout=300) as http:
        assert http.post("/v1/collections", json={"name": name}).status_code == 201
        http.post(f"/v1/collections/{name}/files", json={"text": HANDBOOK, "filename": "handbook.md"})
        r = http.post("/v1/tasks/answer", json={"query": "How many days of paid leave do employees get?",
                                                "collection": name, "top_k": 3, "tier": "lite"}).json()
        assert r["found"], r
        assert "25" in r["answer"]
        assert any("25" in s["text"] and s["filename"] == "handbook.md" and s["section"] == "Leave"
                   for s in r["sources"])
        assert all(s["line_start"] for s in r["sources"])
        r = http.post("/v1/tasks/answer", json={"query": "What is the CEO's phone number?", "collection": name,
                                                "top_k": 3, "tier": "lite"}).json()
        assert r["found"] is False and r["answer"] == "not in the documents" and r["sources"] == []
        assert 0 <= r["confidence"] <= 1
        long = http.post("/v1/tasks/answer", json={"query": "why " * 1000, "collection": name})
        assert long.status_code == 400 and long.json()["error"]["code"] == "query_too_long"


def test_search_reranked_by_lite(server: str) -> None:
    """``rerank: "lite"`` orders the hits by the model's P(Yes) that a chunk helps answer, each
    hit carrying that probability beside its lexical and dense scores."""
    name = _name("rerank")
    with httpx.Client(base_url=server, timeout=300) as http:
        assert http.post("/v1/collections", json={"name": name}).status_code == 201
        http.post(f"/v1/collections/{name}/files", json={"text": HANDBOOK, "filename": "handbook.md"})
        query = "When are travel expenses paid back?"
        hits = http.post(f"/v1/collections/{name}/search", json={"query": query, "top_k": 3, "rerank": "lite"}).json()
        probs = [h["scores"]["rerank"] for h in hits["data"]]
        assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)
        assert probs == sorted(probs, reverse=True)
        assert hits["data"][0]["section"] == "Expenses", hits


def test_cli_collection_commands(tmp_path: Path) -> None:
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    (docs / "empty.txt").write_text("  \n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(litegate_cmd("collection", *args), env=env, capture_output=True, text=True,
                              timeout=300)

    assert run("create", "kb").returncode == 0
    added = run("add", "kb", str(docs), "--attr", "dept=hr")
    said = " ".join(added.stderr.split())  # the terminal's width wraps the message
    assert added.returncode == 1 and "empty.txt" in said and "reads as no text" in said
    assert json.loads(added.stdout)["added"] == 1
    again = run("add", "kb", str(docs / "handbook.md"), "--attr", "dept=hr")
    assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == 1
    hits = json.loads(run("search", "kb", "laptop replacement", "-k", "1").stdout)
    assert hits[0]["where"].startswith("handbook.md, line") and "laptop" in hits[0]["text"]
    assert json.loads(run("list").stdout)[0]["files"] == 1
    missing = run("search", "nope", "x")
    assert missing.returncode == 1 and "no collection 'nope'" in missing.stderr
    # the answer eval over the collection: one question it answers, one it must not
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "How many days of paid leave do employees get?", "answers": ["25"]}) + "\n"
                  + json.dumps({"question": "What is the CEO's phone number?", "answers": []}) + "\n")
    scored = subprocess.run(litegate_cmd("eval", "--task", "answer", "--collection", "kb", "--data", str(qa),
                                         "--tier", "lite", "--report", str(tmp_path / "qa.html")),
                            env=env, capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr
    metrics = json.loads(scored.stdout)
    assert (metrics["answerable"], metrics["unanswerable"]) == (1, 1)
    assert metrics["f1"] >= 0.5 and metrics["abstention_recall"] == 1.0 and metrics["citation_holds_answer"] == 1.0
    assert metrics["retrieval_recall_at_1"] == 1.0 and "abstention precision" in scored.stderr
    assert "reliability" in (tmp_path / "qa.html").read_text()
    assert run("delete", "kb").returncode == 0
    assert json.loads(run("list").stdout) == []


def test_cli_summarizes_a_document_longer_than_one_window(tmp_path: Path) -> None:
    """Three pages of about 900 characters read through windows of 2,000 (the same map-reduce
    as 6,000-character windows over a long book, at a third of the prefill): two map windows,
    then the final merge, on the lite model; every point cites pages of the PDF."""
    facts = ["The warehouse in Lyon stores spare parts for the assembly line.",
             "Shipments from the Lyon warehouse leave every Tuesday morning.",
             "The safety audit of the paint shop found two blocked fire exits."]
    pages = [[facts[p]] + [f"{facts[p][:-1]} according to report {p + 1}-{i}." for i in range(12)]
             for p in range(3)]
    (tmp_path / "book.pdf").write_bytes(text_pdf(pages))
    (tmp_path / "blank.txt").write_text(" \n")
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))
    too_small = subprocess.run(litegate_cmd("collection", "summarize", str(tmp_path / "book.pdf"), "--window-chars",
                                            "50"), env=env, capture_output=True, text=True, timeout=300)
    assert too_small.returncode == 1 and "'window_chars' must be from 500" in too_small.stderr
    done = subprocess.run(litegate_cmd("collection", "summarize", str(tmp_path / "book.pdf"), "--max-points", "3",
                                       "--window-chars", "2000"), env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pages"] == 3 and result["windows"] >= 2 and result["calls"] >= 3
    assert 1 <= len(result["points"]) <= 3
    for point in result["points"]:
        assert point["citations"] and {c["page"] for c in point["citations"]} <= {1, 2, 3}
        assert all(c["where"].startswith("book.pdf, page ") for c in point["citations"])
    blank = subprocess.run(litegate_cmd("collection", "summarize", str(tmp_path / "blank.txt")), env=env,
                           capture_output=True, text=True, timeout=300)
    assert blank.returncode == 1 and "reads as no text" in " ".join(blank.stderr.split())


def test_responses_file_search_cites_the_file(client: openai.OpenAI) -> None:
    handbook = client.files.create(file=("handbook.md", HANDBOOK.encode()), purpose="assistants")
    store = client.vector_stores.create(name=_name("resp"), file_ids=[handbook.id])
    r = client.responses.create(model="lite", input="How many days of paid leave do employees get per year?",
                                tools=[{"type": "file_search", "vector_store_ids": [store.id], "max_num_results": 3}],
                                include=["file_search_call.results"])
    search_call, message = r.output
    assert search_call.type == "file_search_call" and search_call.status == "completed"
    assert any("25 days" in res.text for res in search_call.results)
    assert "25" in r.output_text
    citation = message.content[0].annotations[0]
    assert citation.type == "file_citation" and citation.file_id == handbook.id and citation.filename == "handbook.md"
    none = client.responses.create(model="lite", input="What is the CEO's phone number?",
                                   tools=[{"type": "file_search", "vector_store_ids": [store.id]}])
    assert none.output[1].content[0].annotations == []


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_collection_page_in_chromium(server: str, tmp_path: Path) -> None:
    name = _name("page")
    with httpx.Client(base_url=server, timeout=120) as http:
        http.post("/v1/collections", json={"name": name})
        http.post(f"/v1/collections/{name}/files", json={"text": HANDBOOK, "filename": "handbook.md"})
    pixels = screenshot(f"{server}/dashboard/collections/{name}?q=laptop+replacement", tmp_path / "page.png",
                        tmp_path / "profile")
    assert pixels("#3b6fd4") > 300, "fused score bars missing"
    assert pixels("#e07b39") > 100, "lexical score bars missing"
    assert pixels("#3aa17e") > 100, "dense score bars missing"
