"""The code's own checks, run as CI runs them: ruff (style and likely bugs), the import-linter
contracts (layers, no cycles) and mypy (strict on the core), each configured in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    # this checkout's code, not whichever copy the environment has installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _assert_clean(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{' '.join(done.args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _script(name: str) -> str:
    """A console script installed beside this interpreter (the tool has no ``python -m`` entry)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} is not installed; pip install -e '.[test]'"
    return found


def test_ruff_finds_nothing_in_the_code_the_tests_and_the_benches() -> None:
    _assert_clean(_run(sys.executable, "-m", "ruff", "check", "src", "tests", "bench"))


def test_every_import_follows_the_layers_and_no_package_imports_in_a_cycle() -> None:
    _assert_clean(_run(_script("lint-imports")))


def test_mypy_passes_with_the_core_packages_strict() -> None:
    done = _run(sys.executable, "-m", "mypy")
    _assert_clean(done)
    assert "Success" in done.stdout
