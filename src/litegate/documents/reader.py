"""``read``: one Part in, one Document out, whatever the kind; the checks every kind shares
(size, declared type against the bytes) happen here, before any decoder runs."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from litegate.documents import media, speech
from litegate.documents.images import check_pixels, ocr_image, read_image
from litegate.documents.pdf import read_pdf
from litegate.documents.sniff import SUPPORTED, resolve_type
from litegate.documents.types import Document, Limits, Part, Segment
from litegate.errors import InvalidRequest, PayloadTooLarge


def read(part: Part, limits: Limits = Limits()) -> Document:
    """The text of ``part`` with its provenance. Synchronous and CPU-bound: call it from a
    worker thread. Bad input raises InvalidRequest (400) naming the part as ``param``; a part
    over ``limits.max_bytes`` raises PayloadTooLarge (413)."""
    if len(part.data) > limits.max_bytes:
        raise PayloadTooLarge(f"{part.name} is {len(part.data) / 1e6:.1f} MB, over the {limits.max_bytes / 1e6:g} MB "
                              "limit for one file; send a smaller file", param=part.name)
    if not part.data:
        raise InvalidRequest(f"{part.name} is empty", param=part.name, code="invalid_document")
    mime_type = resolve_type(part)
    return READERS[SUPPORTED[mime_type]](part, mime_type, limits)


def read_text(part: Part, mime_type: str) -> Document:
    data = part.data
    notes: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if b"\x00" in data[:4096]:
                raise InvalidRequest(f"{part.name} is declared {mime_type} but holds binary data; send it with its "
                                     "real type", param=part.name, code="mime_type_mismatch") from None
            text = data.decode("cp1252", errors="replace")
            notes.append("the text is not UTF-8; it was read as Windows-1252")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise InvalidRequest(f"{part.name} is declared {mime_type} but holds binary data; send it with its real type",
                             param=part.name, code="mime_type_mismatch")
    if mime_type == "application/json":
        try:
            json.loads(text)
        except ValueError as e:
            raise InvalidRequest(f"{part.name} is declared application/json but is not valid JSON ({e})",
                                 param=part.name, code="invalid_document") from None
    return Document(name=part.name, mime_type=mime_type, kind="text", text=text,
                    segments=[Segment(text)] if text else [], pages=1, method="text", notes=notes,
                    filename=part.filename)


def _asr(samples: object, doc: Document, limits: Limits) -> None:
    recognizer = speech.recognizer(limits.speech_model)
    segments, language, ms = recognizer.transcribe(samples)
    doc.segments.extend(segments)
    doc.asr_ms += ms
    doc.language = language
    if recognizer.model.english_only:
        doc.notes.append(speech.ENGLISH_ONLY_NOTE)


def read_audio(part: Part, mime_type: str, limits: Limits) -> Document:
    doc = Document(name=part.name, mime_type=mime_type, kind="audio", text="", method="asr", filename=part.filename)
    if mime_type == "audio/wav" and (_plain_pcm(part.data) or shutil.which("ffmpeg") is None):
        doc.seconds = media.wav_duration(part)
        media.check_duration(part, doc.seconds, limits)
        samples = media.decode_wav(part, limits)
    else:
        with tempfile.TemporaryDirectory(prefix="litegate-doc-") as tmp:
            path = Path(tmp) / "input"
            path.write_bytes(part.data)
            info = media.probe(path, part, limits)
            media.check_duration(part, info.duration, limits)
            if not info.has_audio:
                raise InvalidRequest(f"{part.name} has no audio track", param=part.name, code="invalid_document")
            samples = media.decode_audio(path, part, limits)
            doc.seconds = info.duration or 0.0
    doc.seconds = round(doc.seconds or len(samples) / media.SAMPLE_RATE, 2)
    if len(samples):
        _asr(samples, doc, limits)
    doc.text = "\n".join(s.text for s in doc.segments)
    if not doc.text:
        doc.notes.append("no speech was recognised")
    return doc


def _plain_pcm(data: bytes) -> bool:
    """Whether a WAV is integer PCM that the in-process reader handles (else ffmpeg decodes it)."""
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data)):
            return True
    except (wave.Error, EOFError, ValueError):
        return False


def read_video(part: Part, mime_type: str, limits: Limits) -> Document:
    doc = Document(name=part.name, mime_type=mime_type, kind="video", text="", method="asr+ocr",
                   filename=part.filename)
    with tempfile.TemporaryDirectory(prefix="litegate-doc-") as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(part.data)
        info = media.probe(path, part, limits)
        media.check_duration(part, info.duration, limits)
        if info.has_video:
            check_pixels(part, info.width or 1, info.height or 1, limits, what="video")
        doc.seconds = round(info.duration or 0.0, 2)
        if info.has_audio:
            samples = media.decode_audio(path, part, limits)
            if len(samples):
                _asr(samples, doc, limits)
        else:
            doc.notes.append("the video has no audio track")
        seen: set[str] = set()
        if info.has_video:
            frames_dir = Path(tmp) / "frames"
            frames_dir.mkdir()
            for at, image in media.video_frames(path, part, limits, info.duration, frames_dir):
                text, _, ms = ocr_image(image, limits.ocr_engine)
                doc.ocr_ms += ms
                doc.pages += 1
                doc.ocr_pages += 1
                key = " ".join(text.split()).lower()
                if key and key not in seen:  # a slide or caption shown for many frames counts once
                    seen.add(key)
                    doc.segments.append(Segment(text, start_s=at))
    doc.segments.sort(key=lambda s: (s.start_s or 0.0, s.box is not None))
    spoken = [s for s in doc.segments if s.end_s is not None]
    shown = [s for s in doc.segments if s.end_s is None]
    blocks = []
    if spoken:
        blocks.append("\n".join(s.text for s in spoken))
    if shown:
        blocks.append("\n\n".join(s.text for s in shown))
    doc.text = "\n\n".join(blocks)
    if not doc.text:
        doc.notes.append("no speech or on-screen text was found")
    return doc


Reader = Callable[[Part, str, Limits], Document]  # (the part, its checked MIME type, the limits)

# A document kind's reader, by the kind ``sniff.SUPPORTED`` gives its MIME types: a new kind is a
# module with its reader, its types in SUPPORTED, and a line here.
READERS: dict[str, Reader] = {
    "text": lambda part, mime_type, limits: read_text(part, mime_type),
    "image": read_image,
    "pdf": lambda part, mime_type, limits: read_pdf(part, limits),
    "audio": read_audio,
    "video": read_video,
}
