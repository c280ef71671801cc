"""Bringing an existing database up to the tables this version declares: columns a newer
version added are added (nullable, so existing rows keep working), on SQLite and PostgreSQL.

``metadata.create_all`` makes missing tables but never changes one that exists; a database
written by an older litegate goes through ``add_missing_columns`` once at start.
"""

from __future__ import annotations

import logging

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("litegate.migrations")


def add_missing_columns(engine: Engine, table: Table) -> list[str]:
    """Add the columns of ``table`` its database table lacks; returns their names. Safe when
    two processes start at once: a column the other one added first is not an error."""
    inspector = inspect(engine)
    if not inspector.has_table(table.name):
        return []
    have = {c["name"] for c in inspector.get_columns(table.name)}
    added = []
    for column in table.columns:
        if column.name in have:
            continue
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
        except DBAPIError:
            if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                raise
            continue  # another process added it
        log.info("added column %s.%s (%s) to the existing database", table.name, column.name, kind)
        added.append(column.name)
    for index in table.indexes:
        index.create(engine, checkfirst=True)
    return added


def widen_column(engine: Engine, table: Table, column: str, length: int) -> None:
    """PostgreSQL enforces VARCHAR lengths (SQLite does not): a column made longer in a newer
    version is altered there."""
    if engine.dialect.name != "postgresql":
        return
    for info in inspect(engine).get_columns(table.name):
        current = getattr(info["type"], "length", None)
        if info["name"] == column and current is not None and current < length:
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE "{table.name}" ALTER COLUMN "{column}" TYPE VARCHAR({length})'))
