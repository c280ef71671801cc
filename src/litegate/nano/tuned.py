"""A nano encoder with its top layers tuned on one classifier's examples (nano.tuning makes
them): the tuned layers stored with the classifier's version in 8 bits, and the encoder that
serves them, the shipped encoder's lower layers and the tuned top ones. No torch here.

Serving runs the shipped encoder's own graph for the frozen lower layers (shared by every
tuned version) and a small graph of the tuned layers after it, so a tuned version adds only
its own layers to memory: per layer of the accurate encoder, 8 MB on disk, and in memory the
float32 copy read back (28 MB, the NumPy path's and the graph's source) plus the graph's 8-bit one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import ModelFileError
from litegate.nano.encoder import TransformerEncoder, mean_pooled, padded_batches
from litegate.nano.onnx_layers import OnnxLayers, quantize_blocks

FILE = "tuned.npz"  # in the version's folder, beside model.pkl
MATRICES = (0, 2, 6, 8)  # the weight matrices of a layer's 12-tuple (qkv, out, intermediate, output): 8-bit
NAMES = ("qkv_w", "qkv_b", "o_w", "o_b", "ln1_w", "ln1_b", "i_w", "i_b", "f_w", "f_b", "ln2_w", "ln2_b")


def to_8bit(w: np.ndarray) -> np.ndarray:
    """``w`` (in, out) as its 8-bit blocks read back: what is stored and served. Quantizing the
    result again gives the same bytes, so the graph serves exactly the stored weights."""
    packed, scales = quantize_blocks(w)
    return _from_blocks(packed, scales, w.shape[0])


def _from_blocks(packed: np.ndarray, scales: np.ndarray, rows: int) -> np.ndarray:
    out, blocks, block = packed.shape
    values = (packed.astype(np.float32) - 128.0) * scales.reshape(out, blocks)[..., None]
    return np.ascontiguousarray(values.reshape(out, blocks * block)[:, :rows].T)


@dataclass
class TunedLayers:
    """The top ``len(layers)`` layers of ``base`` (the model's name), tuned; ``settings``: how."""

    base: str
    total_layers: int  # the base encoder's layer count (the tuned ones replace its last)
    layers: list[tuple[np.ndarray, ...]]
    settings: dict[str, Any]

    def __post_init__(self) -> None:
        self._encoders: dict[int, TunedEncoder] = {}
        self._lock = threading.Lock()

    def encoder(self, base: Any) -> TunedEncoder:
        """The encoder serving these layers over ``base`` (made once per base encoder)."""
        base = innermost(base)
        built = self._encoders.get(id(base))
        if built is None:
            with self._lock:
                built = self._encoders.get(id(base))
                if built is None:
                    built = self._encoders[id(base)] = TunedEncoder(base, self)
        return built

    def save(self, folder: Path) -> None:
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(
            {"base": self.base, "total_layers": self.total_layers, "tuned_layers": len(self.layers),
             "settings": self.settings}))}
        for i, layer in enumerate(self.layers):
            for j, (name, value) in enumerate(zip(NAMES, layer)):
                if j in MATRICES:
                    packed, scales = quantize_blocks(value)
                    arrays[f"l{i}_{name}_q"], arrays[f"l{i}_{name}_scale"] = packed, scales
                    arrays[f"l{i}_{name}_rows"] = np.array(value.shape[0])
                else:
                    arrays[f"l{i}_{name}"] = np.asarray(value, np.float32)
        np.savez(folder / FILE, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, folder: Path) -> TunedLayers | None:
        """The tuned layers stored in a version's folder, or None when it was not tuned."""
        path = folder / FILE
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                layers = []
                for i in range(int(meta["tuned_layers"])):
                    layer = []
                    for j, name in enumerate(NAMES):
                        if j in MATRICES:
                            layer.append(_from_blocks(data[f"l{i}_{name}_q"], data[f"l{i}_{name}_scale"],
                                                      int(data[f"l{i}_{name}_rows"])))
                        else:
                            layer.append(np.array(data[f"l{i}_{name}"], np.float32))
                    layers.append(tuple(layer))
        except (OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path} is not a readable tuned encoder ({e}); retrain the classifier") from None
        return cls(meta["base"], int(meta["total_layers"]), layers, dict(meta.get("settings") or {}))


def innermost(encoder: Any) -> Any:
    """The encoder itself under any wrappers that count or remember its calls (``.wrapped``)."""
    while getattr(encoder, "wrapped", None) is not None:
        encoder = encoder.wrapped
    return encoder


class TunedEncoder(TransformerEncoder):
    """``base`` with its top layers replaced by tuned ones; shares the base's tokenizers,
    embeddings and lower layers (and their graph), so only the tuned layers are its own."""

    def __init__(self, base: Any, tuned: TunedLayers):
        base = innermost(base)
        if not isinstance(base, TransformerEncoder):
            raise ModelFileError(f"a tuned classifier needs the {tuned.base} encoder; it would be run with "
                                 f"{getattr(base, 'name', base)!r}")
        if base.name != tuned.base or base.layers != tuned.total_layers:
            raise ModelFileError(f"this classifier's tuned layers belong to {tuned.base} ({tuned.total_layers} "
                                 f"layers), not {base.name}; retrain it")
        self.__dict__.update(base.__dict__)  # shared, not copied: config, tokenizers, embeddings, BLAS control
        self.max_tokens, self.begin, self.end = base.max_tokens, base.begin, base.end
        self._base = base
        self.name = base.name  # the same model to a reader of vectors; the tuning is the version's
        self.frozen = base.layers - len(tuned.layers)
        self._tuned = tuned.layers
        self._layers = base._layers[:self.frozen] + tuned.layers
        self._graphs = {}  # never the base's: these layers differ from its own above the frozen ones
        self._top: OnnxLayers | None = None
        self._graph_lock = threading.Lock()

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        return self._base._embed(ids)

    def _position_bias(self, t: int) -> np.ndarray | float:
        return self._base._position_bias(t)

    def _top_graph(self) -> OnnxLayers:
        if self._top is None:
            with self._graph_lock:
                if self._top is None:
                    threads = [p.get("num_threads") or 1 for p in self._blas.info() if p.get("user_api") == "blas"]
                    self._top = OnnxLayers(self._tuned, self.dim, self.heads, self.eps,
                                           threads=max(1, min(threads, default=1)))
        return self._top

    def _run_layers(self, ids: np.ndarray, mask: np.ndarray, layers: int, batch: bool) -> np.ndarray:
        if layers <= self.frozen:
            return self._base._run_layers(ids, mask, layers, batch)
        n, t = ids.shape
        top = self._tuned[:layers - self.frozen]
        x = self._base._run_layers(ids, mask, self.frozen, batch)
        if self.runtime == "numpy":
            return self._numpy_layers(x, self._attention_bias(mask), top, n, t)
        if len(top) < len(self._tuned):  # words read partway up the tuned layers: not cached
            return OnnxLayers(top, self.dim, self.heads, self.eps).run(
                x.reshape(n, t, self.dim), self._attention_bias(mask), batch).reshape(n * t, self.dim)
        return self._top_graph().run(x.reshape(n, t, self.dim), self._attention_bias(mask), batch
                                     ).reshape(n * t, self.dim)

    def encode_states(self, states: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Sentence vectors from the frozen layers' word-piece vectors (``frozen_states``): what
        ``encode`` gives, batched the same way, when those were computed once for many tunings."""
        order = np.argsort([len(s) for s in states], kind="stable")
        out = np.zeros((len(states), self.dim), np.float32)
        for start in range(0, len(states), batch_size):
            idx = order[start:start + batch_size]
            t = max(len(states[i]) for i in idx)
            x = np.zeros((len(idx), t, self.dim), np.float32)
            mask = np.zeros((len(idx), t), np.float32)
            for row, i in enumerate(idx):
                x[row, :len(states[i])] = states[i]
                mask[row, :len(states[i])] = 1.0
            bias = self._attention_bias(mask)
            if self.runtime == "numpy":
                hidden = self._numpy_layers(x.reshape(-1, self.dim), bias, self._tuned, len(idx), t)
            else:
                hidden = self._top_graph().run(x, bias, batch=len(states) > 8)
            out[idx] = mean_pooled(hidden.reshape(len(idx), t, self.dim), mask)
        return out


def frozen_states(encoder: TransformerEncoder, texts: list[str], layers: int, batch_size: int = 64
                  ) -> list[np.ndarray]:
    """Per text, the word-piece vectors (t, dim) of ``encoder`` after its first ``layers``
    layers, tokenized and truncated as ``encode`` does."""
    out: list[np.ndarray] = [np.zeros((0, encoder.dim), np.float32)] * len(texts)
    for idx, ids, mask in padded_batches(encoder._tokenizer.encode_batch(list(texts)), batch_size):
        hidden = encoder._run_layers(ids, mask, layers, batch=True).reshape(len(idx), ids.shape[1], encoder.dim)
        for row, i in enumerate(idx):
            out[i] = np.array(hidden[row, :int(mask[row].sum())], np.float32)
    return out
