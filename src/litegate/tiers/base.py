"""What every tier is: its config, its price, the protocol tasks call, and the config checks.

A tier is a place a task's model work can run. Task code calls the protocol only — it never
asks which kind a tier is, only what it can do (``capabilities``):

- ``"chat"``: ``chat(body, schema=None)`` (sync, for tasks in worker threads) and
  ``achat(body, schema=None)`` (async, for the chat service) return an OpenAI-shaped chat
  completion whose reply follows ``schema`` when one is given;
- ``"stream"``: ``astream(kind, body)`` yields chunks as they decode;
- ``"engine"``: the tier runs on a llama.cpp engine in this process (``aengine()``), which the
  chat service reads for context budgets and tool-call decisions;
- ``"relay"``: ``arelay_stream(body)`` passes an OpenAI-compatible remote's bytes through;
- ``"labels"``: ``label_scores(messages, labels)`` prices every label in one generation;
- ``"classifier"`` / ``"embed"``: trained nano classifiers and sentence embeddings.

Each tier prices its own calls (``cost``): by tokens for remote tiers, by compute time for
local ones.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from litegate.config import Settings, check_tables
from litegate.errors import ConfigError
from litegate.ledger.pricing import LOCAL_USD_PER_HOUR, NANO_USD_PER_HOUR, Price, Usage, engine_ms

if TYPE_CHECKING:
    from litegate.engine.registry import ModelRegistry
    from litegate.nano.classifier import ClassifierStore
    from litegate.nano.encoders import EncoderRegistry
    from litegate.nano.extractor import ExtractorStore

__all__ = ["LOCAL_USD_PER_HOUR", "NANO_USD_PER_HOUR", "BaseTier", "Price", "Tier", "TierConfig", "TierDeps", "Usage",
           "check_names", "engine_ms", "parse_tiers"]


@dataclass
class TierConfig:
    name: str
    kind: str
    model: str | None = None  # local: embedded name or GGUF path; remote: the provider's model name
    base_url: str | None = None
    api_key_env: str | None = None  # the key is read from this environment variable, never from the file
    price_in_per_million: float = 0.0
    price_out_per_million: float = 0.0
    usd_per_hour: float | None = None  # local and nano tiers: compute-time price
    timeout_s: float = 60.0
    max_retries: int = 2
    concurrency: int = 8
    fallback: str | None = None  # another tier's name, used when this one is down
    breaker_failures: int = 3
    breaker_reset_s: float = 30.0
    classifier: str | None = None  # nano: the classifier used when a request names none
    cascade: bool = True  # part of the default cascade order ([[remote]] tables are not)
    options: dict[str, Any] = field(default_factory=dict)  # kind-specific settings


@dataclass
class TierDeps:
    """What tier kinds may use, made once by the composition root."""

    registry: ModelRegistry
    classifiers: ClassifierStore
    settings: Settings
    extractors: ExtractorStore | None = None
    encoders: EncoderRegistry | None = None


@runtime_checkable
class Tier(Protocol):
    """The one seam between tasks (and the chat service) and where model work runs. What a
    tier can do beyond this is named by ``capabilities`` (see the module's docstring)."""

    name: str
    kind: ClassVar[str]
    config: TierConfig
    capabilities: ClassVar[frozenset[str]]
    remote: ClassVar[bool]

    @property
    def model(self) -> str: ...

    @property
    def price(self) -> Price: ...

    def cost(self, usage: Usage, seconds: float) -> float: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class BaseTier:
    """Shared plumbing for tier kinds; a kind sets ``kind``, ``capabilities`` and ``requires``
    and implements the calls its capabilities promise."""

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[tuple[str, ...]] = ()  # config keys this kind cannot do without
    remote: ClassVar[bool] = False  # priced per token; served on the chat API by name
    default_usd_per_hour: ClassVar[float | None] = None

    def __init__(self, config: TierConfig, deps: Any = None):
        self.config = config
        self.name = config.name
        self.deps = deps

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        raise NotImplementedError(f"the {self.kind} tier cannot chat")

    async def achat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        """Async chat; a kind whose client is sync only runs ``chat`` in a worker thread."""
        return await asyncio.to_thread(self.chat, body, schema)

    @property
    def model(self) -> str:
        return self.config.model or self.name

    @property
    def price(self) -> Price:
        if self.remote:
            return Price(self.config.price_in_per_million, self.config.price_out_per_million)
        return Price(usd_per_hour=self.config.usd_per_hour if self.config.usd_per_hour is not None
                     else self.default_usd_per_hour)

    def cost(self, usage: Usage, seconds: float) -> float:
        return self.price.cost(usage, seconds)

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "kind": self.kind, "in_cascade": self.config.cascade,
                                "capabilities": sorted(self.capabilities)}
        if self.config.model:
            item["model"] = self.config.model
        breaker = getattr(self, "breaker", None)
        if breaker is not None:
            item["circuit"] = breaker.state
        return item

    def close(self) -> None:
        """Release clients and sessions (sync)."""

    async def aclose(self) -> None:
        """Release async sessions."""


# -- config checks ------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NUMBERS = ("price_in_per_million", "price_out_per_million", "usd_per_hour", "timeout_s", "breaker_reset_s")
_COUNTS = ("max_retries", "concurrency", "breaker_failures")


def parse_tiers(tables: Any, source: str, kinds: dict[str, type[BaseTier]],
                builtin: tuple[str, ...] = ("lite", "pro")) -> list[TierConfig]:
    """Validate ``[[tier]]`` tables (in cascade order) into TierConfigs; every problem is a
    one-line ConfigError naming the table."""
    tiers: list[TierConfig] = []
    for where, table in check_tables(tables, "tier", {f.name for f in fields(TierConfig)}, source):
        name = table.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{where} needs 'name' (letters, digits, _ . : -)")
        if name == "auto":
            raise ConfigError(f"{where}: 'auto' is reserved for the cascade")
        kind = table.get("kind")
        if kind not in kinds:
            raise ConfigError(f"{where} ({name}): 'kind' must be one of {', '.join(kinds)}")
        for key in kinds[kind].requires:
            if not table.get(key):
                raise ConfigError(f"{where} ({name}): kind {kind} needs '{key}'")
        for key in _NUMBERS:
            if key in table and (isinstance(table[key], bool) or not isinstance(table[key], (int, float))
                                 or table[key] < 0):
                raise ConfigError(f"{where} ({name}): '{key}' must be a number >= 0")
        for key in _COUNTS:
            if key in table and (isinstance(table[key], bool) or not isinstance(table[key], int)
                                 or table[key] < (0 if key == "max_retries" else 1)):
                raise ConfigError(f"{where} ({name}): '{key}' must be a positive integer")
        for key in ("model", "base_url", "api_key_env", "fallback", "classifier"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{where} ({name}): '{key}' must be a string")
        tiers.append(TierConfig(**table))
    check_names(tiers, source, builtin)
    return tiers


def check_names(tiers: list[TierConfig], source: str, builtin: tuple[str, ...] = ("lite", "pro")) -> None:
    """Unique names; fallbacks that name a tier and end (no cycles)."""
    names = [t.name for t in tiers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: tier names must be unique ({', '.join(dupes)})")
    by_name = {t.name: t for t in tiers}
    for t in tiers:
        if t.fallback is not None and t.fallback not in by_name and t.fallback not in builtin:
            raise ConfigError(f"{source}: tier {t.name!r} falls back to {t.fallback!r}, which is not a tier")
        # a chain of fallbacks must end: each one is tried when the previous is down
        chain, at = [t.name], t.fallback
        while at is not None:
            if at in chain:
                raise ConfigError(f"{source}: tier fallbacks form a cycle: {' -> '.join(chain + [at])}")
            chain.append(at)
            at = by_name[at].fallback if at in by_name else None
