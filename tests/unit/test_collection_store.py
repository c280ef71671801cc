"""Collections on real SQLite (FTS5) with the unit layer's fake encoder: chunking,
ownership, replacing a changed file, nothing half-indexed, filters, fusion, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fakes import FakeEncoder
from sqlalchemy import create_engine, func, select

from litegate.collections import Collections, chunk_document
from litegate.collections.fusion import normalized_sum, reciprocal_rank
from litegate.collections.store import chunks_table, collection_files_table
from litegate.documents.types import Document, Part, Segment
from litegate.errors import Conflict, InvalidRequest, LitegateError, NotFound
from litegate.server.openai import vector_stores
from litegate.tenancy import OPERATOR, Tenant, set_current

MANUAL = """# Returns

You can return any item within 30 days of delivery for a full refund.
Items must be unused.

# Shipping

Standard shipping takes 3 to 5 business days.

Express shipping costs 15 dollars and arrives the next day.
"""


@pytest.fixture()
def coll(tmp_path: Path) -> Collections:
    encoder = FakeEncoder()
    return Collections(create_engine(f"sqlite:///{tmp_path / 'c.db'}"), lambda: encoder)


def _count(coll: Collections, table) -> int:
    with coll.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_chunks_follow_headings_and_keep_line_numbers() -> None:
    doc = Document(name="m", mime_type="text/markdown", kind="text", text=MANUAL, segments=[Segment(MANUAL)])
    chunks = chunk_document(doc, max_chars=80)
    assert [c.section for c in chunks] == ["Returns", "Returns", "Shipping", "Shipping"]
    assert chunks[0].text.startswith("You can return") and chunks[0].line_start == 3
    assert chunks[1].text == "Items must be unused." and chunks[1].line_start == 4
    assert chunks[3].line_start == 10 and "Express" in chunks[3].text
    assert all("#" not in c.text for c in chunks)  # headings label chunks, they are not chunks


def test_pages_are_never_crossed_and_long_paragraphs_overlap() -> None:
    page1 = "\n".join(f"Sentence number {i} talks about the first topic." for i in range(12))
    doc = Document(name="r", mime_type="application/pdf", kind="pdf", text="",
                   segments=[Segment(page1, page=1), Segment("A short second page.", page=2)])
    chunks = chunk_document(doc, max_chars=200, overlap_chars=60)
    assert {c.page for c in chunks} == {1, 2}
    assert chunks[-1].page == 2 and chunks[-1].text == "A short second page." and chunks[-1].line_start == 1
    first, second = chunks[0].text.splitlines(), chunks[1].text.splitlines()
    assert second[0] == first[-1]  # the next chunk repeats the last line
    assert chunks[1].line_start == chunks[0].line_end


def test_table_rows_stay_whole_and_repeat_the_header() -> None:
    rows = "\n".join(f"| SKU-{i} | widget {i} | {i}.00 |" for i in range(30))
    text = "Price list\n\n| sku | name | price |\n" + rows
    doc = Document(name="t", mime_type="text/markdown", kind="text", text=text, segments=[Segment(text)])
    chunks = [c for c in chunk_document(doc, max_chars=200) if c.kind == "table"]
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.splitlines()[0] == "| sku | name | price |"
        assert all(line.startswith("| ") and line.endswith(" |") for line in c.text.splitlines())
    assert sum(len(c.text.splitlines()) - 1 for c in chunks) == 30


def test_a_key_sees_only_its_own_collections(coll: Collections) -> None:
    coll.create("key-a", "docs")
    coll.create("key-b", "docs")  # the same name under another owner is another collection
    coll.add_text("key-a", "docs", MANUAL, filename="manual.md")
    assert [c["name"] for c in coll.list("key-a")] == ["docs"]
    assert coll.get("key-b", "docs")["files"] == 0
    with pytest.raises(NotFound):
        coll.get(None, "docs")
    a_id = coll.get("key-a", "docs")["id"]
    with pytest.raises(NotFound):
        coll.search("key-b", a_id, "refund")
    with pytest.raises(NotFound):
        coll.delete("key-b", a_id)
    with pytest.raises(Conflict):
        coll.create("key-a", "docs")


def test_search_returns_provenance_and_both_scores(coll: Collections) -> None:
    coll.create(None, "docs")
    coll.add_text(None, "docs", MANUAL, filename="manual.md")
    coll.add_text(None, "docs", "The cafeteria serves lunch from noon.", filename="cafe.txt")
    hits = coll.search(None, "docs", "express shipping cost", top_k=3)
    assert hits[0].filename == "manual.md" and "Express" in hits[0].text
    assert hits[0].section == "Shipping" and (hits[0].line_start, hits[0].line_end) == (8, 10)
    assert set(hits[0].scores) == {"lexical", "dense"}
    assert hits[0].where() == "manual.md, lines 8-10"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    lexical = coll.search(None, "docs", "express shipping cost", mode="lexical")
    assert all(set(h.scores) == {"lexical"} for h in lexical)


def test_re_adding_a_changed_file_replaces_its_chunks(coll: Collections) -> None:
    coll.create(None, "docs")
    first = coll.add_text(None, "docs", MANUAL, source="manual")
    again = coll.add_text(None, "docs", MANUAL, source="manual")
    assert again["unchanged"] and again["id"] == first["id"]
    changed = coll.add_text(None, "docs", "# Returns\n\nNo returns after 14 days.", source="manual")
    assert changed["replaced"] and changed["chunks"] == 1
    assert _count(coll, chunks_table) == 1 and _count(coll, collection_files_table) == 1
    assert coll.search(None, "docs", "express shipping", mode="lexical") == []
    assert "14 days" in coll.search(None, "docs", "returns", top_k=1)[0].text


def test_a_failure_while_writing_leaves_the_old_version_whole(coll: Collections,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    coll.create(None, "docs")
    coll.add_text(None, "docs", MANUAL, source="manual")
    before = (_count(coll, chunks_table), coll.search(None, "docs", "express", mode="lexical")[0].text)

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")
    monkeypatch.setattr(coll.lexical, "add", broken)
    with pytest.raises(RuntimeError):
        coll.add_text(None, "docs", "Entirely new text about returns.", source="manual")
    monkeypatch.undo()
    assert _count(coll, chunks_table) == before[0]
    assert coll.search(None, "docs", "express", mode="lexical")[0].text == before[1]
    assert coll.files(None, "docs")[0]["chunks"] == before[0]


def test_filters_match_file_attributes(coll: Collections) -> None:
    coll.create(None, "docs")
    coll.add_text(None, "docs", "Shipping to Canada takes a week.", source="ca",
                  attributes={"region": "ca", "year": 2024})
    coll.add_text(None, "docs", "Shipping to France takes two weeks.", source="fr",
                  attributes={"region": "eu", "year": 2025})
    assert {h.filename for h in coll.search(None, "docs", "shipping", filters={"region": "eu"})} == {"fr"}
    newer = {"type": "gte", "key": "year", "value": 2025}
    assert {h.filename for h in coll.search(None, "docs", "shipping", filters=newer)} == {"fr"}
    either = {"type": "or", "filters": [{"type": "eq", "key": "region", "value": "ca"}, newer]}
    assert {h.filename for h in coll.search(None, "docs", "shipping", filters=either)} == {"ca", "fr"}
    assert coll.search(None, "docs", "shipping", filters={"region": "us"}) == []
    with pytest.raises(InvalidRequest):
        coll.search(None, "docs", "shipping", filters={"type": "like", "key": "region", "value": "e"})


def test_bad_input_is_refused_before_any_work(coll: Collections) -> None:
    coll.create(None, "docs")
    with pytest.raises(InvalidRequest) as e:
        coll.search(None, "docs", "anything")
    assert e.value.code == "empty_collection"
    with pytest.raises(InvalidRequest) as e:
        coll.add_file(None, "docs", Part("text/plain", b"   \n\n  ", "upload", filename="blank.txt"))
    assert e.value.code == "empty_document" and "blank.txt" in e.value.message
    coll.add_text(None, "docs", MANUAL)
    with pytest.raises(InvalidRequest) as e:
        coll.search(None, "docs", "why " * 1000)
    assert e.value.code == "query_too_long"
    for bad in ({"top_k": 0}, {"top_k": 101}, {"mode": "magic"}, {"fusion": "max"}):
        with pytest.raises(InvalidRequest):
            coll.search(None, "docs", "refund", **bad)
    for name in ("", " padded ", "a/b", "vs_123", "x" * 129):
        with pytest.raises(InvalidRequest):
            coll.create(None, name)
    with pytest.raises(InvalidRequest):
        coll.add_text(None, "docs", "fine", attributes={"nested": {"no": 1}})
    assert _count(coll, collection_files_table) == 1


def test_deleting_a_collection_removes_its_chunks_and_index(coll: Collections) -> None:
    coll.create(None, "docs")
    coll.add_text(None, "docs", MANUAL)
    coll.delete(None, "docs")
    assert _count(coll, chunks_table) == 0 and coll.list(None) == []
    coll.create(None, "docs")  # the name is free again, with an empty index
    coll.add_text(None, "docs", "Only this.")
    assert [h.text for h in coll.search(None, "docs", "only this", mode="lexical")] == ["Only this."]


def test_fusions_rank_agreement_first() -> None:
    lexical = [(1, 9.0), (2, 5.0), (3, 1.0)]
    dense = [(2, 0.9), (4, 0.8), (1, 0.1)]
    assert [d for d, _ in reciprocal_rank([lexical, dense])][:2] == [2, 1]
    fused = normalized_sum([lexical, dense])
    assert fused[0][0] == 2 and dict(fused)[3] == 0.0


def test_an_ingest_job_left_unfinished_resumes_in_the_next_process(tmp_path: Path) -> None:
    import json as _json

    from sqlalchemy import update

    from litegate.collections.store import jobs_table
    from litegate.jobs.files import FileStore

    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    files = FileStore(engine, tmp_path)
    encoder = FakeEncoder()
    first = Collections(engine, lambda: encoder, files=files)
    first.create("key-a", "docs")
    ids = [files.put(f"Note {i}: the door code is {1000 + i}.".encode(), api="openai", purpose="assistants",
                     filename=f"note{i}.txt", owner="key-a").id for i in range(4)]
    blank = files.put(b"  \n", api="openai", purpose="assistants", filename="blank.txt", owner="key-a").id
    first.jobs.close()  # the worker stops before any file: as if the process died at once
    job = first.jobs.submit("key-a", "docs", ids + [blank], {"batch": "b1"})
    first.jobs.wait(10)
    # a crash after the first file was indexed but before the job row said so
    first.add_stored_file("key-a", "docs", ids[0], {"batch": "b1"})
    with engine.begin() as conn:
        conn.execute(update(jobs_table).values(status="in_progress"))
    assert first.jobs.get("key-a", job["id"])["done"] == 0
    with pytest.raises(NotFound):
        first.jobs.get("key-b", job["id"])

    second = Collections(engine, lambda: encoder, files=files)  # the next process
    assert second.jobs.resume() == [job["id"]]
    second.jobs.wait(30)
    done = second.jobs.get("key-a", job["id"])
    assert (done["status"], done["done"], done["failed"]) == ("completed", 4, 1)
    assert done["errors"][0]["file_id"] == blank and done["errors"][0]["error"]["code"] == "empty_document"
    assert second.get("key-a", "docs")["files"] == 4  # the file indexed before the crash is there once
    hits = second.search("key-a", "docs", "code 1003", filters={"batch": "b1"}, mode="lexical")
    assert "1003" in hits[0].text
    with engine.connect() as conn:
        assert _json.loads(conn.execute(select(jobs_table.c["items"])).scalar_one())[0]["status"] == "completed"


def test_a_key_cannot_index_another_keys_stored_file(tmp_path: Path) -> None:
    from litegate.jobs.files import FileStore

    engine = create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    files = FileStore(engine, tmp_path)
    theirs = files.put(b"Team A's secret plan.", api="openai", purpose="assistants", filename="plan.txt",
                       mime_type="text/plain", owner="key-a")
    encoder = FakeEncoder()
    coll = Collections(engine, lambda: encoder, files=files)
    coll.create("key-b", "mine")
    set_current(Tenant("key-b"))  # what the server's key check sets for a request of key B
    try:
        with pytest.raises(LitegateError):  # not found for key B, as if it did not exist
            coll.add_stored_file("key-b", "mine", theirs.id)
        with pytest.raises(LitegateError):
            coll.jobs.submit("key-b", "mine", [theirs.id])
        set_current(Tenant("key-a"))
        coll.create("key-a", "ours")
        assert coll.add_stored_file("key-a", "ours", theirs.id)  # its owner indexes it
    finally:
        set_current(OPERATOR)


def test_a_large_file_is_searchable_by_words_at_once_and_by_meaning_once_its_vectors_follow(
        coll: Collections) -> None:
    from litegate.collections.service import INLINE_VECTORS

    coll.create(None, "big")
    paragraphs = [f"Paragraph {i} is about topic{i} and nothing else." * 8 for i in range(INLINE_VECTORS + 20)]
    release = threading.Event()
    step = coll.backfill.step

    def held(collection_id: str) -> int:  # the worker waits until the words-only state is checked
        release.wait(30)
        return step(collection_id)
    coll.backfill.step = held  # type: ignore[method-assign]
    added = coll.add_text(None, "big", "\n\n".join(paragraphs), filename="big.txt")
    assert added["chunks"] > INLINE_VECTORS
    assert coll.get(None, "big")["vectors_pending"] == added["chunks"] == added["vectors_pending"]  # words first
    assert coll.get(None, "big")["files_pending"] == 1
    [listed] = coll.files(None, "big")
    assert listed["vectors_pending"] == added["chunks"] == coll.file(None, "big", added["id"])["vectors_pending"]
    # the OpenAI shapes say so: the file and its store are in progress until the vectors are in
    assert vector_stores._file(listed, "vs_1")["status"] == "in_progress"
    store = vector_stores._store(coll.get(None, "big"))
    assert store["status"] == "in_progress" and store["file_counts"]["in_progress"] == 1
    hits = coll.search(None, "big", "topic7", top_k=3, mode="lexical")
    assert hits and "topic7" in hits[0].text
    assert coll.search(None, "big", "topic7", top_k=3, mode="dense") == []  # no vector yet: no dense hit
    release.set()
    assert coll.backfill.wait(coll.get(None, "big")["id"], timeout=60)
    assert coll.get(None, "big")["vectors_pending"] == 0 and coll.files(None, "big")[0]["vectors_pending"] == 0
    assert vector_stores._store(coll.get(None, "big"))["file_counts"] == {
        "in_progress": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 1}
    assert vector_stores._file(coll.files(None, "big")[0], "vs_1")["status"] == "completed"
    hybrid = coll.search(None, "big", "topic7", top_k=3)
    assert "topic7" in hybrid[0].text and "dense" in hybrid[0].scores


def test_pending_vectors_left_by_a_crash_are_encoded_by_the_next_search(tmp_path: Path) -> None:
    from litegate.collections.backfill import PENDING

    encoder = FakeEncoder()
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    first = Collections(create_engine(db), lambda: encoder)
    first.create(None, "kb")
    first.add_text(None, "kb", MANUAL, filename="manual.md")
    with first.engine.begin() as conn:  # as if the process died before its vectors were written
        conn.execute(chunks_table.update().values(vector=PENDING))
    again = Collections(create_engine(db), lambda: encoder)
    assert again.get(None, "kb")["vectors_pending"] > 0
    again.search(None, "kb", "shipping", top_k=2)
    assert again.backfill.wait(again.get(None, "kb")["id"], timeout=60)
    assert again.get(None, "kb")["vectors_pending"] == 0
    assert "dense" in again.search(None, "kb", "shipping days", top_k=1)[0].scores
