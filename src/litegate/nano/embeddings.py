"""Sentence embeddings for every front end (OpenAI ``/v1/embeddings``, Gemini
``embedContent`` / ``batchEmbedContents``): one place that checks the model and dimensions,
runs the nano encoder, and ledgers the call priced as nano compute time."""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest, ModelNotFound
from litegate.ledger.pricing import NANO_USD_PER_HOUR, Price, Usage

MODEL = "all-minilm-l6-v2"
ALIASES = {MODEL, "all-MiniLM-L6-v2", "embedding", "text-embedding", "nano"}
MAX_INPUTS = 2048


class EmbeddingService:
    def __init__(self, classifiers: Any, accountant: Any = None, price: Price | None = None):
        self.classifiers = classifiers  # owns the encoder
        self.accountant = accountant
        self.price = price or Price(usd_per_hour=NANO_USD_PER_HOUR)

    @property
    def dimensions(self) -> int:
        return int(getattr(self.classifiers.encoder, "dim", 384))

    def check_model(self, model: str | None) -> str:
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("'model' must be a string", param="model")
        if model and model not in ALIASES and model.lower() not in ALIASES:
            raise ModelNotFound(f"the embedding model {model!r} does not exist on this server; use {MODEL}")
        return MODEL

    def embed(self, texts: list[str], model: str | None = None, dimensions: int | None = None, *,
              api: str = "embeddings", feature: str | None = None, api_key: str | None = None,
              param: str = "input") -> tuple[np.ndarray, int]:
        """(unit vectors (n, dim) float32, tokens used); ledgered."""
        name = self.check_model(model)
        if not texts:
            raise InvalidRequest(f"'{param}' must hold at least one text", param=param)
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"'{param}' holds {len(texts)} texts; at most {MAX_INPUTS} per request",
                                 param=param)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise InvalidRequest(f"'{param}[{i}]' must be a non-empty string", param=param)
        if dimensions is not None and dimensions != self.dimensions:
            raise InvalidRequest(f"{name} returns {self.dimensions} dimensions and cannot be shortened "
                                 f"(asked for {dimensions}); leave the dimensions out", param="dimensions")
        started = time.perf_counter()
        encoder = self.classifiers.encoder
        vectors = encoder.encode(texts)
        tokens = int(encoder.count_tokens(texts)) if hasattr(encoder, "count_tokens") else sum(
            len(t.split()) for t in texts)
        seconds = time.perf_counter() - started
        if self.accountant is not None:
            usage = {"prompt_tokens": tokens, "completion_tokens": 0}
            self.accountant.chat("emb_" + secrets.token_hex(12), api, "nano", name, usage, seconds * 1000,
                                 self.price.cost(Usage.of(usage), seconds), feature=feature, api_key=api_key)
        return vectors, tokens
