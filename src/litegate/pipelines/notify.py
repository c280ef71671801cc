"""The webhook outbox of ``notify`` steps: deliveries are rows, so a restart loses none.

A worker thread posts due deliveries, each signed with HMAC-SHA256 when the step names a
secret: ``X-Litegate-Signature: sha256=HEX`` over ``TIMESTAMP.BODY`` (the bytes as sent), with
``X-Litegate-Timestamp`` and ``X-Litegate-Delivery`` (the id, for receivers to de-duplicate).
A 2xx is delivered; anything else (or no answer in ``timeout_s``) is retried after
``backoff_s x 2^(attempt-1)`` (capped at an hour), and after ``max_attempts`` the delivery is
dead-lettered: kept, listed, and re-sent on request. A delivery is leased while in flight,
so a server and a CLI run sharing the database never post it twice at once. Up to
``MAX_IN_FLIGHT`` deliveries are posted at once, so a slow receiver delays only its own.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import os
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from litegate._version import __version__
from litegate.errors import Conflict, NotFound
from litegate.pipelines.store import deliveries_table as t
from litegate.pipelines.store import runs_table
from litegate.tenancy import OPERATOR, Tenant

log = logging.getLogger("litegate.pipelines")
MAX_BACKOFF_S = 3600.0
MAX_IN_FLIGHT = 8


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Any, body: bytes, tolerance_s: float = 300.0) -> bool:
    """What a receiver does (Python): the signature matches and the timestamp is recent."""
    ts = headers.get("X-Litegate-Timestamp", "")
    given = headers.get("X-Litegate-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance_s:
        return False
    return hmac.compare_digest(given, sign(secret, ts, body))


def response_summary(body: str, content_type: str, limit: int = 160) -> str:
    """One readable line of a receiver's error answer: an HTML error page becomes its visible
    text, not its markup."""
    import html as html_lib

    text = body
    if "html" in content_type.lower() or body.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        text = re.sub(r"<(head|script|style)\b.*?</\1\s*>", " ", body, flags=re.S | re.I)
        text = html_lib.unescape(re.sub(r"<[^>]+>", " ", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Outbox:
    def __init__(self, engine: Engine, owner: str, poll_s: float = 0.5, transport: Any = None):
        self.engine = engine
        self.owner = owner
        self.poll_s = poll_s
        self.transport = transport  # an httpx transport (tests); None: the network
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="webhook")
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    # -- queueing ---------------------------------------------------------------------------

    def enqueue(self, *, run_id: str, pipeline: str, step: str, url: str, body: Any, secret_env: str | None,
                max_attempts: int, backoff_s: float, timeout_s: float) -> str:
        """A delivery row (one per run and step: a resumed run does not queue it twice)."""
        did = "dlv_" + secrets.token_hex(12)
        row = {"id": did, "run_id": run_id, "pipeline": pipeline, "step": step, "url": url,
               "body": json.dumps(body, ensure_ascii=False, default=str), "secret_env": secret_env,
               "status": "pending", "attempts": 0, "max_attempts": max_attempts, "backoff_s": backoff_s,
               "timeout_s": timeout_s, "next_at": time.time(), "created_at": time.time()}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t).values(**row))
        except IntegrityError:
            with self.engine.connect() as conn:
                existing: str = conn.execute(select(t.c.id).where(t.c.run_id == run_id)
                                             .where(t.c.step == step)).scalar_one()
                return existing
        self._wake.set()
        return did

    def list(self, pipeline: str | None = None, status: str | None = None, limit: int = 100,
             run_id: str | None = None, tenant: Tenant = OPERATOR) -> list[dict[str, Any]]:
        q = _owned(select(t).order_by(t.c.created_at.desc()).limit(limit), tenant)
        if pipeline is not None:
            q = q.where(t.c.pipeline == pipeline)
        if status is not None:
            q = q.where(t.c.status == status)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [public(dict(r)) for r in conn.execute(q).mappings()]

    def get(self, delivery_id: str, pipeline: str | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(_owned(select(t).where(t.c.id == delivery_id), tenant)).mappings().first()
        if row is None or (pipeline is not None and row["pipeline"] != pipeline):
            raise NotFound(f"no delivery {delivery_id[:80]!r}", param="delivery_id")
        return public(dict(row))

    def retry(self, delivery_id: str, pipeline: str | None = None, tenant: Tenant = OPERATOR) -> dict[str, Any]:
        """A dead letter sent again (its attempts start over)."""
        current = self.get(delivery_id, pipeline, tenant)
        if current["status"] != "dead":
            raise Conflict(f"delivery {delivery_id} is {current['status']}; only a dead letter is retried by hand",
                           code="not_dead")
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == delivery_id).where(t.c.status == "dead")
                         .values(status="pending", attempts=0, next_at=time.time(), dead_at=None, lease_until=None))
        self._wake.set()
        return self.get(delivery_id)

    # -- delivering -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pipeline outbox", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception as e:  # noqa: BLE001 - a database hiccup must not kill the worker
                log.error("outbox: %s", e)
                sent = 0
            if not sent:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def deliver_due(self, limit: int = 20) -> int:
        """One pass: start posting what is due now, each on its own worker (at most
        ``MAX_IN_FLIGHT`` at once); returns how many were started."""
        now = time.time()
        with self.engine.connect() as conn:
            due = conn.execute(select(t.c.id).where(t.c.status == "pending").where(t.c.next_at <= now)
                               .where(or_(t.c.lease_until.is_(None), t.c.lease_until < now))
                               .order_by(t.c.next_at).limit(limit)).scalars().all()
        n = 0
        for did in due:
            if self._stop.is_set() or not self._slots.acquire(blocking=False):
                break
            if self._lease(did):
                self._pool.submit(self._attempt_then_free, did)
                n += 1
            else:
                self._slots.release()
        return n

    def _attempt_then_free(self, did: str) -> None:
        try:
            self._attempt(did)
        except Exception as e:  # noqa: BLE001 - one delivery's failure must not end the worker; its lease lapses
            log.error("webhook %s: %s", did, e)
        finally:
            self._slots.release()
            self._wake.set()

    def pending(self, run_ids: builtins.list[str] | None = None) -> int:
        q = select(t.c.id).where(t.c.status == "pending")
        if run_ids is not None:
            q = q.where(t.c.run_id.in_(run_ids))
        with self.engine.connect() as conn:
            return len(conn.execute(q).all())

    def drain(self, timeout: float) -> int:
        """Deliver until nothing is pending or ``timeout`` passes; returns what is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.deliver_due()
            if not self.pending():
                return 0
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return self.pending()

    def _lease(self, did: str) -> bool:
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.timeout_s).where(t.c.id == did)).first()
            if row is None:
                return False
            done = conn.execute(update(t).where(t.c.id == did).where(t.c.status == "pending")
                                .where(or_(t.c.lease_until.is_(None), t.c.lease_until < now))
                                .values(lease_until=now + float(row[0]) + 30, owner=self.owner))
            return done.rowcount == 1

    def client(self) -> Any:
        import httpx

        if self._client is None:
            kwargs = {"transport": self.transport} if self.transport is not None else {}
            self._client = httpx.Client(follow_redirects=False, **kwargs)
        return self._client

    def _attempt(self, did: str) -> None:
        import httpx


        with self.engine.connect() as conn:
            d = dict(conn.execute(select(t).where(t.c.id == did)).mappings().one())
        body = d["body"].encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": f"litegate/{__version__}",
                   "X-Litegate-Delivery": did, "X-Litegate-Timestamp": ts, "X-Litegate-Event": "pipeline.run"}
        status, error = None, None
        secret = os.environ.get(d["secret_env"]) if d["secret_env"] else None
        if d["secret_env"] and not secret:
            error = f"the signing secret's environment variable {d['secret_env']} is not set"
        else:
            if secret:
                headers["X-Litegate-Signature"] = sign(secret, ts, body)
            try:
                r = self.client().post(d["url"], content=body, headers=headers, timeout=d["timeout_s"])
                status = r.status_code
                if not 200 <= r.status_code < 300:
                    error = f"HTTP {r.status_code}: {response_summary(r.text, r.headers.get('content-type', ''))}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"[:300]
        attempts = d["attempts"] + 1
        now = time.time()
        if error is None:
            values = {"status": "delivered", "delivered_at": now, "last_error": None}
        elif attempts >= d["max_attempts"]:
            values = {"status": "dead", "dead_at": now, "last_error": error}
            log.warning("webhook %s for run %s dead-lettered after %d attempts: %s", did, d["run_id"], attempts, error)
        else:
            delay = min(MAX_BACKOFF_S, d["backoff_s"] * 2 ** (attempts - 1)) * random.uniform(0.9, 1.1)
            values = {"next_at": now + delay, "last_error": error}
        with self.engine.begin() as conn:
            conn.execute(update(t).where(and_(t.c.id == did, t.c.owner == self.owner))
                         .values(attempts=attempts, last_status=status, lease_until=None, **values))


def _owned(query: Any, tenant: Tenant) -> Any:
    """Deliveries of ``tenant``'s runs only (a delivery's owner is its run's)."""
    condition = tenant.where(runs_table.c.api_key)
    if condition is None:
        return query
    return query.where(t.c.run_id.in_(select(runs_table.c.id).where(condition)))


def public(row: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(row["body"])
    except ValueError:
        body = row["body"]
    return {"object": "pipeline.delivery", "id": row["id"], "run_id": row["run_id"], "pipeline": row["pipeline"],
            "step": row["step"], "url": row["url"], "status": row["status"], "attempts": row["attempts"],
            "max_attempts": row["max_attempts"], "next_at": row["next_at"] if row["status"] == "pending" else None,
            "last_status": row["last_status"], "last_error": row["last_error"], "created_at": row["created_at"],
            "delivered_at": row["delivered_at"], "dead_at": row["dead_at"], "body": body}
