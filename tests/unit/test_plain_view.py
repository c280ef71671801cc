"""The reader's plain view of a passage (nano.plain): markdown markup left out, every character
of the view one of the passage's, prose unchanged."""

from __future__ import annotations

import pytest

from litegate.nano.plain import plain_view

pytestmark = pytest.mark.unit


def mapped(text: str) -> str:
    view, where = plain_view(text)
    assert len(view) == len(where) and list(where) == sorted(set(where.tolist()))
    for i, ch in enumerate(view):  # each character is the passage's own, or a table pipe read as a space
        assert ch == text[where[i]] or (ch == " " and text[where[i]] == "|")
    return view


def test_prose_comes_back_unchanged() -> None:
    prose = ("The Normans (Norman: Nourmands; French: Normands) gave their name to Normandy [1], a region "
             "in France. 3 * 4 = 12; snake_case_name and C# are words; a - b is not a list.\n\nSecond paragraph.")
    assert mapped(prose) == prose


def test_links_code_strong_headings_lists_and_comments_are_left_out() -> None:
    text = ("## Keys <!-- internal -->\nAny key works unless [keys](keys.md#make \"Keys\") are set.\n"
            "- Gemini sends **x-goog-api-key**, OpenAI `Authorization`.\n* See ![the logo](logo.png).\n"
            "1. Numbered items keep their numbers.")
    assert mapped(text) == ("Keys \nAny key works unless keys are set.\nGemini sends x-goog-api-key, OpenAI "
                            "Authorization.\nSee the logo.\n1. Numbered items keep their numbers.")


def test_a_table_reads_as_its_cells_and_its_separator_row_goes() -> None:
    text = "| setting | default |\n|:---|---:|\n| `LITEGATE_QUEUE` | `16` |\nAfter | the table."
    view = mapped(text)
    assert view.split() == ["setting", "default", "LITEGATE_QUEUE", "16", "After", "|", "the", "table."]
    assert "---" not in view


def test_a_span_of_the_view_maps_back_to_the_passage() -> None:
    text = "Set [the queue](q.md) to `16` slots."
    view, where = plain_view(text)
    lo = view.index("16")
    assert text[where[lo]:where[lo + 1] + 1] == "16"
    lo, hi = view.index("the queue"), view.index("the queue") + len("the queue")
    assert text[where[lo]:where[hi - 1] + 1] == "the queue"
