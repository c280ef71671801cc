"""Documents as one block of prompt text, each piece marked with where it came from, so a
model can say "page 2 of invoice.pdf" and a reader can check it."""

from __future__ import annotations

import re

from litegate.documents.types import Document

_FORGED = re.compile(r"\[(?=(?:file \d|end of file \d))", re.IGNORECASE)
_HOW = {"ocr": "read by OCR", "text-layer": "text layer", "text-layer+ocr": "text layer and OCR",
        "asr": "speech recognised", "asr+ocr": "speech recognised, on-screen text by OCR", "text": "text"}


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _safe(text: str) -> str:
    """Text from a file cannot pose as one of our markers (a forged "[end of file 1]" would
    let a document's content pass as the user's own words)."""
    return _FORGED.sub("(", text)


def as_prompt(docs: list[Document], start: int = 1) -> str:
    """The documents' text, file by file, with a marker before each page, each timed stretch
    of speech and each on-screen text: ``[file 1: invoice.pdf, page 2]`` (numbered from
    ``start``: a request's files placed one by one keep one numbering)."""
    blocks = []
    for n, doc in enumerate(docs, start):
        label = f"file {n}: {doc.filename or doc.mime_type}"
        facts = [doc.kind]
        if doc.kind == "pdf" or (doc.kind == "image" and doc.pages > 1):
            facts.append(f"{doc.pages} page{'s' if doc.pages != 1 else ''}")
        if doc.kind in ("audio", "video"):
            facts.append(_clock(doc.seconds))
        facts.append(_HOW.get(doc.method, doc.method))
        lines = [f"[{label} ({', '.join(facts)})]"]
        lines += [f"[note: {note}]" for note in doc.notes]
        if doc.kind == "pdf" or (doc.kind == "image" and doc.pages > 1):
            page = None
            for seg in doc.segments:
                if seg.page != page:
                    page = seg.page
                    lines.append(f"[{label}, page {page}]")
                lines.append(_safe(seg.text))
        elif doc.kind in ("audio", "video"):
            for seg in doc.segments:
                if seg.end_s is not None:
                    lines.append(f"[{label}, {_clock(seg.start_s)}-{_clock(seg.end_s)}] {_safe(seg.text)}")
                else:
                    lines.append(f"[{label}, on screen at {_clock(seg.start_s)}]")
                    lines.append(_safe(seg.text))
        elif doc.text:
            lines.append(_safe(doc.text))
        lines.append(f"[end of file {n}]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
