"""Sentence embeddings for every front end (OpenAI ``/v1/embeddings``, Gemini
``embedContent`` / ``batchEmbedContents``): one place that checks the model and dimensions,
runs the chosen nano encoder, and ledgers the call priced as nano compute time.

The model is an encoder's key (``fast``, ``accurate``, ``multilingual``) or its model's name;
the historical names (``all-minilm-l6-v2``, ``embedding``, ``nano``...) mean the default."""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest, ModelNotFound
from litegate.ledger.pricing import NANO_USD_PER_HOUR, Price, Usage
from litegate.nano.encoders import DEFAULT, KINDS, EncoderRegistry

MODEL = "all-minilm-l6-v2"  # the default's name as answered (lower case, as it has always been)
ALIASES = {MODEL, "all-MiniLM-L6-v2", "embedding", "text-embedding", "nano"}
MAX_INPUTS = 2048


class EmbeddingService:
    def __init__(self, encoders: EncoderRegistry, accountant: Any = None, price: Price | None = None):
        self.encoders = encoders
        self.accountant = accountant
        self.price = price or Price(usd_per_hour=NANO_USD_PER_HOUR)

    @property
    def dimensions(self) -> int:
        return KINDS[DEFAULT].dim

    @staticmethod
    def _kind(model: str | None) -> str:
        if not model or model in ALIASES or model.lower() in ALIASES:
            return DEFAULT
        for kind in KINDS.values():
            if model.lower() in (kind.key, kind.model.lower()):
                return kind.key
        names = ", ".join([MODEL] + [k.model.lower() for k in KINDS.values() if k.key != DEFAULT] + list(KINDS))
        raise ModelNotFound(f"the embedding model {model!r} does not exist on this server; use one of {names}")

    def check_model(self, model: str | None) -> str:
        """The name answered for ``model`` (the encoder's model name, lower case)."""
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("'model' must be a string", param="model")
        kind = self._kind(model)
        return MODEL if kind == DEFAULT else KINDS[kind].model.lower()

    def embed(self, texts: list[str], model: str | None = None, dimensions: int | None = None, *,
              api: str = "embeddings", feature: str | None = None, api_key: str | None = None,
              param: str = "input") -> tuple[np.ndarray, int]:
        """(unit vectors (n, dim) float32, tokens used); ledgered."""
        name = self.check_model(model)
        kind = KINDS[self._kind(model)]
        if not texts:
            raise InvalidRequest(f"'{param}' must hold at least one text", param=param)
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"'{param}' holds {len(texts)} texts; at most {MAX_INPUTS} per request",
                                 param=param)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise InvalidRequest(f"'{param}[{i}]' must be a non-empty string", param=param)
        encoder = self.encoders.get(kind.key)
        dim = int(getattr(encoder, "dim", kind.dim))
        if dimensions is not None and dimensions != dim:
            raise InvalidRequest(f"{name} returns {dim} dimensions and cannot be shortened "
                                 f"(asked for {dimensions}); leave the dimensions out", param="dimensions")
        started = time.perf_counter()
        vectors = encoder.encode(texts)
        tokens = int(encoder.count_tokens(texts)) if hasattr(encoder, "count_tokens") else sum(
            len(t.split()) for t in texts)
        seconds = time.perf_counter() - started
        if self.accountant is not None:
            usage = {"prompt_tokens": tokens, "completion_tokens": 0}
            self.accountant.chat("emb_" + secrets.token_hex(12), api, "nano", name, usage, seconds * 1000,
                                 self.price.cost(Usage.of(usage), seconds), feature=feature, api_key=api_key)
        return vectors, tokens
