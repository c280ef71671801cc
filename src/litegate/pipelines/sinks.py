"""Where ``write`` steps put a run's values: a SQL table (SQLAlchemy: the ledger's database by
default, any URL such as ``postgresql+psycopg://...``) or a JSONL file.

A table is created from the step's columns on first use, with ``run_id`` as its primary key:
a run's row is inserted once, whatever retries or resumes happen (a second insert is
recognised and reported as ``written: false``). A table that exists with other columns is
refused with the difference named; nothing is silently dropped or cast away.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, MetaData, String, Table, Text, create_engine, insert, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from litegate.errors import InvalidRequest
from litegate.pipelines.expr import as_number

SQL_TYPES = {"text": Text, "float": Float, "integer": None, "boolean": Boolean, "json": JSON}
# how a reflected column's type is recognised (type names differ between SQLite and PostgreSQL)
FAMILIES = {"text": ("TEXT", "VARCHAR", "CHAR", "STRING", "CLOB"), "float": ("FLOAT", "REAL", "DOUBLE", "NUMERIC"),
            "integer": ("INTEGER", "BIGINT", "SMALLINT", "INT"), "boolean": ("BOOLEAN", "BOOL"),
            "json": ("JSON", "JSONB", "TEXT")}


def convert(value: Any, kind: str, column: str, where: str) -> Any:
    """A value as its column's type; one that cannot be is an error, never a silent null."""
    if value is None:
        return None
    if kind == "text":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if kind in ("float", "integer"):
        number = as_number(value)
        if number is None:
            raise InvalidRequest(f"{where}: columns.{column}: {str(value)[:80]!r} is not a number ({kind} column)")
        if kind == "integer":
            if number != int(number):
                raise InvalidRequest(f"{where}: columns.{column}: {value!r} is not a whole number")
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise InvalidRequest(f"{where}: columns.{column}: {str(value)[:80]!r} is not true or false")
    return value  # json


class Sinks:
    def __init__(self, default_engine: Engine):
        self.default_engine = default_engine
        self._engines: dict[str, Engine] = {}
        self._tables: dict[tuple[str, str], Table] = {}
        self._lock = threading.Lock()
        self._jsonl_lock = threading.Lock()

    def engine(self, url: str | None) -> Engine:
        if url is None:
            return self.default_engine
        with self._lock:
            if url not in self._engines:
                kwargs: dict[str, Any] = {}
                if url.startswith("sqlite"):
                    kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
                try:
                    self._engines[url] = create_engine(url, **kwargs)
                except (SQLAlchemyError, ImportError, ValueError) as e:
                    raise InvalidRequest(f"cannot open the database {_safe_url(url)}: {e}") from None
            return self._engines[url]

    def table(self, url: str | None, name: str, columns: list[Any], where: str) -> tuple[Engine, Table]:
        """The table, created from the columns if missing; its columns checked if present."""
        engine = self.engine(url)
        key = (str(engine.url), name)
        with self._lock:
            if key in self._tables:
                return engine, self._tables[key]
            md = MetaData()
            cols = [Column("run_id", String(64), primary_key=True), Column("pipeline", String(64)),
                    Column("input_ref", Text), Column("written_at", Float)]
            for c in columns:
                sql = SQL_TYPES[c.type]
                cols.append(Column(c.name, sql() if sql is not None else _integer()))
            table = Table(name, md, *cols)
            try:
                insp = inspect(engine)
                if insp.has_table(name):
                    check_columns(name, {c["name"]: str(c["type"]) for c in insp.get_columns(name)}, columns, where)
                else:
                    md.create_all(engine, checkfirst=True)
            except SQLAlchemyError as e:
                raise InvalidRequest(f"{where}: table: cannot create or read {name}: {_first_line(e)}") from None
            self._tables[key] = table
            return engine, table

    def write_table(self, url: str | None, name: str, columns: list[Any], run: dict[str, Any],
                    values: dict[str, Any], where: str) -> bool:
        """Insert the run's row; False when the run's row was already there (a resumed run)."""
        row = {c.name: convert(values.get(c.name), c.type, c.name, where) for c in columns}
        engine, table = self.table(url, name, columns, where)
        try:
            with engine.begin() as conn:
                conn.execute(insert(table).values(run_id=run["id"], pipeline=run["pipeline"],
                                                  input_ref=run.get("input_ref"), written_at=time.time(), **row))
        except IntegrityError:
            with engine.connect() as conn:
                exists = conn.execute(table.select().where(table.c.run_id == run["id"])).first() is not None
            if exists:
                return False
            raise InvalidRequest(f"{where}: table: the row breaks a constraint of {name}") from None
        except SQLAlchemyError as e:
            # the table may have changed under a running server: say how, rather than what the driver says
            with self._lock:
                self._tables.pop((str(engine.url), name), None)
            insp = inspect(engine)
            if insp.has_table(name):
                check_columns(name, {c["name"]: str(c["type"]) for c in insp.get_columns(name)}, columns, where)
            raise InvalidRequest(f"{where}: table: cannot write to {name}: {_first_line(e)}") from None
        return True

    def write_jsonl(self, path: Path, columns: list[Any], run: dict[str, Any], values: dict[str, Any],
                    where: str) -> bool:
        """Append the run's line once: a line with this run_id already in the file is kept."""
        row = {c.name: convert(values.get(c.name), c.type, c.name, where) for c in columns}
        line = json.dumps({"run_id": run["id"], "pipeline": run["pipeline"], "input_ref": run.get("input_ref"),
                           "written_at": time.time(), **row}, ensure_ascii=False, default=str)
        with self._jsonl_lock:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    needle = json.dumps(run["id"])
                    with open(path, encoding="utf-8", errors="replace") as f:
                        for existing in f:
                            if needle in existing and _run_id(existing) == run["id"]:
                                return False
                with open(path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()
            except OSError as e:
                raise InvalidRequest(f"{where}: jsonl: cannot write {path}: {e.strerror or e}") from None
        return True


def check_columns(name: str, existing: dict[str, str], columns: list[Any], where: str) -> None:
    """The step's columns must all be in the table with a matching type."""
    needed = {"run_id": "text", **{c.name: c.type for c in columns}}
    missing = [c for c in needed if c not in existing]
    if missing:
        raise InvalidRequest(f"{where}: table: {name} exists without column(s) {', '.join(missing)} "
                             f"(it has {', '.join(existing)}); add them (ALTER TABLE) or write to a new table")
    for col, kind in needed.items():
        actual = existing[col].upper()
        if not any(actual.startswith(f) for f in FAMILIES[kind]):
            raise InvalidRequest(f"{where}: table: {name}.{col} is {existing[col]} but the step writes {kind}; "
                                 "change the column's type or the step's")


def _integer() -> Any:
    from sqlalchemy import BigInteger

    return BigInteger()


def _run_id(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("run_id") if isinstance(obj, dict) else None


def _first_line(e: Exception) -> str:
    return str(getattr(e, "orig", None) or e).splitlines()[0][:300]


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too broken to parse is not echoed either
        return "(the URL)"
