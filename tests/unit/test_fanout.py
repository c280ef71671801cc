"""Several calls in one turn (litegate.chat.fanout): values a request states that no call uses yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeEngine, runtime

from litegate.chat import ChatCall, ChatCompletionRequest, fanout
from litegate.chat.tools import parse_tools

pytestmark = pytest.mark.unit


def _tool(name: str, description: str, **props: dict) -> list:
    return parse_tools([{"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": list(props)}}}])


CLOCK = _tool("clock_angle", "Angle between the hands of a clock", hours={"type": "integer"},
              minutes={"type": "integer"}, round_to={"type": "integer"})
GENOTYPE = _tool("genotype_frequency", "Genotype frequency by the Hardy Weinberg Principle",
                 allele_frequency={"type": "number"}, genotype={"type": "string", "enum": ["AA", "Aa", "aa"]})
PHASE = _tool("phase_energy", "Energy of a phase change", mass={"type": "integer"},
              phase_transition={"type": "string", "description": "Can be 'melting', 'freezing', 'vaporization'."})
WEATHER = _tool("get_weather", "Current weather for a city", city={"type": "string"})


def _call(name: str, **args: object) -> dict:
    return {"name": name, "arguments": args}


def test_numbers_left_over_ask_for_more_calls_at_the_rate_the_first_used_them() -> None:
    request = "What is the angle at 3:15, rounded to 2 decimal places, and at 8:20 and 11:50?"
    first = [_call("clock_angle", hours=3, minutes=15, round_to=2)]
    assert fanout.left_over(request, CLOCK, first) == {("number", 8.0): 1, ("number", 20.0): 1,
                                                        ("number", 11.0): 1, ("number", 50.0): 1}
    assert fanout.calls_wanted(request, CLOCK, first, limit=8) == 3
    assert fanout.calls_wanted(request, CLOCK, first, limit=1) == 0  # parallel calls not allowed


def test_a_request_for_one_thing_asks_for_nothing_more() -> None:
    request = "What's the weather in Lisbon?"
    assert fanout.calls_wanted(request, WEATHER, [_call("get_weather", city="Lisbon")], limit=8) == 0
    assert fanout.calls_wanted(request, WEATHER, [], limit=8) == 0


def test_options_differing_by_case_stay_apart_and_names_from_the_tool_are_not_values() -> None:
    request = ("The dominant allele's frequency is 0.7. The frequency of genotypes (AA), (Aa) and (aa) "
               "by the Hardy Weinberg Principle?")
    first = [_call("genotype_frequency", allele_frequency=0.7, genotype="AA")]
    assert fanout.left_over(request, GENOTYPE, first) == {("text", "Aa"): 1, ("text", "aa"): 1}


def test_an_option_stated_as_another_form_of_its_word_counts() -> None:
    request = "500 grams of ice: first melting it, then freezing it, then vaporizing it."
    first = [_call("phase_energy", mass=500, phase_transition="melting")]
    assert set(fanout.left_over(request, PHASE, first)) == {("text", "freezing"), ("text", "vaporization")}


def test_added_calls_are_kept_only_when_they_use_a_left_over_value_and_repeat_nothing() -> None:
    request = "What is the angle at 3:15 and at 8:20?"
    first = [_call("clock_angle", hours=3, minutes=15, round_to=2)]
    again = first + [_call("clock_angle", hours=3, minutes=15, round_to=2),  # a repeat
                     _call("clock_angle", hours=4, minutes=0, round_to=2),  # values nobody stated
                     _call("clock_angle", hours=8, minutes=20, round_to=2)]
    assert fanout.kept(first, again, request, CLOCK) == [first[0], again[3]]


TRIANGLE = _tool("triangle_area", "Area of a triangle", base={"type": "number"}, height={"type": "number"},
                 unit={"type": "string", "description": "The unit of the lengths"})
GROWTH = _tool("future_value", "Future value of an investment", principal={"type": "number"},
               rate={"type": "number", "description": "The annual rate as a fraction"}, years={"type": "integer"})
COLOR = _tool("color_codes", "RGB and HEX codes of a color", color={"type": "string"})
CELL = _tool("cell_info", "Structure and functioning of a type of cell", cell_type={"type": "string"},
             detailed={"type": "boolean"})
SCULPTURES = _tool("find_sculptures", "Sculptures by an artist in a city", artist={"type": "string"},
                   city={"type": "string"})


def test_a_single_due_call_stays_single_when_the_request_states_units_percentages_or_exponents() -> None:
    assert fanout.calls_wanted("Find the area of a triangle with a base of 10 units and height of 5 units.",
                               TRIANGLE, [_call("triangle_area", base=10, height=5, unit="units")], limit=8) == 0
    # "5%" sent as 0.05; the 2 of "m/s^2" and the parts of "1e-9" are no values of their own
    request = "The future value of $5,000 at 5% a year for 3 years (in m/s^2, within 1e-9)?"
    assert fanout.left_over(request, GROWTH, [_call("future_value", principal=5000, rate=0.05, years=3)]) == {
        ("number", 1e-9): 1}
    assert fanout.calls_wanted("Sculptures by Michelangelo in Rome, Italy.", SCULPTURES,
                               [_call("find_sculptures", artist="Michelangelo", city="Rome")], limit=8) == 0


def test_the_other_items_of_a_list_the_first_call_took_a_word_from_are_left_over() -> None:
    request = "What are the RGB and HEX color values for navy, purple and maroon?"
    first = [_call("color_codes", color="navy")]
    assert fanout.left_over(request, COLOR, first) == {("text", "purple"): 1, ("text", "maroon"): 1}
    assert fanout.calls_wanted(request, COLOR, first, limit=8) == 3
    # a list needs an "and" or "or": "for air, given its temperature" is no list
    assert fanout.calls_wanted("Heat capacity for air, given its temperature", COLOR,
                               [_call("color_codes", color="air")], limit=8) == 0


def test_the_same_noun_after_another_word_is_another_item() -> None:
    request = ("A detailed description of a neuron cell and then compare it with a less detailed description of "
               "a muscle cell?")
    first = [_call("cell_info", cell_type="neuron_cell", detailed=True)]
    assert fanout.left_over(request, CELL, first) == {("text", "muscle cell"): 1, ("flag", "detailed=False"): 1}
    again = first + [_call("cell_info", cell_type="muscle", detailed=False)]
    assert fanout.kept(first, again, request, CELL) == again


def test_a_yes_or_no_option_stated_both_ways_is_two_calls() -> None:
    entropy = _tool("entropy_change", "Entropy change of a process", initial_temp={"type": "integer"},
                    final_temp={"type": "integer"}, isothermal={"type": "boolean"})
    request = ("It starts at 300 Kelvin and ends at 350 Kelvin. The process is isothermal. What is the entropy "
               "change? What if the process is not isothermal?")
    first = [_call("entropy_change", initial_temp=300, final_temp=350, isothermal=True)]
    assert fanout.left_over(request, entropy, first) == {("flag", "isothermal=False"): 1}
    assert fanout.calls_wanted(request, entropy, first, limit=8) == 2
    assert fanout.calls_wanted("The entropy change of an isothermal process from 300 K to 350 K?", entropy,
                               first, limit=8) == 0


def test_names_in_a_list_stay_apart_and_a_qualified_name_is_one() -> None:
    request = "What's the weather in Paris, London and Berlin?"
    assert set(fanout.left_over(request, WEATHER, [_call("get_weather", city="Paris")])) == {
        ("text", "london"), ("text", "berlin")}


def test_the_calls_a_cut_short_reply_completed_are_read() -> None:
    text = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
            '{"name": "get_weather", "arguments": {"city": "Lima"}}, {"name": "get_wea')
    assert fanout.complete_calls(text) == [_call("get_weather", city="Oslo"), _call("get_weather", city="Lima")]
    assert fanout.complete_calls('{"content": "It is') is None


def test_a_round_asks_for_exactly_the_calls_wanted_and_keeps_what_a_cut_reply_completed(tmp_path: Path) -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                                "parameters": {"type": "object", "required": ["city"],
                                                               "properties": {"city": {"type": "string"}}}}}
    def one(city: str) -> str:
        return json.dumps({"name": "get_weather", "arguments": {"city": city}})

    replies = iter([("x", "stop"), (f'{{"tool_calls": [{one("Oslo")}]}}', "stop"),
                    (f'{{"tool_calls": [{one("Oslo")}, {one("Lima")}, {one("Quito")}, {{"name": "get_wea', "length")])
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: next(replies))})
    rt.chat.tool_decision, rt.chat.tool_call_threshold = None, 0.0  # the fixed rule, always "call"
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "Weather in Oslo, Lima and Quito?"}],
                                tools=[weather], tool_choice="auto", max_tokens=60)
    out = rt.chat.run_sync(ChatCall(req))
    calls = [json.loads(c["function"]["arguments"])["city"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert calls == ["Oslo", "Lima", "Quito"] and out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["litegate"]["tool_decision"]["fan_out_rounds"] == [{"wanted": 3, "written": 3, "kept": 2}]
    rt.close()
