"""The compute budget (CPUs from affinity and cgroup quota, threads per engine) and the document
pool's admission (a full queue is a 503 with Retry-After; its depth in /healthz and /metrics)."""

from __future__ import annotations

import base64
import io
import os
import threading
from pathlib import Path

import pytest
from fakes import runtime
from fastapi.testclient import TestClient

from litegate.compute import ComputeBudget, available_cpus, cgroup_quota
from litegate.config import Settings
from litegate.documents import Part
from litegate.documents.attachments import Attachments
from litegate.documents.pool import DocumentPool
from litegate.errors import Overloaded

pytestmark = pytest.mark.unit


def _tree(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return root, proc


def test_cgroup_v2_quota_is_the_tightest_limit_up_the_tree(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, "0::/pods/app\n", {"pods/app/cpu.max": "max 100000\n",
                                                      "pods/cpu.max": "150000 100000\n"})
    assert cgroup_quota(root, proc) == 1.5
    root, proc = _tree(tmp_path / "b", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_quota(root, proc) is None  # unlimited


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, "4:cpu,cpuacct:/docker/abc\n0::/\n",
                       {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
                        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert cgroup_quota(root, proc) == 0.5
    root, proc = _tree(tmp_path / "b", "4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                                             "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_quota(root, proc) is None


def test_the_default_budget_is_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    assert available_cpus() <= len(os.sched_getaffinity(0))
    monkeypatch.delenv("LITEGATE_THREADS", raising=False)
    assert Settings().threads == available_cpus()
    monkeypatch.setenv("LITEGATE_THREADS", "6")
    budget = ComputeBudget.from_settings(Settings())
    assert (budget.cpus, budget.llama_threads, budget.ocr_threads, budget.speech_threads,
            budget.blas_threads) == (6, 5, 1, 1, 3)  # decode and documents share the budget
    assert ComputeBudget.split(1).ocr_threads == ComputeBudget.split(1).llama_threads == 1  # never zero
    assert ComputeBudget.split(2).llama_threads == 1
    monkeypatch.setenv("LITEGATE_LLAMA_THREADS", "1")
    monkeypatch.setenv("LITEGATE_POLL", "50")
    budget = ComputeBudget.from_settings(Settings())
    assert (budget.llama_threads, budget.llama_poll) == (1, 50)


def test_the_engines_get_their_share(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info

    from litegate.documents import ocr, speech

    rt = runtime(tmp_path)
    try:
        assert rt.compute.cpus == rt.settings.threads
        assert ocr.threads() == rt.compute.ocr_threads and speech.SpeechRecognizer().\
            _threads == rt.compute.speech_threads
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and set(blas) == {rt.compute.blas_threads}
    finally:
        rt.close()


def test_a_full_document_queue_refuses_at_once_with_retry_after() -> None:
    pool = DocumentPool(workers=1, queue=1, nice=5)
    release = threading.Event()
    started = threading.Event()

    def slow() -> int:
        started.set()
        release.wait(10)
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(pool.run(slow))) for _ in range(2)]
    threads[0].start()
    started.wait(5)
    threads[1].start()
    for _ in range(200):
        if pool.waiting == 1:
            break
        threading.Event().wait(0.01)
    assert pool.stats() == {"workers": 1, "running": 1, "waiting": 1, "queue_limit": 1, "refused": 0, "done": 0}
    with pytest.raises(Overloaded) as refused:
        pool.run(slow)
    assert refused.value.retry_after >= 1 and "LITEGATE_DOCUMENT_QUEUE" in refused.value.message
    release.set()
    for t in threads:
        t.join(10)
    assert results == [min(19, base + 5)] * 2  # the workers run at a lower priority
    assert pool.stats()["refused"] == 1 and pool.stats()["done"] == 2 and pool.waiting == 0
    pool.close()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_files_go_through_the_pool_text_does_not(tmp_path: Path) -> None:
    pool = DocumentPool(workers=1, queue=0)
    release, started = threading.Event(), threading.Event()
    holder = threading.Thread(target=pool.run, args=(lambda: started.set() or release.wait(10),))
    holder.start()
    started.wait(5)
    try:
        att = Attachments(pool=pool)
        with pytest.raises(Overloaded):  # refused before it is decoded
            att.read([Part("image/png", _png(), "files.0")])
        assert att.read([Part("text/plain", b"plain text", "files.0")]).documents[0].text == "plain text"
    finally:
        release.set()
        holder.join(10)
        pool.close()


def test_a_full_document_queue_is_a_503_and_shows_in_healthz_and_metrics(tmp_path: Path) -> None:
    from litegate.server import create_app

    rt = runtime(tmp_path)
    release, started = threading.Event(), threading.Event()
    rt.documents.queue = 0
    holder = threading.Thread(target=rt.documents.run, args=(lambda: started.set() or release.wait(10),))
    holder.start()
    started.wait(5)
    try:
        with TestClient(create_app(rt, close_runtime=False)) as client:
            image = "data:image/png;base64," + base64.b64encode(_png()).decode()
            r = client.post("/v1/chat/completions", json={"model": "lite", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "read this"}, {"type": "image_url", "image_url": {"url": image}}]}]})
            assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
            assert "document" in r.json()["error"]["message"]
            health = client.get("/healthz").json()["documents"]
            assert (health["running"], health["waiting"], health["refused"]) == (1, 0, 1)
            metrics = client.get("/metrics").text
            assert "litegate_documents_running 1.0" in metrics and "litegate_documents_refused 1.0" in metrics
    finally:
        release.set()
        holder.join(10)
        rt.close()


def test_advice_names_what_to_change() -> None:
    from litegate.compute import advice

    budget = ComputeBudget.split(8, poll=50).as_dict()
    report = {"budget": budget, "available_cpus": 2, "cpus_online": 2, "load_average": [9.0, 8.0, 7.0],
              "thread_env": {"OMP_NUM_THREADS": "16"}, "decode": {"ratio": 0.2}, "encoder": {"ratio": 0.9}}
    tips = "\n".join(advice(report))
    for words in ("LITEGATE_THREADS=8 is more than the 2 CPUs", "lower LITEGATE_LLAMA_THREADS", "LITEGATE_POLL=50",
                  "20% of its quiet speed", "OMP_NUM_THREADS=16"):
        assert words in tips
    assert "encoder" not in tips
    quiet = {"budget": ComputeBudget.split(2).as_dict(), "available_cpus": 2, "cpus_online": 2,
             "load_average": [0.5, 0.5, 0.5], "thread_env": {}, "decode": {"ratio": 0.95}}
    assert advice(quiet) == ["nothing to change: the budget fits the CPUs this process may use"]


def test_slow_decode_on_an_idle_machine_is_not_blamed_on_neighbours() -> None:
    from litegate.compute import advice

    idle = {"budget": ComputeBudget.split(2).as_dict(), "available_cpus": 2, "cpus_online": 2,
            "load_average": [0.5, 0.5, 0.5], "thread_env": {}, "decode": {"ratio": 0.3}}
    tips = "\n".join(advice(idle))
    assert "not oversubscribed" in tips and "other work holds the CPUs" not in tips


def test_the_decode_probe_expects_more_from_more_threads_and_less_from_bigger_models() -> None:
    from litegate.cli.doctor import expected_decode_tok_s
    from litegate.ledger.pricing import QUIET

    one, two = expected_decode_tok_s(1), expected_decode_tok_s(2)
    assert 10 < one < two < 2 * one  # a second llama.cpp thread helps, less than twofold
    assert expected_decode_tok_s(1, 3 * QUIET.weights_bytes) < one / 2  # a model three times the size
