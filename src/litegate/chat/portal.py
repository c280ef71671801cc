"""An event loop on a daemon thread, so sync callers (the Python API, the CLI) take the same
async path as the HTTP server instead of a copy of it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Portal:
    """Runs coroutines to completion for sync code, one loop per portal, started on first use."""

    def __init__(self, name: str = "litegate-portal"):
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Block until ``coro`` is done on the portal's loop; an interrupt cancels it there."""
        if self._thread is threading.current_thread():
            coro.close()
            raise RuntimeError("a sync call from the portal's own loop would wait for itself; await it instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._started())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
