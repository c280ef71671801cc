"""Every ``litegate`` call starts by importing the command: what that import and the command
listing load, each checked in a fresh interpreter (this checkout's code), so that a module-level
import of numpy, the settings, the document layer or the encoders is caught where it is added."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("numpy", "pydantic_settings", "litegate.config", "litegate.documents", "litegate.nano", "litegate.engine",
         "litegate.runtime", "httpx", "torch", "onnxruntime", "ray")


def _loaded_after(code: str) -> list[str]:
    """The modules of HEAVY (and litegate.tasks) that ``code`` leaves in sys.modules."""
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps([m for m in {[*HEAVY, 'litegate.tasks']!r} if m in sys.modules]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(args: list[str]) -> str:
    return f"""
from litegate.cli import app
try:
    app({args!r})
except SystemExit as e:
    assert not e.code, e.code
"""


def test_importing_the_command_loads_neither_numpy_nor_the_settings_nor_the_tasks() -> None:
    assert _loaded_after("import litegate.cli") == []


def test_a_command_other_than_a_task_starts_without_the_task_declarations() -> None:
    assert _loaded_after(_run(["extractors", "--help"])) == []
    assert _loaded_after(_run(["batch", "status", "--help"])) == []


def test_the_task_commands_are_made_without_numpy_the_documents_or_the_encoders() -> None:
    # --help lists them and a task's own --help shows its request model's fields
    assert _loaded_after(_run(["--help"])) == ["litegate.tasks"]
    assert _loaded_after(_run(["extract", "--help"])) == ["litegate.tasks"]


def test_a_mistyped_command_is_matched_against_the_task_commands_too() -> None:
    probe = """
from typer.testing import CliRunner
from litegate.cli import app
r = CliRunner().invoke(app, ["clasify", "x"])
assert r.exit_code == 2 and "Did you mean 'classify'" in r.output, r.output
"""
    assert "litegate.tasks" in _loaded_after(probe)
