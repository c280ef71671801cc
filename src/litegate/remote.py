"""Remote OpenAI-compatible models: retries with backoff and jitter, a circuit breaker, and
the config file that declares them.

A remote model is served under its own name next to the local ones: chat requests for it
are validated here, forwarded, and costed per token. When it fails (timeouts, 429, 5xx,
refused connections) the call is retried; after repeated failures the breaker opens and
calls go straight to the configured fallback model (the response says so) until a
half-open probe succeeds.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litegate.errors import InvalidRequest, LitegateError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential, capped, jittered."""
    return min(2.0, 0.1 * 2 ** attempt) * (0.5 + random.random())


class RemoteUnavailable(LitegateError):
    status_code = 503
    error_type = "remote_unavailable"


class RemoteRejected(LitegateError):
    """The remote answered with a 4xx that retrying will not fix: passed on as is."""

    def __init__(self, status: int, body: Any):
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        super().__init__(message or f"the remote model answered {status}")
        self.status_code = status
        self.body = body


@dataclass
class RemoteConfig:
    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    concurrency: int = 16
    price_in_per_million: float = 0.0
    price_out_per_million: float = 0.0
    fallback: str | None = "lite"
    breaker_failures: int = 3
    breaker_reset_s: float = 30.0


class CircuitBreaker:
    """closed -> open after ``failures`` consecutive failures; open -> half-open after
    ``reset_s``; a half-open success closes it, a failure opens it again."""

    def __init__(self, failures: int = 3, reset_s: float = 30.0):
        self.failures = failures
        self.reset_s = reset_s
        self._consecutive = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if time.monotonic() - self._opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._consecutive >= self.failures or self._opened_at is not None:
                self._opened_at = time.monotonic()


@dataclass
class RemoteModel:
    """Chat passthrough to a remote model over aiohttp (measured about a millisecond faster
    per call than httpx's async client here: bench/overhead.py)."""

    config: RemoteConfig
    breaker: CircuitBreaker = field(init=False)
    _session: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.breaker = CircuitBreaker(self.config.breaker_failures, self.config.breaker_reset_s)
        self._semaphore = asyncio.Semaphore(self.config.concurrency)
        self._url = self.config.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s, connect=5.0),
                connector=aiohttp.TCPConnector(limit=self.config.concurrency))
        return self._session

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions with retries; raises RemoteUnavailable or RemoteRejected."""
        import aiohttp

        if not self.breaker.allow():
            raise RemoteUnavailable(f"{self.config.name} is unavailable (circuit open after repeated failures)")
        payload = dict(body, model=self.config.model, stream=False)
        last = "no attempt"
        async with self._semaphore:
            for attempt in range(self.config.max_retries + 1):
                if attempt:
                    await asyncio.sleep(backoff_s(attempt))
                try:
                    async with self.session().post(self._url, json=payload) as r:
                        raw = await r.read()
                        status = r.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    last = f"{type(e).__name__}: {e}"
                    continue
                if status in RETRY_STATUS:
                    last = f"HTTP {status}"
                    continue
                if status >= 400:
                    self.breaker.success()  # the remote is up; the request was wrong
                    raise RemoteRejected(status, _json_or_text(raw))
                self.breaker.success()
                return json.loads(raw)
        self.breaker.failure()
        raise RemoteUnavailable(f"{self.config.name} failed after {self.config.max_retries + 1} attempts ({last})")

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """Pass the remote's SSE bytes through (no retry once bytes have flowed)."""
        import aiohttp

        if not self.breaker.allow():
            raise RemoteUnavailable(f"{self.config.name} is unavailable (circuit open after repeated failures)")
        payload = dict(body, model=self.config.model, stream=True)
        try:
            async with self.session().post(self._url, json=payload) as r:
                if r.status >= 400:
                    detail = await r.read()
                    if r.status in RETRY_STATUS:
                        self.breaker.failure()
                        raise RemoteUnavailable(f"{self.config.name} answered HTTP {r.status}")
                    raise RemoteRejected(r.status, _json_or_text(detail))
                self.breaker.success()
                async for chunk in r.content.iter_any():
                    yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.breaker.failure()
            raise RemoteUnavailable(f"{self.config.name}: {type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"message": raw.decode(errors="replace")[:500]}}


SECTIONS = {"remote", "api_key", "tier"}


def read_config(path: Path | str) -> dict[str, Any]:
    """The parsed TOML config file, its sections checked."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequest(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequest(f"config file {path} is not valid TOML: {e}") from None
    unknown_tables = set(data) - SECTIONS
    if unknown_tables:
        raise InvalidRequest(f"{path}: unknown sections {sorted(unknown_tables)}; expected [[tier]], [[remote]] "
                             "and [[api_key]]")
    return data


def load_config(path: Path | str) -> list[RemoteConfig]:
    """Read ``[[remote]]`` tables from a TOML file."""
    data = read_config(path)
    remotes = []
    known = set(RemoteConfig.__dataclass_fields__)
    for i, table in enumerate(data.get("remote", [])):
        unknown = set(table) - known
        if unknown:
            raise InvalidRequest(f"{path}: [[remote]] #{i + 1} has unknown keys {sorted(unknown)}")
        for key in ("name", "base_url", "model"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise InvalidRequest(f"{path}: [[remote]] #{i + 1} needs '{key}'")
        remotes.append(RemoteConfig(**table))
    names = [r.name for r in remotes]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"{path}: remote names must be unique")
    return remotes
