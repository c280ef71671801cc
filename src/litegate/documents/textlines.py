"""Lines with boxes from positioned characters (a PDF's text layer): characters grouped into
rows, a row split into pieces where a gap wider than a few characters parts two columns, so a
page's text carries position as an OCR'd page's does."""

from __future__ import annotations

from dataclasses import dataclass

SPACE_GAP = 0.2  # a gap over this many line heights between characters is a space, stream or not
COLUMN_GAP = 1.6  # a gap over this many line heights parts two pieces (columns, a label and a far value)

Piece = tuple[str, list[float]]  # text, [x0, y0, x1, y1]


@dataclass
class Glyph:
    char: str
    x0: float
    y0: float
    x1: float
    y1: float
    space_before: bool = False  # the text stream has a space before this character

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 0.1)


def _rows(glyphs: list[Glyph]) -> list[list[Glyph]]:
    """Glyphs grouped by vertical overlap (at least half the smaller height), top to bottom."""
    rows: list[dict] = []
    for g in sorted(glyphs, key=lambda g: (g.y0 + g.y1) / 2):
        best, best_overlap = None, 0.0
        for row in rows[-6:]:  # sorted by centre: a glyph's row is among the last few opened
            overlap = (min(g.y1, row["y1"]) - max(g.y0, row["y0"])) / max(min(g.height, row["h"]), 0.1)
            if overlap >= 0.5 and overlap > best_overlap:
                best, best_overlap = row, overlap
        if best is None:
            rows.append({"glyphs": [g], "y0": g.y0, "y1": g.y1, "h": g.height})
        else:
            best["glyphs"].append(g)
    return [row["glyphs"] for row in sorted(rows, key=lambda r: r["y0"])]


def _split(row: list[Glyph]) -> list[list[Glyph]]:
    """A row's glyphs left to right, parted where the gap is wider than a column gap."""
    ordered = sorted(row, key=lambda g: g.x0)
    height = sorted(g.height for g in ordered)[len(ordered) // 2]
    pieces, current = [], [ordered[0]]
    for prev, g in zip(ordered, ordered[1:]):
        if g.x0 - prev.x1 > COLUMN_GAP * height:
            pieces.append(current)
            current = []
        current.append(g)
    pieces.append(current)
    return pieces


def _text(glyphs: list[Glyph]) -> str:
    height = sorted(g.height for g in glyphs)[len(glyphs) // 2]
    out = [glyphs[0].char]
    for prev, g in zip(glyphs, glyphs[1:]):
        if g.space_before or g.x0 - prev.x1 > SPACE_GAP * height:
            out.append(" ")
        out.append(g.char)
    return "".join(out)


def pieces(glyphs: list[Glyph]) -> list[Piece]:
    """(text, box) per piece of each row, rows top to bottom and pieces left to right."""
    out: list[Piece] = []
    for row in _rows(glyphs):
        for part in _split(row):
            text = _text(part).strip()
            if text:
                box = [min(g.x0 for g in part), min(g.y0 for g in part), max(g.x1 for g in part),
                       max(g.y1 for g in part)]
                out.append((text, [round(v, 1) for v in box]))
    return out
