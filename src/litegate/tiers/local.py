"""``kind = "local"``: an embedded model or a GGUF file, in-process on llama.cpp.

Schemas and label sets become grammars; labels are priced by token id. Priced per token: its
compute-hour price (``usd_per_hour``) at the model's quiet speed (litegate.ledger.pricing).
"""

from __future__ import annotations

import threading
from typing import Any

from litegate.engine.catalog import weights_bytes
from litegate.ledger.pricing import LOCAL_USD_PER_HOUR, Price
from litegate.tiers.base import BaseTier, TierConfig
from litegate.tiers.scoring import LabelScorer


class LocalTier(BaseTier):
    kind = "local"
    capabilities = frozenset({"chat", "labels", "grammar"})  # grammar: raw llguidance grammars
    requires = ("model",)
    default_usd_per_hour = LOCAL_USD_PER_HOUR
    MAX_SCORERS = 256

    def __init__(self, config: TierConfig, deps: Any):
        super().__init__(config, deps)
        self.registry = deps.registry
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

    def engine(self) -> Any:
        return self.registry.engine(self.served)

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        if schema is not None:
            body = dict(body, grammar=schema.grammar)
        return self.engine().run("chat", body)

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
