"""PDFs through pypdfium2: the text layer where a page has one, OCR of the rendered page where
it does not (a scan), with the page count and the rendered size bounded. A text layer's
characters are grouped into lines with boxes, a line split where a wide gap parts two columns,
so extractors see where text sits as they do on OCR'd pages.

PDFium is not thread-safe, so every call into it holds one process-wide lock; OCR runs
outside it, page by page, so a long scan does not stall other requests' PDFs for long and
at most one rendered page per request is held in memory.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from litegate.documents import textlines
from litegate.documents.images import ocr_image
from litegate.documents.types import Document, Limits, Part, Segment
from litegate.errors import InvalidRequest, ModelNotAvailable

_PDFIUM = threading.Lock()
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
MIN_TEXT_CHARS = 10  # fewer non-blank characters on a page: treat it as a scan
UPRIGHT = 0.1  # radians a character may turn and still belong to a line
MAX_RENDER_PIXELS = 12_000_000  # a rendered page is scaled down to stay under this (about A3 at 150 dpi)


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError:
        raise ModelNotAvailable("PDF support is not installed; install it with: pip install pypdfium2") from None
    return pypdfium2


def _usable(text: str) -> bool:
    """Whether a page's text layer is worth keeping: enough characters, few of them the
    replacement or control characters a broken font encoding produces."""
    chars = [c for c in text if not c.isspace()]
    if len(chars) < MIN_TEXT_CHARS:
        return False
    bad = sum(1 for c in chars if c == "\ufffd" or (ord(c) < 32) or 0xE000 <= ord(c) <= 0xF8FF)
    return bad <= 0.1 * len(chars)


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def read_pdf(part: Part, limits: Limits) -> Document:
    pdfium = _pdfium()
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(part.data)
        except pdfium.PdfiumError as e:
            if getattr(e, "err_code", None) == _PASSWORD_ERROR:
                raise InvalidRequest(f"{part.name} is an encrypted PDF that needs a password to open; send it "
                                     "decrypted", param=part.name, code="encrypted_document") from None
            raise InvalidRequest(f"{part.name} is not a readable PDF (corrupt or truncated: {e}); check the file",
                                 param=part.name, code="invalid_document") from None
        count = len(pdf)
    try:
        if count == 0:
            raise InvalidRequest(f"{part.name} is a PDF with no pages", param=part.name, code="invalid_document")
        if count > limits.max_pages:
            raise InvalidRequest(f"{part.name} has {count} pages, over the {limits.max_pages}-page limit; send the "
                                 "pages you need", param=part.name, code="too_many_pages")
        texts: list[str] = []
        segments: list[Segment] = []
        ocr_pages, ocr_ms, notes = 0, 0.0, []
        for number in range(1, count + 1):
            text, image, pieces = _page(pdfium, pdf, number - 1, part, limits)
            if image is None:
                texts.append(text)
                if text:
                    segments.append(Segment(text, page=number, lines=pieces or None))
                continue
            ocr_pages += 1
            page_text, page_segments, ms = ocr_image(image, limits.ocr_engine, page=number)
            del image
            ocr_ms += ms
            texts.append(page_text)
            segments.extend(page_segments)
    finally:
        with _PDFIUM:
            pdf.close()
    method = "ocr" if ocr_pages == count else "text-layer" if ocr_pages == 0 else "text-layer+ocr"
    if 0 < ocr_pages < count:
        notes.append(f"{ocr_pages} of {count} pages had no usable text layer and were read by OCR")
    body = "\n\n".join(t for t in texts if t)
    if not body:
        notes.append("no text was found in the PDF")
    return Document(name=part.name, mime_type="application/pdf", kind="pdf", text=body, segments=segments,
                    pages=count, method=method, ocr_ms=ocr_ms, ocr_pages=ocr_pages, notes=notes,
                    filename=part.filename)


def _page(pdfium: Any, pdf: Any, index: int, part: Part, limits: Limits) -> tuple[str, Any, list[textlines.Piece]]:
    """(text layer, None, its lines with boxes) for a page with a usable text layer, else ("",
    rendered image, [])."""
    with _PDFIUM:
        try:
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = _clean(textpage.get_text_range())
                    boxed = limits.line_boxes and _usable(text)
                    pieces = textlines.pieces(_glyphs(textpage, page.get_size()[1])) if boxed else []
                finally:
                    textpage.close()
                if _usable(text):
                    return text, None, pieces
                width, height = page.get_size()  # points (1/72 inch)
                if not (width > 0 and height > 0):
                    raise InvalidRequest(f"{part.name} page {index + 1} has no size: the PDF is corrupt",
                                         param=part.name, code="invalid_document")
                scale = limits.render_dpi / 72
                cap = min(MAX_RENDER_PIXELS, limits.max_pixels)
                if width * height * scale * scale > cap:  # a poster-sized (or absurd) page
                    scale = (cap / (width * height)) ** 0.5
                bitmap = page.render(scale=scale, may_draw_forms=True)
                try:
                    image = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
                return "", image, []
            finally:
                page.close()
        except pdfium.PdfiumError as e:
            raise InvalidRequest(f"{part.name} page {index + 1} cannot be read ({e}): the PDF is corrupt",
                                 param=part.name, code="invalid_document") from None


def _glyphs(textpage: Any, page_height: float) -> list[textlines.Glyph]:
    """The text layer's upright characters with their boxes, top-down in points (PDF y runs
    upwards). Turned text (a margin note printed sideways) is left out of the lines: its
    characters would each stand as a line of their own."""
    import pypdfium2.raw as pdfium_c

    out = []
    spaced = False
    for i in range(textpage.count_chars()):
        ch = textpage.get_text_range(i, 1)
        if not ch or ch.isspace():
            spaced = True
            continue
        angle = pdfium_c.FPDFText_GetCharAngle(textpage.raw, i)
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        if right < left or top <= bottom or min(angle, 2 * math.pi - angle) > UPRIGHT:
            continue
        out.append(textlines.Glyph(ch, left, page_height - top, right, page_height - bottom, spaced))
        spaced = False
    return out
