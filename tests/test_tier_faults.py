"""Remote-tier faults a real provider shows but a litegate remote never does: 429s, and
replies that ignore the requested schema. A small provider on loopback (real HTTP, real
openai SDK on our side, the same tier code path) stands in for the paid API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from conftest import free_port
from litegate.errors import SchemaViolation
from litegate.tasks import TaskRunner
from litegate.tasks.cascade import CascadePolicy, PolicyStore
from litegate.tiers import TierConfig

LABELS = ["weather", "music", "banking"]


def provider_app(state: dict) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state["calls"] += 1
        if state["throttle"] > 0:
            state["throttle"] -= 1
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        # ignores response_format: answers prose where JSON was asked for
        content = "Sure! The invoice number is 4471." if body.get("response_format") else "weather"
        if "no logprobs" in body["messages"][-1]["content"]:  # a model that gives none
            return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": " Music."}}],
                                 "usage": {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42}})
        return JSONResponse({
            "id": f"chatcmpl-{state['calls']}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content},
                         "logprobs": {"content": [{"token": "weather", "logprob": -0.1, "bytes": None,
                                                   "top_logprobs": [{"token": "weather", "logprob": -0.1},
                                                                    {"token": "music", "logprob": -2.5}]}]}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}})

    return app


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, dict]]:
    state = {"calls": 0, "throttle": 0}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(provider_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def runner(provider, tmp_path_factory: pytest.TempPathFactory, home: Path) -> Iterator[TaskRunner]:
    from litegate.config import Settings
    from litegate.configfile import Config
    from litegate.runtime import build

    base, _ = provider
    tiers = [TierConfig("flaky", "openai", model="m", base_url=base, max_retries=2, price_in_per_million=1.0,
                        breaker_failures=5),
             TierConfig("lite", "local", model="lite"),
             # nothing listens there, and no fallback is configured
             TierConfig("dead", "openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0,
                        timeout_s=2)]
    rt = build(Settings(home=home, ctx=2048, parallel=2), Config(tiers=tiers), record=False)
    rt.tasks.policies = PolicyStore(tmp_path_factory.mktemp("policies"))
    yield rt.tasks
    rt.close()


def test_429_is_retried_with_backoff(runner: TaskRunner, provider) -> None:
    _, state = provider
    state["throttle"], before = 2, state["calls"]
    started = time.perf_counter()
    out = runner.run("classify", {"text": "Is it raining?", "labels": LABELS, "tier": "flaky"})
    assert out["tier"] == "flaky" and out["label"] == "weather"
    assert out["scores"]["weather"] > out["scores"]["music"] > out["scores"]["banking"]
    assert state["calls"] - before == 3  # two 429s, then the answer
    assert time.perf_counter() - started > 0.2  # backed off between attempts
    assert out["cost_usd"] == pytest.approx(40 * 1.0 / 1e6, rel=1e-6)  # priced per token: 40 in at $1/M


def test_schema_violation_escalates(runner: TaskRunner, provider) -> None:
    request = {"text": "Invoice 4471 from Acme Corp.", "fields": {"invoice_number": "the invoice number"}}
    with pytest.raises(SchemaViolation, match="does not follow the schema"):
        runner.run("extract", {**request, "tier": "flaky"})
    # in a cascade, the violation is a clear signal: the next tier answers
    runner.policies.save(CascadePolicy.from_dict({"task": "extract", "steps": [
        {"tier": "flaky", "threshold": 0.0, "escalate": True}, {"tier": "lite", "threshold": 0.0}]}))
    out = runner.run("extract", {**request, "tier": "auto"})
    assert out["tier"] == "lite" and out["escalated_from"] == "flaky"
    assert out["data"]["invoice_number"] == "4471", json.dumps(out)
    # the default cascade (no policy) does the same: flaky is the first tier, lite the next
    runner.policies.dir.joinpath("extract.json").unlink()
    out = runner.run("extract", {**request, "tier": "auto"})
    assert out["tier"] == "lite" and out["escalated_from"] == "flaky" and out["outcome"] == "answered"


def test_a_down_tier_without_fallback_is_skipped(runner: TaskRunner) -> None:
    request = {"text": "Is it raining?", "labels": LABELS, "tier": "auto", "feature": "down-test"}
    # first in the cascade and down: the next tier answers, and says which one was down
    runner.policies.save(CascadePolicy.from_dict({"task": "classify", "feature": "down-test", "steps": [
        {"tier": "dead", "threshold": 0.0, "escalate": True}, {"tier": "lite", "threshold": 0.0}]}))
    out = runner.run("classify", request)
    assert (out["tier"], out["outcome"], out["fallback_from"]) == ("lite", "answered", "dead")
    assert "ConnectError" in out["fallback_reason"] or "connect" in out["fallback_reason"].lower()
    # the escalation target is down: the unsure answer so far goes to human review
    runner.policies.save(CascadePolicy.from_dict({"task": "classify", "feature": "down-test", "steps": [
        {"tier": "lite", "threshold": 1.01, "escalate": True}, {"tier": "dead", "threshold": 0.0}]}))
    out = runner.run("classify", request)
    assert (out["tier"], out["outcome"], out["fallback_from"], out["escalated"]) == \
        ("lite", "human_review", "dead", False)
    # asked for by name, a down tier with no fallback is an error (503), not a silent answer
    from litegate.errors import TierDown

    with pytest.raises(TierDown, match="dead tier is unavailable"):
        runner.run("classify", {**request, "tier": "dead"})


def test_labels_without_log_probabilities(runner: TaskRunner) -> None:
    out = runner.run("classify", {"text": "play jazz (no logprobs)", "labels": LABELS, "tier": "flaky"})
    assert out["label"] == "music" and out["scores"]["music"] == 1.0  # only the text is known
