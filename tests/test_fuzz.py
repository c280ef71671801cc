"""Schemathesis over the whole OpenAPI spec against a real server: generated requests (bodies
included) to every operation; none may be answered with a server error. Generation is capped
(max_tokens, 2 examples per operation) so the run stays short."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")
from hypothesis import HealthCheck, settings  # noqa: E402


def _spec() -> dict:
    """The app's own spec (it does not depend on models being loaded)."""
    from litegate.config import Settings
    from litegate.runtime import build
    from litegate.server.app import create_app

    home = Path(tempfile.mkdtemp(prefix="litegate-spec-"))
    rt = build(Settings(home=home), record=False)
    try:
        return create_app(rt, close_runtime=False).openapi()
    finally:
        rt.close()


schema = schemathesis.openapi.from_dict(_spec())
CAPS = {"max_tokens": 4, "max_completion_tokens": 4, "max_output_tokens": 4, "num_predict": 4, "n": 1}


def _cap(body: object) -> None:
    if isinstance(body, dict):
        for key, value in CAPS.items():
            if key in body:
                body[key] = value
        if "stream" in body:
            body["stream"] = False
        for nested in ("generationConfig", "options"):
            if isinstance(body.get(nested), dict):
                body[nested].pop("maxOutputTokens", None)
                body[nested]["maxOutputTokens" if nested == "generationConfig" else "num_predict"] = 4


@schema.parametrize()
@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server: str) -> None:
    _cap(case.body)
    response = case.call(base_url=server, timeout=120)
    assert response.status_code < 500 or response.status_code in (503, 504), (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
