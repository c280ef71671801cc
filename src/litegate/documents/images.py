"""Images: opened with their size checked before any pixel is decoded, then OCR'd."""

from __future__ import annotations

import io
import re
import time
from typing import Any

from litegate.documents import ocr, preprocess
from litegate.documents.types import Document, Limits, Part, Segment
from litegate.errors import InvalidRequest

OCR_MAX_SIDE = ocr.MAX_SIDE  # larger images are scaled down before OCR: text stays legible, time bounded
TURN_BELOW = 0.8  # a page read with less mean confidence than this is also read turned by 180 degrees


def check_pixels(part: Part, width: int, height: int, limits: Limits, what: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise InvalidRequest(f"{part.name} is a {what} of {width}x{height} pixels: it is corrupt", param=part.name,
                             code="invalid_document")
    if width * height > limits.max_pixels:
        raise InvalidRequest(f"{part.name} is a {what} of {width}x{height} pixels ({width * height / 1e6:.0f} "
                             f"megapixels), over the {limits.max_pixels / 1e6:g} megapixel limit; send a smaller "
                             "image", param=part.name, code="image_too_large")


def open_frames(part: Part, limits: Limits) -> list[Any]:
    """The decoded pages of an image (TIFF may hold several; other formats give their first
    frame), each checked against the pixel limit before it is decoded."""
    from PIL import Image, ImageOps

    # Image.open reads only the header; the pixel check runs before load() decodes anything.
    # (Pillow's own bomb guard, an error at twice its MAX_IMAGE_PIXELS, stays on behind it.)
    try:
        im = Image.open(io.BytesIO(part.data))
        frames = []
        count = getattr(im, "n_frames", 1) if im.format == "TIFF" else 1
        if count > limits.max_pages:
            raise InvalidRequest(f"{part.name} has {count} pages, over the {limits.max_pages}-page limit",
                                 param=part.name, code="too_many_pages")
        for i in range(count):
            if i:
                im.seek(i)
            check_pixels(part, im.size[0], im.size[1], limits)
            im.load()
            frame = ImageOps.exif_transpose(im) if i == 0 else im.copy()
            frames.append(frame.convert("RGB") if frame.mode not in ("RGB", "L") else frame.copy())
        return frames
    except InvalidRequest:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own guard fires inside open(), before ours
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f" of {int(found.group(1)) / 1e6:.0f} megapixels" if found else ""
        raise InvalidRequest(f"{part.name} is an image{size}, over the {limits.max_pixels / 1e6:g} megapixel limit; "
                             "send a smaller image", param=part.name, code="image_too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as e:
        raise InvalidRequest(f"{part.name} is not a readable {part.mime_type or 'image'} (corrupt or truncated: "
                             f"{str(e)[:120] or type(e).__name__}); check the file", param=part.name,
                             code="invalid_document") from None


def _legibility(words: list[ocr.Word]) -> float:
    """How well a page read: the recogniser's mean confidence per character."""
    chars = sum(len(w.text) for w in words)
    return sum(w.score * len(w.text) for w in words) / chars if chars else 0.0


def recognize_upright(engine: ocr.OcrEngine, prepared: Any, place: preprocess.Placement) -> list[ocr.Word]:
    """The words of a prepared page; read again turned by 180 degrees when it read poorly (an
    upside-down scan reads as low-confidence gibberish), and ``place`` marked turned if that
    reading is the better one."""
    words = engine.recognize(prepared)
    if words and _legibility(words) < TURN_BELOW:
        turned = engine.recognize(prepared.rotate(180))
        if _legibility(turned) > _legibility(words) + 0.05:
            words, place.turned = turned, True
    return words


def ocr_image(image: Any, engine_name: str | None, page: int | None = None) -> tuple[str, list[Segment], float]:
    """(text, one segment per line, milliseconds spent) for one page image: the document found
    on it and prepared (``documents.preprocess``), read, and read again turned by 180 degrees
    when it read poorly (an upside-down scan reads as low-confidence gibberish)."""
    started = time.perf_counter()
    prepared, place = preprocess.prepare(image, OCR_MAX_SIDE)
    words = recognize_upright(ocr.engine(engine_name), prepared, place)
    ms = (time.perf_counter() - started) * 1000
    lines = ocr.layout(words)
    segments = [Segment(text, page=page, box=[round(v, 1) for v in place.to_original(box)]) for text, box in lines]
    return ocr.lines_to_text(lines), segments, ms


def read_image(part: Part, mime_type: str, limits: Limits) -> Document:
    frames = open_frames(part, limits)
    texts, segments, ms = [], [], 0.0
    for i, frame in enumerate(frames, 1):
        text, segs, spent = ocr_image(frame, limits.ocr_engine, page=i if len(frames) > 1 else None)
        texts.append(text)
        segments.extend(segs)
        ms += spent
    doc = Document(name=part.name, mime_type=mime_type, kind="image", text="\n\n".join(t for t in texts if t),
                   segments=segments, pages=len(frames), method="ocr", ocr_ms=ms, ocr_pages=len(frames),
                   filename=part.filename)
    if not doc.text:
        doc.notes.append("no text was found in the image")
    return doc
