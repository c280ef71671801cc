"""Prices and usage: what a call consumed (tokens, engine time) and what it costs.

Remote tiers are priced per token, local and nano tiers per compute hour of the engine's own
time. Tiers, documents and embeddings all price through ``Price``; the ledger stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOCAL_USD_PER_HOUR = 0.10  # a CPU-hour ballpark for the local LLM tiers
NANO_USD_PER_HOUR = 0.05


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    engine_ms: float = 0.0  # the engine's own prefill + decode time (llama.cpp "timings"), queueing excluded

    def add(self, result: dict[str, Any] | Usage | None) -> None:
        if isinstance(result, Usage):
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.cached_tokens += result.cached_tokens
            self.engine_ms += result.engine_ms
            return
        u = (result or {}).get("usage") or {}
        self.prompt_tokens += int(u.get("prompt_tokens", 0) or 0)
        self.completion_tokens += int(u.get("completion_tokens", 0) or 0)
        self.cached_tokens += int((u.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0)
        self.engine_ms += engine_ms((result or {}).get("timings"))

    @classmethod
    def of(cls, usage: dict[str, Any] | None, timings: dict[str, Any] | None = None) -> Usage:
        out = cls()
        out.add({"usage": usage or {}, "timings": timings})
        return out

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens}


def engine_ms(timings: dict[str, Any] | None) -> float:
    """Prefill + decode milliseconds from llama.cpp's ``timings`` (0 when absent)."""
    if not isinstance(timings, dict):
        return 0.0
    try:
        return max(0.0, float(timings.get("prompt_ms") or 0.0) + float(timings.get("predicted_ms") or 0.0))
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Price:
    """Per million tokens (remote tiers) or per compute hour (local and nano tiers)."""

    in_per_million: float = 0.0
    out_per_million: float = 0.0
    usd_per_hour: float | None = None

    def cost(self, usage: Usage, seconds: float) -> float:
        """Remote: per token. Local: per hour of the engine's own time for the call when the
        engine reports it, so a call that waited in a burst does not pay for the wait; else
        the wall time given."""
        if self.usd_per_hour is not None:
            busy = usage.engine_ms / 1000.0 if usage.engine_ms > 0 else seconds
            if seconds > 0:
                busy = min(busy, seconds)
            return busy * self.usd_per_hour / 3600.0
        return (usage.prompt_tokens * self.in_per_million + usage.completion_tokens * self.out_per_million) / 1e6


# what a call can cost at most, before it runs (a key's budget reserves this). A local engine is
# priced per second of its own time, which contention stretches without a bound from the
# tokens alone; what bounds it is the decode deadline (a generation still running then is
# stopped) plus the prompt's prefill, at a rate far below any measured here (~100-170 tok/s).
PREFILL_S_PER_TOKEN_CEILING = 0.05


def upper_bound(prices: list[Price], tokens_in: int, tokens_out: int, decode_deadline_s: float) -> float:
    """The most a call of ``tokens_in`` prompt tokens and at most ``tokens_out`` generated
    ones can cost on the priciest of ``prices``."""
    worst = 0.0
    for price in prices:
        if price.usd_per_hour is not None:
            seconds = tokens_in * PREFILL_S_PER_TOKEN_CEILING + decode_deadline_s
            worst = max(worst, seconds * price.usd_per_hour / 3600.0)
        else:
            worst = max(worst, (tokens_in * price.in_per_million + tokens_out * price.out_per_million) / 1e6)
    return worst
