"""Retries with exponential backoff and jitter, a concurrency cap and a circuit breaker —
once, for both the sync calls tasks make (in worker threads) and the async chat passthrough.

A kind says how to read its failures with ``classify(error)``: ``"transient"`` (timeouts,
refused connections, 429, 5xx: retried, and counted against the breaker when retries run
out), a ``LitegateError`` to raise as is (the tier is up; the request was wrong), or
``None`` (unexpected: raised unchanged).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from litegate.errors import LitegateError, TierDown

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
T = TypeVar("T")
Classify = Callable[[BaseException], "str | LitegateError | None"]


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential, capped, jittered."""
    return min(2.0, 0.1 * 2.0 ** attempt) * (0.5 + random.random())


class CircuitBreaker:
    """closed -> open after ``failures`` consecutive failures; open -> half-open after
    ``reset_s``; a half-open success closes it, a failure opens it again."""

    def __init__(self, failures: int = 3, reset_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._consecutive >= self.failures or self._opened_at is not None:
                self._opened_at = self._clock()


class Resilience:
    """One tier's retry policy, breaker and concurrency cap."""

    def __init__(self, tier: str, max_retries: int = 2, concurrency: int = 8, breaker_failures: int = 3,
                 breaker_reset_s: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        self.tier = tier
        self.max_retries = max_retries
        self.breaker = CircuitBreaker(breaker_failures, breaker_reset_s)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._concurrency = concurrency
        # one async cap per event loop (an asyncio.Semaphore belongs to the loop it waits on)
        self._aslots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()
        self._sleep = sleep

    def _open(self) -> TierDown:
        return TierDown(self.tier, "circuit open after repeated failures")

    def _sorted(self, error: BaseException, classify: Classify) -> str:
        """The failure's description when transient; raises otherwise."""
        verdict = classify(error)
        if verdict == "transient":
            return f"{type(error).__name__}: {str(error)[:200]}"
        if isinstance(verdict, LitegateError):
            self.breaker.success()  # the tier is up; the request was wrong
            raise verdict from None
        raise error

    def _exhausted(self, last: str) -> TierDown:
        self.breaker.failure()
        return TierDown(self.tier, f"failed after {self.max_retries + 1} attempts ({last})")

    def call(self, fn: Callable[[], T], classify: Classify) -> T:
        if not self.breaker.allow():
            raise self._open()
        last = "no attempt"
        with self._slots:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self._sleep(backoff_s(attempt))
                try:
                    result = fn()
                except Exception as e:  # noqa: BLE001 - sorted by the kind's classify
                    last = self._sorted(e, classify)
                    continue
                self.breaker.success()
                return result
        raise self._exhausted(last)

    async def acall(self, fn: Callable[[], Awaitable[T]], classify: Classify) -> T:
        if not self.breaker.allow():
            raise self._open()
        loop = asyncio.get_running_loop()
        slots = self._aslots.get(loop)
        if slots is None:
            slots = self._aslots[loop] = asyncio.Semaphore(self._concurrency)
        last = "no attempt"
        async with slots:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    await asyncio.sleep(backoff_s(attempt))
                try:
                    result = await fn()
                except Exception as e:  # noqa: BLE001 - sorted by the kind's classify
                    last = self._sorted(e, classify)
                    continue
                self.breaker.success()
                return result
        raise self._exhausted(last)

