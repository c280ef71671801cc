"""The collection routes and the answer task's ``collection`` over the app on a fake
Runtime (fake engine and encoder, real SQLite, real HTTP handling in process)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fakes import FakeEngine, runtime

MANUAL = ("# Returns\n\nYou can return any item within 30 days of delivery for a full refund.\n\n"
          "# Shipping\n\nStandard shipping takes 3 to 5 business days.\n")


def _reply(body: dict) -> str:
    system = body["messages"][0]["content"]
    if "[1] Standard shipping" in system:
        return json.dumps({"citations": ["1"], "answer": "3 to 5 business days"})
    return json.dumps({"citations": [], "answer": None})


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path, engines={"lite": FakeEngine(_reply, n_ctx=4096)})
    yield r
    r.close()


def test_collection_lifecycle_over_http(client) -> None:
    assert client.post("/v1/collections", json={"name": "docs"}).status_code == 201
    assert client.post("/v1/collections", json={"name": "docs"}).status_code == 409
    r = client.post("/v1/collections/docs/files", json={"text": MANUAL, "filename": "manual.md",
                                                        "attributes": {"team": "support"}})
    assert r.status_code == 201 and r.json()["chunks"] == 2
    up = client.post("/v1/collections/docs/files", files={"file": ("cafe.txt", b"Lunch is served at noon.",
                                                                   "text/plain")})
    assert up.status_code == 201, up.text
    listed = client.get("/v1/collections").json()["data"]
    assert listed[0]["files"] == 2 and listed[0]["chunks"] == 3
    hits = client.post("/v1/collections/docs/search", json={"query": "how long is shipping", "top_k": 2}).json()
    assert hits["data"][0]["filename"] == "manual.md" and hits["data"][0]["section"] == "Shipping"
    assert hits["data"][0]["where"] == "manual.md, line 7"
    filtered = client.post("/v1/collections/docs/search", json={"query": "lunch", "filters": {"team": "support"}})
    assert {h["filename"] for h in filtered.json()["data"]} == {"manual.md"}
    assert client.delete("/v1/collections/docs").json()["deleted"]
    assert client.get("/v1/collections/docs").status_code == 404


def test_bad_collection_input_is_a_clear_4xx(client) -> None:
    client.post("/v1/collections", json={"name": "empty"})
    r = client.post("/v1/collections/empty/search", json={"query": "anything"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_collection"
    r = client.post("/v1/collections/empty/files", json={"data": base64.b64encode(b"  \n").decode(),
                                                         "filename": "blank.txt"})
    assert r.status_code == 400 and "reads as no text" in r.json()["error"]["message"]
    client.post("/v1/collections/empty/files", json={"text": MANUAL})
    r = client.post("/v1/collections/empty/search", json={"query": "x" * 5000})
    assert r.status_code == 400 and r.json()["error"]["code"] == "query_too_long"
    assert client.post("/v1/collections/nope/search", json={"query": "x"}).status_code == 404
    assert client.post("/v1/collections/empty/files", json={"nothing": 1}).status_code == 400
    assert client.post("/v1/collections/empty/files", json={"file_id": "file-missing"}).status_code == 404
    assert client.post("/v1/collections/empty/search", json={"query": "x", "rerank": "nano"}).status_code == 400
    # wrong types are 400s naming the field, never 500s
    for path, body in (("/v1/collections", {"name": "d2", "description": {"x": 1}}),
                       ("/v1/collections", {"name": ["d3"]}),
                       ("/v1/collections/empty/search", {"query": "x", "fusion": ["rrf"]}),
                       ("/v1/collections/empty/search", {"query": "x", "top_k": "5"}),
                       ("/v1/collections/empty/files", {"text": "hi", "source": 7}),
                       ("/v1/collections/empty/files", {"texts": [{"text": "hi", "filename": {}}]}),
                       ("/v1/collections/empty/jobs", {"file_ids": ["f"], "attributes": ["a"]})):
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, body, r.text)


def test_answer_from_a_collection_cites_file_and_lines(client) -> None:
    client.post("/v1/collections", json={"name": "docs"})
    client.post("/v1/collections/docs/files", json={"text": MANUAL, "filename": "manual.md"})
    r = client.post("/v1/tasks/answer", json={"query": "How long does standard shipping take?", "collection": "docs",
                                              "top_k": 1, "tier": "lite"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["found"] and body["answer"] == "3 to 5 business days" and body["citations"] == ["1"]
    assert body["sources"][0]["filename"] == "manual.md" and body["sources"][0]["line_start"] == 7
    assert "3 to 5 business days" in body["sources"][0]["text"]
    r = client.post("/v1/tasks/answer", json={"query": "Who founded the company?", "collection": "docs",
                                              "filters": {"team": "nobody"}, "tier": "lite"})
    assert r.json()["answer"] == "not in the documents" and r.json()["found"] is False
    both = client.post("/v1/tasks/answer", json={"query": "q", "collection": "docs", "context": ["x"]})
    assert both.status_code == 400


def test_the_collection_page_lists_files_and_scored_hits(client) -> None:
    client.post("/v1/collections", json={"name": "docs"})
    client.post("/v1/collections/docs/files", json={"text": MANUAL, "filename": "manual.md"})
    listing = client.get("/dashboard/collections").text
    assert 'href="/dashboard/collections/docs"' in listing
    page = client.get("/dashboard/collections/docs", params={"q": "shipping <b>days</b>"}).text
    assert "<td>manual.md</td>" in page and "manual.md, line 7 · Shipping" in page
    assert 'aria-label="lexical"' in page and 'aria-label="dense"' in page
    assert "&lt;b&gt;days&lt;/b&gt;" in page and "<b>days</b>" not in page  # the query is escaped
    assert client.get("/dashboard/collections/nope").status_code == 404
