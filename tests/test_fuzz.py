"""Schemathesis over the whole OpenAPI spec against a real server: generated requests (bodies
included) to every operation; none may be answered with a server error. Generation is capped
(max_tokens, 2 examples per operation) so the run stays short."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(server: str) -> object:
    """The running server's own spec, read when the test runs (not while pytest collects)."""
    return schemathesis.openapi.from_url(server + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")
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
