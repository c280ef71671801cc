"""Fusing the lexical and dense ranked lists into one ranking: reciprocal-rank fusion, or a
weighted sum of min-max normalized scores; bench/retrieval.py measures which ranks better
(choosing weights on a development split only)."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Fusion:
    """One way to fuse [lexical, dense]: ``kind`` rrf or sum, the dense side's share of the
    weight, and RRF's constant."""

    kind: str
    dense_weight: float = 0.5
    k: int = RRF_K

    def __call__(self, lists: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
        weights = [1.0 - self.dense_weight, self.dense_weight] if len(lists) == 2 else None
        if self.kind == "rrf":
            return reciprocal_rank(lists, self.k, weights)
        return normalized_sum(lists, weights)

    @property
    def best(self) -> float:
        """The score of a chunk first on both sides: what an API scales to 1."""
        return 1.0 / (self.k + 1) if self.kind == "rrf" else 1.0


# "weighted" is the default: chosen on NFCorpus's dev split (bench/README.md, Collections)
FUSIONS: dict[str, Fusion] = {
    "rrf": Fusion("rrf"),
    "sum": Fusion("sum"),
    "weighted": Fusion("sum", dense_weight=0.7),
}
DEFAULT_FUSION = "weighted"
