"""File types from magic numbers, and the check that a declared type matches the bytes.

A declared ``mime_type`` is a claim by the client; the first bytes of the file are the truth.
A file whose bytes say something else is refused, so a mislabelled upload fails loudly
instead of being fed to the wrong decoder.
"""

from __future__ import annotations

from litegate.documents.types import Part
from litegate.errors import InvalidRequest

# canonical type -> kind; the order is the one error messages list them in
SUPPORTED: dict[str, str] = {
    "image/png": "image", "image/jpeg": "image", "image/webp": "image", "image/gif": "image",
    "image/bmp": "image", "image/tiff": "image",
    "application/pdf": "pdf",
    "audio/wav": "audio", "audio/mpeg": "audio", "audio/ogg": "audio", "audio/mp4": "audio", "audio/flac": "audio",
    "video/mp4": "video", "video/quicktime": "video", "video/webm": "video", "video/x-matroska": "video",
    "video/x-msvideo": "video", "video/ogg": "video",
    "text/plain": "text", "text/markdown": "text", "text/csv": "text", "application/json": "text",
}

ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/tif": "image/tiff",
    "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav", "audio/x-pn-wav": "audio/wav",
    "audio/mp3": "audio/mpeg", "audio/x-mp3": "audio/mpeg", "audio/mpeg3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4", "audio/aac": "audio/mp4",
    "audio/x-flac": "audio/flac", "audio/vorbis": "audio/ogg", "audio/opus": "audio/ogg",
    "application/ogg": "audio/ogg", "audio/webm": "video/webm", "video/mkv": "video/x-matroska",
    "video/avi": "video/x-msvideo", "video/x-m4v": "video/mp4",
    "application/x-pdf": "application/pdf",
    "text/x-markdown": "text/markdown", "text/md": "text/markdown", "application/csv": "text/csv",
    "text/json": "application/json",
}

UNDECLARED = {"", "application/octet-stream", "binary/octet-stream"}

# Types the same magic number stands for: the container says nothing about which one is meant.
_SAME_CONTAINER = [
    {"audio/mp4", "video/mp4", "video/quicktime"},
    {"audio/ogg", "video/ogg"},
    {"video/webm", "video/x-matroska"},
]


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes announce, or None (plain text has no magic number)."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64,
                                                                                               108, 124):
        return "image/bmp"
    if b"%PDF-" in data[:1024]:  # the spec allows junk before the header
        return "application/pdf"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "video/ogg" if b"theora" in data[:256] else "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                   and head[1] & 0x06 != 0):  # an MPEG audio frame header (layer set)
        return "audio/mpeg"
    # types we do not read, named so a mislabelled one gets a clear message
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"\x7fELF"):
        return "application/x-executable"
    return None


def canonical(mime_type: str | None) -> str:
    """``Image/JPG; charset=x`` -> ``image/jpeg``; "" when nothing was declared."""
    base = (mime_type or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def supported_list() -> str:
    return ", ".join(SUPPORTED)


def resolve_type(part: Part) -> str:
    """The type to read ``part`` as: the declared one when the bytes agree with it, the sniffed
    one when nothing was declared; InvalidRequest (param: the part) otherwise."""
    declared = canonical(part.mime_type)
    found = sniff(part.data)
    if declared in UNDECLARED:
        if found in SUPPORTED:
            return found
        if found is None and _looks_like_text(part.data):
            return "text/plain"
        what = f"a {found} file" if found else "not a file type litegate recognises"
        raise InvalidRequest(f"{part.name} declares no type and is {what}; supported types: {supported_list()}",
                             param=part.name, code="unsupported_document_type")
    if declared not in SUPPORTED:
        raise InvalidRequest(f"{part.name} has type {part.mime_type!r}, which cannot be read; supported types: "
                             f"{supported_list()}", param=part.name, code="unsupported_document_type")
    if SUPPORTED[declared] == "text":
        if found is not None:
            raise InvalidRequest(f"{part.name} is declared {declared} but its bytes are a {found} file; send it with "
                                 f"its real type", param=part.name, code="mime_type_mismatch")
        return declared
    if found == declared or any(found in group and declared in group for group in _SAME_CONTAINER):
        return declared
    if found is None:
        raise InvalidRequest(f"{part.name} is declared {declared} but its bytes are not a {declared} file (no "
                             f"{declared} header); check the file and its type", param=part.name,
                             code="mime_type_mismatch")
    raise InvalidRequest(f"{part.name} is declared {declared} but its bytes are a {found} file; send it with its "
                         f"real type", param=part.name, code="mime_type_mismatch")


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a character cut at the 4096-byte boundary
