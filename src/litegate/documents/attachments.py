"""Files in requests, for every front end: media parts become text with provenance (the
document layer) before any tier sees them, in one place.

Front ends hand over parts in the OpenAI chat shape (the Gemini, Responses and Ollama
adapters convert theirs): ``image_url`` (a data URL, or an http(s) URL when fetching is on),
``input_audio`` (base64 ``data`` and a ``format``), ``file`` (``file_data`` as a data URL or
base64, or a ``file_id`` from the Files APIs), and the Responses API's ``input_image`` /
``input_file``. Tasks send ``files: [{"mime_type", "data"} | {"file_id"}]``.

No vision model ships in any package, so an image is read by OCR: the reply's metadata says
so (``litegate.documents[].notes``). URL fetches (``LITEGATE_FETCH_URLS=1``) go through a guard:
the host is resolved once, every address must be public (no loopback, private, link-local,
metadata or multicast address), the connection goes to the checked address, redirects are
checked the same way, and size and time are capped.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from litegate.documents import SUPPORTED, Limits, Part, as_prompt, read, sniff
from litegate.documents.sniff import resolve_type
from litegate.documents.types import as_json
from litegate.errors import InvalidRequest, NotFound, PayloadTooLarge
from litegate.ledger.pricing import document_cost
from litegate.tenancy import current

MEDIA_PART_TYPES = ("image_url", "input_audio", "file", "input_image", "input_file")
AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac",
                 "m4a": "audio/mp4", "webm": "audio/webm", "aac": "audio/aac"}
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)
NO_VISION_NOTE = "no vision model is loaded: only the image's text was read (OCR)"


@dataclass
class Read:
    """The documents one call read, and what reading them cost."""

    documents: list[Any] = field(default_factory=list)

    @property
    def ocr_ms(self) -> float:
        return sum(d.ocr_ms for d in self.documents)

    @property
    def asr_ms(self) -> float:
        return sum(d.asr_ms for d in self.documents)

    @property
    def cost_usd(self) -> float:
        """OCR and speech recognition are local compute, priced per OCR'd page and per second
        of audio transcribed (litegate.ledger.pricing), not by how long they took today."""
        return sum(document_cost(d.ocr_pages, d.seconds if d.asr_ms > 0 else 0.0) for d in self.documents)

    def summary(self, with_text: bool = False) -> list[dict[str, Any]]:
        """What each file was; with ``with_text``, also the text it became and its lines."""

        out = []
        for d in self.documents:
            notes = list(d.notes) + ([NO_VISION_NOTE] if d.kind == "image" or "ocr" in d.method else [])
            out.append({"name": d.name, "filename": d.filename, "mime_type": d.mime_type, "kind": d.kind,
                        "method": d.method, "pages": d.pages, "seconds": round(d.seconds, 2),
                        "ocr_ms": round(d.ocr_ms, 1), "asr_ms": round(d.asr_ms, 1), "language": d.language,
                        "chars": len(d.text), "notes": list(dict.fromkeys(notes)),
                        **({k: v for k, v in as_json(d).items() if k in ("text", "lines")} if with_text else {})})
        return out

    def usage(self) -> dict[str, Any]:
        return {"files": len(self.documents), "pages": sum(d.pages for d in self.documents),
                "audio_seconds": round(sum(d.seconds for d in self.documents), 2),
                "ocr_ms": round(self.ocr_ms, 1), "asr_ms": round(self.asr_ms, 1)}


class Attachments:
    def __init__(self, files: Any = None, *, fetch_urls: bool = False, max_request_mb: float = 20.0,
                 fetch_timeout_s: float = 10.0, pool: Any = None):

        self.files = files  # litegate.jobs.files.FileStore: file_id / fileUri references
        # litegate.documents.pool.DocumentPool: heavy files are read there (None: in the caller's thread)
        self.pool = pool
        self.fetch_urls = fetch_urls
        self.max_request_bytes = int(max_request_mb * (1 << 20))
        self.limits = Limits(max_bytes=self.max_request_bytes)
        self.fetch_timeout_s = fetch_timeout_s

    # -- parts ----------------------------------------------------------------------------

    def part(self, raw: dict[str, Any], where: str) -> Any:
        """A media content part (OpenAI chat or Responses shape) as a document Part."""

        kind = raw.get("type")
        if kind in ("image_url", "input_image"):
            value = raw.get("image_url")
            url = value.get("url") if isinstance(value, dict) else value
            if raw.get("file_id"):
                return self._stored(str(raw["file_id"]), where)
            if not isinstance(url, str) or not url:
                raise InvalidRequest(f"{where}.image_url must carry a url (a data: URL)", param=where)
            return self._url(url, where, None)
        if kind == "input_audio":
            audio = given if isinstance(given := raw.get("input_audio"), dict) else raw
            fmt, data = str(audio.get("format") or "").lower(), audio.get("data")
            if fmt not in AUDIO_FORMATS:
                raise InvalidRequest(f"{where}.input_audio.format must be one of {', '.join(AUDIO_FORMATS)}",
                                     param=f"{where}.input_audio.format")
            return Part(AUDIO_FORMATS[fmt], _b64(data, f"{where}.input_audio.data"), where, f"audio.{fmt}")
        if kind in ("file", "input_file"):
            f = given if isinstance(given := raw.get("file"), dict) else raw
            filename = f.get("filename") if isinstance(f.get("filename"), str) else None
            if f.get("file_id"):
                return self._stored(str(f["file_id"]), where, filename)
            data = f.get("file_data")
            if isinstance(data, str) and data.startswith("data:"):
                return self._url(data, where, filename)
            if isinstance(data, str) and data:
                return Part(None, _b64(data, f"{where}.file.file_data"), where, filename)
            if isinstance(f.get("file_url"), str):
                return self._url(f["file_url"], where, filename)
            raise InvalidRequest(f"{where}.file needs file_data (base64 or a data: URL) or a file_id", param=where)
        raise InvalidRequest(f"{where}: content parts of type {kind!r} are not supported; send text, image_url, "
                             "input_audio or file parts", param=f"{where}.type")

    def task_part(self, raw: Any, where: str) -> Any:
        """A task's ``files`` item: ``{"mime_type", "data"}`` (base64) or ``{"file_id"}``."""

        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where} must be an object with mime_type and data, or a file_id", param=where)
        filename = raw.get("filename") if isinstance(raw.get("filename"), str) else None
        if raw.get("file_id"):
            return self._stored(str(raw["file_id"]), where, filename)
        if isinstance(raw.get("url"), str):
            return self._url(raw["url"], where, filename)
        mime = raw.get("mime_type")
        if mime is not None and not isinstance(mime, str):
            raise InvalidRequest(f"{where}.mime_type must be a string such as application/pdf", param=where)
        return Part(mime, _b64(raw.get("data"), f"{where}.data"), where, filename)

    def _stored(self, file_id: str, where: str, filename: str | None = None) -> Any:

        if self.files is None:
            raise InvalidRequest(f"{where}: file ids need a server with a Files API", param=where)
        name = file_id.split("/files/")[-1].removeprefix("files/").split(":")[0]
        try:
            stored = self.files.get(name, current())  # the caller's own files only
            data = self.files.content(name, current())
        except NotFound:
            raise NotFound(f"{where}: no file {file_id[:80]!r}; upload it first (POST /v1/files, or "
                           "files.upload)", param=where) from None
        mime = stored.mime_type if stored.mime_type not in (None, "application/octet-stream") else None
        return Part(mime, data, where, filename or stored.filename)

    def _url(self, url: str, where: str, filename: str | None) -> Any:

        m = DATA_URL.match(url)
        if m:
            payload = url[m.end():]
            if m.group(3):
                data = _b64(payload, where)
            else:
                from urllib.parse import unquote_to_bytes

                data = unquote_to_bytes(payload)
            return Part(m.group(1), data, where, filename)
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidRequest(f"{where}: a file must be a data: URL (or http(s) when fetching is on)", param=where)
        if not self.fetch_urls:
            raise InvalidRequest(f"{where}: fetching URLs is off on this server; send the file inline as a data: URL "
                                 "(or start the server with LITEGATE_FETCH_URLS=1)", param=where,
                                 code="url_fetch_disabled")
        data, mime = self.fetch(url, where)
        return Part(mime, data, where, filename or urlsplit(url).path.rsplit("/", 1)[-1] or None)

    # -- fetching -------------------------------------------------------------------------

    def fetch(self, url: str, where: str, redirects: int = 3) -> tuple[bytes, str | None]:
        """GET a public http(s) URL, connecting only to an address checked to be public."""
        import httpx

        deadline = time.monotonic() + self.fetch_timeout_s
        for _ in range(redirects + 1):
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
            if parts.scheme not in ("http", "https") or not host:
                raise InvalidRequest(f"{where}: {url[:100]!r} is not an http(s) URL", param=where)
            address = public_address(host, port, where)
            target = parts._replace(netloc=(f"[{address}]" if ":" in address else address) + f":{port}").geturl()
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "litegate"}
            ext = {"sni_hostname": host} if parts.scheme == "https" else {}
            timeout = max(0.5, deadline - time.monotonic())
            try:
                with httpx.Client(timeout=timeout, follow_redirects=False, verify=True) as client:
                    with client.stream("GET", target, headers=headers, extensions=ext) as r:
                        if r.is_redirect:
                            url = str(httpx.URL(url).join(r.headers.get("location", "")))
                            continue
                        if r.status_code != 200:
                            raise InvalidRequest(f"{where}: fetching {url[:100]!r} answered {r.status_code}",
                                                 param=where)
                        declared = r.headers.get("content-length")
                        if declared and declared.isdigit() and int(declared) > self.max_request_bytes:
                            raise PayloadTooLarge(f"{where}: {url[:100]!r} is larger than "
                                                  f"{self.max_request_bytes >> 20} MB", param=where)
                        chunks, size = [], 0
                        for chunk in r.iter_bytes():
                            size += len(chunk)
                            if size > self.max_request_bytes:
                                raise PayloadTooLarge(f"{where}: {url[:100]!r} is larger than "
                                                      f"{self.max_request_bytes >> 20} MB", param=where)
                            if time.monotonic() > deadline:
                                raise InvalidRequest(f"{where}: fetching {url[:100]!r} took longer than "
                                                     f"{self.fetch_timeout_s:g} s", param=where)
                            chunks.append(chunk)
                        mime = (r.headers.get("content-type") or "").split(";")[0].strip() or None
                        return b"".join(chunks), mime
            except httpx.HTTPError as e:
                raise InvalidRequest(f"{where}: fetching {url[:100]!r} failed: {type(e).__name__}", param=where) \
                    from None
        raise InvalidRequest(f"{where}: {url[:100]!r} redirects more than {redirects} times", param=where)

    # -- reading --------------------------------------------------------------------------

    def read(self, parts: list[Any]) -> Read:
        """Every part as a Document; the parts of one request share the size limit."""

        total = sum(len(p.data) for p in parts)
        if total > self.max_request_bytes:
            raise PayloadTooLarge(f"the request's files come to {total / 1e6:.1f} MB; at most "
                                  f"{self.max_request_bytes / 1e6:g} MB per request (LITEGATE_MAX_DOCUMENT_MB)")
        return Read([self._read_one(read, p) for p in parts])

    def _read_one(self, read: Any, part: Any) -> Any:
        """One part: plain text in the caller's thread, anything that needs OCR, speech or
        rendering through the document pool (which may refuse it: Overloaded, 503)."""

        if self.pool is None or len(part.data) > self.limits.max_bytes or not part.data \
                or SUPPORTED.get(resolve_type(part)) == "text":
            return read(part, self.limits)  # (the reader's own checks answer the bad cases at once)
        return self.pool.run(read, part, self.limits)

    def resolve_messages(self, messages: list[Any], keep_images: bool = False) -> Read:
        """Chat messages (pydantic ChatMessage or dicts) with media parts: each such part is
        replaced, in place, by a text part holding the file's text with provenance markers.
        ``keep_images``: the model has a multimodal projector, so images stay images (as data
        URLs) and go to it. Returns what was read (empty when there were no files)."""

        found: list[tuple[Any, int, Any]] = []  # (message content list, index, Part)
        for i, msg in enumerate(messages):
            content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", None)
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                raw = _as_dict(part)
                if raw.get("type") not in MEDIA_PART_TYPES:
                    continue
                # front ends that convert their own shapes say where the part was in theirs
                p = self.part(raw, str(raw.get("where") or f"messages.{i}.content.{j}"))
                kind = sniff(p.data) or ""
                if keep_images and kind.startswith("image/"):
                    url = f"data:{kind};base64,{base64.b64encode(p.data).decode()}"
                    content[j] = _image_part(content[j], url)
                    continue
                found.append((content, j, p))
        if not found:
            return Read()
        done = self.read([p for _, _, p in found])
        for n, ((content, j, _), doc) in enumerate(zip(found, done.documents), 1):
            text = as_prompt([doc], start=n)
            content[j] = _text_part(content[j], text)
        return done


def public_address(host: str, port: int, where: str) -> str:
    """The host's first address, if every address it resolves to is public; else a 400."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidRequest(f"{where}: the host {host!r} does not resolve", param=where) from None
    addresses = [info[4][0] for info in infos if isinstance(info[4][0], str)]  # IPv4 and IPv6 hosts are text
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local:
            raise InvalidRequest(f"{where}: {host!r} resolves to {ip}, which is not a public address; only public "
                                 "addresses are fetched", param=where, code="forbidden_address")
    if not addresses:
        raise InvalidRequest(f"{where}: the host {host!r} does not resolve", param=where)
    return addresses[0]


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{where} must be base64-encoded bytes", param=where)
    value = value.strip().replace("-", "+").replace("_", "/")  # the URL-safe alphabet too (google-genai's)
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} is not valid base64", param=where) from None


def _as_dict(part: Any) -> dict[str, Any]:
    if isinstance(part, dict):
        return part
    dump = getattr(part, "model_dump", None)
    return dump() if dump is not None else {}


def _image_part(original: Any, url: str) -> Any:
    if isinstance(original, dict):
        return {"type": "image_url", "image_url": {"url": url}}
    return type(original)(type="image_url", image_url={"url": url})


def _text_part(original: Any, text: str) -> Any:
    if isinstance(original, dict):
        return {"type": "text", "text": text}
    return type(original)(type="text", text=text)
