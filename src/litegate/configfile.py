"""The one config file (TOML), read and checked once: tiers in cascade order (``[[tier]]``), API
keys (``[[api_key]]``) and, for older files, remote chat models (``[[remote]]``, now OpenAI-kind
tiers that stay out of the default cascade).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litegate.config import check_tables, load_toml
from litegate.errors import ConfigError
from litegate.keys import ApiKey, parse_keys
from litegate.tiers import TIER_KINDS, TierConfig, parse_tiers

log = logging.getLogger("litegate.config")

SECTIONS = ("tier", "api_key", "remote")
_REMOTE_KEYS = {"name", "base_url", "model", "api_key_env", "timeout_s", "max_retries", "concurrency",
                "price_in_per_million", "price_out_per_million", "fallback", "breaker_failures", "breaker_reset_s"}


@dataclass
class Config:
    """What the config file declares; empty when there is none."""

    tiers: list[TierConfig] = field(default_factory=list)  # in cascade order
    api_keys: list[ApiKey] = field(default_factory=list)
    source: str | None = None


def read_toml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    data = load_toml(path, "config file")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown sections {unknown}; expected [[tier]], [[api_key]] and [[remote]]")
    return data


def _remote_tables(tables: Any, source: str) -> list[dict[str, Any]]:
    """``[[remote]]`` (the older way to declare a remote chat model) as ``[[tier]]`` tables of
    kind openai that stay out of the default cascade."""
    checked = check_tables(tables, "remote", _REMOTE_KEYS, source)
    if checked:
        log.warning("%s: [[remote]] is deprecated; declare [[tier]] with kind = \"openai\" instead "
                    "(it is served on the chat API under its name too)", source)
    out = []
    for where, table in checked:
        for key in ("name", "base_url", "model"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise ConfigError(f"{where} needs '{key}'")
        out.append({"concurrency": 16, "fallback": "lite", **table, "kind": "openai", "cascade": False})
    return out


def load_config(path: Path | str | None) -> Config:
    """Read and check the config file once: tiers, remotes (as tiers) and API keys. An empty
    path (``LITEGATE_CONFIG=``, which reads as the current folder) means no file."""
    if path is None or str(path).strip() in ("", "."):
        return Config()
    data = read_toml(path)
    source = str(path)
    tables = list(data.get("tier", [])) if isinstance(data.get("tier", []), list) else data["tier"]
    if isinstance(tables, list):
        tables = tables + _remote_tables(data.get("remote", []), source)
    tiers = parse_tiers(tables, source, TIER_KINDS)
    return Config(tiers=tiers, api_keys=parse_keys(data.get("api_key", []), source), source=source)

