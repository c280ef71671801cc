"""Batch store, line parsing, the runner (with a fake dispatch) and the coalescer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from litegate.deploy.batch_files import answered_ids, rewrite_in_order, task_lines
from litegate.errors import Conflict, InvalidRequest, NotFound
from litegate.jobs.batches import BatchRunner, BatchStore, Retry, parse_gemini_lines, parse_openai_lines, prefix_order
from litegate.jobs.files import FileStore
from litegate.nano.coalesce import Coalescer

pytestmark = pytest.mark.unit


@pytest.fixture()
def store(tmp_path: Path) -> BatchStore:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return BatchStore(engine, FileStore(engine, tmp_path))


def _jsonl(rows: list) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def _req(cid: str, text: str = "hi", url: str = "/v1/embeddings") -> dict:
    return {"custom_id": cid, "method": "POST", "url": url, "body": {"input": text}}


def test_parse_openai_lines_keeps_going_past_bad_lines() -> None:
    lines = parse_openai_lines(_jsonl([_req("a"), "{not json", _req("b", url="/v1/chat/completions"),
                                       {"custom_id": "c", "url": "/v1/embeddings", "body": "x"},
                                       {"url": "/v1/embeddings", "body": {}}, _req("d", "x" * 200)]),
                               "/v1/embeddings", 150)
    assert [ln.error is None for ln in lines] == [True, False, False, False, False, False]
    assert [ln.error["code"] for ln in lines[1:]] == ["invalid_json", "invalid_url", "invalid_body",
                                                    "missing_custom_id", "request_too_large"]
    assert lines[5].custom_id == "d"  # an oversized line still names itself in the error file


def test_parse_openai_lines_refuses_duplicates_and_empty_files() -> None:
    with pytest.raises(InvalidRequest, match="custom_id 'a' appears on lines 1 and 3"):
        parse_openai_lines(_jsonl([_req("a"), _req("b"), _req("a")]), "/v1/embeddings", 1 << 20)
    with pytest.raises(InvalidRequest, match="no request lines"):
        parse_openai_lines(b"\n\n", "/v1/embeddings", 1 << 20)
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_openai_lines(b"\xff\xfe", "/v1/embeddings", 1 << 20)
    # any endpoint a batch can call, per line, when the batch has none (litegate batch run)
    mixed = parse_openai_lines(_jsonl([_req("a"), _req("b", url="/v1/tasks/classify"),
                                       _req("c", url="/v1/nope")]), None, 1 << 20, ["classify"])
    assert [ln.error is None for ln in mixed] == [True, True, False]


def test_gemini_lines_and_prefix_order() -> None:
    lines = parse_gemini_lines(_jsonl([{"key": "k1", "request": {"contents": [{"parts": [{"text": "b"}]}]}},
                                       {"key": "k2"}]), 1 << 20)
    assert lines[0].custom_id == "k1" and lines[0].error is None and lines[1].error is not None
    a = parse_openai_lines(_jsonl([
        {"custom_id": str(i), "url": "/v1/chat/completions", "body": {"messages": [
            {"role": "system", "content": f"prompt {i % 2}"}, {"role": "user", "content": str(i)}]}}
        for i in range(6)]), "/v1/chat/completions", 1 << 20)
    ordered = [ln.custom_id for ln in prefix_order(a)]
    assert ordered == ["0", "2", "4", "1", "3", "5"]  # lines sharing a system prompt run back to back


def test_task_lines() -> None:
    lines = task_lines(_jsonl([{"text": "a", "label": "x"}, {"id": "n2", "text": "b"}, {"nope": 1}]),
                       "classify", {"classifier": "c"}, 1 << 20)
    assert lines[0].custom_id == "line-1" and lines[0].body == {"text": "a", "classifier": "c"}
    assert lines[1].custom_id == "n2" and lines[2].error is not None
    with pytest.raises(InvalidRequest, match="appears twice"):
        task_lines(_jsonl([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}]), "classify", {}, 1 << 20)


def _job(store: BatchStore, rows: list) -> str:
    f = store.files.put(_jsonl(rows), api="openai", purpose="batch", filename="in.jsonl")
    return store.create(api="openai", endpoint="/v1/embeddings", input_file_id=f.id, total=len(rows)).id


def test_runner_answers_every_line_once_and_resumes(store: BatchStore) -> None:
    calls: list[str] = []
    retried = set()

    async def dispatch(path: str, body: dict, job) -> tuple[int, dict]:
        calls.append(body["input"])
        if body["input"] == "retry-me" and "retry-me" not in retried:
            retried.add("retry-me")
            raise Retry(0.01)
        if body["input"] == "bad":
            return 400, {"error": {"message": "bad input"}}
        return 200, {"id": "call-" + body["input"], "data": [body["input"]]}

    rows = [_req(f"c{i}", f"t{i}") for i in range(10)] + [_req("r", "retry-me"), _req("x", "bad"), "{oops"]
    job_id = _job(store, rows)
    # a previous process answered two lines before it died
    store.record(job_id, 0, "c0", True, 200, {"custom_id": "c0", "response": {"status_code": 200}})
    store.record(job_id, 1, "c1", True, 200, {"custom_id": "c1", "response": {"status_code": 200}})
    assert not store.record(job_id, 1, "c1", True, 200, {})  # a line's result is written once
    runner = BatchRunner(store, dispatch, concurrency=4, cost_of=lambda ids: 0.5 * len(ids))
    job = asyncio.run(runner.run(job_id))
    assert job.status == "completed" and job.total == 13
    assert (job.completed, job.failed) == (11, 2)
    assert sorted(calls) == sorted([f"t{i}" for i in range(2, 10)] + ["retry-me", "retry-me", "bad"])
    out = [json.loads(s) for s in store.files.content(job.output_file_id).decode().splitlines()]
    errs = [json.loads(s) for s in store.files.content(job.error_file_id).decode().splitlines()]
    assert sorted(o["custom_id"] for o in out) == sorted([f"c{i}" for i in range(10)] + ["r"])
    assert {e["custom_id"] for e in errs} == {"x", None}
    assert job.cost_usd == 0.5 * 9  # the 8 lines answered here + the retried one carry call ids
    with pytest.raises(Conflict):
        store.cancel(job_id)
    # running it again changes nothing
    asyncio.run(runner.run(job_id))
    assert len(store.results(job_id)) == 13


def test_cancel_stops_a_running_job(store: BatchStore) -> None:
    started = threading.Event()

    async def slow(path: str, body: dict, job) -> tuple[int, dict]:
        started.set()
        await asyncio.sleep(30)
        return 200, {}

    job_id = _job(store, [_req(f"c{i}") for i in range(20)])
    runner = BatchRunner(store, slow, concurrency=2)

    async def go() -> float:
        task = asyncio.create_task(runner.run(job_id))
        while not started.is_set():
            await asyncio.sleep(0.01)
        store.cancel(job_id)
        t = time.monotonic()
        await task
        return time.monotonic() - t

    took = asyncio.run(go())
    job = store.get(job_id)
    assert job.status == "cancelled" and job.completed == 0 and took < 2.0


def test_claims_and_unknown_ids(store: BatchStore) -> None:
    job_id = _job(store, [_req("a")])
    assert store.unfinished() == [job_id]
    assert store.claim(job_id) and store.claim(job_id)  # this process may claim its own job again
    store.set(job_id, owner="otherhost:1:1", lease_until=time.time() + 60)
    assert not store.claim(job_id)  # another machine's live lease is respected
    store.set(job_id, lease_until=time.time() - 1)
    assert store.claim(job_id)  # an expired one is taken over
    with pytest.raises(NotFound):
        store.get("batch_nope")
    with pytest.raises(NotFound):
        store.files.get("file-nope")
    with pytest.raises(NotFound):
        store.files.path("../etc/passwd")


def test_out_file_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"custom_id": "b"}) + "\n" + json.dumps({"custom_id": "a"}) + "\n{cut sho")
    assert answered_ids(out) == {"a", "b"}
    lines = task_lines(_jsonl([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]), "classify", {}, 1 << 20)
    rewrite_in_order(out, lines)
    assert [json.loads(s)["custom_id"] for s in out.read_text().splitlines()] == ["a", "b"]


def test_coalescer_combines_concurrent_calls() -> None:
    seen: list[int] = []
    gate = threading.Event()

    def fn(key: str, items: list[int]) -> list[int]:
        seen.append(len(items))
        gate.wait(2)
        return [x * 10 for x in items]

    c: Coalescer = Coalescer(fn, max_items=100)
    results: dict[int, list[int]] = {}

    def call(i: int) -> None:
        results[i] = c("k", [i, i + 100])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    threads[0].start()
    time.sleep(0.1)  # the first call runs alone; the others arrive while it runs
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)
    assert results == {i: [i * 10, (i + 100) * 10] for i in range(8)}
    assert seen[0] == 2 and sum(seen) == 16 and len(seen) < 8

    def broken(key: str, items: list[int]) -> list[int]:
        raise ValueError("no")

    with pytest.raises(ValueError):
        Coalescer(broken)("k", [1])


def test_batch_routes_in_process(tmp_path: Path) -> None:
    """The OpenAI batch routes over a fake runtime: a job runs to the end in the app's own
    loop; too large an upload is a 413; a full disk fails the job, keeping its answered lines."""
    from fakes import runtime
    from fastapi.testclient import TestClient

    from litegate.server import create_app

    rt = runtime(tmp_path, max_file_mb=0.01)
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            rows = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings", "body": {"input": f"t{i}"}}
                    for i in range(5)]
            up = client.post("/v1/files", files={"file": ("in.jsonl", _jsonl(rows))}, data={"purpose": "batch"})
            assert up.status_code == 200, up.text
            created = client.post("/v1/batches", json={"input_file_id": up.json()["id"], "endpoint": "/v1/embeddings",
                                                       "completion_window": "24h"})
            assert created.status_code == 200, created.text
            deadline = time.monotonic() + 20
            while (job := client.get(f"/v1/batches/{created.json()['id']}").json())["status"] != "completed":
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
            assert job["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
            out = client.get(f"/v1/files/{job['output_file_id']}/content").text.splitlines()
            assert len(out) == 5 and client.get("/v1/files").json()["data"]
            assert client.post("/v1/files", files={"file": ("big.jsonl", b"x" * 20_000)},
                               data={"purpose": "batch"}).status_code == 413
            assert client.post("/v1/batches", json={"input_file_id": up.json()["id"], "endpoint": "/v1/moderations"}
                               ).status_code == 400
            assert client.post("/v1/files", json={"purpose": "batch"}).status_code == 400
            # the disk fills up while the job's output is written
            job2 = client.post("/v1/batches", json={"input_file_id": up.json()["id"], "endpoint": "/v1/embeddings",
                                                    "completion_window": "24h"}).json()
            import litegate.jobs.files as files_module

            def no_space(fd: int) -> None:
                raise OSError(28, "No space left on device")

            real_fsync = files_module.os.fsync
            files_module.os.fsync = no_space
            try:
                deadline = time.monotonic() + 20
                while (job2 := client.get(f"/v1/batches/{job2['id']}").json())["status"] not in ("failed", "completed"):
                    assert time.monotonic() < deadline, job2
                    time.sleep(0.05)
                assert job2["status"] == "failed" and "No space left" in job2["errors"]["data"][0]["message"]
                assert job2["request_counts"]["completed"] == 5  # the answered lines are kept
                full = client.post("/v1/files", files={"file": ("in.jsonl", b"{}\n")}, data={"purpose": "batch"})
                assert full.status_code == 507 and "No space left" in full.json()["error"]["message"]
            finally:
                files_module.os.fsync = real_fsync
    finally:
        rt.close()
