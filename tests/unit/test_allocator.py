"""The serving process's allocator settings: set on glibc unless the operator's environment
already says, and a no-op elsewhere."""

from __future__ import annotations

import sys

import pytest

from litegate.server.allocator import ARENAS, MMAP_THRESHOLD, tune_allocator

pytestmark = pytest.mark.unit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_set_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert tune_allocator() == {"MALLOC_ARENA_MAX": ARENAS, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert tune_allocator() == {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_allocator() == {}
