"""Fusing ranked lists (lexical, dense) into one ranking: reciprocal-rank fusion, or a sum
of min-max normalized scores; bench/retrieval.py measures which ranks better."""

from __future__ import annotations

from collections.abc import Callable

RRF_K = 60  # the constant of Cormack et al. (2009); larger flattens the head of each list


def reciprocal_rank(lists: list[list[tuple[int, float]]], k: int = RRF_K,
                    weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Each list best first; a document's score is the sum of weight / (k + rank)."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, w in zip(lists, weights):
        for rank, (doc, _) in enumerate(ranked, 1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def normalized_sum(lists: list[list[tuple[int, float]]],
                   weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Each list's scores min-max scaled to [0, 1] (a document a list did not return counts 0
    there), then a weighted sum."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, w in zip(lists, weights):
        if not ranked:
            continue
        values = [s for _, s in ranked]
        low, high = min(values), max(values)
        span = high - low
        for doc, s in ranked:
            fused[doc] = fused.get(doc, 0.0) + w * ((s - low) / span if span > 0 else 1.0)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


# each is called with the ranked lists alone (the other parameters keep their defaults)
FUSIONS: dict[str, Callable[[list[list[tuple[int, float]]]], list[tuple[int, float]]]] = {
    "rrf": reciprocal_rank, "sum": normalized_sum}
