"""The document layer: files in, text with provenance out.

Images, PDFs, audio, video and plain text become a ``Document`` whose ``text`` keeps the
layout (reading order, line breaks, table rows as lines) and whose ``segments`` say where
each piece came from (page and box, or seconds). The whole API::

    read(part: Part, limits: Limits = Limits()) -> Document   # sync, CPU-bound: run it in a thread
    sniff(data: bytes) -> str | None                          # MIME type from magic numbers
    as_prompt(docs: list[Document]) -> str                    # text with "[file 1: a.pdf, page 2]" markers

    Part(mime_type, data, name, filename=None)   # name: where in the request ("messages.0.content.1")
    Document(name, mime_type, kind, text, segments, pages, seconds, method, ocr_ms, asr_ms, language,
             notes, filename)                    # kind: image | pdf | audio | video | text
    Segment(text, page=None, box=None, start_s=None, end_s=None)
    Limits(max_bytes=20 MB, max_pages=50, max_pixels=40 M, max_seconds=600, ...)

How each kind is read:

- images (png, jpeg, webp, gif, bmp, tiff): OCR (``documents.ocr``: rapidocr by default,
  tesseract registered too; ``Limits.ocr_engine`` picks one).
- PDF: the text layer (pypdfium2); pages without a usable one are rendered and OCR'd.
- audio (wav, mp3, ogg, m4a, flac): Whisper tiny.en (``documents.speech``), English only.
- video: the audio track through speech recognition, a frame every few seconds through OCR
  (identical frame texts once); needs Debian's ffmpeg, as do compressed audio formats.
- text/plain, text/markdown, text/csv, application/json: decoded as they are.

Bad input never crashes or hangs a worker: a type the bytes contradict, a corrupt or
truncated file, a pixel, page or duration bomb, or an unsupported type raise InvalidRequest
(HTTP 400, ``param`` = the part's name); a file over ``max_bytes`` raises PayloadTooLarge
(413). Limits are checked from headers before anything is decoded, and external decoders
run as processes with timeouts.

``read`` is safe to call from several threads at once: the OCR and speech models load once,
lazily, and each serialises its own inference; PDFium calls share one lock.
"""

from __future__ import annotations

from litegate.documents.prompt import as_prompt
from litegate.documents.reader import read
from litegate.documents.sniff import SUPPORTED, sniff
from litegate.documents.types import Document, Limits, Part, Segment

__all__ = ["Document", "Limits", "Part", "Segment", "SUPPORTED", "as_prompt", "read", "sniff"]
