"""Documents longer than a model's context, summarized by map-reduce: consecutive chunks are
packed into windows that fit the budget; each window becomes a few points, each citing the
chunks it came from (checked against their words); points are merged group by group until one
call holds them all. Every final point keeps the pages and lines of the chunks under it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litegate.chat.structured import compile_schema
from litegate.collections.chunking import Chunk, chunk_document
from litegate.documents.types import Document
from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage

WINDOW_CHARS = 6000  # about 1,500 tokens of English: with the prompt and the reply, well inside 8K
MIN_WINDOW_CHARS, MAX_WINDOW_CHARS = 500, 200_000  # below, points would outweigh the text they summarize
POINTS_PER_CALL = 3
MAX_POINT_CHARS = 300
_WORD = re.compile(r"\w+")


@dataclass
class Point:
    """One statement of the summary and the document's chunks it rests on (indexes)."""

    text: str
    chunks: list[int] = field(default_factory=list)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def grounded_in(text: str, sources: list[str]) -> float:
    """The share of a point's content words found in its sources."""
    words = _words(text)
    if not words:
        return 0.0
    source = set().union(*(_words(s) for s in sources)) if sources else set()
    return len(words & source) / len(words)


def windows(texts: list[str], budget: int) -> list[list[int]]:
    """Consecutive indexes packed up to ``budget`` characters (one item over it stands alone)."""
    out: list[list[int]] = []
    size = 0
    for i, t in enumerate(texts):
        if out and size + len(t) <= budget:
            out[-1].append(i)
            size += len(t)
        else:
            out.append([i])
            size = len(t)
    return out


def readable_chunks(doc: Document) -> list[Chunk]:
    """The document's chunks without overlap (it would only repeat text to the model); a
    document that reads as no text is a clear error before any model is loaded."""
    chunks = chunk_document(doc, overlap_chars=0)
    if not chunks:
        notes = "; ".join(doc.notes) or "it is blank"
        raise InvalidRequest(f"{doc.filename or doc.name} reads as no text ({notes}); nothing to summarize",
                             param=doc.name, code="empty_document")
    return chunks


class LongSummary:
    """Map-reduce over one document with an LLM tier (anything with ``chat(request, schema=)``).
    ``progress(done, total)`` is told after every call; total grows as the reduce rounds are known."""

    def __init__(self, llm: Any, *, max_points: int = 8, window_chars: int = WINDOW_CHARS,
                 progress: Callable[[int, int], None] | None = None, min_grounding: float = 0.5):
        if not 1 <= max_points <= 50:
            raise InvalidRequest("'max_points' must be from 1 to 50", param="max_points")
        if not MIN_WINDOW_CHARS <= window_chars <= MAX_WINDOW_CHARS:
            raise InvalidRequest(f"'window_chars' must be from {MIN_WINDOW_CHARS} to {MAX_WINDOW_CHARS} "
                                 "(characters of the document the model reads per call)", param="window_chars")
        self.llm = llm
        self.max_points = max_points
        self.window_chars = window_chars
        self.progress = progress or (lambda done, total: None)
        self.min_grounding = min_grounding
        self.usage = Usage()
        self.calls = 0
        self._total = 0

    def run(self, doc: Document) -> dict[str, Any]:
        chunks = readable_chunks(doc)
        texts = [c.text for c in chunks]
        groups = windows(texts, self.window_chars)
        self._total = len(groups) + max(1, len(groups) // 4)  # a first guess at the reduce calls
        points: list[Point] = []
        for group in groups:
            points += self._call([texts[i] for i in group], [[i] for i in group], texts, POINTS_PER_CALL)
        rounds = 0
        while len(points) > self.max_points or sum(len(p.text) for p in points) > self.window_chars:
            merged = windows([p.text for p in points], self.window_chars)
            if len(merged) == 1 or rounds >= 8:
                break
            self._total = self.calls + len(merged) + 1
            points = [q for g in merged for q in self._call([points[i].text for i in g],
                                                            [points[i].chunks for i in g], texts, POINTS_PER_CALL)]
            rounds += 1
        self._total = self.calls + 1
        final = self._call([p.text for p in points], [p.chunks for p in points], texts, self.max_points)
        return {"summary": "\n".join(f"- {p.text}" for p in final),
                "points": [{"text": p.text, "citations": _citations(doc, [chunks[i] for i in sorted(p.chunks)])}
                           for p in final],
                "pages": doc.pages, "chunks": len(chunks), "windows": len(groups), "calls": self.calls,
                "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens}}

    def _call(self, items: list[str], under: list[list[int]], texts: list[str], most: int) -> list[Point]:
        """One LLM call over numbered items; each point it writes cites item ids, which become
        the chunks under those items. A point whose words are not in what it cites is re-cited
        to the items that hold most of them, or dropped."""
        ids = [str(i + 1) for i in range(len(items))]
        schema = {"type": "object", "properties": {"points": {"type": "array", "maxItems": most, "items": {
            "type": "object", "properties": {
                "sources": {"type": "array", "items": {"enum": ids}, "minItems": 1, "maxItems": len(ids)},
                "text": {"type": "string", "maxLength": MAX_POINT_CHARS}},
            "required": ["sources", "text"], "additionalProperties": False}}},
            "required": ["points"], "additionalProperties": False}
        listing = "\n".join(f"[{i}] {t}" for i, t in zip(ids, items))
        system = (f"Summarize the numbered passages as at most {most} short points, the most important first. "
                  "Each point lists the ids of the passages it comes from, then states one fact from them in a "
                  "sentence. Use only what the passages say. Reply with only the JSON object.")
        result = self.llm.chat({"messages": [{"role": "system", "content": system},
                                             {"role": "user", "content": listing}],
                                "temperature": 0.0, "max_tokens": 90 * most + 20}, schema=compile_schema(schema))
        self.usage.add(result)
        self.calls += 1
        self.progress(self.calls, max(self._total, self.calls))
        try:
            data = json.loads(result["choices"][0]["message"]["content"] or "{}")
        except ValueError:
            data = {}  # cut off by the token budget: this window adds nothing rather than failing the run
        points = []
        for raw in (data.get("points") or [])[:most]:
            text = str(raw.get("text") or "").strip()
            cited = [int(s) - 1 for s in dict.fromkeys(raw.get("sources") or []) if s in ids]
            if not text:
                continue
            if grounded_in(text, [items[i] for i in cited]) < self.min_grounding:
                best = sorted(range(len(items)), key=lambda i: -grounded_in(text, [items[i]]))[:2]
                if grounded_in(text, [items[i] for i in best]) < self.min_grounding:
                    continue  # not in the text it summarizes: left out
                cited = best
            points.append(Point(text, sorted({c for i in cited for c in under[i]})))
        return points


def _citations(doc: Document, chunks: list[Chunk]) -> list[dict[str, Any]]:
    """Where a point's chunks are: one entry per page (its first and last line there)."""
    by_page: dict[int | None, list[Chunk]] = {}
    for c in chunks:
        by_page.setdefault(c.page, []).append(c)
    out = []
    for page, cs in by_page.items():
        start = min(c.line_start for c in cs if c.line_start is not None) if any(
            c.line_start is not None for c in cs) else None
        end = max(c.line_end for c in cs if c.line_end is not None) if any(
            c.line_end is not None for c in cs) else None
        where = ", ".join(x for x in (doc.filename or doc.name, f"page {page}" if page is not None else "",
                                      f"lines {start}-{end}" if start is not None else "") if x)
        out.append({"page": page, "line_start": start, "line_end": end, "where": where})
    return out
