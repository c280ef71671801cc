"""The browser guard: a web page can drive the server only from the server's own origin (same
scheme, allowed host, same port); ``Origin: null`` and other ports are refused."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from litegate.server.limits import HostGuard

pytestmark = pytest.mark.unit


def guarded(allowed: list[str]) -> TestClient:
    app = FastAPI()

    @app.api_route("/act", methods=["GET", "POST"])
    async def act() -> dict[str, bool]:
        return {"done": True}

    app.add_middleware(HostGuard, allowed=allowed)
    return TestClient(app)


@pytest.mark.parametrize(("host", "origin", "status"), [
    ("127.0.0.1:8080", None, 200),  # not a browser
    ("127.0.0.1:8080", "http://127.0.0.1:8080", 200),  # the server's own page
    ("127.0.0.1:8080", "http://localhost:8080", 200),  # another allowed name of this server
    ("127.0.0.1:8080", "null", 403),  # a sandboxed frame or a data: page
    ("127.0.0.1:8080", "http://127.0.0.1:8081", 403),  # another local port: another site
    ("127.0.0.1:8080", "http://localhost", 403),  # port 80 is not 8080
    ("127.0.0.1:8080", "https://127.0.0.1:8080", 403),  # another scheme
    ("127.0.0.1:8080", "http://evil.example", 403),
    ("127.0.0.1:8080", "http://127.0.0.1:notaport", 403),
    ("localhost", "http://localhost", 200),  # default ports on both sides
    ("localhost", "http://localhost:80", 200),
    ("[::1]:8080", "http://[::1]:8080", 200),
    ("[::1]:8080", "http://[::1]:8081", 403),
    ("evil.example:8080", None, 421),  # DNS rebinding: a Host not served here
])
def test_origin_must_be_this_servers_own(host: str, origin: str | None, status: int) -> None:
    client = guarded(["localhost", "127.0.0.1", "::1"])
    headers = {"host": host, **({"origin": origin} if origin is not None else {})}
    r = client.post("/act", headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"]["code"] == "origin_not_allowed"


def test_any_host_still_checks_the_origin_against_the_host() -> None:
    client = guarded(["*"])  # listening on every interface: any Host, but a page must still be this server's
    assert client.post("/act", headers={"host": "10.0.0.5:8080", "origin": "http://10.0.0.5:8080"}).status_code == 200
    assert client.post("/act", headers={"host": "10.0.0.5:8080", "origin": "http://10.0.0.5:9000"}).status_code == 403
    assert client.post("/act", headers={"host": "10.0.0.5:8080", "origin": "null"}).status_code == 403


def test_an_origin_named_with_its_scheme_is_allowed_exactly() -> None:
    client = guarded(["127.0.0.1", "https://console.example.com"])
    headers = {"host": "127.0.0.1:8080"}
    assert client.post("/act", headers={**headers, "origin": "https://console.example.com"}).status_code == 200
    assert client.post("/act", headers={**headers, "origin": "http://console.example.com"}).status_code == 403


def test_a_cross_site_post_without_an_origin_is_refused_but_navigation_is_not() -> None:
    client = guarded(["127.0.0.1"])
    cross = {"host": "127.0.0.1:8080", "sec-fetch-site": "cross-site"}
    assert client.post("/act", headers=cross).status_code == 403
    assert client.get("/act", headers=cross).status_code == 200
    assert client.post("/act", headers={**cross, "sec-fetch-site": "same-origin"}).status_code == 200
