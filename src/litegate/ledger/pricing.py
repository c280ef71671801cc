"""Prices and usage: what a call consumed (tokens, engine time) and what it costs.

Every LLM tier is priced per token. A local tier's price is its compute-hour price
(``usd_per_hour``) turned into a price per prompt and per completion token at the speed its
model runs on a quiet machine (``QUIET``): the same request costs the same at load 0.5 and at
load 8, whatever the neighbours do to the engine's time, which the ledger still records.
Documents are priced per OCR'd page and per second of audio the same way. The nano tier,
whose calls take milliseconds, stays priced by compute time. Tiers, documents and embeddings
all price through this module; the ledger stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOCAL_USD_PER_HOUR = 0.10  # a CPU-hour ballpark for the local LLM tiers
NANO_USD_PER_HOUR = 0.05


@dataclass(frozen=True)
class QuietSpeed:
    """How fast local work runs on a quiet machine with the default compute budget: the
    calibration behind per-token and per-page prices. Decode on a CPU reads every weight once
    per token, so an LLM's speed scales with the inverse of its weights' size."""

    weights_bytes: int  # of the model measured
    prefill_tok_s: float
    decode_tok_s: float
    ocr_s_per_page: float
    asr_s_per_audio_s: float
    encoder_sentences_s: float  # the nano encoder, one BLAS thread, 12-word sentences in batches of 32
    measured: str

    def llm_seconds(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
                    weights_bytes: int | None = None) -> float:
        """Quiet engine seconds for a call to a model of ``weights_bytes`` (default: the one measured).
        A prompt's cached prefix is not computed again."""
        scale = (weights_bytes or self.weights_bytes) / self.weights_bytes
        fresh = max(0, prompt_tokens - cached_tokens)
        return scale * (fresh / self.prefill_tok_s + completion_tokens / self.decode_tok_s)


# Quiet calibration (2 cores, 2 llama.cpp threads, the embedded lite model, 491,400,064 bytes of
# Q4_K_M weights): decode 48.6 tok/s serial over 8 requests and prefill ~150 tok/s (FINDINGS.md,
# "Engines"; the pro model's 15-20 tok/s matches the size scaling); OCR 1.3 s per page (rapidocr,
# bench/documents.py: 1.2-1.4 s); speech 0.1 s per second of audio (Whisper tiny.en int8); the
# encoder ~100 sentences per CPU-second on one BLAS thread (measured on CPU time, which a busy
# machine does not stretch: 94-108 at load 19, where wall time gave 10 per second).
# A machine that is never quiet cannot re-measure these (bench/README.md, "Under contention"):
# re-calibrate on an idle machine with bench/serve.py and bench/documents.py.
QUIET = QuietSpeed(weights_bytes=491_400_064, prefill_tok_s=150.0, decode_tok_s=48.6, ocr_s_per_page=1.3,
                   asr_s_per_audio_s=0.1, encoder_sentences_s=100.0,
                   measured="FINDINGS.md (Engines: 2 cores, 2 threads), bench/documents.py, CPU-time encoder probe")


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
    """Per million tokens (every LLM tier), or per compute hour (the nano tier, and any
    call that reports no tokens). ``cached_per_million``: the price of a prompt's cached
    prefix (None: the same as the rest of the prompt)."""

    in_per_million: float = 0.0
    out_per_million: float = 0.0
    usd_per_hour: float | None = None
    cached_per_million: float | None = None

    @classmethod
    def local(cls, usd_per_hour: float, weights_bytes: int | None = None, quiet: QuietSpeed = QUIET) -> Price:
        """A compute-hour price as a per-token price, at the model's quiet speed: a cached
        prompt prefix is not computed again, so it costs nothing."""
        per_second = usd_per_hour / 3600.0
        return cls(in_per_million=per_second * quiet.llm_seconds(1_000_000, 0, weights_bytes=weights_bytes),
                   out_per_million=per_second * quiet.llm_seconds(0, 1_000_000, weights_bytes=weights_bytes),
                   usd_per_hour=usd_per_hour, cached_per_million=0.0)

    def cost(self, usage: Usage, seconds: float) -> float:
        """Per token when the price has token rates; else (the nano tier) per hour of the
        engine's own time when reported, so a call that waited in a burst does not pay for
        the wait, or the wall time given."""
        if self.in_per_million or self.out_per_million or self.usd_per_hour is None:
            cached = min(usage.cached_tokens, usage.prompt_tokens)
            cached_rate = self.in_per_million if self.cached_per_million is None else self.cached_per_million
            return ((usage.prompt_tokens - cached) * self.in_per_million + cached * cached_rate
                    + usage.completion_tokens * self.out_per_million) / 1e6
        busy = usage.engine_ms / 1000.0 if usage.engine_ms > 0 else seconds
        if seconds > 0:
            busy = min(busy, seconds)
        return busy * self.usd_per_hour / 3600.0


def document_cost(ocr_pages: int, audio_seconds: float, usd_per_hour: float = LOCAL_USD_PER_HOUR,
                  quiet: QuietSpeed = QUIET) -> float:
    """Reading files, priced per OCR'd page and per second of audio transcribed at their quiet
    speed (text layers and plain text are free)."""
    return usd_per_hour / 3600.0 * (ocr_pages * quiet.ocr_s_per_page + audio_seconds * quiet.asr_s_per_audio_s)


# what a call can cost at most, before it runs (a key's budget reserves this). A price per token
# is bounded by the tokens; one per second of engine time (nano, or a tier configured so) is
# stretched by contention without a bound from the tokens alone: what bounds it is the decode
# deadline (a generation still running then is stopped) plus the prompt's prefill, at a rate
# far below any measured here (~100-170 tok/s).
PREFILL_S_PER_TOKEN_CEILING = 0.05


def upper_bound(prices: list[Price], tokens_in: int, tokens_out: int, decode_deadline_s: float) -> float:
    """The most a call of ``tokens_in`` prompt tokens and at most ``tokens_out`` generated
    ones can cost on the priciest of ``prices``."""
    worst = 0.0
    for price in prices:
        if price.in_per_million or price.out_per_million:  # per token: the tokens bound it
            worst = max(worst, (tokens_in * price.in_per_million + tokens_out * price.out_per_million) / 1e6)
        elif price.usd_per_hour is not None:
            seconds = tokens_in * PREFILL_S_PER_TOKEN_CEILING + decode_deadline_s
            worst = max(worst, seconds * price.usd_per_hour / 3600.0)
    return worst
