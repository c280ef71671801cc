"""Tiers: where a task's model work runs. One module per kind, one registry line each.

To add a kind, write a module with a ``BaseTier`` subclass (its ``kind``, ``capabilities``,
``requires`` and the calls the capabilities promise) and add it to ``TIER_KINDS``.
"""

from __future__ import annotations

from litegate.ledger.pricing import Price, Usage
from litegate.tiers.base import BaseTier, Tier, TierConfig, TierDeps, check_names, parse_tiers
from litegate.tiers.gemini import GeminiTier
from litegate.tiers.local import LocalTier
from litegate.tiers.nano import NanoTier
from litegate.tiers.openai import OpenAITier
from litegate.tiers.resilience import RETRY_STATUS, CircuitBreaker, Resilience, backoff_s

TIER_KINDS: dict[str, type[BaseTier]] = {
    "local": LocalTier,
    "openai": OpenAITier,
    "gemini": GeminiTier,
    "nano": NanoTier,
}


def make_tier(config: TierConfig, deps: TierDeps) -> BaseTier:
    return TIER_KINDS[config.kind](config, deps)


__all__ = ["TIER_KINDS", "RETRY_STATUS", "BaseTier", "CircuitBreaker", "GeminiTier", "LocalTier", "NanoTier",
           "OpenAITier", "Price", "Resilience", "Tier", "TierConfig", "TierDeps", "Usage", "backoff_s", "check_names",
           "make_tier", "parse_tiers"]
