"""Settings read from the environment (``LITEGATE_*``); the app owns one instance."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litegate"


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LITEGATE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="cache and data directory")
    threads: int = Field(default_factory=_default_threads, ge=1, description="decode threads per model")
    ctx: int = Field(default=8192, ge=256, description="context tokens per model, shared by its slots")
    parallel: int = Field(default=8, ge=1, le=64,
                          description="concurrent sequences per model (8 measured best on 2 cores: bench/settings.py)")
    log_level: int = Field(default=0, ge=0, le=4, description="llama.cpp log verbosity")
    ledger_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite in home")
    speculative: Literal["none", "draft", "ngram"] = Field(
        default="none", description="speculative decoding for the pro model: the lite model as draft, or n-gram "
                                    "lookup; off by default because on 2 cores it measured slower (bench/speculative.py)")

    def ledger_database_url(self) -> str:
        if self.ledger_url:
            return self.ledger_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.home / 'ledger.db'}"
