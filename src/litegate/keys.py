"""Optional API keys with per-key rate limits and daily budgets.

Off unless the config file declares ``[[api_key]]`` tables; then every API route needs a
key (``Authorization: Bearer ...`` or Gemini's ``x-goog-api-key``). Keys are never stored:
a table names an environment variable holding the key, or the key's sha256.

    [[api_key]]
    name = "team-a"
    key_env = "TEAM_A_KEY"          # or key_sha256 = "<hex>"
    rate_per_minute = 600           # optional
    budget_usd_per_day = 5.0        # optional; counted from the ledger, UTC day
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from litegate.errors import ConfigError, RateLimited, Unauthorized

BROWSER_PAGES = ("/dashboard", "/docs", "/redoc", "/openapi.json")  # where ?key= is taken (a browser)


def request_token(request: Request) -> str:
    """The API key a request carries: ``Authorization: Bearer``, Gemini's ``x-goog-api-key``,
    or ``?key=`` on the pages a browser opens (the dashboard, the API docs) — elsewhere a key
    in the URL would end up in proxies' logs."""
    auth = request.headers.get("authorization", "")
    token = auth.split(" ", 1)[1].strip() if auth.lower().startswith("bearer ") else ""
    token = token or request.headers.get("x-goog-api-key", "")
    if not token and request.url.path.startswith(BROWSER_PAGES):
        token = request.query_params.get("key", "")
    return token


def fingerprint(token: str) -> str | None:
    """A short, non-reversible tag for a key: what the ledger stores instead of the key."""
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else None


def request_fingerprint(request: Request) -> str | None:
    internal = request.scope.get("litegate.internal")
    if internal is not None:  # a batch line (litegate.server.internal): its creator's key
        api_key: str | None = internal.get("api_key")
        return api_key
    return fingerprint(request_token(request))


MAX_FEATURE_CHARS = 200  # as a task request's "feature" field


def request_feature(request: Request) -> str | None:
    """The ``X-Litegate-Feature`` header (a tag for cost reports), checked like the task field."""
    feature = request.headers.get("x-litegate-feature")
    if feature is not None and (len(feature) > MAX_FEATURE_CHARS or not feature.isprintable()):
        from litegate.errors import InvalidRequest

        raise InvalidRequest(f"the X-Litegate-Feature header must be printable and at most {MAX_FEATURE_CHARS} "
                             "characters", param="X-Litegate-Feature")
    return feature or None


@dataclass
class ApiKey:
    name: str
    sha256: str
    rate_per_minute: float | None = None
    budget_usd_per_day: float | None = None

    @property
    def fingerprint(self) -> str:  # equals fingerprint(key): the ledger's api_key column
        return self.sha256[:12]


def parse_keys(tables: Any, source: str) -> list[ApiKey]:
    """Validate ``[[api_key]]`` tables into ApiKeys (the secrets are hashed at once)."""
    from litegate.config import check_tables

    keys = []
    known = {"name", "key_env", "key_sha256", "rate_per_minute", "budget_usd_per_day"}
    for i, (where, table) in enumerate(check_tables(tables, "api_key", known, source)):
        if "key_env" in table:
            secret = os.environ.get(table["key_env"], "")
            if not secret:
                raise ConfigError(f"{where}: the environment variable {table['key_env']} is empty or unset")
            digest = hashlib.sha256(secret.encode()).hexdigest()
        elif "key_sha256" in table:
            digest = str(table["key_sha256"]).lower()
        else:
            raise ConfigError(f"{where} needs key_env or key_sha256")
        keys.append(ApiKey(name=str(table.get("name") or f"key{i + 1}"), sha256=digest,
                           rate_per_minute=table.get("rate_per_minute"),
                           budget_usd_per_day=table.get("budget_usd_per_day")))
    return keys


class KeyGuard:
    """Checks a request's key, its rate (token bucket) and its spend today."""

    RESERVATION_S = 120.0  # a reservation whose call never reached the ledger lapses after this
    PRIOR_COST_USD = 0.1 / 3600  # a call's expected cost before any is known: a second of a local tier

    def __init__(self, keys: list[ApiKey], ledger: Any):
        self.by_hash = {k.sha256: k for k in keys}
        self.by_fingerprint = {k.fingerprint: k for k in keys}
        self.ledger = ledger
        self._buckets: dict[str, tuple[float, float]] = {}  # hash -> (tokens, last refill)
        self._spend: dict[str, tuple[float, float]] = {}  # hash -> (spent today, when computed)
        # calls let through and not yet in the ledger: (expiry, expected cost) per key, so a burst
        # of concurrent calls cannot all pass a budget that has room for one
        self._reserved: dict[str, list[tuple[float, float]]] = {}
        self._mean_cost: dict[str, float] = {}  # hash -> running mean cost of its calls
        self._lock = threading.Lock()

    def spent(self, fingerprint: str | None, cost: float) -> None:
        """A call of this key reached the ledger (the Accountant calls this): its cost counts at
        once, and the oldest reservation of the key is released."""
        key = self.by_fingerprint.get(fingerprint or "")
        if key is None or key.budget_usd_per_day is None:
            return
        with self._lock:
            cached = self._spend.get(key.sha256)
            if cached is not None:
                self._spend[key.sha256] = (cached[0] + cost, cached[1])
            mean = self._mean_cost.get(key.sha256)
            self._mean_cost[key.sha256] = cost if mean is None else 0.9 * mean + 0.1 * cost
            pending = self._reserved.get(key.sha256)
            if pending:
                pending.pop(0)

    @property
    def enabled(self) -> bool:
        return bool(self.by_hash)

    def check(self, request: Request) -> ApiKey | None:
        if not self.by_hash:
            return None
        internal = request.scope.get("litegate.internal")
        if internal is not None:  # a batch line: its creator was checked when the batch was made
            owner = next((k for k in self.by_hash.values() if k.fingerprint == internal.get("api_key")), None)
            if owner is None:
                raise Unauthorized("the API key that created this batch is no longer configured",
                                   code="invalid_api_key")
            return self._check_budget(owner)
        token = request_token(request)
        if not token:
            hint = (" (a key in the URL is taken only on the dashboard and docs pages)"
                    if request.query_params.get("key") else "")
            raise Unauthorized(f"an API key is required: send 'Authorization: Bearer <key>' or 'x-goog-api-key'{hint}",
                               code="missing_api_key")
        key = self.by_hash.get(hashlib.sha256(token.encode()).hexdigest())
        if key is None:
            raise Unauthorized("the API key is not valid", code="invalid_api_key")
        if key.rate_per_minute:
            self._take(key)
        return self._check_budget(key)

    def _check_budget(self, key: ApiKey | None) -> ApiKey | None:
        if key is not None and key.budget_usd_per_day is not None:
            spent = self._spent_today(key)
            now = time.time()
            with self._lock:
                pending = [r for r in self._reserved.get(key.sha256, []) if r[0] > now]
                expected = self._mean_cost.get(key.sha256, self.PRIOR_COST_USD)
                reserved = sum(amount for _, amount in pending)
                if spent >= key.budget_usd_per_day or (pending and spent + reserved + expected
                                                       > key.budget_usd_per_day):
                    self._reserved[key.sha256] = pending
                    busy = f", ${reserved:.6f} more in calls under way" if pending else ""
                    raise RateLimited(f"the daily budget of key {key.name!r} (${key.budget_usd_per_day}) is spent "
                                      f"(${spent:.6f} today{busy}); it resets at 00:00 UTC", code="budget_exceeded",
                                      retry_after=(5.0 if spent < key.budget_usd_per_day else 86400 - now % 86400))
                pending.append((now + self.RESERVATION_S, expected))
                self._reserved[key.sha256] = pending
        return key

    def _take(self, key: ApiKey) -> None:
        if not key.rate_per_minute:
            return  # no rate: never limited
        rate = float(key.rate_per_minute) / 60.0
        capacity = max(1.0, float(key.rate_per_minute))
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key.sha256, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key.sha256] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise RateLimited(f"key {key.name!r} is limited to {key.rate_per_minute} requests per minute; "
                                  f"retry in {wait:.1f} s", code="rate_limit_exceeded", retry_after=wait)
            self._buckets[key.sha256] = (tokens - 1.0, now)

    def _spent_today(self, key: ApiKey) -> float:
        now = time.time()
        with self._lock:
            cached = self._spend.get(key.sha256)
        if cached and now - cached[1] < 2.0:
            return cached[0]
        midnight = now - (now % 86400)
        spent: float = self.ledger.spend(key.fingerprint, midnight)
        with self._lock:
            self._spend[key.sha256] = (spent, now)
        return spent
