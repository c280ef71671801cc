"""Stored files: what the OpenAI Files API and the Gemini Files API upload, and what batch
jobs write.

A file is a row in the ``files`` table (beside the ledger: SQLite by default, PostgreSQL by
``LITEGATE_LEDGER_URL``) and its bytes under ``$LITEGATE_HOME/files/<id>``. The bytes are
written to a temporary name, synced and renamed before the row is inserted, so a row always
has whole content behind it; a crash leaves at most an orphan temporary file, removed at the
next start. Each file has an owner (``api_key``: the fingerprint of the key that stored it,
``litegate.tenancy``); a caller reaches only its own.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Engine

from litegate.errors import InvalidRequest, NotFound, PayloadTooLarge, StorageError
from litegate.ledger.migrations import add_missing_columns
from litegate.tenancy import OPERATOR, Tenant, filtered

metadata = MetaData()
files_table = Table(
    "files", metadata,
    Column("id", String(80), primary_key=True),
    Column("api", String(16), nullable=False),  # openai / gemini
    Column("purpose", String(32), nullable=False),  # batch, batch_output, user_data, ...
    Column("filename", String(512), nullable=False),
    Column("mime_type", String(128)),
    Column("bytes", Integer, nullable=False),
    Column("sha256", String(64)),
    Column("created_at", Float, nullable=False, index=True),
    Column("expires_at", Float),
    Column("api_key", String(64), index=True),  # the owner: its key's fingerprint; NULL: anonymous
)

log = logging.getLogger("litegate.files")
CHUNK = 1 << 20
ORPHAN_PID = re.compile(r"^(?:.*\.)?(\d+)-[0-9a-f]+(?:\.tmp)?$")  # <name>.<pid>-<hex>.tmp, uploads/<pid>-<hex>
OPENAI_PURPOSES = ("batch", "user_data", "assistants", "vision", "fine-tune", "evals")
ID_RE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass
class StoredFile:
    id: str
    api: str
    purpose: str
    filename: str
    mime_type: str | None
    bytes: int
    sha256: str | None
    created_at: float
    expires_at: float | None = None
    api_key: str | None = None

    def openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": int(self.created_at),
                "expires_at": int(self.expires_at) if self.expires_at else None, "filename": self.filename,
                "purpose": self.purpose, "status": "processed", "status_details": None}


class FileStore:
    def __init__(self, engine: Engine, home: Path):
        self.engine = engine
        self.root = home / "files"
        self.root.mkdir(parents=True, exist_ok=True)
        metadata.create_all(engine)
        # a database from before owners: its files become the anonymous owner's (the batch store
        # then gives batch files their batch's owner)
        self.owner_added = "api_key" in add_missing_columns(engine, files_table)
        self.remove_orphans()

    @staticmethod
    def new_id(api: str) -> str:
        return ("file-" if api == "openai" else "") + secrets.token_hex(12)

    def path(self, file_id: str) -> Path:
        if not file_id or set(file_id.lower()) - ID_RE_CHARS:
            raise NotFound(f"no file {file_id[:80]!r}")
        return self.root / file_id

    def put(self, data: bytes, **row: Any) -> StoredFile:
        """Store ``data``; with a ``file_id`` that exists, the old content is replaced
        (batch outputs are rewritten whole when a job is finalized again after a crash)."""
        return self.put_stream(io.BytesIO(data), **row)

    def put_lines(self, lines: Iterable[bytes], **row: Any) -> StoredFile:
        """Store what ``lines`` yields, a block at a time (a batch's output is never built whole)."""
        return self.put_stream(_Blocks(lines), **row)

    def put_stream(self, source: Readable, *, api: str, purpose: str, filename: str, mime_type: str | None = None,
                   file_id: str | None = None, expires_at: float | None = None, owner: str | None = None,
                   max_bytes: int | None = None) -> StoredFile:
        """Store what ``source`` reads, a chunk at a time (an upload never sits in memory
        whole); more than ``max_bytes`` is refused (413) and nothing is kept."""
        file_id = file_id or self.new_id(api)
        target = self.path(file_id)
        tmp = self.temporary(target.name)
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"the file is larger than the {max_bytes / (1 << 20):g} MB limit "
                                              "(LITEGATE_MAX_FILE_MB)")
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            raise StorageError(f"cannot write {target}: {e.strerror or e} (free space in, or permissions of, "
                               f"{self.root})", code="storage_error") from e
        finally:
            tmp.unlink(missing_ok=True)
        stored = StoredFile(id=file_id, api=api, purpose=purpose, filename=filename[:512] or file_id,
                            mime_type=mime_type, bytes=size, sha256=digest.hexdigest(),
                            created_at=time.time(), expires_at=expires_at, api_key=owner)
        with self.engine.begin() as conn:
            conn.execute(delete(files_table).where(files_table.c.id == file_id))
            conn.execute(insert(files_table).values(**stored.__dict__))
        return stored

    def temporary(self, name: str) -> Path:
        """A temporary path beside the files, named for this process: what a crash leaves is
        found and removed at the next start (``remove_orphans``)."""
        return self.root / f"{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"

    def remove_orphans(self) -> list[Path]:
        """Temporary files of processes that are gone (an upload cut by a kill -9): removed."""
        removed = []
        for path in [*self.root.glob("*.tmp"), *self.root.glob("uploads/*")]:
            owner = ORPHAN_PID.search(path.name)
            if owner is not None and _alive(int(owner.group(1))):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
        if removed:
            log.info("removed %d temporary file(s) left by stopped processes in %s", len(removed), self.root)
        return removed

    def get(self, file_id: str, tenant: Tenant = OPERATOR) -> StoredFile:
        """The file; NotFound when it does not exist or is not ``tenant``'s."""
        with self.engine.connect() as conn:
            row = conn.execute(select(files_table).where(files_table.c.id == file_id)).mappings().first()
        if row is None or not tenant.sees(row["api_key"]):
            raise NotFound(f"no file with id {file_id[:80]!r}", param="file_id")
        return StoredFile(**row)

    def content(self, file_id: str, tenant: Tenant = OPERATOR) -> bytes:
        self.get(file_id, tenant)
        try:
            return self.path(file_id).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the content of file {file_id!r} is gone from {self.root}") from None

    def open(self, file_id: str, tenant: Tenant = OPERATOR) -> BinaryIO:
        """The file's content to read a block at a time (a batch's input is never read whole)."""
        self.get(file_id, tenant)
        try:
            return open(self.path(file_id), "rb")
        except FileNotFoundError:
            raise NotFound(f"the content of file {file_id!r} is gone from {self.root}") from None

    def list(self, *, api: str | None = None, purpose: str | None = None, after: str | None = None,
             limit: int = 10000, newest_first: bool = True, tenant: Tenant = OPERATOR) -> list[StoredFile]:
        q = filtered(select(files_table), files_table.c.api_key, tenant)
        if api:
            q = q.where(files_table.c.api == api)
        if purpose:
            q = q.where(files_table.c.purpose == purpose)
        order = files_table.c.created_at.desc() if newest_first else files_table.c.created_at.asc()
        with self.engine.connect() as conn:
            rows = [StoredFile(**r) for r in conn.execute(q.order_by(order, files_table.c.id)).mappings()]
        if after:
            ids = [r.id for r in rows]
            rows = rows[ids.index(after) + 1:] if after in ids else []
        return rows[:limit]

    def delete(self, file_id: str, tenant: Tenant = OPERATOR) -> None:
        self.get(file_id, tenant)
        with self.engine.begin() as conn:
            conn.execute(delete(files_table).where(files_table.c.id == file_id))
        self.path(file_id).unlink(missing_ok=True)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Blocks:
    """``read`` over an iterable of byte strings: blocks of at least ``size`` bytes (the last
    one shorter), joined once rather than grown a piece at a time."""

    def __init__(self, parts: Iterable[bytes]):
        self._parts = iter(parts)

    def read(self, size: int = -1, /) -> bytes:
        out: list[bytes] = []
        n = 0
        for part in self._parts:
            out.append(part)
            n += len(part)
            if 0 <= size <= n:
                break
        return b"".join(out)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_purpose(purpose: str) -> str:
    if purpose not in OPENAI_PURPOSES:
        raise InvalidRequest(f"purpose {purpose[:40]!r} is not one of {', '.join(OPENAI_PURPOSES)}", param="purpose")
    return purpose
