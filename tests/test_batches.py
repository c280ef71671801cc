"""Durable batch jobs through the real openai and google-genai SDKs against a real server:
upload, create, poll, download; bad lines in the error file; cancel; and a server killed
with SIGKILL mid-job that, restarted, finishes it with no line lost or answered twice."""

from __future__ import annotations

import io
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from conftest import TEST_CTX, start_server, stop_server


def _wait(get, done=("completed", "failed", "cancelled", "expired"), timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    job = get()
    while job.status not in done and time.monotonic() < deadline:
        time.sleep(0.3)
        job = get()
    return job


def _until_generating(server: str, running: Callable[[], bool], timeout: float = 120.0) -> None:
    """Wait until the batch just created runs and the engine decodes one of its lines, so that a
    cancel stops real work."""
    def generating() -> bool:
        return running() and httpx.get(server + "/healthz").json()["active_requests"] > 0

    deadline = time.monotonic() + timeout
    while not generating() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert generating()


def _jsonl(lines: list[dict | str]) -> bytes:
    return "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines).encode()


@pytest.fixture(scope="module")
def oai(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def test_openai_batch_chat_with_bad_lines(oai: openai.OpenAI) -> None:
    good = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "lite", "max_tokens": 4, "temperature": 0,
                      "messages": [{"role": "system", "content": "Answer with one word."},
                                   {"role": "user", "content": f"Say the number {i}."}]}} for i in range(4)]
    bad = ['{"custom_id": "broken", "method": "POST", "url": ',  # not JSON
           {"custom_id": "elsewhere", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}},
           {"custom_id": "invalid", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "lite", "messages": "not a list"}}]
    f = oai.files.create(file=("requests.jsonl", io.BytesIO(_jsonl(good + bad))), purpose="batch")
    assert f.purpose == "batch" and f.bytes > 0 and oai.files.retrieve(f.id).filename == "requests.jsonl"
    batch = oai.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
                               metadata={"feature": "nightly"})
    assert batch.status in ("validating", "in_progress")
    batch = _wait(lambda: oai.batches.retrieve(batch.id))
    assert batch.status == "completed", batch
    assert batch.request_counts.total == 7 and batch.request_counts.completed == 4
    assert batch.request_counts.failed == 3
    out = [json.loads(s) for s in oai.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in out) == ["q0", "q1", "q2", "q3"]
    assert all(o["response"]["status_code"] == 200 and o["response"]["body"]["choices"][0]["message"]["content"]
               for o in out)
    errs = {e.get("custom_id"): e for e in map(json.loads, oai.files.content(batch.error_file_id).text.splitlines())}
    assert errs["elsewhere"]["error"]["code"] == "invalid_url"
    assert errs["invalid"]["response"]["status_code"] == 400  # answered by the route itself, in its error shape
    assert "error" in errs["invalid"]["response"]["body"]
    assert any(e["error"] and e["error"]["code"] == "invalid_json" for e in errs.values())
    assert batch.id in [b.id for b in oai.batches.list(limit=100).data]
    # cancelling a finished batch is a conflict
    with pytest.raises(openai.ConflictError):
        oai.batches.cancel(batch.id)


def test_openai_batch_refusals(oai: openai.OpenAI, http: httpx.Client) -> None:
    dup = [{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}}] * 2
    f = oai.files.create(file=("dup.jsonl", io.BytesIO(_jsonl(dup))), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="custom_id 'a'"):
        oai.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        oai.batches.create(input_file_id=f.id, endpoint="/v1/tasks/nope", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        oai.batches.create(input_file_id="file-nope", endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_nope")
    r = http.post("/v1/files", files={"file": ("x.jsonl", b"{}")}, data={"purpose": "nonsense"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    oai.files.delete(f.id)
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(f.id)


def test_openai_batch_of_tasks_and_embeddings(oai: openai.OpenAI) -> None:
    lines = [{"custom_id": f"t{i}", "method": "POST", "url": "/v1/tasks/extract",
              "body": {"text": text, "fields": {"amount": "the amount of money"}, "tier": "lite"}}
             for i, text in enumerate(["refund 12 dollars", "I paid 30 euros twice"])]
    f = oai.files.create(file=("tasks.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
    created = oai.batches.create(input_file_id=f.id, endpoint="/v1/tasks/extract", completion_window="24h")
    batch = _wait(lambda: oai.batches.retrieve(created.id))
    assert batch.status == "completed" and batch.request_counts.completed == 2, batch
    out = {o["custom_id"]: o["response"]["body"] for o in
           map(json.loads, oai.files.content(batch.output_file_id).text.splitlines())}
    assert "12" in (out["t0"]["data"]["amount"] or "")
    emb = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
            "body": {"model": "all-minilm-l6-v2", "input": f"text number {i}"}} for i in range(20)]
    f = oai.files.create(file=("emb.jsonl", io.BytesIO(_jsonl(emb))), purpose="batch")
    created = oai.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    batch = _wait(lambda: oai.batches.retrieve(created.id))
    assert batch.request_counts.completed == 20
    vectors = [json.loads(s)["response"]["body"]["data"][0]["embedding"]
               for s in oai.files.content(batch.output_file_id).text.splitlines()]
    assert len(vectors) == 20 and all(len(v) == 384 for v in vectors)


def test_cancel_stops_within_seconds(oai: openai.OpenAI, server: str) -> None:
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "lite", "max_tokens": 200, "messages": [
                  {"role": "user", "content": f"Write a long story about the number {i}."}]}} for i in range(60)]
    f = oai.files.create(file=("long.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
    batch = oai.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    _until_generating(server, lambda: oai.batches.retrieve(batch.id).status == "in_progress")
    started = time.monotonic()
    cancelled = oai.batches.cancel(batch.id)
    batch = _wait(lambda: oai.batches.retrieve(batch.id), timeout=10)
    took = time.monotonic() - started
    assert cancelled.status in ("cancelling", "cancelled") and batch.status == "cancelled", batch
    assert took < 5, took
    assert batch.request_counts.completed < 60
    if batch.output_file_id:  # what finished before the cancel is kept
        assert len(oai.files.content(batch.output_file_id).text.splitlines()) == batch.request_counts.completed


def test_kill_9_mid_job_loses_and_repeats_nothing(tmp_path: Path, home: Path) -> None:
    """SIGKILL the server while a job runs; the restarted server finishes it: every line
    answered exactly once."""
    job_home = tmp_path / "home"
    job_home.mkdir()
    for sub in ("models",):  # share the joined model files, not the database
        (job_home / sub).symlink_to(home / sub)
    proc, base = start_server(job_home, "--ctx", str(TEST_CTX))
    n = 12  # killed after 3: most of the job is still to do when the server dies
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        lines = [{"custom_id": f"k{i}", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": "lite", "max_tokens": 12, "temperature": 0,
                           "messages": [{"role": "user", "content": f"Count from {i} to {i + 5}."}]}}
                 for i in range(n)]
        f = client.files.create(file=("k.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 120
        while client.batches.retrieve(batch.id).request_counts.completed < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        before = client.batches.retrieve(batch.id).request_counts.completed
        assert 0 < before < n, before
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc, base = start_server(job_home, "--ctx", str(TEST_CTX))
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        done = _wait(lambda: client.batches.retrieve(batch.id))
        assert done.status == "completed" and done.request_counts.completed == n, done
        out = [json.loads(s) for s in client.files.content(done.output_file_id).text.splitlines()]
        ids = [o["custom_id"] for o in out]
        assert len(ids) == n and sorted(ids) == sorted(f"k{i}" for i in range(n))  # 0 lost, 0 duplicated
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def gclient(server: str) -> genai.Client:
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=server))


def test_gemini_files_and_file_batch(gclient: genai.Client, tmp_path: Path) -> None:
    src = tmp_path / "requests.jsonl"
    src.write_bytes(_jsonl([{"key": f"g{i}", "request": {"contents": [{"role": "user", "parts": [
        {"text": f"Say {w}."}]}], "generationConfig": {"maxOutputTokens": 4}}} for i, w in enumerate(["hi", "yes"])]
        + ['{"key": "bad"']))
    uploaded = gclient.files.upload(file=str(src), config={"mime_type": "application/jsonl",
                                                          "display_name": "requests"})
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == src.stat().st_size
    assert gclient.files.get(name=uploaded.name).display_name == "requests"
    assert uploaded.name in [f.name for f in gclient.files.list()]
    job = gclient.batches.create(model="lite", src=uploaded.name, config={"display_name": "nightly"})
    deadline = time.monotonic() + 240
    while job.state.name not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = gclient.batches.get(name=job.name)
    assert job.state.name == "JOB_STATE_SUCCEEDED" and job.display_name == "nightly"
    results = [json.loads(s) for s in gclient.files.download(file=job.dest.file_name).decode().splitlines()]
    by_key = {r.get("key"): r for r in results}
    assert by_key["g0"]["response"]["candidates"][0]["content"]["parts"][0]["text"]
    assert "error" in [r for r in results if "key" not in r or r.get("key") not in ("g0", "g1")][0]
    assert job.name in [j.name for j in gclient.batches.list()]
    gclient.batches.delete(name=job.name)
    with pytest.raises(genai.errors.ClientError):
        gclient.batches.get(name=job.name)
    gclient.files.delete(name=uploaded.name)
    with pytest.raises(genai.errors.ClientError):
        gclient.files.get(name=uploaded.name)


def test_gemini_batch_cancel(gclient: genai.Client, server: str) -> None:
    src = [{"contents": [{"role": "user", "parts": [{"text": f"Write a long story about {i}."}]}],
            "config": {"max_output_tokens": 200}} for i in range(30)]
    job = gclient.batches.create(model="lite", src=src)
    _until_generating(server, lambda: gclient.batches.get(name=job.name).state.name.endswith("_RUNNING"))
    gclient.batches.cancel(name=job.name)
    deadline = time.monotonic() + 10
    while job.state.name != "JOB_STATE_CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.3)
        job = gclient.batches.get(name=job.name)
    assert job.state.name == "JOB_STATE_CANCELLED"
