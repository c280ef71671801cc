"""A serial background worker: callables run one at a time, in the order submitted, on a
daemon thread, so a database round trip never sits on a request's path. The ledger and the
examples table each have one."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any


class SerialWorker:
    def __init__(self, name: str, log: logging.Logger):
        self._log = log
        self._name = name
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                item()
            except Exception as e:  # noqa: BLE001 - background bookkeeping must never fail a user's call
                self._log.error("%s failed: %s", self._name, e)

    def submit(self, work: Callable[[], Any]) -> None:
        self._queue.put(work)

    def flush(self, timeout: float) -> None:
        """Wait until everything submitted so far has run (at most ``timeout`` seconds)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)
