"""The small numeric steps the nano models share: a row-wise softmax and unit-length vectors."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    """Each row of scores as probabilities (shifted by its maximum, so large scores do not overflow)."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 along its last axis: a vector, or each row of a matrix. A zero
    vector or row stays zero."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
