"""A nano encoder's transformer layers as one onnxruntime graph, built in memory from the
NumPy weights (nothing is downloaded or written to disk), with the weights in 8 bits.

Why: one short text is memory-bound in NumPy: every call reads each float32 weight (340 MB for
the accurate encoder) through a dozen separate NumPy operations per layer. One graph call fuses
them, and 8-bit weights in blocks of 32 with activations quantized per block (onnxruntime's
``MatMulNBits``, integer products) read a quarter of the bytes while the sentence vectors stay
within cosine 0.999 of the float32 ones. Per-tensor int8 (``DynamicQuantizeMatMul``) is faster
but not usable here: the feed-forward outputs carry a few huge activations, and the accurate
encoder's vectors fell to cosine 0.76-0.90 (bench/README.md, "Nano encoders").
"""

from __future__ import annotations

from typing import Any

import numpy as np

MS_DOMAIN = "com.microsoft"  # onnxruntime's own operators (MatMulNBits, Gelu)
BITS, BLOCK = 8, 32
INT8_PRODUCTS = 4  # MatMulNBits' accuracy_level 4: activations quantized to int8 per block, integer products


def quantize_blocks(w: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Weights (in, out) as ``MatMulNBits`` reads 8-bit ones: per output column, blocks of
    ``block`` inputs, each with its own scale, stored unsigned around 128 (symmetric).
    Returns (uint8 (out, blocks, block), float32 scales (out * blocks,))."""
    k, n = w.shape
    blocks = -(-k // block)
    padded = np.zeros((n, blocks * block), np.float32)
    padded[:, :k] = w.T
    padded = padded.reshape(n, blocks, block)
    scale = np.abs(padded).max(axis=2) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(padded / scale[..., None]), -127, 127) + 128
    return np.ascontiguousarray(q.astype(np.uint8)), scale.reshape(-1)


class _GraphBuilder:
    """Nodes and initializers of one graph, named as they are added."""

    def __init__(self, quantize: bool) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.quantize = quantize
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str) -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, domain: str = "", **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], domain=domain or None, **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, stem: str) -> str:
        """x @ w + b, with w (in, out) in 8-bit blocks when quantizing."""
        if self.quantize:
            packed, scales = quantize_blocks(w)
            product = self.op("MatMulNBits", [x, self.const(packed, stem + "_w"), self.const(scales, stem + "_scale")],
                              stem + "_mm", domain=MS_DOMAIN, K=w.shape[0], N=w.shape[1], bits=BITS,
                              block_size=BLOCK, accuracy_level=INT8_PRODUCTS)
        else:
            product = self.op("MatMul", [x, self.const(w.astype(np.float32), stem + "_w")], stem + "_mm")
        return self.op("Add", [product, self.const(b.astype(np.float32), stem + "_b")], stem)

    def attention(self, qkv: str, dim: int, heads: int, stem: str) -> str:
        """Scaled dot-product attention over the fused q|k|v projection (the scale is already
        in the query weights), with the graph input ``bias`` added to the scores."""
        hd = dim // heads
        per_head = self.const(np.array([0, 0, heads, hd], np.int64), stem + "_heads")
        q, k, v = self.name(stem + "_q"), self.name(stem + "_k"), self.name(stem + "_v")
        self.nodes.append(self.helper.make_node(
            "Split", [qkv, self.const(np.array([dim, dim, dim], np.int64), stem + "_split")], [q, k, v], axis=-1))

        def heads_first(name: str, perm: list[int]) -> str:
            return self.op("Transpose", [self.op("Reshape", [name, per_head], name + "_r")], name + "_t", perm=perm)

        scores = self.op("Add", [self.op("MatMul", [heads_first(q, [0, 2, 1, 3]), heads_first(k, [0, 2, 3, 1])],
                                         stem + "_qk"), "bias"], stem + "_scores")
        probs = self.op("Softmax", [scores], stem + "_probs", axis=-1)
        ctx = self.op("MatMul", [probs, heads_first(v, [0, 2, 1, 3])], stem + "_pv")
        ctx = self.op("Transpose", [ctx], stem + "_ctx_t", perm=[0, 2, 1, 3])
        return self.op("Reshape", [ctx, self.const(np.array([0, 0, dim], np.int64), stem + "_flat")], stem + "_ctx")

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, eps: float, stem: str) -> str:
        return self.op("LayerNormalization", [x, self.const(w, stem + "_w"), self.const(b, stem + "_b")], stem,
                       axis=-1, epsilon=eps)


def tap_name(layer: int) -> str:
    """The graph output holding the word-piece vectors after ``layer`` of its layers."""
    return f"hidden_{layer}"


def build_model(layers: list[tuple[np.ndarray, ...]], dim: int, heads: int, eps: float, quantize: bool,
                taps: tuple[int, ...] = ()) -> bytes:
    """The serialized ONNX model: ``x`` (n, t, dim) and ``bias`` (n, 1 or heads, 1 or t, t),
    added to every attention score, in; ``hidden`` (n, t, dim) after all layers, out, and
    ``hidden_K`` after the first K layers for each K in ``taps`` (lower layers read in the same
    pass). Each layer is the 12-tuple ``TransformerEncoder._layer_weights`` makes (post-layer-norm BERT)."""
    from onnx import TensorProto, helper

    if any(not 0 < k < len(layers) for k in taps):
        raise ValueError(f"taps {taps} must be layers below the graph's {len(layers)}")
    g = _GraphBuilder(quantize)
    scale = 1.0 / float(np.sqrt(dim // heads))
    x = "x"
    tapped: list[Any] = []
    for i, (qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b) in enumerate(layers):
        # the scores' 1/sqrt(head size) folded into the query weights: one multiply fewer per call
        qkv_w, qkv_b = qkv_w.copy(), qkv_b.copy()
        qkv_w[:, :dim] *= scale
        qkv_b[:dim] *= scale
        ctx = g.attention(g.linear(x, qkv_w, qkv_b, f"l{i}_qkv"), dim, heads, f"l{i}_att")
        x = g.layer_norm(g.op("Add", [x, g.linear(ctx, o_w, o_b, f"l{i}_o")], f"l{i}_res1"), ln1_w, ln1_b, eps,
                         f"l{i}_ln1")
        inner = g.op("Gelu", [g.linear(x, i_w, i_b, f"l{i}_in")], f"l{i}_gelu", domain=MS_DOMAIN)
        x = g.layer_norm(g.op("Add", [x, g.linear(inner, f_w, f_b, f"l{i}_out")], f"l{i}_res2"), ln2_w, ln2_b, eps,
                         f"l{i}_ln2")
        if i + 1 in taps:
            g.nodes.append(helper.make_node("Identity", [x], [tap_name(i + 1)]))
            tapped.append(helper.make_tensor_value_info(tap_name(i + 1), TensorProto.FLOAT, ["n", "t", dim]))
    g.nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        g.nodes, "encoder_layers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "t", dim]),
         helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["bn", "bh", "bq", "t"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["n", "t", dim]), *tapped], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS_DOMAIN, 1)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class OnnxLayers:
    """The layers of one encoder in onnxruntime: a one-thread session for a few texts and one
    with ``threads`` for batches (each holds its own copy of the 8-bit weights: 22 MB for fast,
    86 MB for accurate)."""

    def __init__(self, layers: list[tuple[np.ndarray, ...]], dim: int, heads: int, eps: float,
                 quantize: bool = True, threads: int = 1, taps: tuple[int, ...] = ()):
        import onnxruntime as ort

        self.quantize = quantize
        self.taps = tuple(sorted(set(taps)))
        model = build_model(layers, dim, heads, eps, quantize, self.taps)
        self._single = self._session(ort, model, 1)
        self._batch = self._session(ort, model, threads) if threads > 1 else self._single

    @staticmethod
    def _session(ort: Any, model: bytes, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: the machine and the process are shared
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray, bias: np.ndarray, batch: bool = False) -> np.ndarray:
        """Hidden vectors (n, t, dim) of ``x`` (n, t, dim); ``batch``: the wider session."""
        return self.run_tapped(x, bias, batch)[0]

    def run_tapped(self, x: np.ndarray, bias: np.ndarray, batch: bool = False) -> list[np.ndarray]:
        """The hidden vectors after all layers, then after each of ``taps``, from one call."""
        session = self._batch if batch else self._single
        return list(session.run(["hidden", *map(tap_name, self.taps)],
                                {"x": np.ascontiguousarray(x, np.float32),
                                 "bias": np.ascontiguousarray(bias, np.float32)}))
