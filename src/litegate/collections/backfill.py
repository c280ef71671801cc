"""Vectors behind the words: a large file's chunks are written with their lexical index and an
empty vector, searchable by words at once, and a worker thread encodes them in batches after
(the encoder is most of an ingest's time). A chunk without a vector is only missing from the
dense side of search; whatever is left after a crash is picked up by the next search."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine

from litegate.collections.store import chunks_table, collections_table

log = logging.getLogger("litegate.collections")
BATCH = 256  # chunks encoded and written per transaction
PENDING = b""  # the vector of a chunk still waiting for one


def pending_by_file(conn: Any, collection_id: str) -> dict[str, int]:
    """Each file's chunks still without a vector (files with none pending are left out)."""
    c = chunks_table.c
    rows = conn.execute(select(c.file_row, func.count(c.id)).where(c.collection_id == collection_id,
                                                                    func.length(c.vector) == 0)
                        .group_by(c.file_row)).all()
    return {str(file_row): int(n) for file_row, n in rows}


class VectorBackfill:
    """One worker per collection with pending vectors; ``embed`` turns texts into unit vectors."""

    def __init__(self, engine: Engine, embed: Callable[[list[str]], np.ndarray]):
        self.engine = engine
        self.embed = embed
        self._workers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def schedule(self, collection_id: str) -> None:
        """Encode the collection's pending chunks in the background (once: a running worker
        also takes chunks added while it runs)."""
        with self._lock:
            worker = self._workers.get(collection_id)
            if worker is not None and worker.is_alive():
                return
            worker = threading.Thread(target=self._run, args=(collection_id,), daemon=True,
                                      name=f"litegate-vectors-{collection_id}")
            self._workers[collection_id] = worker
            worker.start()

    def wait(self, collection_id: str, timeout: float | None = None) -> bool:
        """True once no worker runs for the collection (what tests and benchmarks wait on)."""
        with self._lock:
            worker = self._workers.get(collection_id)
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _run(self, collection_id: str) -> None:
        try:
            while self.step(collection_id):
                pass
        except Exception:  # noqa: BLE001 - a thread has no caller: the next search schedules it again
            log.exception("encoding the pending chunks of %s failed", collection_id)

    def step(self, collection_id: str) -> int:
        """Encode up to BATCH pending chunks and store their vectors; how many were done."""
        c = chunks_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.id, c.text, c.section).where(
                c.collection_id == collection_id, func.length(c.vector) == 0).order_by(c.id).limit(BATCH)).all()
        if not rows:
            return 0
        vectors = self.embed([f"{s}\n{t}" if s else t for _, t, s in rows])
        with self.engine.begin() as conn:
            conn.execute(update(chunks_table).where(c.id == bindparam("chunk"), func.length(c.vector) == 0)
                         .values(vector=bindparam("blob")),
                         [{"chunk": i, "blob": v.astype(np.float32).tobytes()} for (i, _, _), v in zip(rows, vectors)])
            t = collections_table
            conn.execute(update(t).where(t.c.id == collection_id).values(version=t.c.version + 1))
        return len(rows)
