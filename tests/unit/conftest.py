"""Fixtures of the fast layer: the real FastAPI app over a test's own fake Runtime (``rt``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from litegate.server import create_app


@pytest.fixture()
def client(rt) -> Iterator[TestClient]:
    """In-process HTTP (no socket) to the app serving the test module's ``rt`` fixture."""
    with TestClient(create_app(rt, close_runtime=False)) as c:
        yield c
