"""simonw's `llm` CLI against a real server, configured as its docs say for an
OpenAI-compatible endpoint (extra-openai-models.yaml): a prompt, a schema, a tool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LLM = shutil.which("llm", path=str(Path(sys.executable).parent)) or shutil.which("llm")


@pytest.fixture()
def run(server: str, tmp_path: Path):
    if LLM is None:
        pytest.skip("the llm CLI is installed by the test extra")
    (tmp_path / "extra-openai-models.yaml").write_text(
        f'- model_id: litegate\n  model_name: lite\n  api_base: "{server}/v1"\n  api_key_name: litegate\n'
        "  supports_tools: true\n  supports_schema: true\n")
    (tmp_path / "keys.json").write_text(json.dumps({"litegate": "not-needed"}))
    env = dict(os.environ, LLM_USER_PATH=str(tmp_path))

    def call(*args: str, stderr: bool = False) -> str:
        done = subprocess.run([LLM, "-m", "litegate", *args], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout + (done.stderr if stderr else "")

    return call


def test_prompt_system_and_options(run) -> None:
    out = run("-s", "Answer with one word.", "-o", "max_tokens", "10", "What is the capital of France?")
    assert "paris" in out.lower()


def test_schema(run) -> None:
    out = run("--schema", "name, country", "Oslo is the capital of Norway. Extract the city.")
    assert json.loads(out) == {"name": "Oslo", "country": "Norway"}


def test_tool_call_round_trip(run) -> None:
    from importlib.metadata import version

    out = run("-T", "llm_version", "--td", "Which version of llm is installed? Use the tool.", stderr=True)
    # --td prints the tool call and its result (stderr); the model then answers from that result
    assert "llm_version" in out and out.count(version("llm")) >= 2, out
