"""Map-reduce summaries of documents longer than the context, over a scripted LLM (the real
one is exercised in bench/longdoc.py): windows within the budget, citations that reach the
pages, points not found in their sources left out, progress reported, bad input refused."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from litegate.collections.longdoc import LongSummary, grounded_in, windows
from litegate.documents.types import Document, Segment
from litegate.errors import InvalidRequest


class EchoLLM:
    """Restates the first sentence of the first two items (citing them), and adds one point
    that is in none of them (an invented one, which must be dropped)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        listing = body["messages"][1]["content"]
        self.prompts.append(listing)
        items = re.findall(r"^\[(\d+)\] (.*)$", listing, re.M)
        points = [{"sources": [i], "text": text.split(". ")[0]} for i, text in items[:2]]
        points.append({"sources": [items[0][0]], "text": "Quarterly penguin migration doubled revenue"})
        return {"choices": [{"message": {"content": json.dumps({"points": points})}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(listing) // 4, "completion_tokens": 30}}


def _book(pages: int) -> Document:
    segments = [Segment(f"Chapter {p} explains topic number {p} in detail. The topic {p} matters for readers "
                        f"of page {p}.\n" + "Filler sentence about the subject. " * 30, page=p)
                for p in range(1, pages + 1)]
    return Document(name="book.pdf", mime_type="application/pdf", kind="pdf", text="", segments=segments,
                    pages=pages, filename="book.pdf")


def test_windows_pack_consecutive_items_within_the_budget() -> None:
    assert windows(["a" * 40, "b" * 40, "c" * 40, "d" * 200], 100) == [[0, 1], [2], [3]]


def test_a_long_document_is_summarized_with_citations_to_its_pages() -> None:
    llm, seen = EchoLLM(), []
    summary = LongSummary(llm, max_points=4, window_chars=2000, progress=lambda d, t: seen.append((d, t))).run(
        _book(30))
    assert summary["pages"] == 30 and summary["windows"] > 5 and summary["calls"] > summary["windows"]
    assert all(len(p) <= 2000 + 1200 for p in llm.prompts)  # every call stays within the window (plus one item)
    points = summary["points"]
    assert 1 <= len(points) <= 4
    assert all("penguin" not in p["text"] for p in points)  # not in its sources: dropped at every step
    for p in points:
        assert p["citations"] and all(c["page"] is not None and c["where"].startswith("book.pdf, page ")
                                      for c in p["citations"])
    chapters = [(int(m.group(1)), p) for p in points if (m := re.search(r"Chapter (\d+)", p["text"]))]
    assert chapters
    for page, p in chapters:  # the cited page is the one the fact is on
        assert page in {c["page"] for c in p["citations"]}
    assert [d for d, _ in seen] == list(range(1, summary["calls"] + 1)) and seen[-1][0] == seen[-1][1]


def test_grounding_is_the_share_of_words_found_in_the_sources() -> None:
    assert grounded_in("Express shipping costs 15 dollars", ["Express shipping costs 15 dollars."]) == 1.0
    assert grounded_in("penguins migrate", ["Express shipping costs 15 dollars."]) == 0.0


def test_a_document_with_no_text_and_a_bad_budget_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="reads as no text"):
        LongSummary(EchoLLM()).run(Document(name="blank.pdf", mime_type="application/pdf", kind="pdf", text=""))
    with pytest.raises(InvalidRequest, match="max_points"):
        LongSummary(EchoLLM(), max_points=0)
    with pytest.raises(InvalidRequest, match="'window_chars' must be from 500"):
        LongSummary(EchoLLM(), window_chars=100)
