"""The fast layer's fixtures: every Runtime a test made is closed after it, passed or failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import OPEN_RUNTIMES


@pytest.fixture(autouse=True)
def _close_runtimes() -> Iterator[None]:
    yield
    while OPEN_RUNTIMES:
        OPEN_RUNTIMES.pop().close()  # Runtime.close is idempotent: a test's own close is fine too
