"""Arguments put in the parameters the request names them for (litegate.chat.direction)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeEngine, runtime

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.chat.direction import put_right

pytestmark = pytest.mark.unit


def _call(**args: object) -> dict:
    return {"name": "f", "arguments": args}


def test_two_numbers_each_named_for_the_others_parameter_are_exchanged() -> None:
    request = "The gauge pressure is 2.5 atm and the atmospheric pressure is 1 atm. What is the absolute pressure?"
    assert put_right(_call(atm_pressure=2.5, gauge_pressure=1), request) == _call(atm_pressure=1, gauge_pressure=2.5)
    request = "A car accelerating from an initial velocity of 10 m/s to a final velocity of 30 m/s in 4 s."
    assert put_right(_call(initialVelocity=30, finalVelocity=10, time=4), request) == \
        _call(initialVelocity=10, finalVelocity=30, time=4)


def test_values_where_the_request_puts_them_or_where_it_cannot_tell_stay() -> None:
    request = "The gauge pressure is 2.5 atm and the atmospheric pressure is 1 atm."
    right = _call(atm_pressure=1, gauge_pressure=2.5)
    assert put_right(right, request) is right
    # only one of the two stands after the other's name: no exchange on one side's word
    assert put_right(_call(atm_pressure=2.5, gauge_pressure=7), request) == _call(atm_pressure=2.5, gauge_pressure=7)
    # names the two parameters share say nothing of which is which
    plain = _call(number1=36, number2=48)
    assert put_right(plain, "The greatest common divisor of 36 and 48") is plain


def test_the_chat_service_sends_the_exchanged_values(tmp_path: Path) -> None:
    tool = {"type": "function", "function": {"name": "absolute_pressure", "description": "Absolute pressure",
                                             "parameters": {"type": "object", "required": ["atm_pressure"],
                                                            "properties": {"atm_pressure": {"type": "number"},
                                                                           "gauge_pressure": {"type": "number"}}}}}
    call = {"name": "absolute_pressure", "arguments": {"atm_pressure": 2.5, "gauge_pressure": 1}}
    replies = iter([("x", "stop"), (json.dumps({"tool_calls": [call]}), "stop")])
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: next(replies))})
    rt.chat.tool_decision, rt.chat.tool_call_threshold = None, 0.0  # the fixed rule, always "call"
    req = ChatCompletionRequest(tools=[tool], tool_choice="auto", messages=[
        {"role": "user", "content": "Absolute pressure for a gauge pressure of 2.5 atm at an atmospheric pressure "
                                    "of 1 atm?"}])
    out = rt.chat.run_sync(ChatCall(req))
    sent = json.loads(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert sent == {"atm_pressure": 1, "gauge_pressure": 2.5}
    assert out["litegate"]["tool_decision"]["put_in_place"] == 1
    rt.close()
