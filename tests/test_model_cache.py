"""The embedded lite model is joined once from its PyPI parts, checked, and re-joined when damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from conftest import litegate_cmd
from litegate.engine.catalog import LITE, ModelCache, resolve_model
from litegate.errors import ModelFileError, ModelNotAvailable


@pytest.fixture()
def cache(tmp_path: Path) -> ModelCache:
    return ModelCache(tmp_path)


def test_join_once_and_reuse(cache: ModelCache) -> None:
    assert cache.status(LITE) == "missing"
    path = cache.ensure(LITE)
    assert path.stat().st_size == LITE.size
    assert cache.status(LITE) == "ready"
    mtime = path.stat().st_mtime_ns
    assert cache.ensure(LITE) == path
    assert path.stat().st_mtime_ns == mtime, "a ready file must not be joined again"
    assert cache.verify(LITE)


def test_truncated_file_is_rejoined(cache: ModelCache) -> None:
    path = cache.ensure(LITE)
    with open(path, "r+b") as f:
        f.truncate(LITE.size // 2)
    assert cache.status(LITE) == "stale"
    cache.ensure(LITE)
    assert path.stat().st_size == LITE.size and cache.status(LITE) == "ready"


def test_corrupted_file_is_rejoined(cache: ModelCache) -> None:
    path = cache.ensure(LITE)
    with open(path, "r+b") as f:
        f.seek(LITE.size // 3)
        byte = f.read(1)
        f.seek(LITE.size // 3)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert cache.status(LITE) == "stale"
    assert not cache.verify(LITE)
    cache.ensure(LITE)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == LITE.sha256


def test_wrong_checksum_is_refused(cache: ModelCache) -> None:
    tampered = dataclasses.replace(LITE, sha256="0" * 64)
    with pytest.raises(ModelFileError, match="refusing to load"):
        cache.ensure(tampered)
    assert not cache.path_for(tampered).exists()
    assert not list(cache.dir.glob("*.partial"))


def test_missing_parts_say_how_to_install(cache: ModelCache) -> None:
    absent = dataclasses.replace(LITE, name="ghost", distributions=("litegate-no-such-part-1",),
                                 install_hint="pip install ghost-parts")
    with pytest.raises(ModelNotAvailable, match="pip install ghost-parts"):
        cache.ensure(absent)


def test_path_that_is_not_gguf_is_refused(cache: ModelCache, tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        resolve_model(str(bogus), cache)
    with pytest.raises(ModelNotAvailable):
        resolve_model(str(tmp_path / "absent.gguf"), cache)


def test_cli_models_joins_and_lists(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITEGATE_MODELS_DIR"}  # its own cache here
    env.update(LITEGATE_HOME=str(tmp_path), COLUMNS="200")
    r = subprocess.run(litegate_cmd("models"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # listing joins nothing
    assert "lite" in r.stdout and "missing" in r.stdout and not (tmp_path / "models" / LITE.file_name).exists()
    r = subprocess.run(litegate_cmd("models", "--join"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ready" in r.stdout
    assert (tmp_path / "models" / LITE.file_name).stat().st_size == LITE.size
    # corrupt it, then --verify notices and repairs
    path = tmp_path / "models" / LITE.file_name
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\0\0\0\0")
    r = subprocess.run(litegate_cmd("models", "--verify"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ready" in r.stdout
    assert ModelCache(tmp_path).verify(LITE)
