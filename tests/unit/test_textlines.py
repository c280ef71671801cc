"""Positioned characters (a PDF's text layer) into lines with boxes, and the rows and column
neighbours the invoice extractor reads on a page of such pieces."""

from __future__ import annotations

import pytest

from litegate.documents import textlines
from litegate.documents.prebuilt import layout
from litegate.documents.prebuilt.candidates import columned, runs

pytestmark = pytest.mark.unit


def _word(text: str, x: float, y: float, size: float = 10.0, space_first: bool = False) -> list[textlines.Glyph]:
    out, w = [], size * 0.5
    for k, ch in enumerate(text):
        out.append(textlines.Glyph(ch, x + k * w, y, x + (k + 1) * w - 0.5, y + size, space_first and k == 0))
    return out


def test_characters_become_rows_parted_at_a_column_gap_with_spaces_from_the_stream() -> None:
    glyphs = (_word("Rechnungsnummer", 300, 100) + _word("471102", 480, 100.5) + _word("Lieferant", 50, 101)
              + _word("GmbH", 96, 101, space_first=True) + _word("Lindenweg", 50, 115) + _word("20", 104, 115))
    pieces = textlines.pieces(glyphs)
    assert [t for t, _ in pieces] == ["Lieferant GmbH", "Rechnungsnummer", "471102", "Lindenweg 20"]
    x0, y0, x1, y1 = pieces[2][1]
    assert x0 == 480 and y0 == 100.5 and x1 > x0 and y1 > y0


def test_pieces_of_a_page_know_their_row_and_the_piece_above_and_below_in_their_column() -> None:
    placed = [("Lieferant", [50, 40, 95, 50]), ("Rechnung", [360, 40, 410, 50]),
              ("Brunnbauer GmbH", [50, 55, 130, 65]), ("Beleg-Nr", [360, 55, 400, 65]), ("R-0815", [470, 55, 500, 65]),
              ("Industriestraße 7", [50, 70, 135, 80]), ("70565 Stuttgart", [50, 85, 125, 95])]
    page = layout._page([layout.Line(t, list(b)) for t, b in placed])
    assert columned(page) and [(a, b) for a, b in page.rows] == [(0, 2), (2, 5), (5, 6), (6, 7)]
    number = page.lines[4]
    assert [p.text for p in page.row_left(number)] == ["Beleg-Nr"]
    assert number.above is None and page.lines[page.lines[3].above].text == "Rechnung"  # no overlap, no column
    street = page.lines[5]
    assert page.lines[street.above].text == "Brunnbauer GmbH" and page.lines[street.below].text == "70565 Stuttgart"
    # a block runs down its column, not through the pieces of the right-hand column
    addresses = {c.value.value for c in runs(page)}
    assert "Industriestraße 7, 70565 Stuttgart" in addresses
    assert not any("Beleg-Nr" in a and "Industriestraße" in a for a in addresses)


def test_a_tax_named_as_included_is_no_tax_label_and_a_taxs_total_is_the_tax() -> None:
    assert set(layout.keyword_spans("Gesamtbetrag inkl. 19% MwSt")) == {"total"}
    assert set(layout.keyword_spans("Summe Umsatzsteuer")) == {"tax"}
    assert set(layout.keyword_spans("Rechnungssumme Netto (exkl. USt.)")) == {"subtotal"}
    assert "invoice_no" not in layout.keyword_spans("Lieferschein-Nr")
    assert "invoice_no" in layout.keyword_spans("Beleg-Nr")
