"""Scale-out on a real local Ray (started by the test on 127.0.0.1): the batch executor's
answers equal the local executor's and it resumes from OUT; the app as a Ray Serve
deployment answers through one endpoint from two replicas."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import free_port, litegate_cmd

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install -e '.[ray]')")


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LITEGATE_HOME=str(home))
    return subprocess.run(litegate_cmd(*args), env=env, input=stdin, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ray")
    train = _cli(home, "dataset", "clinc150", "--split", "train", "--domain", "banking", "--per-label", "8")
    assert train.returncode == 0, train.stderr
    (work / "train.jsonl").write_text(train.stdout)
    r = _cli(home, "train", "raybank", "--data", str(work / "train.jsonl"))
    assert r.returncode == 0, r.stderr
    test = _cli(home, "dataset", "clinc150", "--split", "test", "--domain", "banking")
    (work / "in.jsonl").write_text("".join(test.stdout.splitlines(keepends=True)[:40]))
    return work


def _labels(path: Path) -> list[tuple[str, str]]:
    return [(o["custom_id"], o["response"]["body"]["label"]) for o in map(json.loads, path.read_text().splitlines())]


def test_ray_executor_matches_local_and_resumes(home: Path, trained: Path) -> None:
    local, on_ray = trained / "local.jsonl", trained / "ray.jsonl"
    r = _cli(home, "batch", "run", str(trained / "in.jsonl"), "-o", str(local), "--task", "classify",
             "--classifier", "raybank")
    assert r.returncode == 0, r.stderr
    expected = _labels(local)
    assert len(expected) == 40
    # a run cut short after 10 lines: the Ray run answers only the other 30
    on_ray.write_text("".join(local.read_text().splitlines(keepends=True)[:10]))
    r = _cli(home, "batch", "run", str(trained / "in.jsonl"), "-o", str(on_ray), "--task", "classify",
             "--classifier", "raybank", "--executor", "ray", "--workers", "2", "--block", "8")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped"] == 10 and summary["answered"] == 30, summary
    assert _labels(on_ray) == expected  # the same answers, gathered in input order


def test_ray_serve_replicas_behind_one_endpoint(home: Path, trained: Path) -> None:
    from ray import serve

    from litegate.deploy.ray_serve import deployment

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.startswith("LITEGATE_")} | {"LITEGATE_HOME": str(home)}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment(2, "lite", cpus_per_replica=0.5), name="litegate", route_prefix="/")
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(base + "/v1/tasks/classify", json={"text": "what is my account balance",
                                                          "classifier": "raybank"}, timeout=120)
        assert r.status_code == 200 and r.json()["label"] == "balance", r.text
        assert httpx.get(base + "/healthz", timeout=30).json()["status"] == "ok"
        bad = httpx.post(base + "/v1/tasks/classify", json={"text": "x", "classifier": "nope"}, timeout=30)
        assert bad.status_code == 404  # the app's own errors pass through the proxy
        handle = serve.get_deployment_handle("litegate", app_name="litegate")
        pids = {handle.pid.remote().result() for _ in range(20)}
        assert len(pids) == 2
    finally:
        serve.shutdown()
        ray.shutdown()
