"""Where collections live: tables beside the ledger (SQLite by default, PostgreSQL by
``LITEGATE_LEDGER_URL``), vectors as float32 blobs in the chunk rows (searched from memory:
vectors.py), and one small lexical index per database kind (SQLite FTS5 with bm25();
PostgreSQL tsvector with ts_rank)."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()
collections_table = Table(
    "collections", metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(64), index=True),  # the API key's fingerprint; NULL without keys
    Column("name", String(128), nullable=False),
    Column("description", Text),
    Column("metadata", Text),  # JSON
    Column("encoder", String(64), nullable=False),
    Column("version", Integer, nullable=False, default=0),  # +1 on every committed change of chunks
    Column("created_at", Float, nullable=False),
)
collection_files_table = Table(
    "collection_files", metadata,
    Column("id", String(40), primary_key=True),
    Column("collection_id", String(40), ForeignKey("collections.id", ondelete="CASCADE"), index=True,
           nullable=False),
    Column("source", String(600), nullable=False),  # what identifies it on re-adding: file id, path or text id
    Column("file_id", String(80)),  # a stored file (POST /v1/files), when it came from one
    Column("filename", String(512), nullable=False),
    Column("mime_type", String(128)),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("chunks", Integer, nullable=False, default=0),
    Column("metadata", Text),  # JSON: the attributes filters match
    Column("created_at", Float, nullable=False),
)
chunks_table = Table(
    "collection_chunks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("collection_id", String(40), nullable=False, index=True),
    Column("file_row", String(40), nullable=False, index=True),
    Column("ord", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("section", Text),
    Column("kind", String(16), nullable=False, default="text"),
    Column("page", Integer),
    Column("line_start", Integer),
    Column("line_end", Integer),
    Column("start_s", Float),
    Column("end_s", Float),
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
)
jobs_table = Table(
    "collection_jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("collection_id", String(40), nullable=False, index=True),
    Column("owner", String(64)),
    Column("status", String(16), nullable=False, index=True),  # queued, in_progress, completed, cancelled
    Column("items", Text, nullable=False),  # JSON list: {file_id, metadata, status, error}
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

_WORD = re.compile(r"\w+", re.UNICODE)
# function words that would make nearly every chunk a lexical match ("price of a gadget")
STOPWORDS = frozenset("""a an and are as at be by can do does for from had has have how i in is it its of on or
that the their there these this to was were what when where which who why will with you your""".split())


def query_terms(query: str, limit: int = 64) -> list[str]:
    """The words of a query, each once, lowercased, without function words unless that would
    leave none (the lexical side ORs them)."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:limit]


class LexicalIndex(Protocol):
    """The one part that differs per database: a BM25-like ranking of a collection's chunks."""

    def create(self, conn: Connection, collection_id: str) -> None: ...
    def drop(self, conn: Connection, collection_id: str) -> None: ...
    def add(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None: ...
    def remove(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None: ...
    def search(self, conn: Connection, collection_id: str, query: str, limit: int,
               files: list[str] | None) -> list[tuple[int, float]]: ...


def _fts_name(collection_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", collection_id):
        raise ValueError(f"bad collection id {collection_id!r}")
    return f"collection_fts_{collection_id}"


class SQLiteLexical:
    """One contentless FTS5 table per collection (its own term statistics), rowid = chunk id,
    ranked by FTS5's bm25() (as its ``rank`` column: with ORDER BY rank LIMIT, FTS5 keeps only
the best rows instead of sorting every match)."""

    def create(self, conn: Connection, collection_id: str) -> None:
        conn.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {_fts_name(collection_id)} USING "
                          "fts5(body, content='', tokenize='porter unicode61')"))

    def drop(self, conn: Connection, collection_id: str) -> None:
        conn.execute(text(f"DROP TABLE IF EXISTS {_fts_name(collection_id)}"))

    def add(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None:
        if rows:
            conn.execute(text(f"INSERT INTO {_fts_name(collection_id)}(rowid, body) VALUES (:id, :body)"),
                         [{"id": i, "body": b} for i, b in rows])

    def remove(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None:
        name = _fts_name(collection_id)
        if rows:  # a contentless table forgets a row given the text it was indexed with
            conn.execute(text(f"INSERT INTO {name}({name}, rowid, body) VALUES ('delete', :id, :body)"),
                         [{"id": i, "body": b} for i, b in rows])

    def search(self, conn: Connection, collection_id: str, query: str, limit: int,
               files: list[str] | None) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        name = _fts_name(collection_id)
        if files is not None and not files:
            return []
        where, params = "", {"q": match, "k": limit}
        if files is not None:  # one JSON parameter: a list of ids could pass SQLite's limit on bound parameters
            where = (" AND rowid IN (SELECT id FROM collection_chunks"
                     " WHERE file_row IN (SELECT value FROM json_each(:f)))")
            params["f"] = json.dumps(files)
        sql = f"SELECT rowid, rank FROM {name} WHERE {name} MATCH :q{where} ORDER BY rank LIMIT :k"
        return [(int(r[0]), -float(r[1])) for r in conn.execute(text(sql), params)]


class PostgresLexical:
    """A tsvector column with a GIN index on the chunk table, ranked by ts_rank_cd over an OR
    of the query's words (websearch syntax would AND them)."""

    def __init__(self) -> None:
        self._ready = False

    def _ensure(self, conn: Connection) -> None:
        if self._ready:
            return
        conn.execute(text("ALTER TABLE collection_chunks ADD COLUMN IF NOT EXISTS tsv tsvector"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS collection_chunks_tsv ON collection_chunks USING gin(tsv)"))
        self._ready = True

    def create(self, conn: Connection, collection_id: str) -> None:
        self._ensure(conn)

    def drop(self, conn: Connection, collection_id: str) -> None:
        pass  # the rows go with the chunks

    def add(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None:
        self._ensure(conn)
        if rows:
            conn.execute(text("UPDATE collection_chunks SET tsv = to_tsvector('english', :body) WHERE id = :id"),
                         [{"id": i, "body": b} for i, b in rows])

    def remove(self, conn: Connection, collection_id: str, rows: list[tuple[int, str]]) -> None:
        pass

    def search(self, conn: Connection, collection_id: str, query: str, limit: int,
               files: list[str] | None) -> list[tuple[int, float]]:
        self._ensure(conn)
        terms = [t for t in query_terms(query) if t.isalnum()]
        if not terms or files == []:
            return []
        params: dict[str, Any] = {"q": " | ".join(terms), "c": collection_id, "k": limit}
        where = ""
        if files is not None:
            where = " AND file_row = ANY(:files)"
            params["files"] = files
        sql = ("SELECT id, ts_rank_cd(tsv, q, 1) FROM collection_chunks, to_tsquery('english', :q) q "
               f"WHERE collection_id = :c AND tsv @@ q{where} ORDER BY 2 DESC LIMIT :k")
        return [(int(r[0]), float(r[1])) for r in conn.execute(text(sql), params)]


def lexical_for(engine: Engine) -> LexicalIndex:
    return PostgresLexical() if engine.dialect.name == "postgresql" else SQLiteLexical()
