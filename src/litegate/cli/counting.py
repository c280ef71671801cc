"""The encoder registry counting the texts it encodes, for ``litegate train``'s progress line
(its own module: it pulls in the encoders, which only training needs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litegate.nano.encoders import EncoderRegistry


class CountingEncoder:
    """The encoder, reporting how many texts it has encoded: most of a nano model's training
    time, so the count and its rate are what a progress line can honestly show."""

    def __init__(self, inner: Any, on_texts: Callable[[int], None]):
        self._inner = inner
        self.wrapped = inner  # the encoder itself (tuning reads its layers: litegate.nano.tuned)
        self._on_texts = on_texts

    def encode(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        out = self._inner.encode(texts, *args, **kwargs)
        self._on_texts(len(texts))
        return out

    def features(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        out = self._inner.features(texts, *args, **kwargs)
        self._on_texts(len(texts))
        return out

    def encode_tokens(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        out = self._inner.encode_tokens(texts, *args, **kwargs)
        self._on_texts(len(texts))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingEncoders(EncoderRegistry):
    """The encoder registry, its encoders counting the texts they encode (``CountingEncoder``)."""

    def __init__(self, models_dir: Path, on_texts: Callable[[int], None]):
        super().__init__(models_dir)
        self._on_texts = on_texts
        self._counting: dict[int, CountingEncoder] = {}

    def get(self, name: str | None = None) -> Any:
        inner = super().get(name)
        if id(inner) not in self._counting:
            self._counting[id(inner)] = CountingEncoder(inner, self._on_texts)
        return self._counting[id(inner)]
