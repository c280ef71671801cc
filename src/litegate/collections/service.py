"""Collections: create, list, delete; add files (through the document layer) or texts; hybrid
search. Every collection has an owner (an API key's fingerprint) and a key sees only its own.

Why one module (over 400 lines): ownership, ingest and search meet here over one store;
chunking, fusion, filters and the store are modules of their own.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from litegate.collections import filters as filter_rules
from litegate.collections.backfill import PENDING, VectorBackfill, pending_by_file
from litegate.collections.chunking import Chunk, chunk_document
from litegate.collections.fusion import DEFAULT_FUSION, FUSIONS, Fusion
from litegate.collections.ingest import IngestJobs
from litegate.collections.store import (
    chunks_table,
    collection_files_table,
    collections_table,
    lexical_for,
    metadata,
)
from litegate.collections.vectors import CollectionVectors, VectorCache, build
from litegate.documents import read
from litegate.documents.types import Document, Limits, Part
from litegate.errors import Conflict, InvalidRequest, NotFound
from litegate.tenancy import current

NAME_RE = re.compile(r"^[^\x00-\x1f/\\]{1,128}$")
MAX_QUERY_CHARS = 2000  # about the 512 word pieces a query is worth; longer is a document, not a query
MAX_TOP_K = 100
MODES = ("hybrid", "lexical", "dense")
CANDIDATES = 100  # each side's list before fusion
MAX_PAGES = 2000
MAX_FILE_BYTES = 200 * 1024 * 1024
QUERY_CACHE = 512
INLINE_VECTORS = 64  # a file of more chunks gets its vectors in the background


class _Background:
    """A call run on its own thread; ``result()`` waits for it and re-raises its error."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._error = e

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class Hit:
    chunk_id: int
    file_id: str  # the file's row in the collection
    filename: str
    text: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    section: str | None = None
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    kind: str = "text"
    source_file_id: str | None = None  # the stored file (POST /v1/files) it was read from
    attributes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def where(self) -> str:
        """Provenance for a person: 'report.pdf, page 3, lines 4-9'."""
        parts = [self.filename]
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.start_s is not None:
            parts.append(f"{self.start_s:.0f}s")
        if self.line_start is not None:
            parts.append(f"line {self.line_start}" if self.line_start == self.line_end
                         else f"lines {self.line_start}-{self.line_end}")
        return ", ".join(parts)


def _loads(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


def _optional_text(value: Any, param: str, most: int) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > most):
        raise InvalidRequest(f"'{param}' must be a string of at most {most} characters", param=param)
    return value


class Collections:
    """The collections of one database. ``encoder`` is a zero-argument callable returning the
    encoder (built on first use: opening a collection does not load a model)."""

    def __init__(self, engine: Engine, encoder: Callable[[], Any], *, files: Any = None,
                 encoder_name: str = "all-MiniLM-L6-v2", limits: Limits | None = None,
                 fusion: str = DEFAULT_FUSION):
        """``limits`` bound each file read (default: the document layer's, with up to
        ``MAX_PAGES`` pages: a collection takes whole manuals)."""
        self.engine = engine
        self._encoder = encoder
        self.files_store = files  # litegate.jobs.files.FileStore: what add_stored_file reads
        self.encoder_name = encoder_name
        self.limits = limits or Limits(max_pages=MAX_PAGES, max_bytes=MAX_FILE_BYTES, line_boxes=False)
        self.fusion = fusion
        self.lexical = lexical_for(engine)
        self.vectors = VectorCache()
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # recent queries' vectors
        self._query_lock = threading.Lock()
        self._built: Any = None  # the encoder, made on first use
        self._built_lock = threading.Lock()
        metadata.create_all(engine)
        self.backfill = VectorBackfill(engine, self.embed)

        self.jobs = IngestJobs(self)

    # -- collections ------------------------------------------------------------------------

    @staticmethod
    def _owned(owner: str | None) -> Any:
        c = collections_table.c.owner
        return c.is_(None) if owner is None else c == owner

    def _row(self, conn: Connection, owner: str | None, ref: str) -> dict[str, Any]:
        t = collections_table
        row = conn.execute(select(t).where(self._owned(owner), (t.c.id == ref) | (t.c.name == ref))
                           ).mappings().first()
        if row is None:
            raise NotFound(f"no collection {ref[:130]!r}; create it first (litegate collection create NAME, or "
                           "POST /v1/collections)", param="collection", code="collection_not_found")
        return dict(row)

    def _describe(self, conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
        f = collection_files_table.c
        files, chunks, size = conn.execute(select(func.count(f.id), func.coalesce(func.sum(f.chunks), 0),
                                                  func.coalesce(func.sum(f.bytes), 0))
                                           .where(f.collection_id == row["id"])).one()
        pending = pending_by_file(conn, row["id"])
        return {"id": row["id"], "name": row["name"], "description": row["description"],
                "metadata": _loads(row["metadata"]), "encoder": row["encoder"], "created_at": row["created_at"],
                "files": int(files), "chunks": int(chunks), "bytes": int(size),
                "vectors_pending": sum(pending.values()), "files_pending": len(pending)}

    def create(self, owner: str | None, name: str, *, description: str | None = None,
               attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(name, str) or not NAME_RE.match(name) or name != name.strip() or name.startswith("vs_"):
            raise InvalidRequest("a collection name is 1-128 characters without '/', '\\', control characters or "
                                 "spaces at its ends, and does not start with 'vs_' (which starts ids)", param="name")
        attributes = filter_rules.check_attributes(attributes)
        description = _optional_text(description, "description", 2000)
        row: dict[str, Any]  # mixed values: ids are str
        row = {"id": "vs_" + secrets.token_hex(12), "owner": owner, "name": name, "description": description,
               "metadata": json.dumps(attributes), "encoder": self.encoder_name, "version": 0,
               "created_at": time.time()}
        with self.engine.begin() as conn:
            taken = conn.execute(select(collections_table.c.id).where(
                self._owned(owner), collections_table.c.name == name)).first()
            if taken is not None:
                raise Conflict(f"a collection named {name!r} exists already; pick another name or delete it first",
                               param="name", code="collection_exists")
            conn.execute(insert(collections_table).values(**row))
            self.lexical.create(conn, row["id"])
            return self._describe(conn, row)

    def list(self, owner: str | None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(collections_table).where(self._owned(owner))
                                .order_by(collections_table.c.created_at.desc())).mappings().all()
            return [self._describe(conn, dict(r)) for r in rows]

    def get(self, owner: str | None, ref: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._describe(conn, self._row(conn, owner, ref))

    def delete(self, owner: str | None, ref: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._row(conn, owner, ref)
            conn.execute(delete(chunks_table).where(chunks_table.c.collection_id == row["id"]))
            conn.execute(delete(collection_files_table).where(collection_files_table.c.collection_id == row["id"]))
            conn.execute(delete(collections_table).where(collections_table.c.id == row["id"]))
            self.lexical.drop(conn, row["id"])
        self.vectors.forget(row["id"])
        return {"id": row["id"], "name": row["name"], "deleted": True}

    # -- files ------------------------------------------------------------------------------

    def files(self, owner: str | None, ref: str) -> builtins.list[dict[str, Any]]:
        f = collection_files_table
        with self.engine.connect() as conn:
            coll = self._row(conn, owner, ref)
            rows = conn.execute(select(f).where(f.c.collection_id == coll["id"]).order_by(f.c.created_at)
                                ).mappings().all()
            pending = pending_by_file(conn, coll["id"])
        return [dict(self._file_body(dict(r)), vectors_pending=pending.get(r["id"], 0)) for r in rows]

    @staticmethod
    def _file_body(row: dict[str, Any]) -> dict[str, Any]:
        body = {k: row[k] for k in ("id", "collection_id", "source", "file_id", "filename", "mime_type", "sha256",
                                    "bytes", "pages", "chunks", "created_at")}
        body["attributes"] = _loads(row["metadata"])
        return body

    def file(self, owner: str | None, ref: str, file_ref: str) -> dict[str, Any]:
        """A file of a collection by its row id, its stored file id or its source."""
        f = collection_files_table.c
        with self.engine.connect() as conn:
            coll = self._row(conn, owner, ref)
            row = conn.execute(select(collection_files_table).where(
                f.collection_id == coll["id"], (f.id == file_ref) | (f.file_id == file_ref) | (f.source == file_ref))
            ).mappings().first()
            pending = pending_by_file(conn, coll["id"]).get(row["id"], 0) if row is not None else 0
        if row is None:
            raise NotFound(f"collection {ref!r} has no file {file_ref[:120]!r}", param="file_id")
        return dict(self._file_body(dict(row)), vectors_pending=pending)

    def remove_file(self, owner: str | None, ref: str, file_ref: str) -> dict[str, Any]:
        found = self.file(owner, ref, file_ref)
        with self.engine.begin() as conn:
            self._drop_file(conn, found["collection_id"], found["id"])
            self._bump(conn, found["collection_id"])
        return {"id": found["id"], "deleted": True}

    def add_file(self, owner: str | None, ref: str, part: Part, *, source: str | None = None,
                 file_id: str | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Read ``part`` through the document layer and index it. The same ``source`` again
        with the same bytes is a no-op; with other bytes its chunks are replaced. One
        transaction per file: a failure leaves the collection as it was."""
        attributes = filter_rules.check_attributes(attributes, "attributes")
        _optional_text(source, "source", 600)
        _optional_text(part.filename, "filename", 512)
        coll = self.get(owner, ref)
        sha = hashlib.sha256(part.data).hexdigest()
        source = (source or file_id or part.filename or part.name)[:600]
        existing = self._by_source(coll["id"], source)
        if existing is not None and existing["sha256"] == sha and _loads(existing["metadata"]) == attributes:
            return dict(self._file_body(existing), unchanged=True)
        doc = read(part, self.limits)
        return self.add_document(coll["id"], doc, source=source, sha256=sha, size=len(part.data), file_id=file_id,
                                 attributes=attributes, replaces=existing["id"] if existing else None)

    def add_stored_file(self, owner: str | None, ref: str, file_id: str,
                        attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """A file uploaded before (POST /v1/files), by its id."""
        if self.files_store is None:
            raise InvalidRequest("this server keeps no files", param="file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest("'file_id' must be a file's id (from POST /v1/files)", param="file_id")
        stored = self.files_store.get(file_id, current())  # the caller's files only (another key's: not found)
        data = self.files_store.content(file_id)
        part = Part(guess_type(stored.filename, stored.mime_type), data, file_id, filename=stored.filename)
        return self.add_file(owner, ref, part, source=file_id, file_id=file_id, attributes=attributes)

    def add_text(self, owner: str | None, ref: str, text: str, *, source: str | None = None,
                 filename: str | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("'text' must be a non-empty string", param="text", code="empty_document")
        _optional_text(source, "source", 600)
        _optional_text(filename, "filename", 512)
        data = text.encode("utf-8")
        name = filename or source or "text-" + hashlib.sha256(data).hexdigest()[:12]
        return self.add_file(owner, ref, Part("text/plain", data, "text", filename=name), source=source or name,
                             attributes=attributes)

    def add_texts(self, owner: str | None, ref: str, items: builtins.list[dict[str, Any]],
                  progress: Callable[[int], None] | None = None) -> builtins.list[dict[str, Any]]:
        """Many texts ({text, source?, filename?, attributes?}) at once: their chunks are encoded
        in large batches (the encoder's fast path), then each is written in its own transaction."""
        coll = self.get(owner, ref)
        docs = []
        for i, item in enumerate(items):
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise InvalidRequest(f"texts.{i}.text must be a non-empty string", param=f"texts.{i}.text",
                                     code="empty_document")
            _optional_text(item.get("source"), f"texts.{i}.source", 600)
            _optional_text(item.get("filename"), f"texts.{i}.filename", 512)
            filter_rules.check_attributes(item.get("attributes"), f"texts.{i}.attributes")
            name = item.get("filename") or item.get("source") or f"text-{i + 1}"
            doc = read(Part("text/plain", text.encode("utf-8"), f"texts.{i}", filename=name), self.limits)
            docs.append((item, doc, chunk_document(doc)))
        flat = [c.indexed_text() for _, _, chunks in docs for c in chunks]
        vectors = self.embed(flat) if flat else np.zeros((0, 0), np.float32)
        out, at = [], 0
        for item, doc, chunks in docs:
            data = item["text"].encode("utf-8")
            source = str(item.get("source") or doc.filename)[:600]
            existing = self._by_source(coll["id"], source)
            out.append(self._write(coll["id"], doc, chunks, vectors[at:at + len(chunks)], source=source,
                                   sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                   attributes=filter_rules.check_attributes(item.get("attributes"), "attributes"),
                                   replaces=existing["id"] if existing else None))
            at += len(chunks)
            if progress is not None:
                progress(1)
        return out

    def _by_source(self, collection_id: str, source: str) -> dict[str, Any] | None:
        f = collection_files_table.c
        with self.engine.connect() as conn:
            row = conn.execute(select(collection_files_table).where(f.collection_id == collection_id,
                                                                    f.source == source)).mappings().first()
        return dict(row) if row else None

    def add_document(self, collection_id: str, doc: Document, *, source: str, sha256: str, size: int,
                     file_id: str | None = None, attributes: dict[str, Any] | None = None,
                     replaces: str | None = None) -> dict[str, Any]:
        chunks = chunk_document(doc)
        # a large file is searchable by its words at once; its vectors follow (backfill.py)
        vectors = self.embed([c.indexed_text() for c in chunks]) if 0 < len(chunks) <= INLINE_VECTORS else None
        return self._write(collection_id, doc, chunks, vectors, source=source, sha256=sha256, size=size,
                           file_id=file_id, attributes=attributes, replaces=replaces)

    def _write(self, collection_id: str, doc: Document, chunks: builtins.list[Chunk], vectors: Any, *, source: str,
               sha256: str, size: int, file_id: str | None = None, attributes: dict[str, Any] | None = None,
               replaces: str | None = None) -> dict[str, Any]:
        """One file's row and chunks, replacing an older version's, in one transaction."""
        if not chunks:
            notes = "; ".join(doc.notes) or "it is blank"
            raise InvalidRequest(f"{doc.filename or doc.name} reads as no text ({notes}); nothing was added. Send a "
                                 "file with a text layer, or an image or scan for OCR", param=doc.name,
                                 code="empty_document")
        row: dict[str, Any]  # mixed values: ids are str
        row = {"id": "vsf_" + secrets.token_hex(12), "collection_id": collection_id, "source": source,
               "file_id": file_id, "filename": (doc.filename or source)[:512], "mime_type": doc.mime_type,
               "sha256": sha256, "bytes": size, "pages": doc.pages, "chunks": len(chunks),
               "metadata": json.dumps(attributes or {}), "created_at": time.time()}
        with self.engine.begin() as conn:
            if replaces is not None:
                self._drop_file(conn, collection_id, replaces)
            conn.execute(insert(collection_files_table).values(**row))
            self._insert_chunks(conn, collection_id, row["id"], chunks, vectors)
            self._bump(conn, collection_id)
        if vectors is None:
            self.backfill.schedule(collection_id)
        return dict(self._file_body(row), replaced=replaces is not None,
                    vectors_pending=len(chunks) if vectors is None else 0)

    def encoder(self) -> Any:
        """What encodes chunks and queries (made on first use)."""
        with self._built_lock:
            if self._built is None:
                self._built = self._encoder()
            return self._built

    def embed(self, texts: builtins.list[str]) -> np.ndarray:
        vectors = np.asarray(self.encoder().encode(texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _insert_chunks(self, conn: Connection, collection_id: str, file_row: str, chunks: builtins.list[Chunk],
                       vectors: np.ndarray | None) -> None:
        rows = [{"collection_id": collection_id, "file_row": file_row, "ord": i, "text": c.text,
                 "section": c.section, "kind": c.kind, "page": c.page, "line_start": c.line_start,
                 "line_end": c.line_end, "start_s": c.start_s, "end_s": c.end_s,
                 "vector": PENDING if vectors is None else vectors[i].astype(np.float32).tobytes()}
                for i, c in enumerate(chunks)]
        ids = conn.execute(insert(chunks_table).returning(chunks_table.c.id, sort_by_parameter_order=True),
                           rows).scalars().all()
        self.lexical.add(conn, collection_id, [(i, c.indexed_text()) for i, c in zip(ids, chunks)])

    def _drop_file(self, conn: Connection, collection_id: str, file_row: str) -> None:
        c = chunks_table.c
        old = conn.execute(select(c.id, c.text, c.section).where(c.file_row == file_row)).all()
        self.lexical.remove(conn, collection_id, [(i, f"{s}\n{t}" if s else t) for i, t, s in old])
        conn.execute(delete(chunks_table).where(c.file_row == file_row))
        conn.execute(delete(collection_files_table).where(collection_files_table.c.id == file_row))

    @staticmethod
    def _bump(conn: Connection, collection_id: str) -> None:
        t = collections_table
        conn.execute(update(t).where(t.c.id == collection_id).values(version=t.c.version + 1))

    # -- search -----------------------------------------------------------------------------

    def search(self, owner: str | None, ref: str, query: str, *, top_k: int = 10, filters: Any = None,
               mode: str = "hybrid", rerank: Any = None, fusion: str | None = None) -> builtins.list[Hit]:
        """The ``top_k`` best chunks for ``query``: BM25 and dense cosine fused (``mode``
        picks one side alone), limited to files whose attributes match ``filters``;
        ``rerank`` (an LLM tier) reorders them by its yes/no log-probabilities."""
        query = check_query(query)
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidRequest(f"'top_k' must be an integer from 1 to {MAX_TOP_K}", param="top_k")
        if mode not in MODES:
            raise InvalidRequest(f"'mode' must be one of {', '.join(MODES)}", param="mode")
        fuse = self.fusion_named(fusion)
        rules = filter_rules.check(filters)
        with self.engine.connect() as conn:
            coll = self._row(conn, owner, ref)
            f = collection_files_table.c
            if conn.execute(select(f.id).where(f.collection_id == coll["id"]).limit(1)).first() is None:
                raise InvalidRequest(f"collection {coll['name']!r} is empty; add files first (litegate collection add, "
                                     "or POST /v1/collections/{name}/files)", param="collection",
                                     code="empty_collection")
            allowed = None if rules is None else [i for i, row in self._file_rows(conn, coll["id"]).items()
                                                  if filter_rules.matches(_attributes(row), rules)]
            lists = self._ranked(conn, coll, query, mode, max(CANDIDATES, top_k), allowed)
            fused = fuse(lists) if len(lists) > 1 else lists[0]
            hits = self._hits(conn, fused[:top_k], lists, mode)
        if rerank is not None and hits:
            hits = rerank_hits(rerank, query, hits)
        return hits

    def fusion_named(self, name: Any = None) -> Fusion:
        fuse = FUSIONS.get(name or self.fusion) if isinstance(name or self.fusion, str) else None
        if fuse is None:
            raise InvalidRequest(f"'fusion' must be one of {', '.join(FUSIONS)}", param="fusion")
        return fuse

    def ranked_lists(self, owner: str | None, ref: str, query: str, depth: int = CANDIDATES
                     ) -> builtins.list[builtins.list[tuple[int, float]]]:
        """[lexical, dense] (chunk id, score) lists as hybrid search fuses them (for measuring
        fusions: bench/retrieval.py)."""
        with self.engine.connect() as conn:
            return self._ranked(conn, self._row(conn, owner, ref), check_query(query), "hybrid", depth, None)

    def _ranked(self, conn: Connection, coll: dict[str, Any], query: str, mode: str, depth: int,
                allowed: builtins.list[str] | None) -> builtins.list[builtins.list[tuple[int, float]]]:
        # the query's vector is computed on another thread while SQLite ranks the words
        encoding = _Background(self.embed_query, query) if mode != "lexical" else None
        lexical = self.lexical.search(conn, coll["id"], query, depth, allowed) if mode != "dense" else []
        if encoding is None:
            return [lexical]
        q = encoding.result()
        index = self._index_for(conn, coll, q)
        dense = index.search(q, depth, None if allowed is None else index.mask(allowed)) if len(index.ids) else []
        if mode == "dense":
            return [dense]
        # a lexical hit below the dense cut still has a cosine: fuse it with its real value
        seen = {i for i, _ in dense}
        missing = [i for i, _ in lexical if i not in seen]
        return [lexical, sorted(dense + index.scores_of(q, missing), key=lambda kv: -kv[1])]

    def _file_rows(self, conn: Connection, collection_id: str, ids: builtins.list[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
        f = collection_files_table
        q = select(f).where(f.c.collection_id == collection_id)
        if ids is not None:
            q = q.where(f.c.id.in_(ids))
        return {r["id"]: dict(r) for r in conn.execute(q).mappings()}

    def embed_query(self, query: str) -> np.ndarray:
        """A query's unit vector; the last few hundred are kept (a question asked again, an
        answer's follow-up search)."""
        with self._query_lock:
            found = self._query_vectors.get(query)
            if found is not None:
                self._query_vectors.move_to_end(query)
                return found
        vector = self.embed([query])[0]
        with self._query_lock:
            self._query_vectors[query] = vector
            while len(self._query_vectors) > QUERY_CACHE:
                self._query_vectors.popitem(last=False)
        return vector

    def collection_vectors(self, conn: Connection, coll: dict[str, Any]) -> CollectionVectors:
        """The collection's in-memory vectors at its current version (read from the chunk rows
        when it moved since the last search)."""
        found = self.vectors.cached(coll["id"], coll["version"])
        if found is not None:
            return found
        c = chunks_table.c
        rows = conn.execution_options(stream_results=True, yield_per=8192).execute(
            select(c.id, c.file_row, c.vector).where(c.collection_id == coll["id"]).order_by(c.id))
        pending = [0]

        def with_vectors() -> Iterator[tuple[int, str, bytes]]:
            for r in rows:
                if r[2]:
                    yield r[0], r[1], r[2]
                else:
                    pending[0] += 1
        built = build(coll["version"], with_vectors())
        self.vectors.put(coll["id"], built)
        if pending[0]:  # left by a crash, or still being encoded (then this is a no-op)
            self.backfill.schedule(coll["id"])
        return built

    def _index_for(self, conn: Connection, coll: dict[str, Any], q: np.ndarray) -> CollectionVectors:
        index = self.collection_vectors(conn, coll)
        if len(index.ids) and index.dim != q.shape[0]:
            raise Conflict(f"collection {coll['name']!r} was indexed with another encoder ({coll['encoder']}); "
                           "re-create it to search with this one", param="collection", code="encoder_mismatch")
        return index

    def _hits(self, conn: Connection, fused: builtins.list[tuple[int, float]],
              lists: builtins.list[builtins.list[tuple[int, float]]], mode: str) -> builtins.list[Hit]:
        if not fused:
            return []
        c = chunks_table.c
        rows = {r["id"]: r for r in conn.execute(select(chunks_table).where(c.id.in_([i for i, _ in fused])))
                .mappings()}
        files = self._file_rows(conn, next(iter(rows.values()))["collection_id"],
                                list({r["file_row"] for r in rows.values()}))
        sides = ["lexical", "dense"] if mode == "hybrid" else [mode]
        per_side = [dict(ranked) for ranked in lists]
        hits = []
        for chunk_id, score in fused:
            r = rows[chunk_id]
            f = files[r["file_row"]]
            scores = {side: round(s[chunk_id], 6) for side, s in zip(sides, per_side) if chunk_id in s}
            hits.append(Hit(chunk_id=chunk_id, file_id=r["file_row"], filename=f["filename"], text=r["text"],
                            score=round(float(score), 6), scores=scores, section=r["section"], page=r["page"],
                            line_start=r["line_start"], line_end=r["line_end"], start_s=r["start_s"],
                            end_s=r["end_s"], kind=r["kind"], source_file_id=f["file_id"],
                            attributes=_attributes(f)))
        return hits


def guess_type(filename: str | None, declared: str | None) -> str | None:
    """A declared type, or (for none or octet-stream) the one a text file's name implies, so a
    Markdown or CSV upload keeps its structure; the document layer sniffs the rest."""
    if declared and declared != "application/octet-stream":
        return declared
    import mimetypes

    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed if guessed in ("text/markdown", "text/csv", "text/plain", "application/json") else None


def _attributes(file_row: dict[str, Any]) -> dict[str, Any]:
    """What filters see: the file's own attributes, plus its filename and type."""
    return {"filename": file_row["filename"], "mime_type": file_row["mime_type"], **_loads(file_row["metadata"])}


def check_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("'query' must be a non-empty string", param="query")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"'query' is {len(query):,} characters; a search query is at most {MAX_QUERY_CHARS:,}. "
                             "Ask a shorter question (the encoder reads the first 128 word pieces anyway)",
                             param="query", code="query_too_long")
    return query


RERANK_PROMPT = "Decide whether the passage helps answer the query. Reply Yes or No."


def rerank_score(tier: Any, query: str, passage: str) -> float:
    """The LLM's P(Yes) for "does this passage help answer the query?" (the shared system prompt
    stays cached, so a passage costs the pair's tokens and one decoding step)."""
    probs, _ = tier.label_scores([{"role": "system", "content": RERANK_PROMPT},
                                  {"role": "user", "content": f"Query: {query}\nPassage: {passage[:1500]}\n"
                                                              "Relevant?"}], ["Yes", "No"], max_tokens=1)
    return float(probs["Yes"])


def rerank_hits(tier: Any, query: str, hits: list[Hit]) -> list[Hit]:
    """Reorder by the LLM's P(Yes) for each hit (``rerank_score``)."""
    for hit in hits:
        hit.scores["rerank"] = round(rerank_score(tier, query, hit.text), 6)
    return sorted(hits, key=lambda h: -h.scores["rerank"])
