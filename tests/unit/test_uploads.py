"""Uploads stream to disk under a cap, and what a crash leaves behind is removed at start."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from litegate.errors import PayloadTooLarge, TooManyRequests
from litegate.jobs.files import FileStore
from litegate.server.uploads import UploadSlots

pytestmark = pytest.mark.unit


def store(tmp_path: Path) -> FileStore:
    return FileStore(create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), tmp_path)


class Chunks(io.RawIOBase):
    """A source that hands out ``n`` chunks and counts how much was read (never all at once)."""

    def __init__(self, n: int, size: int = 1 << 20):
        self.left, self.size, self.largest_read = n, size, 0

    def read(self, n: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, n)
        if not self.left:
            return b""
        self.left -= 1
        return b"x" * self.size


def test_a_stream_is_stored_a_chunk_at_a_time_and_a_too_large_one_leaves_nothing(tmp_path: Path) -> None:
    files = store(tmp_path)
    source = Chunks(5)
    stored = files.put_stream(source, api="openai", purpose="user_data", filename="a.bin", owner="k1")
    assert stored.bytes == 5 << 20 and 0 < source.largest_read <= 1 << 20
    assert files.content(stored.id) == b"x" * (5 << 20)
    with pytest.raises(PayloadTooLarge):
        files.put_stream(Chunks(5), api="openai", purpose="user_data", filename="b.bin", max_bytes=3 << 20)
    assert not list(files.root.glob("*.tmp")) and len(files.list()) == 1


def test_temporary_files_of_stopped_processes_are_removed_at_start(tmp_path: Path) -> None:
    files = store(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (files.root / "uploads").mkdir(exist_ok=True)
    orphans = [files.root / f"file-abc.{gone}-1a2b.tmp", files.root / "file-old.1a2b3c4d.tmp",
               files.root / "uploads" / f"{gone}-ffee"]
    live = [files.root / f"file-def.{os.getpid()}-3c4d.tmp", files.root / "uploads" / f"{os.getpid()}-aabb"]
    for path in orphans + live:
        path.write_bytes(b"partial upload")
    store(tmp_path)  # the next start
    assert [p.exists() for p in orphans] == [False, False, False]
    assert all(p.exists() for p in live)  # this process is still writing them


def test_uploads_at_once_are_capped_per_key_and_in_all() -> None:
    slots = UploadSlots(per_key=2, total=3)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(TooManyRequests, match="per key"):
            with slots.hold("a"):
                pass
        with slots.hold("b"):
            with pytest.raises(TooManyRequests, match="on this server") as e:
                with slots.hold("c"):
                    pass
            assert e.value.retry_after > 0
    with slots.hold("a"), slots.hold("a"):  # released when each upload ended
        pass
