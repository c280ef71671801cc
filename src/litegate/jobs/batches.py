"""Durable batch jobs: OpenAI's Batch API and Gemini's batch mode over one store and one runner.

A job is a row in ``batches``; its input is a stored file (``litegate.jobs.files``); each line's
result is a row in ``batch_lines`` keyed by (job, line), inserted once: a job resumed after a
crash skips the lines that have a row, so no line is lost or answered twice. When every line
has a row, the output and error files are written whole from those rows (again on a resume:
same ids, same content).

Lines run through a ``Dispatch``: an async callable that answers one request (endpoint path
and JSON body) exactly as the HTTP route would. The server passes one that calls its own app
in process (``litegate.server.internal``), so a batch line takes the same path as a request:
validation, tiers, ledger, keys' budgets. ``litegate batch run`` and the Ray executor use the
same dispatch on an app they build themselves.

Why one module (over 400 lines): the store, the leases and the runner share one exactly-once
invariant over the same two tables; the next step is splitting the two APIs' line shapes out.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from litegate.errors import Conflict, InvalidRequest, NotFound
from litegate.jobs.files import FileStore, files_table
from litegate.jobs.jsonl import MAX_BYTES_PER_CHAR, RawLine, certainly_longer, read_lines, string_spans
from litegate.tasks.base import MAX_TEXT_CHARS
from litegate.tenancy import OPERATOR, Tenant, filtered, set_current

log = logging.getLogger("litegate.batch")

metadata = MetaData()
batches_table = Table(
    "batches", metadata,
    Column("id", String(80), primary_key=True),
    Column("api", String(16), nullable=False),  # openai / gemini
    Column("endpoint", String(200), nullable=False),  # /v1/chat/completions, ... or a Gemini model
    Column("input_file_id", String(80), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("completion_window", String(16)),
    Column("metadata", Text),  # JSON object
    Column("display_name", String(512)),
    Column("total", Integer, default=0),
    Column("output_file_id", String(80)),
    Column("error_file_id", String(80)),
    Column("errors", Text),  # JSON list of {code, message, line}
    Column("api_key", String(64)),  # the creator's key fingerprint: lines are ledgered and budgeted under it
    Column("feature", String(200)),
    Column("inline", Boolean, default=False),  # Gemini inline requests: results inline, no output file
    Column("owner", String(128)),  # host:pid:start of the process running it
    Column("lease_until", Float),
    Column("cost_usd", Float),
    Column("created_at", Float, nullable=False, index=True),
    Column("in_progress_at", Float),
    Column("finalizing_at", Float),
    Column("completed_at", Float),
    Column("failed_at", Float),
    Column("cancelling_at", Float),
    Column("cancelled_at", Float),
    Column("expires_at", Float),
    Column("expired_at", Float),
)
lines_table = Table(
    "batch_lines", metadata,
    Column("batch_id", String(80), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("custom_id", String(512)),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("call_id", String(80)),
    Column("result", Text, nullable=False),  # the output line's JSON
    Column("ts", Float, nullable=False),
)

OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
TASK_ENDPOINT = re.compile(r"^/v1/tasks/([a-z_]{1,40})$")
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
MAX_LINES = 50_000
LEASE_S = 30.0

# (status code, JSON body) for one request; raising Retry asks for the line again later
Dispatch = Callable[[str, dict[str, Any], "Job"], Awaitable[tuple[int, Any]]]


class Retry(Exception):
    """The line could not run now (the engine is full of interactive work): run it later."""

    def __init__(self, after: float = 0.5):
        super().__init__(f"retry in {after} s")
        self.after = after


@dataclass
class Line:
    index: int
    custom_id: str | None
    url: str | None
    body: dict[str, Any] | None
    error: dict[str, Any] | None = None  # a line that cannot run: its error, written at once
    metadata: Any = None  # Gemini inline requests' metadata, returned beside the response


@dataclass
class Job:
    id: str
    api: str
    endpoint: str
    input_file_id: str
    status: str
    completion_window: str | None
    metadata: dict[str, Any] | None
    display_name: str | None
    total: int
    output_file_id: str | None
    error_file_id: str | None
    errors: list[dict[str, Any]] | None
    api_key: str | None
    feature: str | None
    inline: bool
    owner: str | None
    lease_until: float | None
    cost_usd: float | None
    created_at: float
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    expires_at: float | None = None
    expired_at: float | None = None
    completed: int = 0  # lines answered with a 2xx
    failed: int = 0  # lines answered with an error

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE


def _process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


PROCESS = _process_id()


def owner_alive(owner: str | None) -> bool:
    """Whether the process that holds a lease still runs (known only on this host)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's: trust its lease
    if owner == PROCESS:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # the pid exists, but it may be a new process that reused it: the start time tells
    started = _started_at(int(pid))
    return started is None or started == owner.rsplit(":", 1)[-1]


def _started_at(pid: int) -> str | None:
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = int(stat[19])
        boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return str(int(boot + ticks / os.sysconf("SC_CLK_TCK")))
    except (OSError, StopIteration, IndexError, ValueError):
        return None


class BatchStore:
    def __init__(self, engine: Engine, files: FileStore):
        self.engine = engine
        self.files = files
        metadata.create_all(engine)
        if files.owner_added:
            self._give_files_their_owners()

    def _give_files_their_owners(self) -> None:
        """Once, on a database from before files had owners: a batch's input, output and error
        files become its creator's (the batch row always knew it)."""
        with self.engine.begin() as conn:
            for owner, *file_ids in conn.execute(select(
                    batches_table.c.api_key, batches_table.c.input_file_id,
                    batches_table.c.output_file_id, batches_table.c.error_file_id)
                    .where(batches_table.c.api_key.is_not(None))):
                ids = [f for f in file_ids if f]
                if ids:
                    conn.execute(update(files_table).where(files_table.c.id.in_(ids)).values(api_key=owner))

    # -- jobs ---------------------------------------------------------------------------

    def create(self, *, api: str, endpoint: str, input_file_id: str, total: int, completion_window: str | None = None,
               job_metadata: dict[str, Any] | None = None, display_name: str | None = None,
               api_key: str | None = None, feature: str | None = None, inline: bool = False,
               expires_in_s: float = 86400.0, job_id: str | None = None) -> Job:
        now = time.time()
        job_id = job_id or (("batch_" if api == "openai" else "batches/") + secrets.token_hex(12))
        row = {"id": job_id, "api": api, "endpoint": endpoint, "input_file_id": input_file_id,
               "status": "validating", "completion_window": completion_window,
               "metadata": json.dumps(job_metadata) if job_metadata is not None else None,
               "display_name": display_name, "total": total, "api_key": api_key,
               "feature": feature or ((job_metadata or {}).get("feature") if isinstance(job_metadata, dict) else None)
               or job_id, "inline": inline, "created_at": now, "expires_at": now + expires_in_s}
        with self.engine.begin() as conn:
            conn.execute(insert(batches_table).values(**row))
        return self.get(job_id)

    def get(self, job_id: str, tenant: Tenant = OPERATOR) -> Job:
        """The job; NotFound when it does not exist or is not ``tenant``'s."""
        with self.engine.connect() as conn:
            row = conn.execute(select(batches_table).where(batches_table.c.id == job_id)).mappings().first()
            if row is None or not tenant.sees(row["api_key"]):
                raise NotFound(f"no batch with id {job_id[:80]!r}", param="batch_id")
            counts = conn.execute(select(lines_table.c.ok, func.count()).where(lines_table.c.batch_id == job_id)
                                  .group_by(lines_table.c.ok)).all()
        return _job(row, {bool(ok): int(n) for ok, n in counts})

    def list(self, api: str, after: str | None = None, limit: int = 20,
             tenant: Tenant = OPERATOR) -> tuple[list[Job], bool]:
        q = filtered(select(batches_table.c.id).where(batches_table.c.api == api), batches_table.c.api_key, tenant)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(batches_table.c.created_at.desc(), batches_table.c.id)).all()
        ids = [r[0] for r in rows]
        if after:
            ids = ids[ids.index(after) + 1:] if after in ids else []
        return [self.get(i) for i in ids[:limit]], len(ids) > limit

    def set(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(batches_table).where(batches_table.c.id == job_id).values(**values))

    def cancel(self, job_id: str, tenant: Tenant = OPERATOR) -> Job:
        job = self.get(job_id, tenant)
        if job.status in ("cancelling", "cancelled"):
            return job
        if job.done:
            raise Conflict(f"batch {job_id} is already {job.status}; only a running batch can be cancelled",
                           code="batch_not_cancellable")
        with self.engine.begin() as conn:
            conn.execute(update(batches_table).where(batches_table.c.id == job_id)
                         .where(batches_table.c.status.in_(ACTIVE))
                         .values(status="cancelling", cancelling_at=time.time()))
        return self.get(job_id)

    def delete(self, job_id: str, tenant: Tenant = OPERATOR) -> None:
        job = self.get(job_id, tenant)
        with self.engine.begin() as conn:
            conn.execute(lines_table.delete().where(lines_table.c.batch_id == job_id))
            conn.execute(batches_table.delete().where(batches_table.c.id == job_id))
        for fid in (job.output_file_id, job.error_file_id) + ((job.input_file_id,) if job.inline else ()):
            if fid:
                try:
                    self.files.delete(fid)
                except NotFound:
                    pass

    def claim(self, job_id: str) -> bool:
        """Take the job for this process (its lease expired or its owner is gone)."""
        job = self.get(job_id)
        if job.done or (job.owner and job.owner != PROCESS and (job.lease_until or 0) > time.time()
                        and owner_alive(job.owner)):
            return False
        with self.engine.begin() as conn:
            res = conn.execute(update(batches_table).where(batches_table.c.id == job_id)
                               .where(batches_table.c.owner.is_(job.owner) if job.owner is None
                                      else batches_table.c.owner == job.owner)
                               .values(owner=PROCESS, lease_until=time.time() + LEASE_S))
        return res.rowcount == 1

    def renew(self, job_id: str) -> None:
        self.set(job_id, lease_until=time.time() + LEASE_S)

    def unfinished(self) -> builtins.list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(batches_table.c.id).where(batches_table.c.status.in_(ACTIVE))
                                               .order_by(batches_table.c.created_at))]

    # -- lines --------------------------------------------------------------------------

    def answered(self, job_id: str) -> builtins.set[int]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(lines_table.c.line).where(lines_table.c.batch_id == job_id))}

    def record(self, job_id: str, line: int, custom_id: str | None, ok: bool, status_code: int | None,
               result: dict[str, Any], call_id: str | None = None) -> bool:
        """Insert a line's result; False (and nothing written) if it already has one."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(lines_table).values(batch_id=job_id, line=line, custom_id=custom_id, ok=ok,
                                                        status_code=status_code, call_id=call_id,
                                                        result=json.dumps(result, ensure_ascii=False), ts=time.time()))
            return True
        except IntegrityError:
            return False

    def result_lines(self, job_id: str, ok: bool | None = None, page: int = 1000) -> Iterator[bytes]:
        """The stored result lines of a job in line order (only the answered, ``ok``, or the
        failed ones), as JSONL bytes, read a page at a time."""
        last = -1
        while True:
            q = select(lines_table.c.line, lines_table.c.result).where(lines_table.c.batch_id == job_id)
            if ok is not None:
                q = q.where(lines_table.c.ok == ok)
            with self.engine.connect() as conn:
                rows = conn.execute(q.where(lines_table.c.line > last).order_by(lines_table.c.line).limit(page)).all()
            for _, result in rows:
                yield result.encode() + b"\n"
            if len(rows) < page:
                return
            last = int(rows[-1][0])

    def has_results(self, job_id: str, ok: bool) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(lines_table.c.line).where(lines_table.c.batch_id == job_id)
                                .where(lines_table.c.ok == ok).limit(1)).first() is not None

    def call_ids(self, job_id: str) -> builtins.list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(lines_table.c.call_id).where(lines_table.c.batch_id == job_id)
                                               .where(lines_table.c.call_id.is_not(None)))]

    def results(self, job_id: str) -> builtins.list[tuple[int, bool, dict[str, Any], str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(lines_table.c.line, lines_table.c.ok, lines_table.c.result,
                                       lines_table.c.call_id)
                                .where(lines_table.c.batch_id == job_id).order_by(lines_table.c.line)).all()
        return [(int(r[0]), bool(r[1]), json.loads(r[2]), r[3]) for r in rows]


def _job(row: Any, counts: dict[bool, int]) -> Job:
    d = dict(row)
    d["metadata"] = json.loads(d["metadata"]) if d.get("metadata") else None
    d["errors"] = json.loads(d["errors"]) if d.get("errors") else None
    d["inline"] = bool(d.get("inline"))
    return Job(**d, completed=counts.get(True, 0), failed=counts.get(False, 0))


# -- input lines ----------------------------------------------------------------------------

def endpoint_ok(endpoint: str, tasks: list[str]) -> bool:
    m = TASK_ENDPOINT.match(endpoint)
    return endpoint in OPENAI_ENDPOINTS or bool(m and m.group(1) in tasks)


def parse_openai_lines(data: bytes, endpoint: str | None, max_line_bytes: int,
                       tasks: list[str] | None = None) -> list[Line]:
    """``openai_lines`` of a file's bytes already in memory."""
    return list(openai_lines(io.BytesIO(data), endpoint, max_line_bytes, tasks))


def openai_lines(source: BinaryIO, endpoint: str | None, max_line_bytes: int,
                 tasks: list[str] | None = None) -> Iterator[Line]:
    """The request lines of an OpenAI batch input file, read a line at a time. A line that
    cannot run becomes that line's error; a file that is not JSONL at all, or repeats a
    custom_id, is refused. ``endpoint`` None: each line may name any endpoint a batch can call
    (``litegate batch run``)."""
    seen: dict[str, int] = {}
    count = readable = 0
    for raw in read_lines(source, max_line_bytes):
        count += 1
        if count > MAX_LINES:
            raise InvalidRequest(f"the input file has more than {MAX_LINES} lines; a batch takes at most {MAX_LINES}",
                                 param="input_file_id")
        line = _openai_line(raw, endpoint, max_line_bytes, tasks, seen)
        readable += line.error is None or line.error["code"] != "invalid_utf8"
        yield line
    if not count:
        raise InvalidRequest("the input file has no request lines", param="input_file_id")
    if not readable:
        raise InvalidRequest("the input file is not UTF-8 text (JSONL: one request object per line)",
                             param="input_file_id")


def count_lines(files: FileStore, file_id: str, max_line_bytes: int, endpoint: str | None = None,
                api: str = "openai") -> int:
    """How many request lines a stored input file has, checked as the runner will read it
    (refused as a whole only for what refuses a file), without keeping any line."""
    with files.open(file_id) as source:
        lines = (openai_lines(source, endpoint, max_line_bytes) if api == "openai"
                 else gemini_lines(source, max_line_bytes))
        return sum(1 for _ in lines)


def _openai_line(raw: RawLine, endpoint: str | None, max_line_bytes: int, tasks: list[str] | None,
                 seen: dict[str, int]) -> Line:
    i = raw.number - 1
    if raw.data is None:  # over the line limit: never decoded, parsed or run
        return Line(i, _custom_id_of(raw.head), None, None, {
            "code": "request_too_large", "message": f"line {i + 1} is larger than {max_line_bytes} bytes"})
    refused = _text_over_limit(raw, endpoint)
    if refused is not None:
        _check_unique(refused.custom_id, i, seen)
        return refused
    try:
        s = raw.data.decode("utf-8")
    except UnicodeDecodeError:
        return Line(i, _custom_id_of(raw.head), None, None,
                    {"code": "invalid_utf8", "message": f"line {i + 1} is not UTF-8 text"})
    raw.data = None  # the bytes go as soon as the text exists: one copy of a large line at a time
    try:
        obj = json.loads(s)
    except ValueError as e:
        return Line(i, None, None, None, {"code": "invalid_json", "message": f"line {i + 1} is not valid JSON: {e}"})
    del s
    if not isinstance(obj, dict):
        return Line(i, None, None, None, {"code": "invalid_request", "message": f"line {i + 1} must be a JSON object"})
    cid = obj.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return Line(i, None, None, None, {"code": "missing_custom_id",
                                          "message": f"line {i + 1} has no custom_id string"})
    _check_unique(cid, i, seen)
    url, body, method = obj.get("url"), obj.get("body"), obj.get("method", "POST")
    error = None
    if method != "POST":
        error = {"code": "invalid_method", "message": f"method must be POST, got {str(method)[:20]!r}"}
    elif endpoint is not None and url != endpoint:
        error = {"code": "invalid_url", "message": f"url {str(url)[:100]!r} is not the batch's endpoint {endpoint}"}
    elif endpoint is None and not (isinstance(url, str) and endpoint_ok(url, tasks or [])):
        error = {"code": "invalid_url", "message": f"url {str(url)[:100]!r} is not an endpoint a batch can call"}
    elif not isinstance(body, dict):
        error = {"code": "invalid_body", "message": "body must be a JSON object"}
    else:
        error = _task_shape(url, body, i)
    return Line(i, cid, url, body if error is None else None, error)


def _check_unique(cid: str | None, i: int, seen: dict[str, int]) -> None:
    if cid is None:
        return
    if cid in seen:
        raise InvalidRequest(f"custom_id {cid[:100]!r} appears on lines {seen[cid] + 1} and {i + 1}; each request "
                             "needs its own", param="input_file_id", code="duplicate_custom_id")
    seen[cid] = i


def _text_over_limit(raw: RawLine, endpoint: str | None) -> Line | None:
    """A task line whose ``text`` is over the task's limit judged on its bytes, so a 31 MB
    text is refused without becoming a Python string (None: the line is parsed as usual)."""
    if raw.data is None or raw.size <= MAX_TEXT_CHARS * MAX_BYTES_PER_CHAR:
        return None
    if endpoint is not None and not TASK_ENDPOINT.match(endpoint):
        return None
    spans = string_spans(raw.data, ("custom_id",), ("url",), ("body", "text"))
    text = (spans or {}).get(("body", "text"))
    if spans is None or text is None or not certainly_longer(text, MAX_TEXT_CHARS):
        return None
    url = _short(raw.data, spans.get(("url",)), 200)
    if endpoint is None and not (url and TASK_ENDPOINT.match(url)):
        return None
    i = raw.number - 1
    return Line(i, _short(raw.data, spans.get(("custom_id",)), 512), None, None, {
        "code": "text_too_long", "message": f"line {i + 1}: 'text' is {(text[1] - text[0]) / (1 << 20):.1f} MB; the "
        f"limit is {MAX_TEXT_CHARS:,} characters"})


def _short(data: bytearray, span: tuple[int, int] | None, most: int) -> str | None:
    """A short string value by its span (None when absent, longer than ``most`` or escaped)."""
    if span is None or span[1] - span[0] > most:
        return None
    value = bytes(data[span[0]:span[1]])
    return None if b"\\" in value else value.decode("utf-8", "replace")


def _task_shape(url: Any, body: dict[str, Any], i: int) -> dict[str, Any] | None:
    """A task line's text over the task's limit fails here, untouched, instead of after the
    batch's shared work (a classifier's batched encoding) has read it."""
    text = body.get("text")
    if isinstance(url, str) and TASK_ENDPOINT.match(url) and isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return {"code": "text_too_long", "message": f"line {i + 1}: 'text' is {len(text):,} characters; the limit "
                f"is {MAX_TEXT_CHARS:,}"}
    return None


def _custom_id_of(head: bytes) -> str | None:
    m = re.search(r'"custom_id"\s*:\s*"([^"\\]{1,512})"', head.decode("utf-8", "replace"))
    return m.group(1) if m else None


def parse_gemini_lines(data: bytes, max_line_bytes: int) -> list[Line]:
    """``gemini_lines`` of a file's bytes already in memory."""
    return list(gemini_lines(io.BytesIO(data), max_line_bytes))


def gemini_lines(source: BinaryIO, max_line_bytes: int) -> Iterator[Line]:
    """Gemini batch input: ``{"key", "request"}`` per line (a file), or the inline form we store
    the same way with ``metadata`` beside it; read a line at a time."""
    count = readable = 0
    for raw in read_lines(source, max_line_bytes):
        count += 1
        if count > MAX_LINES:
            raise InvalidRequest(f"the batch input has more than {MAX_LINES} requests; a batch takes at most "
                                 f"{MAX_LINES}")
        obj = None
        if raw.data is not None:
            try:
                s = raw.data.decode("utf-8")
                readable += 1
                raw.data = None
                obj = json.loads(s)
            except ValueError:  # not UTF-8, not JSON
                obj = None
        else:
            readable += 1
        i = raw.number - 1
        if not isinstance(obj, dict) or not isinstance(obj.get("request"), dict):
            yield Line(i, None, None, None, {"code": 400, "message": f"line {i + 1}: expected a JSON object "
                                             "with a 'request' object (within the size limit)",
                                             "status": "INVALID_ARGUMENT"})
            continue
        key = obj.get("key")
        yield Line(i, str(key) if key is not None else None, None, obj["request"], None, obj.get("metadata"))
    if not count:
        raise InvalidRequest("the batch input file has no requests")
    if not readable:
        raise InvalidRequest("the batch input file is not UTF-8 JSONL")


def prefix_order(lines: list[Line]) -> list[Line]:
    """Lines whose requests start alike next to each other, so an LLM's prompt cache reuses
    the shared prefix (a system prompt, few-shot turns) from one line to the next."""
    def key(line: Line) -> str:
        body = line.body or {}
        head = body.get("messages") or body.get("contents") or body.get("prompt") or body.get("input") or ""
        if isinstance(head, list) and head:
            head = head[:-1] + [""]  # the shared part is everything but the last turn
        return json.dumps(head, sort_keys=True, ensure_ascii=False)[:2000]
    return sorted(lines, key=lambda ln: (key(ln), ln.index))


# -- the runner -----------------------------------------------------------------------------

def result_line(api: str, line: Line, status: int, body: Any) -> dict[str, Any]:
    """An answered line as the API's output line: OpenAI's ``{"id", "custom_id", "response"}``
    or Gemini's ``{"key", "response" | "error"}``."""
    if api == "openai":
        return {"id": "batch_req_" + secrets.token_hex(12), "custom_id": line.custom_id,
                "response": {"status_code": status, "request_id": "req_" + secrets.token_hex(12), "body": body},
                "error": None}
    out: dict[str, Any] = {}
    if line.custom_id is not None:
        out["key"] = line.custom_id
    if line.metadata is not None:
        out["metadata"] = line.metadata
    if 200 <= status < 300:
        out["response"] = body
    else:
        err = given if isinstance(body, dict) and isinstance(given := body.get("error"), dict) else {}
        out["error"] = {"code": status, "message": str(err.get("message") or body)[:2000],
                        "status": err.get("status") or "INTERNAL"}
    return out


def error_line(api: str, line: Line, error: dict[str, Any]) -> dict[str, Any]:
    """A line that could not run, with its error."""
    if api == "openai":
        return {"id": "batch_req_" + secrets.token_hex(12), "custom_id": line.custom_id, "response": None,
                "error": error}
    out: dict[str, Any] = {"error": error}
    if line.custom_id is not None:
        out["key"] = line.custom_id
    return out


async def answer_lines(lines: list[Line], call: Callable[[Line], Awaitable[tuple[int, Any]]],
                       done: Callable[[Line, int, Any], Awaitable[None]], concurrency: int,
                       stop: Callable[[], Awaitable[bool]] | None = None, check_every_s: float = 0.5,
                       prefetch: Callable[[list[Line]], None] | None = None, chunk: int = 256) -> bool:
    """Answer ``lines``, ``concurrency`` at a time: ``call`` each (again later while it raises
    Retry), then ``done`` with its status and body. ``stop`` is asked every ``check_every_s``;
    when it says so, the lines in flight are cancelled and False is returned. ``prefetch``
    gets each ``chunk`` of lines before they run (work they can share, done once)."""
    async def one(line: Line) -> None:
        while True:
            try:
                status, body = await call(line)
                break
            except Retry as r:
                await asyncio.sleep(r.after)
        await done(line, status, body)

    step = chunk if prefetch is not None else max(1, len(lines))
    last_check = time.monotonic()
    for start in range(0, len(lines), step):
        part = lines[start:start + step]
        if prefetch is not None:
            await asyncio.to_thread(prefetch, part)
        queue = list(reversed(part))
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while queue or in_flight:
                while queue and len(in_flight) < concurrency:
                    in_flight.add(asyncio.create_task(one(queue.pop())))
                finished, in_flight = await asyncio.wait(in_flight, timeout=check_every_s,
                                                         return_when=asyncio.FIRST_COMPLETED)
                for t in finished:
                    if t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                if stop is not None and time.monotonic() - last_check >= check_every_s:
                    last_check = time.monotonic()
                    if await stop():
                        return False
        finally:
            for t in in_flight:
                t.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
    return True


def task_prefetch(runtime: Any) -> Callable[[list[Line]], None]:
    """A prefetch for lines to ``/v1/tasks/{task}`` (``TaskRunner.prefetch``)."""
    def prefetch(lines: list[Line]) -> None:
        by_task: dict[str, list[Any]] = {}
        for line in lines:
            m = TASK_ENDPOINT.match(line.url or "")
            if m and line.body is not None:
                by_task.setdefault(m.group(1), []).append(line.body)
        for task, bodies in by_task.items():
            runtime.tasks.prefetch(task, bodies)
    return prefetch


class BatchRunner:
    """Runs jobs: claims one, answers its unanswered lines (``concurrency`` at a time), then
    writes its output. Cancelling stops new lines at once and cancels those in flight."""

    def __init__(self, store: BatchStore, dispatch: Dispatch, *, concurrency: int = 16,
                 max_line_bytes: int = 1 << 20, on_line: Callable[[Job, int], None] | None = None,
                 cost_of: Callable[[list[str]], float] | None = None,
                 prefetch: Callable[[list[Line]], None] | None = None):
        self.store = store
        self.dispatch = dispatch
        self.concurrency = concurrency
        self.max_line_bytes = max_line_bytes
        self.on_line = on_line
        self.cost_of = cost_of  # call ids -> their summed cost in the ledger
        self.prefetch = prefetch
        self._running: dict[str, asyncio.Task[None]] = {}

    def lines(self, job: Job) -> list[Line]:
        with self.store.files.open(job.input_file_id) as source:
            if job.api == "openai":
                return list(openai_lines(source, job.endpoint, self.max_line_bytes))
            return list(gemini_lines(source, self.max_line_bytes))

    def start(self, job_id: str) -> None:
        """Run a job in the background of the running event loop (no-op if it already runs)."""
        task = self._running.get(job_id)
        if task is None or task.done():
            self._running[job_id] = asyncio.get_running_loop().create_task(self._guarded(job_id))

    def running(self, job_id: str) -> bool:
        task = self._running.get(job_id)
        return task is not None and not task.done()

    async def wait(self, job_id: str, timeout: float) -> None:
        task = self._running.get(job_id)
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=timeout)

    def resume_all(self) -> list[str]:
        ids = self.store.unfinished()
        for job_id in ids:
            self.start(job_id)
        return ids

    async def _guarded(self, job_id: str) -> None:
        try:
            await self.run(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a job that cannot go on fails with the reason, never silently
            log.exception("batch %s failed", job_id)
            try:
                self.store.set(job_id, status="failed", failed_at=time.time(),
                               errors=json.dumps([{"code": "batch_failed", "message": f"{type(e).__name__}: {e}"}]))
            except Exception:  # noqa: BLE001 - the database itself may be what failed
                log.exception("batch %s: could not record the failure", job_id)

    async def close(self) -> None:
        tasks = [t for t in self._running.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self, job_id: str) -> Job:
        if not await asyncio.to_thread(self.store.claim, job_id):
            return self.store.get(job_id)
        job = self.store.get(job_id)
        # this task's work (the prefetch) sees what the job's creator sees; its lines go through the app as it
        set_current(Tenant(job.api_key) if job.api_key is not None else OPERATOR)
        if job.expires_at and time.time() > job.expires_at and job.status not in ("finalizing", "cancelling"):
            self.store.set(job_id, status="expired", expired_at=time.time())
            return self.store.get(job_id)
        lines = await asyncio.to_thread(self.lines, job)
        if job.status == "validating":
            self.store.set(job_id, status="in_progress", in_progress_at=time.time(), total=len(lines))
        done = await asyncio.to_thread(self.store.answered, job_id)
        for line in lines:  # lines that cannot run are answered at once
            if line.error is not None and line.index not in done:
                self._record(job, line, False, None, error_line(job.api, line, line.error))
        pending = prefix_order([ln for ln in lines if ln.error is None and ln.index not in done])
        if job.status != "cancelling":
            await self._answer(job, pending)
        return await asyncio.to_thread(self.finalize, job_id, lines)

    async def _answer(self, job: Job, pending: list[Line]) -> None:
        async def stop() -> bool:
            current = await asyncio.to_thread(self.store.get, job.id)
            if current.status == "cancelling":
                return True
            await asyncio.to_thread(self.store.renew, job.id)
            return False

        async def done(line: Line, status: int, body: Any) -> None:
            ok = 200 <= status < 300
            call_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
            await asyncio.to_thread(self._record, job, line, ok, status, result_line(job.api, line, status, body),
                                    call_id)

        def with_url(line: Line) -> Line:
            line.url = line.url or job.endpoint
            return line

        await answer_lines([with_url(ln) for ln in pending],
                           lambda line: self.dispatch(line.url or job.endpoint, line.body or {}, job),
                           done, self.concurrency, stop, prefetch=self.prefetch)

    def _record(self, job: Job, line: Line, ok: bool, status: int | None, result: dict[str, Any],
                call_id: str | None = None) -> None:
        if self.store.record(job.id, line.index, line.custom_id, ok, status, result, call_id) and self.on_line:
            self.on_line(job, line.index)

    def finalize(self, job_id: str, lines: list[Line]) -> Job:
        job = self.store.get(job_id)
        cancelled = job.status == "cancelling"
        if not cancelled:
            self.store.set(job_id, status="finalizing", finalizing_at=job.finalizing_at or time.time())
        call_ids = self.store.call_ids(job_id)
        cost = self.cost_of(call_ids) if self.cost_of else None
        values: dict[str, Any] = {"cost_usd": cost}
        if job.api == "openai":
            for ok, purpose, suffix in ((True, "output_file_id", "output"), (False, "error_file_id", "error")):
                if self.store.has_results(job_id, ok):
                    values[purpose] = self.store.files.put_lines(
                        self.store.result_lines(job_id, ok), api="openai", purpose="batch_output",
                        filename=f"{job_id}_{suffix}.jsonl", mime_type="application/jsonl",
                        file_id=f"file-{job_id[6:]}-{suffix}", owner=job.api_key).id
        elif not job.inline:
            values["output_file_id"] = self.store.files.put_lines(
                self.store.result_lines(job_id), api="gemini", purpose="batch_output",
                filename=f"{job_id}-results.jsonl", mime_type="application/jsonl",
                file_id=job_id.split("/")[-1] + "-results", owner=job.api_key).id
        now = time.time()
        values.update(status="cancelled", cancelled_at=now) if cancelled else values.update(
            status="completed", completed_at=now)
        self.store.set(job_id, owner=None, lease_until=None, **values)
        return self.store.get(job_id)


def openai_batch(job: Job) -> dict[str, Any]:
    """A job as OpenAI's Batch object."""
    def ts(v: float | None) -> int | None:
        return int(v) if v else None
    return {"id": job.id, "object": "batch", "endpoint": job.endpoint,
            "errors": {"object": "list", "data": job.errors} if job.errors else None,
            "input_file_id": job.input_file_id, "completion_window": job.completion_window or "24h",
            "status": job.status, "output_file_id": job.output_file_id, "error_file_id": job.error_file_id,
            "created_at": int(job.created_at), "in_progress_at": ts(job.in_progress_at),
            "expires_at": ts(job.expires_at), "finalizing_at": ts(job.finalizing_at),
            "completed_at": ts(job.completed_at), "failed_at": ts(job.failed_at), "expired_at": ts(job.expired_at),
            "cancelling_at": ts(job.cancelling_at), "cancelled_at": ts(job.cancelled_at),
            "request_counts": {"total": job.total, "completed": job.completed, "failed": job.failed},
            "metadata": job.metadata, "cost_usd": job.cost_usd}
