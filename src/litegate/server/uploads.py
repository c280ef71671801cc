"""Uploads that stream to disk, a bounded number at a time.

A file upload (OpenAI ``POST /v1/files``, a chunk of Gemini's resumable upload, a pipeline
run's multipart form) holds a slot while its bytes arrive: at most ``PER_KEY`` (4) per key and
``TOTAL`` (8) in all, so one caller cannot fill the disk's bandwidth or the server's connections;
one more is answered 429 with ``Retry-After``. The bytes go to a temporary file a chunk at a
time and are moved into the file store (``FileStore.put_stream``), never held whole.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from litegate.errors import InvalidRequest, PayloadTooLarge, TooManyRequests
from litegate.keys import request_tenant
from litegate.server.limits import BodyTooLarge

PER_KEY = 4
TOTAL = 8


class UploadSlots:
    def __init__(self, per_key: int = PER_KEY, total: int = TOTAL):
        self.per_key = per_key
        self.total = total
        self._by_owner: dict[str | None, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, owner: str | None) -> Iterator[None]:
        with self._lock:
            mine, everyone = self._by_owner.get(owner, 0), sum(self._by_owner.values())
            if mine >= self.per_key or everyone >= self.total:
                limit = (f"{self.per_key} at a time per key" if mine >= self.per_key
                         else f"{self.total} at a time on this server")
                raise TooManyRequests(f"too many uploads under way ({limit}); retry when one has finished",
                                      code="too_many_uploads", retry_after=2.0)
            self._by_owner[owner] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._by_owner[owner] -= 1
                if not self._by_owner[owner]:
                    del self._by_owner[owner]


def slots(request: Request) -> UploadSlots:
    state = request.app.state
    if getattr(state, "upload_slots", None) is None:
        state.upload_slots = UploadSlots()
    return state.upload_slots


@contextmanager
def upload_slot(request: Request) -> Iterator[None]:
    """Hold one of the caller's upload slots while the body arrives; a body that runs past
    the upload limit while arriving becomes a 413."""
    with slots(request).hold(request_tenant(request).owner):
        try:
            yield
        except BodyTooLarge as e:
            raise PayloadTooLarge(str(e)) from None


async def read_form(request: Request, **limits: Any) -> Any:
    """The multipart form, its files spooled to disk by the parser (not to memory)."""
    try:
        return await request.form(**limits)
    except BodyTooLarge:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed multipart body is the client's error

        raise InvalidRequest(f"the multipart body could not be read: {e}") from None
