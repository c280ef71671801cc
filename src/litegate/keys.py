"""Optional API keys with per-key rate limits and daily budgets.

Off unless the config file declares ``[[api_key]]`` tables; then every API route needs a
key (``Authorization: Bearer ...`` or Gemini's ``x-goog-api-key``). Keys are never stored:
a table names an environment variable holding the key, or the key's sha256.

    [[api_key]]
    name = "team-a"
    key_env = "TEAM_A_KEY"          # or key_sha256 = "<hex>"
    rate_per_minute = 600           # optional
    budget_usd_per_day = 5.0        # optional; counted from the ledger, UTC day
    admin = true                    # optional; sees every key's files, batches and runs

Each key sees only the files, batches and pipeline runs it made (``litegate.tenancy``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from litegate.config import check_tables
from litegate.errors import ConfigError, Forbidden, InvalidRequest, RateLimited, Unauthorized
from litegate.ledger.pricing import upper_bound
from litegate.tenancy import Tenant

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


def request_tenant(request: Request) -> Tenant:
    """The caller as an owner of stored objects, set where the server checks the key; a
    request that passed no key check is the anonymous owner."""
    tenant = getattr(request.state, "tenant", None)
    return tenant if tenant is not None else Tenant(None)


async def require_operator(request: Request) -> None:
    """The learning surfaces show the texts of every key's calls and change models all keys
    share (review queues, labels, distill, rollback, purge): with keys on, an admin key only."""
    if request.app.state.keys.enabled and not request_tenant(request).admin:
        raise Forbidden("this is the operator's surface (learning review, distill, rollback): it needs a key with "
                        "admin = true in the config file", code="admin_key_required")


MAX_FEATURE_CHARS = 200  # as a task request's "feature" field


def request_feature(request: Request) -> str | None:
    """The ``X-Litegate-Feature`` header (a tag for cost reports), checked like the task field."""
    feature = request.headers.get("x-litegate-feature")
    if feature is not None and (len(feature) > MAX_FEATURE_CHARS or not feature.isprintable()):

        raise InvalidRequest(f"the X-Litegate-Feature header must be printable and at most {MAX_FEATURE_CHARS} "
                             "characters", param="X-Litegate-Feature")
    return feature or None


@dataclass
class ApiKey:
    name: str
    sha256: str
    rate_per_minute: float | None = None
    budget_usd_per_day: float | None = None
    admin: bool = False

    @property
    def fingerprint(self) -> str:  # equals fingerprint(key): the ledger's api_key column
        return self.sha256[:12]


def parse_keys(tables: Any, source: str) -> list[ApiKey]:
    """Validate ``[[api_key]]`` tables into ApiKeys (the secrets are hashed at once)."""

    keys = []
    known = {"name", "key_env", "key_sha256", "rate_per_minute", "budget_usd_per_day", "admin"}
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
        if not isinstance(table.get("admin", False), bool):
            raise ConfigError(f"{where}: admin must be true or false")
        keys.append(ApiKey(name=str(table.get("name") or f"key{i + 1}"), sha256=digest,
                           rate_per_minute=table.get("rate_per_minute"),
                           budget_usd_per_day=table.get("budget_usd_per_day"),
                           admin=bool(table.get("admin", False))))
    return keys


class KeyGuard:
    """Checks a request's key, its rate (token bucket) and its spend today.

    A budget holds under bursts: each call of a key with a budget reserves the most it can
    cost (``call_bound``: its prompt and ``max_tokens`` at the priciest tier's price, a local
    engine's time up to the decode deadline) for as
    long as it runs, and is let in only while today's spend plus the reservations of its calls
    under way is below the budget. A call's real cost counts the moment its ledger row is made
    (``spent``); its reservation ends when its response has been sent. So the spend can pass
    the budget by at most the real cost of the last call let in."""

    RESERVATION_S = 900.0  # a reservation whose request never ended lapses after this

    def __init__(self, keys: list[ApiKey], ledger: Any):
        self.by_hash = {k.sha256: k for k in keys}
        self.by_fingerprint = {k.fingerprint: k for k in keys}
        self.ledger = ledger
        self._buckets: dict[str, tuple[float, float]] = {}  # hash -> (tokens, last refill)
        # hash -> (spent today as known here, the UTC day it counts, when last read from the ledger)
        self._spend: dict[str, tuple[float, float, float]] = {}
        self._reserved: dict[str, dict[int, tuple[float, float]]] = {}  # hash -> {id: (expiry, amount)}
        self._ids = itertools.count(1)
        self._largest = 0.0  # the most any call has cost here
        self._lock = threading.Lock()

    def spent(self, fingerprint: str | None, cost: float) -> None:
        """A call of this key reached the ledger (the Accountant calls this): its cost counts at
        once, before the row is written. The largest call seen floors every later reservation:
        a machine slower than the bound's rates assume still cannot let a burst through."""
        self._largest = max(self._largest, cost)
        key = self.by_fingerprint.get(fingerprint or "")
        if key is None or key.budget_usd_per_day is None:
            return
        now = time.time()
        with self._lock:
            cached = self._spend.get(key.sha256)
        if cached is None or cached[1] != now - now % 86400:
            self._spent_today(key)  # today's spend so far, before this row is written
        with self._lock:
            cached = self._spend[key.sha256]
            self._spend[key.sha256] = (cached[0] + cost, cached[1], cached[2])

    @property
    def enabled(self) -> bool:
        return bool(self.by_hash)

    def check(self, request: Request) -> ApiKey | None:
        """The request's key (None without keys): authenticated and within its rate."""
        if not self.by_hash:
            return None
        internal = request.scope.get("litegate.internal")
        if internal is not None:  # a batch line: its creator was checked when the batch was made
            owner = next((k for k in self.by_hash.values() if k.fingerprint == internal.get("api_key")), None)
            if owner is None:
                raise Unauthorized("the API key that created this batch is no longer configured",
                                   code="invalid_api_key")
            return owner
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
        return key

    async def reserve_for(self, request: Request, key: ApiKey | None) -> tuple[str, int] | None:
        """Let a call of ``key`` in under its budget, reserving its upper bound; None when the
        key has no budget. Release it with ``release`` when the response is sent."""
        if key is None or key.budget_usd_per_day is None:
            return None
        body = b""
        if request.headers.get("content-type", "application/json").startswith("application/json"):
            body = await request.body()  # bounded by the body limit; kept for the route
        size = len(body) or int(request.headers.get("content-length", "0") or 0)
        return self.reserve(key, call_bound(request.app.state.runtime, body, size))

    def reserve(self, key: ApiKey, bound: float) -> tuple[str, int]:
        budget = float(key.budget_usd_per_day or 0.0)
        spent = self._spent_today(key)
        now = time.time()
        with self._lock:
            pending = {i: r for i, r in self._reserved.get(key.sha256, {}).items() if r[0] > now}
            reserved = sum(amount for _, amount in pending.values())
            self._reserved[key.sha256] = pending
            if spent + reserved >= budget:
                busy = f", up to ${reserved:.6f} more in {len(pending)} call(s) under way" if pending else ""
                raise RateLimited(f"the daily budget of key {key.name!r} (${budget}) is spent "
                                  f"(${spent:.6f} today{busy}); it resets at 00:00 UTC", code="budget_exceeded",
                                  retry_after=(2.0 if spent < budget else 86400 - now % 86400))
            reservation = next(self._ids)
            pending[reservation] = (now + self.RESERVATION_S, max(bound, self._largest))
        return key.sha256, reservation

    def release(self, reservation: tuple[str, int] | None) -> None:
        if reservation is not None:
            with self._lock:
                self._reserved.get(reservation[0], {}).pop(reservation[1], None)

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
        """Today's spend: the ledger's, read at most every 2 s (other processes write there
        too), never below what this process has counted (rows still on their way to it)."""
        now = time.time()
        day = now - (now % 86400)
        with self._lock:
            cached = self._spend.get(key.sha256)
        if cached and cached[1] == day and now - cached[2] < 2.0:
            return cached[0]
        in_ledger: float = self.ledger.spend(key.fingerprint, day)
        with self._lock:
            cached = self._spend.get(key.sha256)
            known = cached[0] if cached and cached[1] == day else 0.0
            spent = max(in_ledger, known)
            self._spend[key.sha256] = (spent, day, now)
        return spent


def call_bound(runtime: Any, body: bytes, size: int) -> float:
    """The most a request can cost: every byte of its body a prompt token (a token is at least
    a byte), its ``max_tokens`` (or the context, when it names none) generated by a remote
    tier, or a local engine busy until the decode deadline; the priciest tier's price."""
    limit = int(getattr(runtime.settings, "ctx", 8192))
    out = limit
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        nested = [data, data.get("generationConfig"), data.get("options")]
        for holder in (n for n in nested if isinstance(n, dict)):
            for field in ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens",
                          "num_predict"):
                value = holder.get(field)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    out = min(out, value)
    prices = [tier.price for tier in getattr(runtime, "tiers", {}).values()]
    return upper_bound(prices, size, out, float(getattr(runtime.settings, "decode_deadline_s", 300.0)))
