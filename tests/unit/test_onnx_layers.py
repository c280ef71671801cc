"""The encoder layers as an onnxruntime graph, on a small random transformer: the float32 graph
computes what the NumPy path computes, the 8-bit one stays close, and the 8-bit blocks are laid
out and scaled as onnxruntime reads them."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from litegate.errors import InvalidRequest
from litegate.nano.encoder import TransformerEncoder
from litegate.nano.onnx_layers import OnnxLayers, quantize_blocks


class TinyEncoder(TransformerEncoder):
    """Two post-layer-norm layers of random weights, 64 dimensions, 4 heads, a position bias."""

    def __init__(self, runtime: str = "onnx", seed: int = 0) -> None:
        self._set_runtime(runtime)
        self._blas = ThreadpoolController()
        rng = np.random.default_rng(seed)
        self.dim, self.heads, self.layers, self.eps = 64, 4, 2, 1e-12

        def w(*shape: int) -> np.ndarray:
            return (rng.standard_normal(shape) * 0.2).astype(np.float32)

        one = np.ones(self.dim, np.float32)
        self._layers = [(w(64, 192), w(192), w(64, 64), w(64), one + w(64), w(64), w(64, 256), w(256),
                         w(256, 64), w(64), one + w(64), w(64)) for _ in range(self.layers)]
        self._words = w(50, 64)
        self._bias = w(4, 1, 1) * 3

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        return self._words[ids].reshape(-1, self.dim)

    def _position_bias(self, t: int) -> np.ndarray:
        distance = np.abs(np.arange(t)[None, :] - np.arange(t)[:, None]).astype(np.float32)
        return -self._bias * distance[None] / 10  # (heads, t, t), like MPNet's relative bias


def inputs(encoder: TinyEncoder, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(lengths), max(lengths)), np.int64)
    mask = np.zeros(ids.shape, np.float32)
    rng = np.random.default_rng(1)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 50, n)
        mask[row, :n] = 1.0
    return ids, mask


def test_the_float32_graph_computes_what_numpy_computes() -> None:
    encoder = TinyEncoder()
    ids, mask = inputs(encoder, [7, 3, 12])
    n, t = ids.shape
    graph = OnnxLayers(encoder._layers, encoder.dim, encoder.heads, encoder.eps, quantize=False)
    got = graph.run(encoder._embed(ids).reshape(n, t, encoder.dim), encoder._attention_bias(mask))
    want = encoder._hidden(ids, mask, encoder.layers).reshape(n, t, encoder.dim)
    real = mask.astype(bool)  # padded positions carry no meaning in either
    # NumPy uses GELU's tanh form, the graph the exact erf form: within 1e-3 of each other
    assert np.abs(got[real] - want[real]).max() < 5e-3


def test_eight_bit_sentence_vectors_stay_close_and_padding_changes_nothing() -> None:
    served, reference = TinyEncoder("onnx"), TinyEncoder("numpy")
    ids, mask = inputs(served, [5, 9, 2, 14])
    batch = served._forward(ids, mask, batch=True)
    want = reference._forward(ids, mask)
    assert ((batch * want).sum(1) > 0.995).all()
    for row in range(len(ids)):  # one text alone, unpadded: the same vector as inside the padded batch
        n = int(mask[row].sum())
        alone = served._forward(ids[row:row + 1, :n], mask[row:row + 1, :n])
        assert np.allclose(alone[0], batch[row], atol=1e-4)


def test_blocks_hold_each_weight_within_half_a_step() -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((70, 5)).astype(np.float32)  # 70 inputs: the last block of 32 is padded
    w[3, 1] = 40.0  # an outlier only coarsens its own block
    packed, scales = quantize_blocks(w)
    assert packed.shape == (5, 3, 32) and packed.dtype == np.uint8 and scales.shape == (15,)
    values = (packed.astype(np.float32) - 128) * scales.reshape(5, 3, 1)
    back = values.reshape(5, 96)[:, :70].T
    step = np.repeat(scales.reshape(5, 3), 32, axis=1)[:, :70].T
    assert (np.abs(back - w) <= step / 2 + 1e-6).all()
    assert scales.reshape(5, 3)[1, 0] > 10 * scales.reshape(5, 3)[1, 1]


def test_an_unknown_runtime_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown encoder runtime 'gpu'; runtimes: onnx, numpy"):
        TinyEncoder("gpu")
