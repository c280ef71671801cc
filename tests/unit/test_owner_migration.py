"""A database from before owners: the owner columns are added at start, files and runs made
then become the anonymous owner's, and a batch's files become its creator's."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect

from litegate.errors import NotFound
from litegate.jobs.batches import BatchStore, batches_table
from litegate.jobs.files import FileStore
from litegate.pipelines.store import RunStore
from litegate.tenancy import OPERATOR, Tenant

pytestmark = pytest.mark.unit

OLD_FILES = """create table files (id varchar(80) primary key, api varchar(16) not null, purpose varchar(32) not null,
  filename varchar(512) not null, mime_type varchar(128), bytes integer not null, sha256 varchar(64),
  created_at float not null, expires_at float)"""
OLD_RUNS = """create table pipeline_runs (id varchar(64) primary key, pipeline varchar(64) not null,
  idempotency_key varchar(200) not null, status varchar(16) not null, input_ref varchar(1000), input text not null,
  api_key varchar(64), failed_step varchar(64), review_step varchar(64), error text, cost_usd float,
  latency_ms float, escalated boolean, tiers varchar(200), owner varchar(128), attempts integer,
  created_at float not null, started_at float, finished_at float,
  constraint uq_pipeline_run_key unique (pipeline, idempotency_key))"""


def test_an_old_database_gains_owners(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    now = time.time()
    with sqlite3.connect(db) as conn:
        conn.execute(OLD_FILES)
        conn.execute(OLD_RUNS)
        for fid in ("file-in", "file-loose"):
            conn.execute("insert into files values (?, 'openai', 'batch', 'x.jsonl', null, 1, null, ?, null)",
                         (fid, now))
        conn.execute("insert into pipeline_runs (id, pipeline, idempotency_key, status, input, created_at) "
                     "values ('prun_old', 'p', 'k', 'succeeded', '{}', ?)", (now,))
    engine = create_engine(f"sqlite:///{db}")
    batches_table.metadata.create_all(engine, tables=[batches_table])  # batches always knew their creator
    with engine.begin() as conn:
        conn.execute(insert(batches_table).values(id="batch_old", api="openai", endpoint="/v1/embeddings",
                                                  input_file_id="file-in", status="completed", api_key="fp-team-a",
                                                  created_at=now))
    files = FileStore(engine, tmp_path)  # the first start after the upgrade
    assert files.owner_added
    BatchStore(engine, files)
    assert not FileStore(engine, tmp_path).owner_added  # the next start: nothing more to add
    assert files.get("file-in", Tenant("fp-team-a")).api_key == "fp-team-a"
    with pytest.raises(NotFound):
        files.get("file-in", Tenant("fp-team-b"))
    assert files.get("file-loose", Tenant(None)).api_key is None  # anonymous: a keyless server's
    assert {f.id for f in files.list(tenant=OPERATOR)} == {"file-in", "file-loose"}
    runs = RunStore(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("pipeline_runs")}
    assert "request_sha256" in columns
    assert runs.get("prun_old", tenant=Tenant(None))["id"] == "prun_old"
    run, created = runs.create("p", "k2", None, {"text": "t"}, api_key="fp-team-a", request_sha256="abc")
    assert created and runs.by_key("p", "k2", "fp-team-a")["id"] == run["id"]
    with pytest.raises(NotFound):
        runs.by_key("p", "k2", "fp-team-b")
