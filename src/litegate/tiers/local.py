"""``kind = "local"``: an embedded model or a GGUF file, in-process on llama.cpp.

Schemas and label sets become grammars; labels are priced by token id. Priced per token: its
compute-hour price (``usd_per_hour``) at the model's quiet speed (litegate.ledger.pricing). The
chat service reaches the engine through this tier like any other (``achat``, ``astream``), and
reads the engine itself (capability ``"engine"``) only for what needs it: the context budget
and the tool-call decision.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Any, Literal

from litegate.engine.catalog import weights_bytes
from litegate.engine.llama import LlamaEngine
from litegate.engine.registry import ModelRegistry
from litegate.ledger.pricing import LOCAL_USD_PER_HOUR, Price
from litegate.tiers.base import BaseTier, TierConfig, TierDeps
from litegate.tiers.scoring import LabelScorer

Kind = Literal["chat", "completion"]


class LocalTier(BaseTier):
    kind = "local"
    # grammar: raw llguidance grammars; stream: chunks as they decode; engine: the llama.cpp engine itself
    capabilities = frozenset({"chat", "labels", "grammar", "stream", "engine"})
    requires = ("model",)
    default_usd_per_hour = LOCAL_USD_PER_HOUR
    MAX_SCORERS = 256

    def __init__(self, config: TierConfig, deps: TierDeps):
        super().__init__(config, deps)
        self.registry: ModelRegistry = deps.registry
        self.served = self.registry.add(config.model or "lite")
        self._scorers: dict[tuple[str, ...], LabelScorer] = {}
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.registry.lookup(self.served).name

    @property
    def price(self) -> Price:
        served = self.registry.lookup(self.served)
        usd = self.config.usd_per_hour if self.config.usd_per_hour is not None else LOCAL_USD_PER_HOUR
        return Price.local(usd, weights_bytes(getattr(served, "spec", served.name)))

    def engine(self) -> LlamaEngine:
        return self.registry.engine(self.served)

    async def aengine(self) -> LlamaEngine:
        """The engine, without blocking the event loop on a first load."""
        return (await self.registry.aengine(self.served))[1]

    @property
    def reads_images(self) -> bool:
        """Whether the model reads images itself (it has a multimodal projector)."""
        return self.registry.lookup(self.served).mmproj is not None

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        if schema is not None:
            body = dict(body, grammar=schema.grammar)
        return self.engine().run("chat", body)

    async def achat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        return await self.arun("chat", dict(body, grammar=schema.grammar) if schema is not None else body)

    async def arun(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """A finished chat or text completion."""
        return await (await self.aengine()).arun(kind, body)

    async def astream(self, kind: Kind, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Chunks as they decode, started: an engine error raises here, before the first chunk."""
        return await (await self.aengine()).astream_started(kind, body)

    def scorer(self, labels: list[str]) -> LabelScorer:
        """Label tokenisations and grammar, computed once per label set."""
        key = tuple(labels)
        with self._lock:
            scorer = self._scorers.get(key)
        if scorer is None:
            scorer = LabelScorer(self.engine(), labels)
            with self._lock:
                if len(self._scorers) >= self.MAX_SCORERS:
                    self._scorers.clear()
                self._scorers[key] = scorer
        return scorer

    def label_scores(self, messages: list[dict[str, Any]], labels: list[str],
                     max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        return self.scorer(labels).score(messages, max_tokens=max_tokens)
