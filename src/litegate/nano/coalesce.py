"""Concurrent calls over lists, combined: while one call of ``fn(key, items)`` runs, the calls
that arrive for the same key wait and then run as one call over all their items. A lone
call runs at once (no added latency); under load, a nano model's matrix products see 32 rows
instead of 1, which is where NumPy is fast (``bench/batch.py``).

The items are computed exactly as they would be one call at a time (every row of a batched
forward pass is independent), so combining changes throughput, not answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry:
    items: list[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Key:
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while a combined call runs
    waiting: list[_Entry] = field(default_factory=list)
    users: int = 0


class Coalescer(Generic[T]):
    """``fn(key, items) -> (results per item)``; each caller gets its own items' results.
    ``split`` cuts a combined result into per-caller parts (default: slicing)."""

    def __init__(self, fn: Callable[[Any, list[Any]], T], max_items: int = 64,
                 split: Callable[[T, int, int], Any] | None = None):
        self.fn = fn
        self.max_items = max_items
        self.split = split or (lambda result, start, end: result[start:end])  # type: ignore[index]
        self._keys: dict[Any, _Key] = {}
        self._lock = threading.Lock()
        self.calls = 0  # combined calls made (for tests and benches)
        self.items = 0

    def __call__(self, key: Any, items: Sequence[Any]) -> Any:
        entry = _Entry(list(items))
        with self._lock:
            slot = self._keys.setdefault(key, _Key())
            slot.waiting.append(entry)
            slot.users += 1
        try:
            while not entry.done:
                with slot.lock:
                    if entry.done:  # a call made while we waited answered us too
                        break
                    with self._lock:
                        batch: list[_Entry] = []
                        size = 0
                        while slot.waiting and (not batch or size + len(slot.waiting[0].items) <= self.max_items):
                            e = slot.waiting.pop(0)
                            batch.append(e)
                            size += len(e.items)
                    self._run(key, batch)
        finally:
            with self._lock:
                slot.users -= 1
                if slot.users == 0 and self._keys.get(key) is slot:
                    del self._keys[key]
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _run(self, key: Any, batch: list[_Entry]) -> None:
        combined = [item for e in batch for item in e.items]
        self.calls += 1
        self.items += len(combined)
        try:
            result = self.fn(key, combined)
        except BaseException as e:  # noqa: BLE001 - every caller in the batch gets the error
            for entry in batch:
                entry.error, entry.done = e, True
            return
        start = 0
        for entry in batch:
            end = start + len(entry.items)
            entry.result, entry.done = self.split(result, start, end), True
            start = end
