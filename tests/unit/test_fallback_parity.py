"""A remote tier that is down hands every call to its fallback, whichever door the call came
in by: the OpenAI, Gemini, Ollama and task routes (async), the Python API and the CLI's
streaming path (sync, on the same async path). One fallback helper serves them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeEngine, ProviderError, ScriptedProvider, ScriptedTier, runtime
from fastapi.testclient import TestClient

from litegate.api import Litegate
from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.errors import TierDown
from litegate.server import create_app
from litegate.tiers import TIER_KINDS, TierConfig

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setitem(TIER_KINDS, "scripted", ScriptedTier)

    def down(body: dict[str, Any], schema: Any) -> dict[str, Any]:
        raise ProviderError(503)

    monkeypatch.setitem(ScriptedTier.providers, "far", ScriptedProvider(down))
    r = runtime(tmp_path, tiers=[TierConfig("far", "scripted", model="m", max_retries=0, fallback="lite",
                                            cascade=False)],
                engines={"lite": FakeEngine(lambda body: "from lite")})
    yield r
    r.close()


def tiers_ledgered(rt: Any) -> list[str]:
    rt.accountant.flush()
    return [row["tier"] for row in rt.accountant.ledger.rows()]


def test_every_async_front_end_falls_back(rt: Any) -> None:
    with TestClient(create_app(rt, close_runtime=False)) as client:
        r = client.post("/v1/chat/completions", json={"model": "far", "messages": HI})
        assert r.status_code == 200, r.text
        assert r.headers["x-litegate-fallback-from"] == "far"
        assert r.json()["litegate"]["fallback_from"] == "far" and r.json()["model"] == "lite"
        r = client.post("/v1beta/models/far:generateContent", json={"contents": [{"role": "user",
                                                                                  "parts": [{"text": "hi"}]}]})
        assert r.status_code == 200, r.text
        r = client.post("/api/chat", json={"model": "far", "messages": HI, "stream": False})
        assert r.status_code == 200, r.text
        assert r.json()["message"]["content"] == "from lite"
        r = client.post("/v1/tasks/summarize", json={"text": "a long text to shorten", "tier": "far"})
        assert r.status_code == 200, r.text
        assert r.json()["tier"] == "lite" and r.json()["fallback_from"] == "far"
    assert tiers_ledgered(rt) == ["lite"] * 4


def test_python_api_falls_back_like_http(rt: Any) -> None:
    lg = Litegate(runtime=rt)
    reply = lg.chat("hi", model="far")
    assert reply["choices"][0]["message"]["content"] == "from lite"
    assert reply["litegate"]["fallback_from"] == "far" and "503" in reply["litegate"]["fallback_reason"]
    out = lg.task("summarize", text="a long text to shorten", tier="far")
    assert (out["tier"], out["fallback_from"]) == ("lite", "far")
    lg.close()  # the runtime was given: it stays open for its owner
    assert rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=HI)))["model"] == "lite"


def test_streamed_sync_call_falls_back_too(rt: Any) -> None:
    seen: list[str] = []

    def on_chunk(chunk: dict[str, Any]) -> bool:
        seen.extend((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices", []))
        return False

    last = rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=HI, model="far"), api="cli"), on_chunk=on_chunk)
    assert "".join(seen) == "from lite"
    assert last["litegate"]["fallback_from"] == "far"
    assert tiers_ledgered(rt) == ["lite"]


def test_a_tier_without_fallback_raises_on_every_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TIER_KINDS, "scripted", ScriptedTier)

    def down(body: dict[str, Any], schema: Any) -> dict[str, Any]:
        raise ProviderError(503)

    monkeypatch.setitem(ScriptedTier.providers, "solo", ScriptedProvider(down))
    rt = runtime(tmp_path, tiers=[TierConfig("solo", "scripted", model="m", max_retries=0, cascade=False)])
    try:
        with pytest.raises(TierDown):
            rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=HI, model="solo")))
        with TestClient(create_app(rt, close_runtime=False)) as client:
            r = client.post("/v1/chat/completions", json={"model": "solo", "messages": HI})
        assert r.status_code == 503 and "solo" in r.json()["error"]["message"]
    finally:
        rt.close()
