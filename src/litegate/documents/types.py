"""The document layer's values: what goes in (a Part), what comes out (a Document of Segments)
and the bounds every read is held to (Limits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Part:
    """One file from a request. ``name`` says where in the request it came from
    (``messages.0.content.1``): errors name it as their ``param``. ``filename`` is what the
    user called it, when known, for the prompt's provenance markers."""

    mime_type: str | None
    data: bytes
    name: str
    filename: str | None = None


@dataclass
class Segment:
    """A piece of a document's text and where it came from: a page and a box (pixels of the
    page as read, ``[x0, y0, x1, y1]``) for text on pages, seconds for speech and video."""

    text: str
    page: int | None = None
    box: list[float] | None = None
    start_s: float | None = None
    end_s: float | None = None
    # a PDF text layer's page: its lines (text, box in points) for extractors that read layout;
    # ``text`` stays the text layer as PDFium orders it
    lines: list[tuple[str, list[float]]] | None = None


@dataclass
class Document:
    """A file turned into text. ``text`` keeps the layout (reading order, line breaks, table
    rows as lines; pages separated by a blank line); ``segments`` say where each piece was."""

    name: str
    mime_type: str
    kind: str  # "image" | "pdf" | "audio" | "video" | "text"
    text: str
    segments: list[Segment] = field(default_factory=list)
    pages: int = 0  # PDF pages, image frames, or video frames OCR'd
    seconds: float = 0.0  # audio and video duration
    method: str = ""  # "text", "text-layer", "ocr", "text-layer+ocr", "asr", "asr+ocr"
    ocr_ms: float = 0.0
    asr_ms: float = 0.0
    ocr_pages: int = 0  # pages and frames read by OCR (what a document is priced by, with audio seconds)
    language: str | None = None
    notes: list[str] = field(default_factory=list)
    filename: str | None = None


@dataclass(frozen=True)
class Limits:
    """Bounds on one read, so that no input can take unbounded time or memory."""

    max_bytes: int = 20 * 1024 * 1024  # larger: PayloadTooLarge (HTTP 413)
    max_pages: int = 50  # PDF pages and TIFF frames
    max_pixels: int = 40_000_000  # per image or rendered page; checked before decoding
    max_seconds: float = 600.0  # audio and video duration, checked before decoding
    render_dpi: int = 150  # PDF pages without a usable text layer are rendered at this for OCR
    frame_every_s: float = 5.0  # a video frame is OCR'd this often
    max_frames: int = 40  # at most this many video frames are OCR'd (spread over the video)
    tool_timeout_s: float = 120.0  # one ffmpeg / ffprobe / tesseract run
    ocr_engine: str | None = None  # None: the default engine (see documents.ocr)
    speech_model: str | None = None  # None: whisper-tiny.en; "whisper-base" is multilingual (documents.speech)
    line_boxes: bool = True  # a PDF text layer's lines with their boxes (from every character's); off where
    # only the text is wanted (collections' ingest: about 0.07 s a page)


def as_json(doc: Document) -> dict[str, Any]:
    """A document as JSON: its text exactly as tasks and chats read it, and each line (or timed
    piece) with where it was: page and box ``{x, y, w, h}`` in the page's pixels, or seconds."""
    lines = []
    for seg in doc.segments:
        entry: dict[str, Any] = {"text": seg.text}
        if seg.page is not None or seg.box is not None:
            entry["page"] = seg.page or 1
        if seg.box is not None:
            x0, y0, x1, y1 = seg.box
            entry["box"] = {"x": round(x0, 1), "y": round(y0, 1), "w": round(x1 - x0, 1), "h": round(y1 - y0, 1)}
        if seg.start_s is not None:
            entry["start_s"] = round(seg.start_s, 2)
        if seg.end_s is not None:
            entry["end_s"] = round(seg.end_s, 2)
        lines.append(entry)
    return {"name": doc.name, "filename": doc.filename, "mime_type": doc.mime_type, "kind": doc.kind,
            "method": doc.method, "pages": doc.pages, "text": doc.text, "lines": lines, "notes": list(doc.notes)}
