"""Settings from the environment (``LITEGATE_*``), and the TOML helpers every config reader
shares (``load_toml``, ``check_tables``). A leaf: what the config file declares is read by
``litegate.configfile``, which knows the tier kinds and keys.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from litegate.compute import DEFAULT_POLL, DOCUMENT_NICE, available_cpus
from litegate.errors import ConfigError

log = logging.getLogger("litegate.config")


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litegate"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LITEGATE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="cache and data directory")
    models_dir: Path | None = Field(default=None, description="joined model files (default: <home>/models)")
    threads: int = Field(default_factory=available_cpus, ge=1,
                         description="the compute budget every engine shares (llama.cpp, OCR, speech, the encoder): "
                                     "default the CPUs this process may use (affinity and cgroup quota); see "
                                     "litegate.compute and `litegate doctor`")
    llama_threads: int = Field(default=0, ge=0, le=512, description="llama.cpp threads per model (0: the budget, "
                               "LITEGATE_THREADS, less one CPU, at least 1: on a busy machine a wider pool convoys; "
                               "bench/contention.py)")
    poll: int = Field(default=DEFAULT_POLL, ge=0, le=100,
                      description="llama.cpp's busy-wait between computations, 0-100 (0: sleep at once; llama.cpp's "
                                  "own default 50 spins, which costs neighbours CPU: bench/contention.py)")
    document_workers: int = Field(default=1, ge=1, le=64, description="files read (OCR, speech, PDF rendering) at "
                                                                      "once, on worker threads of their own")
    document_queue: int = Field(default=8, ge=0, le=10_000, description="files that may wait for a document "
                                "worker; beyond that a request with files is refused with 503 and Retry-After")
    document_nice: int = Field(default=DOCUMENT_NICE, ge=0, le=19, description="how much lower document workers' "
                               "CPU priority is than request threads' (Linux nice steps; 0: the same, the default: "
                               "on a shared machine a lower priority starves documents behind the neighbours)")
    ctx: int = Field(default=8192, ge=256, description="context tokens per model, shared by its slots")
    parallel: int = Field(default=8, ge=1, le=64,
                          description="concurrent sequences per model (8 measured best on 2 cores: bench/settings.py)")
    queue: int = Field(default=32, ge=0, le=10_000,
                       description="requests that may wait for a model's slots; beyond parallel + queue a new "
                                   "request is refused at once with 503 and Retry-After")
    prompt_cache_mb: int = Field(default=512, ge=0, le=65536,
                                 description="host RAM per model for llama.cpp's cache of earlier prompts "
                                             "(reused when a prompt shares their prefix); 0 turns it off")
    decode_deadline_s: float = Field(default=300.0, gt=0, description="a generation still running this long after "
                                     "its first token is stopped with 504 (streamed and plain chat requests)")
    log_level: int = Field(default=0, ge=0, le=4, description="llama.cpp log verbosity")
    ledger_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite in home")
    config: Path | None = Field(default=None, description="the TOML config file")
    pipelines: Path | None = Field(default=None, description="a pipeline TOML file or a folder of them (default: "
                                                             "<home>/pipelines)")
    max_body_mb: float = Field(default=32, gt=0, le=4096, description="largest request body accepted, in MB "
                                                                     "(larger: HTTP 413)")
    max_file_mb: float = Field(default=200, gt=0, le=65536, description="largest file accepted by the OpenAI and "
                                                                     "Gemini Files APIs, in MB (larger: HTTP 413)")
    batch_concurrency: int = Field(default=16, ge=1, le=1024, description="batch lines answered at once per job "
                                   "(LLM lines also wait for a free engine slot; interactive requests go first)")
    mmproj: Path | None = Field(default=None, description="a multimodal projector GGUF for the served --model: "
                                                         "images go to the model itself instead of OCR")
    fetch_urls: bool = Field(default=False, description="fetch http(s) URLs given as files (image_url, file_url) "
                                                        "through the address guard; off: data URLs and file ids only")
    max_document_mb: float = Field(default=20, gt=0, le=4096, description="largest total of files in one request, in "
                                                                         "MB (larger: HTTP 413)")
    coalesce: bool = Field(default=True, description="concurrent calls to one nano classifier run as one batched "
                                                     "forward pass (more throughput under load; bench/batch.py)")
    distill_every: int = Field(default=0, ge=0, description="retrain a learning classifier or extractor in the "
                                                            "background after this many new labels (0: only on "
                                                            "`litegate distill`)")
    teacher_min_confidence: float = Field(default=0.9, gt=0, le=1, description="a stronger tier's answer becomes a "
                                          "training label at this confidence or above (when no calibrated policy "
                                          "sets its threshold)")
    tool_decision: Literal["rule", "learned"] = Field(
        default="learned",
        description="tool_choice auto: the shipped learned decision (learned: the request read against each tool "
                    "and its parameters, fitted on BFCL's tuning half and the project's tuning set; as right as the "
                    "rule on the project's held-out sets, fewer calls on BFCL's irrelevant questions; "
                    "docs/agents.md) or the fixed thresholds (rule: p_call >= 0.5 or tool_match >= 0.16); a "
                    "decision refit with `litegate train --task tool_decision` is used either way")
    speculative: Literal["none", "draft", "ngram"] = Field(
        default="none", description="speculative decoding for the pro model: the lite model as draft, or n-gram "
                                    "lookup; off by default because on 2 cores it measured slower "
                                    "(bench/speculative.py)")

    def ledger_database_url(self) -> str:
        if self.ledger_url:
            return self.ledger_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.home / 'ledger.db'}"

    def model_cache_dir(self) -> Path:
        return self.models_dir or self.home / "models"


def load_toml(path: Path, label: str) -> dict[str, Any]:
    """A TOML file's tables; anything unreadable is a one-line ConfigError naming the
    ``label``led file (config file, pipeline file)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{label} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{label} {path} is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label} {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{label} {path}: not valid TOML: {e}") from None


def check_tables(tables: Any, section: str, known: set[str], source: str) -> list[tuple[str, dict[str, Any]]]:
    """``[[section]]`` tables as (where, table) pairs: an array of tables with known keys only."""
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: '{section}' must be an array of tables ([[{section}]])")
    out = []
    for i, table in enumerate(tables):
        where = f"{source}: [[{section}]] #{i + 1}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
        out.append((where, table))
    return out
