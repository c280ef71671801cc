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
from litegate.nano.encoder import TransformerEncoder, joined, mean_pooled, padded_batches
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
        self._graphs = {}  # the tuned layers' own graphs (by layers run and tapped), never the base's
        self._graph_lock = threading.Lock()

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        return self._base._embed(ids)

    def _position_bias(self, t: int) -> np.ndarray | float:
        return self._base._position_bias(t)

    def _top_graph(self, layers: int | None = None, taps: tuple[int, ...] = ()) -> OnnxLayers:
        """The graph of the first ``layers`` tuned layers (default: all), with outputs after each
        of ``taps`` (counted within the tuned layers), made once."""
        return self._cached_graph(self._tuned, len(self._tuned) if layers is None else layers, taps)

    def _hidden_states(self, ids: np.ndarray, mask: np.ndarray, layers: tuple[int, ...],
                       batch: bool) -> dict[int, np.ndarray]:
        # the base's graph up to the frozen layers (and any asked for below them), then the tuned ones
        if max(layers) <= self.frozen:
            return self._base._hidden_states(ids, mask, layers, batch)
        below = tuple(k for k in layers if k <= self.frozen)
        states = self._base._hidden_states(ids, mask, (*below, self.frozen), batch)
        n, t = ids.shape
        above = self._tuned_states(states[self.frozen], self._attention_bias(mask), n, t,
                                   tuple(k - self.frozen for k in layers if k > self.frozen), batch)
        return {**{k: states[k] for k in below}, **{k + self.frozen: v for k, v in above.items()}}

    def _tuned_states(self, x: np.ndarray, bias: np.ndarray, n: int, t: int, layers: tuple[int, ...],
                      batch: bool) -> dict[int, np.ndarray]:
        """Word-piece vectors (n * t, dim) after each of ``layers`` tuned layers, from the frozen
        layers' ``x`` (n * t, dim)."""
        top = max(layers)
        taps = tuple(sorted(set(layers) - {top}))
        if self.runtime == "numpy":
            out = self._numpy_tapped(x.reshape(n * t, self.dim), bias, self._tuned[:top], n, t, taps)
        else:
            out = self._top_graph(top, taps).run_tapped(x.reshape(n, t, self.dim), bias, batch)
        return {k: v.reshape(n * t, self.dim) for k, v in zip((top, *taps), out)}

    def encode_states(self, states: list[np.ndarray], batch_size: int = 64,
                      layers: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
        """Sentence vectors from the frozen layers' word-piece vectors (``frozen_states``): what
        ``features(texts, layers)`` gives, batched the same way, when those were computed once
        for many tunings. ``layers`` (default: the last) may not read below the frozen ones."""
        reading = self.reading(layers)
        if min(reading) < self.frozen:
            raise ValueError(f"layers {list(reading)} read below the {self.frozen} frozen layers the states are from")
        order = np.argsort([len(s) for s in states], kind="stable")
        out = np.zeros((len(states), self.dim * len(reading)), np.float32)
        tuned = tuple(k - self.frozen for k in reading if k > self.frozen)
        for start in range(0, len(states), batch_size):
            idx = order[start:start + batch_size]
            t = max(len(states[i]) for i in idx)
            x = np.zeros((len(idx), t, self.dim), np.float32)
            mask = np.zeros((len(idx), t), np.float32)
            for row, i in enumerate(idx):
                x[row, :len(states[i])] = states[i]
                mask[row, :len(states[i])] = 1.0
            hidden = {self.frozen: x.reshape(-1, self.dim)}
            if tuned:
                hidden.update({k + self.frozen: v for k, v in self._tuned_states(
                    x, self._attention_bias(mask), len(idx), t, tuned, batch=len(states) > 8).items()})
            out[idx] = joined([mean_pooled(hidden[k].reshape(len(idx), t, self.dim), mask) for k in reading])
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
