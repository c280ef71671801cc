"""Request limits: the body size (413), the Host and a browser's Origin (421 / 403), applied
before any route runs; and work that ends when its client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from litegate.server.front import OPENAI_SHAPE, ErrorShape, ErrorShapes, Problem

T = TypeVar("T")

Scope = dict[str, Any]


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with a 413 before the route sees it: by its
    Content-Length when it has one, else by counting while it arrives. The body is buffered
    (it is bounded) and replayed to the app; later messages (a disconnect) pass through.
    Uploads (the ``larger`` paths) are not buffered: they stream to the route, which writes
    them to disk, and one that runs past its limit ends with ``BodyTooLarge``."""

    def __init__(self, app: Any, max_bytes: int, larger: dict[str, int] | None = None,
                 shapes: ErrorShapes | None = None):
        self.app = app
        self.shapes = shapes
        self.max_bytes = max_bytes
        self.larger = larger or {}  # path prefix -> its own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for prefix, n in self.larger.items() if path.startswith(prefix)), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        if limit != self.max_bytes:
            await self.app(scope, _counted(receive, limit), send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away while sending
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Any, limit: int) -> None:
        setting = "LITEGATE_MAX_FILE_MB" if limit != self.max_bytes else "LITEGATE_MAX_BODY_MB"
        await _refuse(_shape(self.shapes, scope), send, 413,
                      f"the request body is larger than the {limit / (1 << 20):g} MB limit ({setting})",
                      "request_too_large", close=True)


class BodyTooLarge(Exception):
    """An upload without a Content-Length ran past its limit while the route read it."""

    def __init__(self, limit: int):
        super().__init__(f"the request body is larger than the {limit / (1 << 20):g} MB limit (LITEGATE_MAX_FILE_MB)")
        self.limit = limit


def _counted(receive: Any, limit: int) -> Any:
    """``receive`` passing the body through as it arrives, counting it against ``limit``."""
    size = 0

    async def counted() -> dict[str, Any]:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _host_only(value: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostGuard:
    """DNS rebinding and cross-site requests: the ``Host`` header must name an allowed host
    (``"*"`` allows any), and a browser's ``Origin``, when sent, must be this server's own
    origin: the same scheme, an allowed host (or the Host itself) and the same port. ``Origin:
    null`` (sandboxed frames, ``data:`` pages) is refused, and so is a state-changing request
    a browser marks ``Sec-Fetch-Site: cross-site``. Clients that are not browsers send neither
    header and are unaffected. An ``--allowed-hosts`` entry with a scheme
    (``https://app.example.com``) allows that exact origin too (a page served elsewhere)."""

    def __init__(self, app: Any, allowed: list[str], shapes: ErrorShapes | None = None):
        self.app = app
        self.shapes = shapes
        self.any = "*" in allowed
        self.origins = {h.strip().lower().rstrip("/") for h in allowed if "://" in h}
        self.allowed = {_host_only(h) for h in allowed if h != "*" and "://" not in h}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "litegate.internal" in scope:  # batch lines come from within
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = _host_only(headers.get("host", ""))
        shape = _shape(self.shapes, scope)
        if not self.any and host not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            await _refuse(shape, send, 421, f"host {host!r} is not served here; allowed: {allowed} "
                                            "(litegate serve --allowed-hosts)", "host_not_allowed")
            return
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, scope, headers.get("host", "")):
            await _refuse(shape, send, 403, f"requests from web pages at {origin[:100]!r} are refused: only this "
                                            "server's own pages may call it from a browser (litegate serve "
                                            "--allowed-hosts)", "origin_not_allowed")
            return
        if (origin is None and headers.get("sec-fetch-site") == "cross-site"
                and scope.get("method") not in ("GET", "HEAD", "OPTIONS")):
            await _refuse(shape, send, 403, "a request another site's page made is refused", "origin_not_allowed")
            return
        await self.app(scope, receive, send)

    def _same_origin(self, origin: str, scope: Scope, host_header: str) -> bool:
        if origin.strip().lower().rstrip("/") in self.origins:
            return True
        try:
            parts = urlsplit(origin.strip().lower())
            origin_port = parts.port
        except ValueError:  # a port that is not a number
            return False
        scheme = str(scope.get("scheme") or "http").lower()
        if origin == "null" or parts.scheme != scheme or not parts.hostname:
            return False
        own_port = _port_of(host_header, scheme)
        if (origin_port or DEFAULT_PORTS.get(parts.scheme)) != own_port:
            return False
        name = parts.hostname
        return name == _host_only(host_header) or name in self.allowed


DEFAULT_PORTS = {"http": 80, "https": 443}


def _port_of(host_header: str, scheme: str) -> int | None:
    """The port a Host header names (the scheme's default when it names none)."""
    value = host_header.strip()
    tail = value.rsplit("]", 1)[-1] if value.startswith("[") else value
    if ":" in tail and tail.count(":") == 1:
        port = tail.rsplit(":", 1)[1]
        return int(port) if port.isdigit() else None
    return DEFAULT_PORTS.get(scheme)


def _shape(shapes: ErrorShapes | None, scope: Scope) -> ErrorShape:
    return shapes.for_scope(scope) if shapes is not None else OPENAI_SHAPE


async def _refuse(shape: ErrorShape, send: Any, status: int, message: str, code: str, close: bool = False) -> None:
    """An error answered before the route runs, in the shape of the request's API; ``close``
    ends the connection (a body left unread must not be parsed as the next request)."""
    body = json.dumps(shape.body(Problem(status, message, code=code))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work was cancelled."""


async def while_connected(request: Any, work: Awaitable[T], poll_s: float = 0.25) -> T:
    """Await ``work`` unless the client disconnects first: then cancel it (a generation stops
    at its next token) and raise ClientGone. A non-streamed request whose client timed out
    no longer keeps the engine busy."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise ClientGone()
    finally:
        if not task.done():
            task.cancel()
