"""A new front-end API is one folder with a ``FRONT`` (its routes and its error shape) plus a
line in ``server.app.FRONT_ENDS``. This one is the smallest there is: a chat route under
/echo that words its errors as ``{"problem": ...}`` — the same chat service, ledger, limits and
error handlers as every other API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fakes import FakeEngine, runtime
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.server import create_app
from litegate.server.app import FRONT_ENDS
from litegate.server.front import ErrorShape, FrontEnd, Problem, routers

router = APIRouter(prefix="/echo")


@router.post("/say")
async def say(body: dict[str, Any], request: Request) -> dict[str, Any]:
    text = body.get("text")
    req = ChatCompletionRequest(model=body.get("model") or "lite", messages=[{"role": "user", "content": text}])
    run = await request.app.state.runtime.chat.run(ChatCall(req, api="echo"))
    return {"said": run.result["choices"][0]["message"]["content"]}


def _owns(path: str, headers: Mapping[str, str]) -> bool:
    return path.startswith("/echo/")


ECHO = FrontEnd("echo", routers(router),
                ErrorShape(owns=_owns, body=lambda p: {"problem": p.message, "status": p.status},
                           no_route=lambda method, path, status: Problem(404, f"echo has no {path}")))


def test_a_new_api_is_a_folder_and_a_registry_line(tmp_path: Path) -> None:
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: "hello back")})
    try:
        with TestClient(create_app(rt, close_runtime=False, fronts=(*FRONT_ENDS, ECHO))) as client:
            r = client.post("/echo/say", json={"text": "hello"})
            assert r.status_code == 200 and r.json() == {"said": "hello back"}
            r = client.post("/echo/say", json={"text": "hello", "model": "nope"})  # the chat service's 404
            assert r.status_code == 404 and "nope" in r.json()["problem"]
            r = client.post("/echo/say", content="[", headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and "problem" in r.json()  # validation, in the new shape
            r = client.get("/echo/missing")
            assert r.json() == {"problem": "echo has no /echo/missing", "status": 404}
            r = client.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user",
                                                                                       "content": "x"}]})
            assert r.status_code == 404 and r.json()["error"]["type"]  # the other APIs keep their shapes
        rt.accountant.flush()
        assert [row["task"] for row in rt.accountant.ledger.rows()] == ["echo"]  # ledgered like any call
    finally:
        rt.close()
