"""Every ```bash and ```python snippet of README.md and docs/*.md, run as written against one
real server (LITEGATE_URL points at it; the snippets fall back to port 8080 when it is unset).
A page's snippets run in order in one folder of their own (with ``examples/`` beside them, as
in a clone), so a later snippet reads what an earlier one wrote; snippets marked
``<!-- docs-test: skip (reason) -->`` are not run (tests/unit/test_docs_pages.py checks the marks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port, start_server, stop_server

sys.path.insert(0, str(Path(__file__).parent / "unit"))
from docs_snippets import ROOT, pages, snippets  # noqa: E402

SNIPPET_TIMEOUT_S = 900  # a snippet that loads a model in its own process on a busy machine


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("docs-home")
    proc, base = start_server(home, "--ctx", "4096")
    yield base, home
    stop_server(proc)


def _env(base: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LITEGATE_LOCAL"}
    env.update(LITEGATE_URL=base, LITEGATE_HOME=str(home), INTAKE_RECEIVER_PORT=str(free_port()),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_snippet_runs_as_written(page: Path, docs_server: tuple[str, Path], tmp_path: Path) -> None:
    base, home = docs_server
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    runnable = [s for s in snippets(page) if s.skip is None]
    if not runnable:
        pytest.skip(f"{page.name} has no snippet that runs in CI")
    env = _env(base, home)
    for s in runnable:
        script = tmp_path / f"snippet-{s.line}.{'sh' if s.lang == 'bash' else 'py'}"
        script.write_text(s.code, encoding="utf-8")
        cmd = ["bash", "-e", "-o", "pipefail", str(script)] if s.lang == "bash" else [sys.executable, str(script)]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SNIPPET_TIMEOUT_S)
        assert done.returncode == 0, (f"{s.where} failed ({done.returncode}):\n{s.code}\n--- stdout\n"
                                      f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
        assert done.stdout.strip() or s.lang == "bash", f"{s.where} printed nothing"
