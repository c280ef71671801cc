"""Heavy document work (OCR, speech, PDF rendering) on a bounded pool of worker threads of
its own, with its own admission: reading files cannot take the CPUs from token decode.

The workers run at a lower CPU priority than request threads (``nice``; threads the OCR and
speech engines start from a worker inherit it), each engine is sized to the compute budget's
document share, and at most ``workers + queue`` files are admitted: the next one is refused at
once with Overloaded (HTTP 503 with Retry-After) instead of waiting behind minutes of OCR.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from litegate.compute import ComputeBudget, lower_thread_priority
from litegate.documents import ocr, speech
from litegate.errors import Overloaded

T = TypeVar("T")
SECONDS_PER_FILE_HINT = 3.0  # Retry-After per file ahead: about one OCR'd page on 2 busy cores


class DocumentPool:
    """``run(fn, *args)`` runs ``fn`` on a document worker and returns its result (blocking the
    caller, which is itself a worker thread, never the event loop)."""

    def __init__(self, workers: int = 1, queue: int = 8, nice: int = 10, engine_threads: int = 1) -> None:
        self.workers = max(1, workers)
        self.queue = max(0, queue)
        self.nice = nice
        ocr.set_threads(engine_threads)
        speech.set_threads(engine_threads)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="documents",
                                            initializer=lower_thread_priority, initargs=(nice,))
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self.refused = 0  # files refused since start (the queue was full)
        self.done = 0

    @classmethod
    def from_budget(cls, budget: ComputeBudget) -> DocumentPool:
        return cls(budget.document_workers, budget.document_queue, budget.document_nice, budget.ocr_threads)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        """Files admitted and not yet started: the queue depth."""
        return max(0, self._admitted - self._running)

    def stats(self) -> dict[str, int]:
        return {"workers": self.workers, "running": self.running, "waiting": self.waiting,
                "queue_limit": self.queue, "refused": self.refused, "done": self.done}

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._admitted >= self.workers + self.queue:
                self.refused += 1
                raise Overloaded(f"the document readers are busy: {self._running} files being read and "
                                 f"{self._admitted - self._running} waiting (LITEGATE_DOCUMENT_QUEUE); retry shortly",
                                 retry_after=max(1.0, SECONDS_PER_FILE_HINT * self._admitted / self.workers))
            self._admitted += 1
        try:
            return self._executor.submit(self._counted, fn, *args).result()
        finally:
            with self._lock:
                self._admitted -= 1
                self.done += 1

    def _counted(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
