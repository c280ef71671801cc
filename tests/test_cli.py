"""The CLI as a user runs it: one-line errors, streamed generation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import litegate_cmd


def run(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LITEGATE_HOME=str(home))
    return subprocess.run(litegate_cmd(*args), env=env, capture_output=True, text=True, timeout=300, input=input)


def test_generate_streams_an_answer(home: Path) -> None:
    r = run(home, "generate", "What is 2 + 3? Answer with the number only.", "--temperature", "0",
            "--max-tokens", "8")
    assert r.returncode == 0, r.stderr
    assert "5" in r.stdout
    assert "tok/s" in r.stderr


def test_generate_raw_completion_from_stdin(home: Path) -> None:
    r = run(home, "generate", "-", "--raw", "--temperature", "0", "--max-tokens", "8", input="1, 2, 3, 4,")
    assert r.returncode == 0, r.stderr
    assert "5" in r.stdout


def test_serve_with_missing_model_file_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    r = run(home, "serve", "--model", str(tmp_path / "missing.gguf"))
    assert r.returncode == 1
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "missing.gguf" in lines[0]


def test_empty_prompt_is_an_error(home: Path) -> None:
    r = run(home, "generate", "  ")
    assert r.returncode == 1 and "empty" in r.stderr
