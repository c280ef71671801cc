"""Cheap learned adapters on frozen sentence vectors, for bench/nano.py ``--adapters``: a map
from the encoder's vectors to new unit vectors, fitted on the classifier's own training
examples in NumPy (full-batch Adam, a few seconds), before the nano classifier trains on them.

Kinds: ``linear-ce`` (x + A x, A from zero, under a cosine-softmax loss against one learned
prototype per label), ``linear-pairs`` (the same map under a pair loss: the cosine of two
examples pulled to 1 for the same label and pushed to at most 0 otherwise, positives and
negatives weighted equally, as sentence-pair fine-tuning does) and ``mlp-ce`` (x + W2 tanh(W1 x),
hidden 256, under the cosine-softmax loss). Every kind starts at the identity and pays an L2
penalty for leaving it. Hyperparameters are fixed, not searched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

KINDS = ("linear-ce", "linear-pairs", "mlp-ce")
STEPS, RATE, PENALTY, SCALE, HIDDEN = 100, 1e-3, 1e-2, 20.0, 256


def _unit_backward(d_unit: np.ndarray, unit: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """The gradient through x -> x / |x| (row-wise)."""
    return (d_unit - unit * (d_unit * unit).sum(1, keepdims=True)) / norm


class _Adam:
    def __init__(self, rate: float):
        self.rate, self.step, self.moments = rate, 0, {}  # type: ignore[var-annotated]

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.step += 1
        for key, grad in grads.items():
            m, v = self.moments.get(key, (np.zeros_like(grad), np.zeros_like(grad)))
            m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad ** 2
            self.moments[key] = (m, v)
            m_hat, v_hat = m / (1 - 0.9 ** self.step), v / (1 - 0.999 ** self.step)
            params[key] -= self.rate * m_hat / (np.sqrt(v_hat) + 1e-8)


def _forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if "A" in params:
        return x + x @ params["A"].T, None
    hidden = np.tanh(x @ params["W1"].T)
    return x + hidden @ params["W2"].T, hidden


def _loss_grad(kind: str, params: dict[str, np.ndarray], unit: np.ndarray, target: np.ndarray,
               same: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """d loss / d unit vectors, and the gradients of the loss's own parameters."""
    if kind.endswith("-ce"):
        norm = np.linalg.norm(params["Q"], axis=1, keepdims=True)
        protos = params["Q"] / norm
        logits = SCALE * unit @ protos.T
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        probs[np.arange(len(target)), target] -= 1
        d_logits = probs / len(target)
        return SCALE * d_logits @ protos, {"Q": _unit_backward(SCALE * d_logits.T @ unit, protos, norm)}
    sims = unit @ unit.T
    d_sims = 2 * (sims - 1) * same / same.sum() + 2 * np.maximum(sims, 0) * (1 - same) / (1 - same).sum()
    return (d_sims + d_sims.T) @ unit, {}


def fit(kind: str, vectors: np.ndarray, labels: list[str], seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The fitted map, from (n, d) vectors to (n, d) unit vectors."""
    if kind not in KINDS:
        raise ValueError(f"unknown adapter {kind!r}; adapters: {', '.join(KINDS)}")
    x = vectors.astype(np.float64)
    classes, target = np.unique(np.array(labels), return_inverse=True)
    dim = x.shape[1]
    params: dict[str, np.ndarray] = {}
    if kind.startswith("linear"):
        params["A"] = np.zeros((dim, dim))
    else:
        params["W1"] = np.random.default_rng(seed).normal(0, 1 / np.sqrt(dim), (HIDDEN, dim))
        params["W2"] = np.zeros((dim, HIDDEN))
    if kind.endswith("-ce"):
        params["Q"] = np.stack([x[target == c].mean(0) for c in range(len(classes))])
    same = (target[:, None] == target[None, :]).astype(float) if kind.endswith("pairs") else np.zeros(0)
    adam = _Adam(RATE)
    for _ in range(STEPS):
        mapped, hidden = _forward(params, x)
        norm = np.linalg.norm(mapped, axis=1, keepdims=True)
        unit = mapped / norm
        d_unit, grads = _loss_grad(kind, params, unit, target, same)
        d_mapped = _unit_backward(d_unit, unit, norm)
        if hidden is None:
            grads["A"] = d_mapped.T @ x + 2 * PENALTY * params["A"]
        else:
            grads["W2"] = d_mapped.T @ hidden + 2 * PENALTY * params["W2"]
            grads["W1"] = (d_mapped @ params["W2"] * (1 - hidden ** 2)).T @ x + 2 * PENALTY * params["W1"]
        adam.update(params, grads)

    def apply(new: np.ndarray) -> np.ndarray:
        mapped, _ = _forward(params, new.astype(np.float64))
        return (mapped / np.linalg.norm(mapped, axis=1, keepdims=True)).astype(np.float32)

    return apply


class AdaptedEncoder:
    """The Encoder protocol's sentence vectors through a fitted adapter."""

    def __init__(self, base: Any, adapter: Callable[[np.ndarray], np.ndarray]):
        self.base, self.adapter = base, adapter
        self.name, self.dim = base.name, base.dim

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        return self.adapter(self.base.encode(texts))
