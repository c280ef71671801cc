"""The in-memory dense index: int8 codes and sign bits against an exact float32 ranking,
filters as row masks, the byte budget, and the rebuild when a collection changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes import FakeEncoder
from sqlalchemy import create_engine

from litegate.collections import Collections
from litegate.collections.vectors import VectorCache, build, quantize


def _clustered(n: int, dim: int = 384, latent: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors from a few latent directions plus noise and a shared offset: shaped like
    sentence embeddings (graded neighbours, a common mean), not spread uniformly."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((latent, dim)).astype(np.float32)
    offset = rng.standard_normal(dim).astype(np.float32) * np.float32(np.sqrt(latent))
    x = rng.standard_normal((n, latent)).astype(np.float32) @ mixing + offset
    x += np.float32(0.5 * np.sqrt(latent)) * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _index(vectors: np.ndarray, files: int = 10):
    rows = ((i + 1, f"vsf_{i % files}", v.tobytes()) for i, v in enumerate(vectors))
    return build(7, rows, batch=1000)  # several batches


def test_int8_codes_keep_the_cosine_within_a_hundredth() -> None:
    x = _clustered(500)
    codes, scales = quantize(x)
    approx = codes.astype(np.float32) * scales[:, None]
    assert np.abs((approx * x).sum(1) - 1.0).max() < 0.01


def _overlap(index, x: np.ndarray, depth: int | None, queries: int = 20) -> float:
    rng = np.random.default_rng(1)
    found = []
    for q in x[rng.integers(0, len(x), queries)] + 0.3 * rng.standard_normal((queries, x.shape[1])).astype(np.float32):
        q /= np.linalg.norm(q)
        exact = set((np.argsort(-(x @ q))[:100] + 1).tolist())
        got = index.search(q, 100, depth=depth)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        found.append(len(exact & {i for i, _ in got}) / 100)
    return float(np.mean(found))


def test_rescoring_every_row_is_the_exact_ranking_and_the_bit_pass_keeps_most_of_it() -> None:
    x = _clustered(20_000)
    index = _index(x)
    assert index.codes.dtype == np.int8 and index.nbytes < x.nbytes / 3
    assert _overlap(index, x, depth=len(x)) >= 0.97  # int8 codes: only near-ties swap
    # handing on 10% by Hamming distance keeps most of the exact top 100 (a random 10%: 0.1)
    assert _overlap(index, x, depth=2000) >= 0.55


def test_a_filter_is_a_row_mask_and_nothing_outside_it_comes_back() -> None:
    x = _clustered(6000)
    index = _index(x, files=10)
    hits = index.search(x[3], 50, index.mask(["vsf_3", "vsf_4"]))
    assert hits and {(i - 1) % 10 for i, _ in hits} <= {3, 4}
    assert hits[0][0] == 4  # the query's own chunk (file 3)
    assert index.search(x[3], 50, index.mask([])) == []


def test_the_cache_drops_the_least_recently_used_past_its_budget() -> None:
    a, b = _index(_clustered(1000, seed=1)), _index(_clustered(1000, seed=2))
    cache = VectorCache(budget=a.nbytes + b.nbytes // 2)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.cached("a", 7) is None and cache.cached("b", 7) is b
    assert cache.cached("b", 8) is None  # another version is a miss
    assert cache.nbytes <= cache.budget


def test_a_change_to_the_collection_rebuilds_its_vectors(tmp_path: Path) -> None:
    encoder = FakeEncoder()
    coll = Collections(create_engine(f"sqlite:///{tmp_path / 'c.db'}"), lambda: encoder)
    coll.create(None, "kb")
    coll.add_text(None, "kb", "Express shipping costs 15 dollars.", source="a")
    assert [h.text for h in coll.search(None, "kb", "express shipping", mode="dense")]
    first = coll.vectors.cached(coll.get(None, "kb")["id"], 1)
    assert first is not None and len(first.ids) == 1
    coll.add_text(None, "kb", "Returns are free within 30 days.", source="b")
    hits = coll.search(None, "kb", "returns free", mode="dense", top_k=5)
    assert len(hits) == 2 and len(coll.vectors.cached(coll.get(None, "kb")["id"], 2).ids) == 2
