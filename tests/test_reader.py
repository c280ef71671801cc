"""The nano reader as shipped (its head and tuned layers' differences from the fast encoder in
the package, the encoder installed): spans read from real passages, long ones in windows, its
"not in the passages" margin, its pinned weights; and the answer task on the nano tier over
HTTP, citing the passage."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from litegate.errors import InvalidRequest, ModelFileError
from litegate.nano import reader as reader_module
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.reader import Reader, ReaderWeights, shipped, shipped_path
from litegate.tasks.abstention import SHIPPED_READER
from litegate.tasks.abstention import shipped as shipped_score

# from docs/collections.md and docs/keys.md, as a user's documents would read
RETENTION = ("Collections are stored in the ledger's database: SQLite under LITEGATE_HOME by default, or "
             "PostgreSQL when LITEGATE_LEDGER_URL points at one. Deleting a collection removes its files, "
             "chunks and vectors at once.")
KEYS = ("Each API key may carry a rate limit in requests per minute and a daily budget in US dollars. A key "
        "over its budget gets HTTP 429 until midnight UTC.")
TOWER = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It is named after the "
         "engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889 as the centrepiece "
         "of the 1889 World's Fair.")


@pytest.fixture(scope="module")
def reader() -> Reader:
    return shipped(MiniLMEncoder())


def test_the_span_answering_the_question_is_read_from_the_passage_that_holds_it(reader: Reader) -> None:
    reading = reader.read("Who designed the Eiffel Tower?", [RETENTION, TOWER, KEYS])
    assert reading.best.passage == 1 and "Gustave Eiffel" in reading.best.text
    assert TOWER[reading.best.start:reading.best.end] == reading.best.text  # verbatim, with its characters
    assert [s.passage for s in reading.spans] == [0, 1, 2] and reading.margin < 0
    # each span's probability within its window: the answering one likely, the others less so
    others = [s.log_p for s in reading.spans if s is not reading.best]
    assert -2.0 < reading.best.log_p < 0 and max(others) < reading.best.log_p
    reading = reader.read("What status code does a key over its daily budget get?", [RETENTION, TOWER, KEYS])
    assert reading.best.passage == 2 and "429" in reading.best.text


def test_a_question_the_passages_never_address_gets_a_higher_margin(reader: Reader) -> None:
    passages = [RETENTION, KEYS]
    answered = reader.read("Which database holds collections when LITEGATE_LEDGER_URL points at one?", passages)
    unaddressed = reader.read("Who is the chief executive of the company and what is her salary?", passages)
    assert "PostgreSQL" in answered.best.text
    assert unaddressed.margin > answered.margin + 2.0


def test_an_answer_past_the_first_window_of_a_long_passage_is_found(reader: Reader) -> None:
    filler = " ".join(f"Section {i} lists the opening hours of branch office number {i}." for i in range(60))
    long = filler + " The head office moved to Rotterdam in March 2021."
    assert len(reader._windows("q", [long])) > 2  # read in overlapping windows
    reading = reader.read("When did the head office move to Rotterdam?", [long])
    assert reading.best.text == "March 2021"


SETTINGS_TABLE = ("| setting | type | default | meaning |\n|---|---|---|---|\n"
                  "| `LITEGATE_DISTILL_MIN_CONFIDENCE` | float | `0.9` | a stronger tier's answer becomes a training "
                  "example at this confidence or more |\n"
                  "| `LITEGATE_QUEUE` | int | `16` | requests waiting for a slot before a 429 |")


def test_a_markdown_table_is_read_by_its_cells_and_quoted_as_written(reader: Reader) -> None:
    """The reader reads a passage's plain view (no pipes, backticks, link targets), so a cell is
    answered alone; the span is still the passage's own characters."""
    chooser = Reader(MiniLMEncoder(), reader.weights)  # the passage reader alone, without its span reader
    question = "What is the default minimum confidence for a stronger tier's answer to become a training example?"
    reading = chooser.read(question, [SETTINGS_TABLE])
    assert reading.best.text == "0.9"  # read with its pipes: "float | `0.9"
    assert SETTINGS_TABLE[reading.best.start:reading.best.end] == "0.9"
    # the span reader reads the same view, and no span crosses a cell's pipe (it read "float | `0.9")
    quoted = reader.read(question, [SETTINGS_TABLE]).best
    assert quoted.text == "0.9" and SETTINGS_TABLE[quoted.start:quoted.end] == "0.9"
    for one in (reader, chooser):
        assert one.read("How many requests may wait for a slot?", [SETTINGS_TABLE]).best.text == "16"  # not "429"
    linked = "Any API key works unless [keys](keys.md) are set; each [key](keys.md#budgets) has a budget of 5 USD."
    for one in (reader, chooser):
        reading = one.read("What is the budget of a key?", [linked])
        assert reading.best.text == "5 USD" and linked[reading.best.start:reading.best.end] == "5 USD"


def test_the_chosen_passage_is_quoted_by_the_span_reader(reader: Reader) -> None:
    """The shipped reader chooses the passage by its own scores and no-answer margin; its span
    reader, trained longer, quotes the span of that passage."""
    assert reader.span_reader is not None and reader.span_reader.weights is not reader.weights
    chooser = Reader(MiniLMEncoder(), reader.weights)  # the same weights without a span reader
    question = "When was the tower built?"
    passages = [RETENTION, TOWER, KEYS]
    alone, paired = chooser.read(question, passages), reader.read(question, passages)
    assert paired.best.passage == alone.best.passage == 1
    assert (paired.best.score, paired.best.null, paired.margin) == (alone.best.score, alone.best.null, alone.margin)
    quoted = reader.span_reader.read(question, [TOWER]).best
    assert (paired.best.start, paired.best.end, paired.best.text) == (quoted.start, quoted.end, quoted.text)
    assert TOWER[paired.best.start:paired.best.end] == paired.best.text and "1887" in paired.best.text
    assert paired.spans[1] is paired.best and paired.spans[0] == alone.spans[0]


def test_bad_input_is_refused_clearly(reader: Reader) -> None:
    with pytest.raises(InvalidRequest, match="non-empty question"):
        reader.read("  ", [TOWER])
    with pytest.raises(InvalidRequest, match="non-empty passages"):
        reader.read("Who?", [TOWER, " "])


def test_weights_that_do_not_match_their_pinned_sha256_are_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "reader.npz"
    shutil.copy(shipped_path(), copy)
    with open(copy, "r+b") as f:  # one byte changed near the end (inside the compressed arrays)
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    original = reader_module.shipped_path
    monkeypatch.setattr(reader_module, "shipped_path",
                        lambda name=reader_module.FILE: copy if name == reader_module.FILE else original(name))
    monkeypatch.setattr(reader_module, "_readers", {})
    with pytest.raises(ModelFileError, match="sha256"):
        shipped(MiniLMEncoder())
    with pytest.raises(ModelFileError, match="load it with that encoder"):  # differences need their base
        ReaderWeights.load(shipped_path())
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable nano reader"):
        ReaderWeights.load(tmp_path / "broken.npz")


def answer(server: str, body: dict) -> httpx.Response:
    return httpx.post(server + "/v1/tasks/answer", json={"tier": "nano", **body}, timeout=120)


def test_the_answer_task_on_the_nano_tier_cites_the_passage_or_says_not_in_context(server: str) -> None:
    context = [{"id": "storage", "text": RETENTION}, {"id": "tower", "text": TOWER}, {"id": "keys", "text": KEYS}]
    r = answer(server, {"query": "Who designed the Eiffel Tower?", "context": context})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["tier"] == "nano" and out["found"] is True and "Gustave Eiffel" in out["answer"]
    # the confidence is the fitted P(right), at least the score's threshold when it answers
    assert out["citations"] == ["tower"] and shipped_score(SHIPPED_READER).threshold <= out["confidence"] <= 1.0
    assert set(out["signals"]) >= {"reader_margin", "coverage"}
    r = answer(server, {"query": "Who is the chief executive and what is her salary?", "context": context[:1]})
    out = r.json()
    assert out["found"] is False and out["answer"] == "not in context" and out["citations"] == []
    assert out["unsure_answer"] and out["signals"]["reader_margin"] > 0  # the span it would have given
    assert 0.5 <= out["confidence"] <= 1.0  # P(unanswerable)
    r = answer(server, {"query": "", "context": context})
    assert r.status_code == 400 and "query" in r.text
    r = answer(server, {"query": "Who?", "context": [" "]})
    assert r.status_code == 400 and "empty passage" in r.text


def test_the_default_cascade_keeps_answering_on_the_llm(server: str) -> None:
    r = httpx.post(server + "/v1/tasks/answer", json={"query": "Who designed the Eiffel Tower?",
                                                      "context": [TOWER]}, timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "lite"
