"""Several calls in one turn (litegate.chat.fanout): values a request states that no call uses yet."""

from __future__ import annotations

import pytest

from litegate.chat import fanout
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
