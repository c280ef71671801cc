"""The dense side of search, in memory: each collection's vectors as int8 codes (a quarter of
float32) plus one sign bit per dimension; a query ranks every chunk by Hamming distance on the
bits, then rescores the best few thousand with the int8 codes. Rebuilt when the collection's
version moves; collections past a byte budget are dropped least recently used first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 4096  # below this many chunks every chunk is rescored: the bit pass would save nothing
RESCORE_MIN = 2000  # candidates the bit pass hands on, at least ...
RESCORE_SHARE = 25  # ... and at least 1/25 of the collection (4,000 of 100,000)
DEFAULT_BUDGET = 512 * 1024 * 1024  # bytes of all cached collections together


@dataclass
class CollectionVectors:
    """One collection's vectors: chunk ids, their file rows, int8 codes with one scale per row
    (code * scale ~ the unit vector), and the packed sign bits."""

    version: int
    ids: np.ndarray  # (n,) int64
    file_of: np.ndarray  # (n,) int32: an index into ``files``
    files: list[str]  # the collection's file rows, each once
    codes: np.ndarray  # (n, dim) int8
    scales: np.ndarray  # (n,) float32
    bits: np.ndarray  # (n, dim / 64) uint64 (dimensions padded to a multiple of 64)
    centre: np.ndarray  # (dim,) float32: the mean vector, taken off before the signs

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.file_of.nbytes + self.codes.nbytes + self.scales.nbytes
                   + self.bits.nbytes + self.centre.nbytes) + 100 * len(self.files)

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1]) if self.codes.ndim == 2 else 0

    def mask(self, allowed_files: list[str]) -> np.ndarray:
        """The rows of chunks in ``allowed_files``."""
        wanted = set(allowed_files)
        return np.isin(self.file_of, [i for i, f in enumerate(self.files) if f in wanted])

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
               depth: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` best (chunk id, cosine) for a unit ``query``; ``allowed`` is a boolean mask
        over the rows (a filter), None for all; ``depth`` how many the bit pass hands on
        (default: every row up to EXACT_UP_TO, then RESCORE_MIN or 1/RESCORE_SHARE)."""
        n = len(self.ids)
        candidates = np.arange(n) if allowed is None else np.flatnonzero(allowed)
        if not len(candidates):
            return []
        if depth is None:
            depth = n if n <= EXACT_UP_TO else max(RESCORE_MIN, n // RESCORE_SHARE)
        depth = max(depth, k)
        if len(candidates) > depth:
            bits = self.bits if allowed is None else self.bits[candidates]
            distance = np.bitwise_count(bits ^ sign_bits(query[None, :] - self.centre)[0]).sum(1, dtype=np.uint16)
            candidates = candidates[np.argpartition(distance, depth - 1)[:depth]]
        scores = (self.codes[candidates].astype(np.float32) @ query) * self.scales[candidates]
        k = min(k, len(candidates))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[candidates[i]]), float(scores[i])) for i in top]

    def scores_of(self, query: np.ndarray, chunk_ids: list[int]) -> list[tuple[int, float]]:
        """The cosine of given chunks (ids not in the collection are left out)."""
        if not chunk_ids or not len(self.ids):
            return []
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)  # ids are ascending
        at = at[self.ids[at] == wanted]
        scores = (self.codes[at].astype(np.float32) @ query) * self.scales[at]
        return [(int(self.ids[i]), float(s)) for i, s in zip(at, scores)]


def sign_bits(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) float -> (n, ceil(dim / 64)) uint64 of the signs."""
    n, dim = vectors.shape
    padded = np.zeros((n, -(-dim // 64) * 64), dtype=bool)
    padded[:, :dim] = vectors > 0
    return np.packbits(padded, axis=1).view(np.uint64)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: (codes, scales) with codes * scale ~ vectors."""
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def build(version: int, rows: Iterable[tuple[int, str, bytes]], batch: int = 8192) -> CollectionVectors:
    """From (chunk id, file row, float32 blob) rows, read in batches so that no float32 copy of
    the whole collection is ever held. The sign bits are taken around the collection's mean:
    sentence embeddings share a common direction, and raw signs would spend bits on it."""
    ids: list[int] = []
    file_of: list[int] = []
    files: dict[str, int] = {}
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    pending: list[bytes] = []
    total: np.ndarray | None = None

    def flush() -> None:
        nonlocal total
        block = np.frombuffer(b"".join(pending), dtype=np.float32).reshape(len(pending), -1)
        blocks.append(quantize(block))
        total = block.sum(0, dtype=np.float64) if total is None else total + block.sum(0, dtype=np.float64)
        pending.clear()

    for chunk_id, file_row, blob in rows:
        ids.append(chunk_id)
        file_of.append(files.setdefault(file_row, len(files)))
        pending.append(blob)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    if not blocks or total is None:
        return CollectionVectors(version, np.zeros(0, np.int64), np.zeros(0, np.int32), [], np.zeros((0, 0), np.int8),
                                 np.zeros(0, np.float32), np.zeros((0, 0), np.uint64), np.zeros(0, np.float32))
    centre = (total / len(ids)).astype(np.float32)
    bits = np.concatenate([sign_bits(codes.astype(np.float32) * scales[:, None] - centre) for codes, scales in blocks])
    return CollectionVectors(version, np.array(ids, dtype=np.int64), np.array(file_of, dtype=np.int32), list(files),
                             np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]), bits,
                             centre)


class VectorCache:
    """The collections' in-memory vectors, at most ``budget`` bytes together (the least recently
    searched go first; one collection larger than the budget is still kept while it is used)."""

    def __init__(self, budget: int = DEFAULT_BUDGET):
        self.budget = budget
        self._lock = threading.Lock()
        self._by_collection: OrderedDict[str, CollectionVectors] = OrderedDict()

    def cached(self, collection_id: str, version: int) -> CollectionVectors | None:
        with self._lock:
            found = self._by_collection.get(collection_id)
            if found is None or found.version != version:
                return None
            self._by_collection.move_to_end(collection_id)
            return found

    def put(self, collection_id: str, vectors: CollectionVectors) -> None:
        with self._lock:
            self._by_collection[collection_id] = vectors
            self._by_collection.move_to_end(collection_id)
            while len(self._by_collection) > 1 and self.nbytes > self.budget:
                self._by_collection.popitem(last=False)

    def forget(self, collection_id: str) -> None:
        with self._lock:
            self._by_collection.pop(collection_id, None)

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self._by_collection.values())
