"""Shared fixtures: a private LITEGATE_HOME and a real `litegate serve` on loopback.

Every test home shares one folder of joined model files (``LITEGATE_MODELS_DIR``): the
user's own model cache, where ``litegate serve`` would put them anyway, so a run joins
(and sha256-checks) each model at most once instead of once per home."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

TEST_CTX = 2048


def _shared_models_dir() -> Path:
    explicit = os.environ.get("LITEGATE_MODELS_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "litegate" / "models"


_ENV_BEFORE = {key: os.environ.get(key) for key in ("LITEGATE_MODELS_DIR", "LITEGATE_HOME")}
# set at import, so every server and CLI process the tests start inherits it
os.environ["LITEGATE_MODELS_DIR"] = str(_shared_models_dir())
# the CLI's task commands use a server answering on port 8080 when there is one: tests never
# pick up a stray one (those that test the client mode name their server with LITEGATE_URL)
os.environ["LITEGATE_LOCAL"] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave the environment as the run found it (a caller's own LITEGATE_* included)."""
    for key, value in _ENV_BEFORE.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest -m unit`` selects by folder (below), so no module outside tests/unit can hold a
    unit test: skipping them at collection saves importing every client library and model
    module of the real layer (about half the unit run's time)."""
    if (config.option.markexpr or "").strip() != "unit" or collection_path.is_dir():
        return None
    unit = Path(__file__).parent / "unit"
    return True if collection_path.suffix == ".py" and unit not in collection_path.parents else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/unit are the fast layer (``pytest -m unit``): no model, no server."""
    for item in items:
        if "/unit/" in str(item.fspath):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _close_unit_runtimes() -> Iterator[None]:
    """Every Runtime a unit test built over fakes is closed after it, passed or failed
    (``fakes.runtime`` keeps them; Runtime.close is idempotent, so a test's own close is fine)."""
    yield
    fakes = sys.modules.get("fakes")
    while fakes is not None and fakes.OPEN_RUNTIMES:
        fakes.OPEN_RUNTIMES.pop().close()


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("litegate-home")
    before = os.environ.get("LITEGATE_HOME")
    os.environ["LITEGATE_HOME"] = str(path)  # the CLI and in-process runtimes of the session use it
    yield path
    if before is None:
        os.environ.pop("LITEGATE_HOME", None)
    else:
        os.environ["LITEGATE_HOME"] = before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def litegate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "litegate.cli", *args]


def start_server(home: Path, *args: str, timeout: float = 120.0, port: int | None = None
                 ) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    env = dict(os.environ, LITEGATE_HOME=str(home))
    proc = subprocess.Popen(litegate_cmd("serve", "--port", str(port), *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"litegate serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("litegate serve did not become healthy in time")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(home: Path) -> Iterator[str]:
    """Base URL of a real litegate server on the embedded lite model."""
    proc, base = start_server(home, "--ctx", str(TEST_CTX))
    yield base
    stop_server(proc)


@pytest.fixture()
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as client:
        yield client


@pytest.fixture()
def client(rt) -> Iterator[object]:
    """The unit layer's in-process HTTP (no socket) to the real app over a test module's fake
    Runtime (``rt``); modules that drive a real server define their own ``client``."""
    from fastapi.testclient import TestClient

    from litegate.server import create_app

    with TestClient(create_app(rt, close_runtime=False)) as c:
        yield c


def colour_pixels(shot: Path) -> Callable[[str], int]:
    """For a screenshot: how many of its pixels are within 12 levels per channel of a colour
    (each chart draws its bars in its own colour)."""
    from PIL import Image

    counts = {rgb: n for n, rgb in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)}

    def pixels(hex_colour: str) -> int:
        target = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return sum(n for rgb, n in counts.items() if max(abs(a - b) for a, b in zip(rgb, target)) <= 12)

    return pixels


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, shot: Path, profile: Path, size: str = "1200,1000") -> Callable[[str], int]:
    """Open ``url`` in headless Chromium, save what it shows to ``shot`` and return its
    colour counter (``colour_pixels``)."""
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size}",
                    f"--screenshot={shot}", url], check=True, capture_output=True, timeout=120)
    return colour_pixels(shot)
