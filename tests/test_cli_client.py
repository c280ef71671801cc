"""The CLI as a client of a running server: task commands and generate send their requests to
it (--url or LITEGATE_URL), say so on stderr, and the calls land in that server's ledger; an
address that does not answer is one line, not a model loading."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from conftest import free_port, litegate_cmd


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITEGATE_URL", "LITEGATE_LOCAL")}
    env.update(extra)
    return env


def test_task_commands_use_the_server_named_by_litegate_url(server: str, home: Path, tmp_path: Path) -> None:
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("Resetting your password from the login page\nOur office opening hours\n")
    started = time.perf_counter()
    r = subprocess.run(litegate_cmd("rank", "--query", "how do I reset my password", "--candidates", str(candidates),
                                    "--feature", "cli-client"),
                       env=_env(LITEGATE_URL=server, LITEGATE_HOME=str(tmp_path / "elsewhere")),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"using the server at {server}" in r.stderr
    out = json.loads(r.stdout)
    assert out["ranking"][0]["index"] == 0 and out["tier"] == "nano"
    assert not (tmp_path / "elsewhere" / "ledger.db").exists()  # nothing was loaded or ledgered here
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the server's ledger writer is asynchronous
        with sqlite3.connect(home / "ledger.db") as db:
            rows = db.execute("select task, feature from calls where id = ?", (out["id"],)).fetchall()
        if rows:
            break
        time.sleep(0.2)
    assert rows == [("rank", "cli-client")]
    assert time.perf_counter() - started < 120


def test_jsonl_through_the_server_and_its_errors_in_one_line(server: str, tmp_path: Path) -> None:
    examples = [{"text": t, "label": label} for t, label in [
        ("I was charged twice", "billing"), ("refund my last payment", "billing"),
        ("the app crashes on start", "bug"), ("error 500 when I save", "bug")]]
    assert httpx.post(f"{server}/v1/classifiers", json={"name": "cli-tickets", "examples": examples},
                      timeout=300).status_code == 201
    lines = "".join(json.dumps({"text": t, "label": "gold, ignored"}) + "\n"
                    for t in ("please refund the double charge", "it crashes when I save"))
    r = subprocess.run(litegate_cmd("classify", "--url", server, "--classifier", "cli-tickets"), input=lines,
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["label"] for x in r.stdout.splitlines()] == ["billing", "bug"]
    bad = subprocess.run(litegate_cmd("classify", "--url", server, "--classifier", "nosuch", "hello"), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: no classifier named 'nosuch'")
    down = f"http://127.0.0.1:{free_port()}"
    gone = subprocess.run(litegate_cmd("classify", "--url", down, "--labels", "a,b", "hello"), env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode == 1 and gone.stderr.strip() == (
        f"error: no litegate server answers at {down} (--url / LITEGATE_URL); start one with `litegate serve`, or "
        f"pass --local to load the models in this process")


def test_generate_streams_from_the_server(server: str) -> None:
    r = subprocess.run(litegate_cmd("generate", "--url", server, "--max-tokens", "5", "--temperature", "0",
                                    "Say hello"), env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"using the server at {server}" in r.stderr and r.stdout.strip()
    assert "generated tokens" in r.stderr
