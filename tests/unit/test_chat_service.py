"""The chat service under every front end: checks, context budget, reply checks, ledger.

Driven through the real FastAPI app (in-process ASGI, no socket), the Python API's path
(``run_sync``) and the real ledger on SQLite, with a fake engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes import FakeEngine, ProviderError, ScriptedProvider, ScriptedTier, completion, runtime
from fastapi.testclient import TestClient

from litegate.chat import ChatCall, ChatCompletionRequest, CompletionRequest
from litegate.chat.decision import AfterCall, fit
from litegate.errors import ContextLengthExceeded, EngineError, InvalidRequest, ModelNotFound
from litegate.server import create_app
from litegate.tiers import TIER_KINDS, TierConfig


def rows(rt) -> list[dict]:
    rt.accountant.flush()
    return rt.accountant.ledger.rows()


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: "four words of reply", n_ctx=200)})
    yield r
    r.close()


def test_python_api_path_is_ledgered_with_feature_and_price(rt) -> None:
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], model="lite")
    result = rt.chat.run_sync(ChatCall(req, api="python", feature="notes"))
    assert result["choices"][0]["message"]["content"] == "four words of reply"
    [row] = rows(rt)
    assert (row["task"], row["tier"], row["model"], row["feature"]) == ("python", "lite", "lite", "notes")
    assert (row["tokens_in"], row["tokens_out"]) == (result["usage"]["prompt_tokens"], 4)
    # the lite tier prices per token: $0.10 per compute hour at the quiet speed (150 tok/s prefill, 48.6 decode)
    quiet_seconds = result["usage"]["prompt_tokens"] / 150.0 + 4 / 48.6
    assert row["cost_usd"] == pytest.approx(quiet_seconds * 0.10 / 3600, rel=1e-3)


def test_streamed_python_call_is_ledgered_once(rt) -> None:
    seen: list[str] = []
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}])
    rt.chat.run_sync(ChatCall(req, api="cli"), on_chunk=lambda c: seen.append(
        "".join((ch.get("delta") or {}).get("content") or "" for ch in c.get("choices", []))) and False)
    assert "".join(seen) == "four words of reply"
    assert [r["task"] for r in rows(rt)] == ["cli"]


def test_unknown_model_is_404_before_any_work(rt) -> None:
    with pytest.raises(ModelNotFound):
        rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=[{"role": "user", "content": "x"}], model="nope")))
    assert rows(rt) == []


def test_over_long_prompt_is_a_context_error_with_counts(rt) -> None:
    long = "word " * 300
    req = ChatCompletionRequest(messages=[{"role": "user", "content": long}])
    with pytest.raises(ContextLengthExceeded) as e:
        rt.chat.run_sync(ChatCall(req))
    assert e.value.prompt_tokens == 304 and e.value.n_ctx == 200
    assert rows(rt) == []


def test_short_prompt_skips_the_exact_count(rt) -> None:
    engine = rt.registry.engines["lite"]
    engine.n_ctx = 100_000
    rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}])))
    assert engine.counted == 0  # the byte bound fit: no loopback count


def test_max_tokens_beyond_the_context_is_refused(rt) -> None:
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=200)
    with pytest.raises(InvalidRequest, match="'max_tokens' is 200"):
        rt.chat.run_sync(ChatCall(req))


def test_prompt_plus_max_tokens_over_the_context_names_the_room_left(rt) -> None:
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "word " * 150}], max_tokens=100)
    with pytest.raises(ContextLengthExceeded, match="at most 46"):
        rt.chat.run_sync(ChatCall(req))


def test_completion_with_token_prompt_is_budgeted_without_counting(rt) -> None:
    with pytest.raises(ContextLengthExceeded):
        rt.chat.run_sync(ChatCall(CompletionRequest(prompt=list(range(250)))))


def test_json_reply_that_breaks_the_schema_is_an_engine_error(tmp_path: Path) -> None:
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: '{"a": "not a number"}')})
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "x"}], response_format=fmt)
    with pytest.raises(EngineError, match="broke the schema"):
        rt.chat.run_sync(ChatCall(req))
    rt.close()


def test_openai_route_feature_header_and_usage(client: TestClient, rt) -> None:
    r = client.post("/v1/chat/completions", headers={"X-Litegate-Feature": "triage"},
                    json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "lite" and body["usage"]["completion_tokens"] == 4
    [row] = rows(rt)
    assert (row["id"], row["task"], row["feature"]) == (body["id"], "chat", "triage")


def test_openai_stream_carries_usage_on_the_last_chunk(client: TestClient, rt) -> None:
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "four words of reply"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["completion_tokens"] == 4
    assert len(rows(rt)) == 1


def test_gemini_stream_is_ledgered_with_its_feature(client: TestClient, rt) -> None:
    with client.stream("POST", "/v1beta/models/lite:streamGenerateContent?alt=sse",
                       headers={"X-Litegate-Feature": "gem"},
                       json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}) as r:
        frames = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    text = "".join(p.get("text", "") for f in frames for p in f["candidates"][0]["content"]["parts"])
    assert text == "four words of reply"
    assert frames[-1]["usageMetadata"]["candidatesTokenCount"] == 4
    [row] = rows(rt)
    assert (row["task"], row["feature"], row["tier"], row["tokens_out"]) == ("gemini", "gem", "lite", 4)


def test_gemini_over_long_prompt_is_invalid_argument_with_counts(client: TestClient, rt) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "word " * 300}]}]}
    for path in ("/v1beta/models/lite:generateContent", "/v1beta/models/lite:streamGenerateContent"):
        r = client.post(path, json=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert "304 tokens" in error["message"] and "holds 200" in error["message"]
    assert rows(rt) == []


def test_remote_tier_is_served_by_name_with_its_own_price(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(TIER_KINDS, "scripted", ScriptedTier)
    ScriptedTier.providers["pro"] = ScriptedProvider(lambda body, schema: completion("remote says hi", 100, 20))
    rt = runtime(tmp_path, tiers=[TierConfig("pro", "scripted", model="m", price_in_per_million=1.0,
                                             price_out_per_million=2.0, cascade=False)])
    result = rt.chat.run_sync(ChatCall(ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}],
                                                             model="pro")))
    assert result["model"] == "pro" and result["choices"][0]["message"]["content"] == "remote says hi"
    [row] = rows(rt)
    # priced per token under the tier's own name: a local "pro" price never applies
    assert (row["tier"], row["cost_usd"]) == ("pro", pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6))
    rt.close()


def test_down_remote_falls_back_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(TIER_KINDS, "scripted", ScriptedTier)

    def down(body, schema):
        raise ProviderError(503)

    ScriptedTier.providers["far"] = ScriptedProvider(down)
    rt = runtime(tmp_path, tiers=[TierConfig("far", "scripted", model="m", max_retries=1, fallback="lite",
                                             cascade=False)])
    rt.tiers["far"].resilience._sleep = lambda s: None
    with TestClient(create_app(rt, close_runtime=False)) as client:
        r = client.post("/v1beta/models/far:generateContent",
                        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert r.status_code == 200, r.text
    assert len(ScriptedTier.providers["far"].calls) == 2  # one retry, then the fallback
    [row] = rows(rt)
    assert row["tier"] == "lite"
    rt.close()


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


def test_a_decision_that_reads_the_relevance_pass_asks_the_model_about_the_best_tool(tmp_path: Path) -> None:
    rows = [{"logit_p_call": -2.0, "tool_match": m, "param_match": m, "overlap": m, "fillable": 1.0,
             "param_mean": m, "param_min": m, "supplied": 1.0, "name_cover": m, "logit_relevance": r}
            for m, r in ((0.8, 1.0), (0.7, 0.5), (0.2, -1.0), (0.3, -0.5))]
    decision = fit(rows, [True, True, False, False])
    decision.mix[3], decision.relevance_range = 50.0, [-1.0, 1.0]  # any yes or no tips it
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: "x" if body.get("max_tokens", 99) < 10
                                                       else '{"content": "I cannot tell."}')})
    rt.chat.tool_decision = decision
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "weather in Oslo?"}], tools=TOOLS,
                                tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))
    asked = [b for b in rt.registry.engines["lite"].bodies if "Can this tool answer" in str(b["messages"])]
    assert len(asked) == 1 and "Tool: get_weather" in asked[0]["messages"][-1]["content"]
    reported = out["litegate"]["tool_decision"]
    assert 0 <= reported["p_relevant"] <= 1 and reported["relevance_ms"] >= 0
    assert reported["call"] == (reported["p_due"] >= decision.threshold) and math.isfinite(reported["p_due"])


def test_auto_tool_choice_decides_first_then_generates_under_the_branch(tmp_path: Path) -> None:
    def reply(body):
        if "logprobs" in body and body.get("max_tokens", 99) < 10:  # the decision pass
            return "x"
        return '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}'

    rt = runtime(tmp_path, engines={"lite": FakeEngine(reply)})
    learned = rt.chat.tool_decision
    rt.chat.tool_decision = None  # the fixed thresholds first
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "weather in Oslo?"}], tools=TOOLS,
                                tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))
    engine = rt.registry.engines["lite"]
    decision, final = engine.bodies[-2], engine.bodies[-1]
    assert '"{\\"tool_calls\\""' in decision["grammar"] and '"{\\"content\\""' in decision["grammar"]
    assert '"content"' not in final["grammar"]  # generated under the call branch alone
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    decision = out["litegate"]["tool_decision"]
    assert decision["call"] and decision["after_result"] is False and 0 <= decision["tool_match"] <= 1
    rt.chat.tool_call_threshold, rt.chat.tool_match = 1.01, 1.01  # never call: the answer branch
    rt.registry.engines["lite"].reply = lambda body: "x" if body.get("max_tokens", 99) < 10 else \
        '{"content": "It is sunny."}'
    out = rt.chat.run_sync(ChatCall(req))
    assert '"tool_calls"' not in rt.registry.engines["lite"].bodies[-1]["grammar"]
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny."}
    if learned is not None:  # the learned decision (chat/decision.py): its probability against its threshold
        rt.chat.tool_decision = learned
        learned.threshold = 1.01
        decision = rt.chat.run_sync(ChatCall(req))["litegate"]["tool_decision"]
        assert decision["call"] is False and 0 <= decision["p_due"] <= 1
        learned.threshold = 0.0
        sunny, rt.registry.engines["lite"].reply = rt.registry.engines["lite"].reply, reply
        assert rt.chat.run_sync(ChatCall(req))["litegate"]["tool_decision"]["call"] is True
        rt.registry.engines["lite"].reply = sunny
    # right after a tool result the model answers unless it is sure it needs another call
    rt.chat.tool_call_threshold, rt.chat.tool_match = 0.0, 0.0
    after = ChatCompletionRequest(tools=TOOLS, tool_choice="auto", messages=[
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                               "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}])
    out = rt.chat.run_sync(ChatCall(after))
    assert out["litegate"]["tool_decision"]["after_result"] is True and out["choices"][0]["message"]["content"]
    rt.close()


def test_a_cut_off_tool_reply_never_shows_the_wrapper(tmp_path: Path) -> None:
    replies = iter([("x", "stop"), ('{"tool_calls": [{"name": "get_wea', "length"),
                    ("x", "stop"), ('{"content": "It is su', "length"),
                    ("x", "stop"),
                    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}', "length")])
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: next(replies))})
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "weather in Oslo?"}], tools=TOOLS,
                                max_tokens=30)
    cut_call = rt.chat.run_sync(ChatCall(req))["choices"][0]
    assert cut_call["finish_reason"] == "length" and cut_call["message"]["content"] is None
    cut_answer = rt.chat.run_sync(ChatCall(req))["choices"][0]
    assert cut_answer["finish_reason"] == "length" and cut_answer["message"]["content"] == "It is su"
    # complete and valid exactly at the budget: a finished call, not "length"
    done = rt.chat.run_sync(ChatCall(req))["choices"][0]
    assert done["finish_reason"] == "tool_calls" and done["message"]["tool_calls"][0]["function"]["name"] == \
        "get_weather"
    rt.close()


def test_a_call_with_made_up_arguments_becomes_an_answer_and_both_passes_are_priced(tmp_path: Path) -> None:
    replies = iter(["x", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "London"}}]}',
                    '{"content": "Rome."}',
                    "x", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
                         '{"name": "get_weather", "arguments": {"city": "Madrid"}}]}'])
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: next(replies))})
    rt.chat.tool_decision, rt.chat.tool_call_threshold = None, 0.0  # the fixed rule, always "call"
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "What is the capital of Italy?"}],
                                tools=TOOLS, tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Rome."}
    assert out["choices"][0]["finish_reason"] == "stop"
    decision = out["litegate"]["tool_decision"]
    assert decision["call"] is False
    assert decision["grounding"] == [{"name": "get_weather", "grounded": [], "invented": ["city"], "kept": False}]
    engine = rt.registry.engines["lite"]
    assert '"tool_calls"' not in engine.bodies[-1]["grammar"]  # the second pass: the answer branch
    one_pass = engine.run("chat", {"messages": [{"role": "user", "content": "x"}]})["usage"]["completion_tokens"]
    assert out["usage"]["completion_tokens"] > one_pass  # the dropped call's tokens are counted too
    # of two calls, the one whose city the user named is kept
    replies = iter(["x", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
                         '{"name": "get_weather", "arguments": {"city": "Madrid"}}]}'])
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "Is it snowing in Oslo?"}], tools=TOOLS,
                                tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Oslo"}]
    rt.close()


def test_a_meant_call_missing_required_values_asks_for_them_instead_of_inventing(tmp_path: Path) -> None:
    flights = {"type": "function", "function": {"name": "search_flights", "description": "Find flights", "parameters": {
        "type": "object", "required": ["origin", "destination", "date"], "properties": {
            "origin": {"type": "string"}, "destination": {"type": "string", "description": "The arrival city"},
            "date": {"type": "string"}}}}}
    replies = iter(["x", '{"tool_calls": [{"name": "search_flights", "arguments": '
                         '{"origin": "Oslo", "destination": "Paris", "date": "2031-01-01"}}]}'])
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: next(replies))})
    rt.chat.tool_decision, rt.chat.tool_call_threshold = None, 0.0  # the fixed rule, always "call"
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "Book me a flight from Oslo"}], tools=[flights],
                                tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": (
        "To use search_flights I need the destination (the arrival city) and date. Could you tell me?")}
    assert out["litegate"]["tool_decision"]["call"] is False
    assert len(rt.registry.engines["lite"].bodies) == 2  # asked without generating again
    rt.close()


def test_a_call_that_made_up_values_is_declined_below_the_learned_bar(tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
                                               "parameters": {"type": "object", "required": ["city"], "properties": {
                                                   "city": {"type": "string"},
                                                   "units": {"type": "string", "enum": ["metric", "imperial"]}}}}}]
    made_up = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo", "units": "imperial"}}]}'
    rows = [{"logit_p_call": -2.0, "tool_match": m, "param_match": m, "overlap": m, "fillable": 1.0,
             "param_mean": m, "param_min": m, "supplied": 1.0} for m in (0.8, 0.7, 0.2, 0.3)]
    decision = fit(rows, [True, True, False, False], encoder_features=("tool_match", "param_match", "overlap",
                                                                       "fillable", "param_mean", "param_min",
                                                                       "supplied"))
    decision.threshold = 0.0  # always a call first

    def reply(body):
        if body.get("max_tokens", 99) < 10:  # the decision pass
            return "x"
        return made_up if '"tool_calls"' in body.get("grammar", "") else '{"content": "It is cold."}'

    rt = runtime(tmp_path, engines={"lite": FakeEngine(reply)})
    rt.chat.tool_decision = decision
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "weather in Oslo?"}], tools=tools,
                                tool_choice="auto")
    out = rt.chat.run_sync(ChatCall(req))  # no bar: the call is sent without the option never named
    assert json.loads(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    reported = out["litegate"]["tool_decision"]
    assert reported["grounding"][0]["left_out"] == ["units"] and "declined_after_call" not in reported
    decision.made_up_threshold = 1.01  # no P(due) clears it: a call that made up a value becomes an answer
    out = rt.chat.run_sync(ChatCall(req))
    reported = out["litegate"]["tool_decision"]
    assert reported["declined_after_call"] is True and reported["call"] is False
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "It is cold."}
    # an after-call mix in place of the bar: it reads the called tool's name cover, and a
    # cut no call reaches declines it whatever it made up
    decision.after_call = AfterCall([0.0, 0.0, 1.0], 0.0, 2.0)
    reported = rt.chat.run_sync(ChatCall(req))["litegate"]["tool_decision"]
    assert reported["declined_after_call"] is True and 0.0 <= reported["name_cover"] <= 1.0
    decision.after_call = AfterCall([0.0, 0.0, 1.0], 0.0, -2.0)  # every call kept
    out = rt.chat.run_sync(ChatCall(req))
    assert "declined_after_call" not in out["litegate"]["tool_decision"]
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    rt.close()
