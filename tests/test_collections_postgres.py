"""Collections on a real PostgreSQL server (tsvector + GIN for the lexical side, bytea
vectors searched in NumPy), with the real encoder: the same behaviour as on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from litegate.collections import Collections
from litegate.errors import InvalidRequest
from litegate.nano.encoder import MiniLMEncoder
from test_ledger_postgres import postgres_url  # noqa: F401 - the fixture

HANDBOOK = """# Leave

Employees get 25 days of paid leave per year.

# Equipment

Every new employee receives a laptop on their first day. Lost laptops are replaced once.
"""


def test_collections_on_postgres(postgres_url: str) -> None:  # noqa: F811
    encoder = MiniLMEncoder()
    coll = Collections(create_engine(postgres_url), lambda: encoder)
    assert coll.lexical.__class__.__name__ == "PostgresLexical"
    coll.create("key-a", "handbook")
    with pytest.raises(InvalidRequest):
        coll.search("key-a", "handbook", "leave")  # empty
    coll.add_text("key-a", "handbook", HANDBOOK, source="handbook.md", attributes={"dept": "hr"})
    coll.add_text("key-a", "handbook", "The canteen opens at noon.", source="canteen", attributes={"dept": "ops"})
    hits = coll.search("key-a", "handbook", "replacing a lost laptop", top_k=2)
    assert "laptop" in hits[0].text and hits[0].section == "Equipment" and hits[0].line_start == 7
    assert set(hits[0].scores) == {"lexical", "dense"}
    lexical = coll.search("key-a", "handbook", "paid leave days", mode="lexical")
    assert "25 days" in lexical[0].text
    assert {h.filename for h in coll.search("key-a", "handbook", "opens", filters={"dept": "ops"})} == {"canteen"}
    changed = coll.add_text("key-a", "handbook", "# Leave\n\nEmployees get 30 days of leave.", source="handbook.md")
    assert changed["replaced"]
    assert coll.search("key-a", "handbook", "laptop", mode="lexical") == []
    assert "30 days" in coll.search("key-a", "handbook", "days of leave", top_k=1)[0].text
    assert coll.list("key-b") == []
    coll.delete("key-a", "handbook")
    assert coll.list("key-a") == []
