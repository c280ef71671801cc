"""Structure-aware chunking: a Document's pages, headings, paragraphs and table rows become
chunks of about one encoder window each, with the page, lines (or seconds) they came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from litegate.documents.types import Document, Segment

# all-MiniLM-L6-v2 reads 128 word pieces: about 600 characters of English prose
MAX_CHARS = 600
OVERLAP_CHARS = 200
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass
class Chunk:
    """One retrievable piece. ``text`` is the document's own text; ``section`` the heading
    path above it (indexed with it, shown apart)."""

    text: str
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    section: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    kind: str = "text"  # text | table

    def indexed_text(self) -> str:
        return f"{self.section}\n{self.text}" if self.section else self.text


@dataclass
class _Line:
    text: str
    page: int | None
    number: int
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class _Block:
    lines: list[_Line] = field(default_factory=list)
    kind: str = "text"


def _lines(doc: Document) -> list[_Line | None]:
    """The document as numbered lines (per page for paged documents, per file otherwise);
    None marks a paragraph break and a page change."""
    out: list[_Line | None] = []
    if not doc.segments and doc.text:

        segments = [Segment(doc.text)]
    else:
        segments = doc.segments
    counters: dict[int | None, int] = {}
    last_page: int | None = -1
    for seg in segments:
        if seg.page != last_page or seg.start_s is not None:
            out.append(None)
            last_page = seg.page
        for raw in seg.text.split("\n"):
            counters[seg.page] = counters.get(seg.page, 0) + 1
            if raw.strip():
                out.append(_Line(raw.rstrip(), seg.page, counters[seg.page], seg.start_s, seg.end_s))
            else:
                out.append(None)
        if seg.box is None and seg.start_s is None:
            out.append(None)  # a page's text layer ends its last paragraph
    return out


def _is_row(text: str, csv: bool) -> bool:
    return csv or text.count("|") >= 2 or "\t" in text


def _heading(block: _Block) -> str | None:
    """A block that is a heading: a Markdown one, or one short line with no closing
    punctuation that starts with a capital or a number (the way PDFs print titles)."""
    if len(block.lines) != 1:
        return None
    text = block.lines[0].text.strip()
    m = _MD_HEADING.match(text)
    if m:
        return m.group(2)
    if len(text) <= 80 and text[-1] not in ".,;:!?)\"'" and (text[0].isupper() or text[0].isdigit()) \
            and len(text.split()) <= 12 and block.kind == "text":
        return text
    return None


def _blocks(lines: list[_Line | None], csv: bool) -> list[_Block]:
    blocks: list[_Block] = []
    current = _Block()
    for line in lines:
        if line is None or (current.lines and (current.lines[-1].page != line.page)):
            if current.lines:
                blocks.append(current)
            current = _Block()
            if line is None:
                continue
        kind = "table" if _is_row(line.text, csv) else "text"
        if current.lines and current.kind != kind:  # a table starts or ends inside a paragraph
            blocks.append(current)
            current = _Block()
        current.kind = kind
        current.lines.append(line)
    if current.lines:
        blocks.append(current)
    return blocks


def _pieces(line: _Line, max_chars: int) -> list[_Line]:
    """A line longer than a chunk, cut at sentence ends (then at spaces)."""
    if len(line.text) <= max_chars:
        return [line]
    parts, buf = [], ""
    for sentence in _SENTENCE_END.split(line.text):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            if buf:
                parts.append(buf)
                buf = ""
            parts.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if buf and len(buf) + 1 + len(sentence) > max_chars:
            parts.append(buf)
            buf = ""
        buf = f"{buf} {sentence}" if buf else sentence
    if buf:
        parts.append(buf)
    return [_Line(p, line.page, line.number, line.start_s, line.end_s) for p in parts]


def _emit(units: list[_Line], section: str | None, kind: str) -> Chunk:
    starts = [u.start_s for u in units if u.start_s is not None]
    ends = [u.end_s for u in units if u.end_s is not None]
    return Chunk(text="\n".join(u.text for u in units), page=units[0].page, line_start=units[0].number,
                 line_end=units[-1].number, section=section, start_s=min(starts) if starts else None,
                 end_s=max(ends) if ends else None, kind=kind)


def chunk_document(doc: Document, max_chars: int = MAX_CHARS, overlap_chars: int = OVERLAP_CHARS) -> list[Chunk]:
    """Chunks that never cross a page or a heading; paragraphs are packed together up to
    ``max_chars``; a chunk that follows another in the same section repeats its last line
    (up to ``overlap_chars``); table rows stay whole and each table chunk repeats the header row."""
    csv = doc.mime_type == "text/csv"
    chunks: list[Chunk] = []
    section: str | None = None
    units: list[_Line] = []
    unit_kind = "text"

    def flush(keep_overlap: bool) -> None:
        nonlocal units
        if units:
            chunks.append(_emit(units, section, unit_kind))
            tail = units[-1]
            units = [tail] if keep_overlap and len(tail.text) <= overlap_chars and len(units) > 1 else []

    last_page: int | None = None
    for block in _blocks(_lines(doc), csv):
        page = block.lines[0].page
        if page != last_page:
            flush(False)
            last_page = page
        title = _heading(block)
        if title is not None:
            flush(False)
            section = title
            continue
        if block.kind == "table":
            flush(False)
            _table_chunks(block, section, max_chars, chunks)
            continue
        if unit_kind != "text":
            flush(False)
        unit_kind = "text"
        for line in block.lines:
            for piece in _pieces(line, max_chars):
                if units and sum(len(u.text) + 1 for u in units) + len(piece.text) > max_chars:
                    flush(True)
                units.append(piece)
    flush(False)
    return [c for c in chunks if c.text.strip()]


def _table_chunks(block: _Block, section: str | None, max_chars: int, chunks: list[Chunk]) -> None:
    header, rows = block.lines[0], block.lines[1:]
    if not rows:
        chunks.append(_emit([header], section, "table"))
        return
    group: list[_Line] = []
    for row in rows:
        if group and len(header.text) + sum(len(r.text) + 1 for r in group) + len(row.text) > max_chars:
            chunks.append(_table_chunk(header, group, section))
            group = []
        group.append(row)
    chunks.append(_table_chunk(header, group, section))


def _table_chunk(header: _Line, rows: list[_Line], section: str | None) -> Chunk:
    chunk = _emit(rows, section, "table")
    chunk.text = header.text + "\n" + chunk.text  # a row means little without its column names
    return chunk
