"""The value tagger: how much each word of a text looks like the start or the inside of a slot
value, whatever the field and the domain, read from the fast encoder's word vectors.

An extractor trained from ~100 utterances has 0-14 examples per field: too few for its CRF to
learn that "greogry" after "transfer to" or "elia greek restaurant" after "payments to" is a
value at all. This tagger has learned that from other domains' slot sets: a multinomial
logistic regression from a word's unit vector (MiniLM after its 4th layer, the one the
extractor reads) and its two neighbours' to three tags, ``B`` (a value starts here), ``I``
(a value goes on) and ``O``, over every slot of every set at once. The CRF reads its two
probabilities as two more features (``value=B``, ``value=I``), beside its own per-field probe.

What ships (``value_tagger.npz``, sha256 pinned; made by bench/value_tagger.py): the weights
(3 x 1152) and biases, float32, and what they were trained on: PolyAI's span-extraction sets
(github.com/PolyAI-LDN/task-specific-datasets, CC BY 4.0; Coope et al. 2020): the first
training file of DSTC8's buses, events, homes and rental cars and of Restaurant8k, at most
3,000 utterances each, 8,569 utterances. Only the fast encoder's vectors are read by it: an
extractor trained with another encoder goes without (``applies``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import ModelFileError
from litegate.nano.vectors import softmax
from litegate.packages import file_sha256

FILE = "value_tagger.npz"
SHA256 = "51e682dc52bd087171576dbc3a71080b411e5f91a46ae7d2260b9b5431171c0d"
TAGS = ("O", "B", "I")


@dataclass(frozen=True)
class ValueTagger:
    weights: np.ndarray  # (3, inputs): O, B, I
    bias: np.ndarray  # (3,)
    encoder: str  # the encoder whose word vectors it reads (its model's name)
    layer: int  # the layer read
    dim: int  # the width of one word vector
    meta: dict[str, Any]

    def applies(self, encoder: Any, layer: int) -> bool:
        """Whether ``encoder``'s word vectors at ``layer`` are the ones this tagger learned from."""
        return getattr(encoder, "name", None) == self.encoder and layer == self.layer \
            and getattr(encoder, "dim", None) == self.dim

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(words, 3) P(O), P(B), P(I) from the words' inputs (``extractor._probe_inputs`` of their
        unit vectors: each word beside its two neighbours)."""
        if inputs.shape[1] != self.weights.shape[1]:
            raise ValueError(f"the value tagger reads {self.weights.shape[1]} inputs a word, got {inputs.shape[1]}")
        return softmax(inputs.astype(np.float32) @ self.weights.T + self.bias)

    def save(self, path: Path) -> None:
        meta = {**self.meta, "encoder": self.encoder, "layer": self.layer, "dim": self.dim, "tags": list(TAGS)}
        with open(path, "wb") as f:
            np.savez_compressed(f, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                                meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: Path) -> ValueTagger:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                weights, bias = np.asarray(data["weights"], np.float32), np.asarray(data["bias"], np.float32)
        except (OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path} is not a value tagger ({e})") from None
        if tuple(meta.get("tags", ())) != TAGS or weights.shape != (3, 3 * int(meta["dim"])) or bias.shape != (3,):
            raise ModelFileError(f"{path} holds weights of another shape than a value tagger's")
        return cls(weights, bias, str(meta["encoder"]), int(meta["layer"]), int(meta["dim"]), meta)


@functools.cache
def shipped() -> ValueTagger:
    """The tagger in this package, checked against its pinned sha256."""
    path = Path(str(resources.files("litegate.nano") / FILE))
    if not path.is_file() or file_sha256(path) != SHA256:
        raise ModelFileError(f"{path} is missing or does not match its pinned sha256; reinstall litegate")
    return ValueTagger.load(path)
