"""Values read from a conversation (litegate.chat.values), and the argument check that uses them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from litegate.chat.grounding import check_calls, kept_calls
from litegate.chat.request import ChatCompletionRequest, prepare_chat
from litegate.chat.tools import parse_tools
from litegate.chat.values import (
    as_date,
    as_number,
    conform,
    currencies,
    currency_code,
    dates,
    numbers,
    percents,
    unit_symbol,
    units,
)

pytestmark = pytest.mark.unit


def _fn(name: str, description: str, required: list[str], **props: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": required}}}


ROE = _fn("calculate_return_on_equity", "Return on equity from net income and shareholder equity",
          ["net_income", "shareholder_equity"], net_income={"type": "number"}, shareholder_equity={"type": "number"},
          dividends_paid={"type": "number", "description": "dividends paid (default 0)"})
CONVERT = _fn("convert_currency", "Convert an amount between currencies", ["amount", "source", "target"],
              amount={"type": "number"}, source={"type": "string"}, target={"type": "string"})
DISTANCE = _fn("route_distance", "Distance of a route", ["origin", "destination"],
               origin={"type": "string"}, destination={"type": "string"}, unit={"type": "string"})
MEETING = _fn("schedule_meeting", "Schedule a meeting", ["title", "date"], title={"type": "string"},
              date={"type": "string"})
FUNCTIONS = parse_tools([ROE, CONVERT, DISTANCE, MEETING])


def check(text: str, name: str, **args):
    return check_calls([{"name": name, "arguments": args}], FUNCTIONS, text)[0]


def test_numbers_in_every_notation() -> None:
    assert {2_000_000, 10_000_000} <= numbers("net income of $2,000,000, equity of $10,000,000")
    assert {2.5, 2_500_000} <= numbers("2.5 million people")
    assert {15, 0.15} <= numbers("a rate of 15%") and 0.07 in numbers("7 percent")
    assert 3000 in numbers("about 3k users") and 4_000_000_000 in numbers("4bn in sales")
    assert {25, 200, 12, 1.5} <= numbers("twenty-five, two hundred, a dozen, one and a half")
    assert 0.75 in numbers("3/4 of it") and 1_200_000 in numbers("1'200'000 inhabitants")
    assert -3 in numbers("b = -3") and 0.5 in numbers("a probability of .5")
    assert numbers("no figures here") == set()


def test_percentages_as_stated() -> None:
    assert percents("a rate of 15%, 7 percent, 2.5 per cent and 3 pct") == {15, 7, 2.5, 3}
    assert percents("15 people, 0.15 of them") == set()


def test_a_value_as_a_number() -> None:
    assert as_number("$2,000") == 2000 and as_number("15%") == 15 and as_number(3) == 3.0
    assert as_number(True) is None and as_number("Paris") is None and as_number("10:30") is None


def test_currencies_by_name_symbol_and_code() -> None:
    assert currencies("How many Canadian dollars for 500 US dollars?") == {"CAD", "USD"}
    assert currencies("Canadian dollars to euros") == {"CAD", "EUR"}  # no US dollar named
    assert currencies("£20 in yen") == {"GBP", "JPY"} and currencies("convert 5 EUR") == {"EUR"}
    assert currency_code("US Dollars") == "USD" and currency_code("usd") == "USD" and currency_code("Paris") is None


def test_units_by_name_and_symbol() -> None:
    assert units("5 kilometres and 3kg, then 20 miles") == {"km", "kg", "mi"}
    assert unit_symbol("Kilometers") == "km" and unit_symbol("kg") == "kg" and unit_symbol("blue") is None
    assert "m" not in units("I am here")  # a lone letter is a unit only after a number
    # unit names that are everyday words count only after a number
    assert units("the first circle is 5cm wide, the second circle 10cm") == {"cm"}
    assert units("within 5 seconds, a 10-minute clip") == {"s", "min"}


def test_dates_written_out_and_relative() -> None:
    today = dt.date(2026, 12, 5)  # a Saturday
    assert dt.date(2026, 12, 6) in dates("tomorrow", today) and dt.date(2026, 12, 4) in dates("yesterday", today)
    assert dt.date(2026, 12, 11) in dates("next Friday", today) and dt.date(2026, 12, 8) in dates("in 3 days", today)
    assert dt.date(2024, 3, 3) in dates("on March 3rd, 2024", today) and dt.date(2026, 3, 4) in dates("4 March", today)
    assert {dt.date(2024, 5, 4), dt.date(2024, 4, 5)} <= dates("4/5/2024", today)  # either way round
    assert as_date("2026-12-06T10:00") == dt.date(2026, 12, 6) and as_date("soon") is None


def test_calls_that_copy_numbers_in_another_notation_are_kept() -> None:
    roe = check("net income of $2,000,000 and shareholder equity of $10,000,000", "calculate_return_on_equity",
                net_income=2000000, shareholder_equity=10000000)
    assert roe.kept and roe.grounded == ["net_income", "shareholder_equity"]
    made_up = check("What is return on equity?", "calculate_return_on_equity", net_income=100, shareholder_equity=50)
    assert not made_up.kept and made_up.invented == ["net_income", "shareholder_equity"]


def test_currency_codes_derived_from_names_are_grounded_and_others_are_not() -> None:
    ok = check("How many Canadian dollars for 500 US dollars?", "convert_currency", amount=500, source="USD",
               target="CAD")
    assert ok.kept and not ok.invented
    wrong = check("How many Canadian dollars for 500 US dollars?", "convert_currency", amount=500, source="USD",
                  target="GBP")
    assert wrong.invented == ["target"]


def test_a_unit_the_conversation_does_not_state_becomes_the_one_it_states() -> None:
    calls = [{"name": "route_distance", "arguments": {"origin": "Oslo", "destination": "Bergen", "unit": "mi"}}]
    checks = check_calls(calls, FUNCTIONS, "How far is it from Oslo to Bergen in kilometres?")
    assert checks[0].corrected == {"unit": "km"} and kept_calls(calls, checks)[0]["arguments"]["unit"] == "km"
    # two units stated (a conversion): the model's choice stands, and so does a unit that is stated
    assert check_calls(calls, FUNCTIONS, "Oslo to Bergen: 5 km or 3 miles?")[0].corrected == {}
    assert check_calls(calls, FUNCTIONS, "How far is it from Oslo to Bergen in miles?")[0].corrected == {}
    circle = parse_tools([_fn("circumference", "Circumference of a circle", ["radius"], radius={"type": "number"},
                              unit={"type": "string", "enum": ["m", "cm", "in"]})])
    call = [{"name": "circumference", "arguments": {"radius": 5, "unit": "m"}}]
    fixed = check_calls(call, circle, "the circumference of a circle with a radius of 5cm")
    assert kept_calls(call, fixed) == [{"name": "circumference", "arguments": {"radius": 5, "unit": "cm"}}]
    ordinal = check_calls(call, circle, "the first circle has a radius of 5cm, the second circle 10cm")
    assert ordinal[0].corrected == {"unit": "cm"}  # "second" here is an ordinal, not a unit of time


def test_optional_arguments_the_conversation_does_not_support_are_left_out() -> None:
    calls = [{"name": "route_distance", "arguments": {"origin": "Oslo", "destination": "Bergen", "unit": "miles"}}]
    checks = check_calls(calls, FUNCTIONS, "How far is it from Oslo to Bergen?")
    assert checks[0].left_out == ["unit"] and kept_calls(calls, checks) == [
        {"name": "route_distance", "arguments": {"origin": "Oslo", "destination": "Bergen"}}]
    stated = check_calls(calls, FUNCTIONS, "How far is it from Oslo to Bergen in miles?")
    assert stated[0].left_out == [] and kept_calls(calls, stated) == calls
    # a default the tool itself names is not made up
    assert check("net income 5000, equity 20000", "calculate_return_on_equity", net_income=5000,
                 shareholder_equity=20000, dividends_paid=0).left_out == []


def test_relative_dates_ground_the_date_they_name() -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert check("Set up the budget review tomorrow", "schedule_meeting", title="budget review",
                 date=tomorrow).kept
    assert check("Set up the budget review", "schedule_meeting", title="budget review",
                 date="2031-01-01").invented == ["date"]


def test_required_values_the_user_did_not_give_are_asked_for() -> None:
    from litegate.chat.grounding import ask_for_missing

    flights = parse_tools([_fn("search_flights", "Find flights", ["origin", "destination", "date"],
                               origin={"type": "string", "description": "The departure city."},
                               destination={"type": "string", "description": "The arrival city."},
                               date={"type": "string"})])
    calls = [{"name": "search_flights", "arguments": {"origin": "Oslo", "destination": "Paris", "date": "2031-01-01"}}]
    checks = check_calls(calls, flights, "I need a flight from Oslo")
    assert not checks[0].kept and checks[0].invented == ["destination", "date"]
    assert ask_for_missing(calls, checks, flights) == (
        "To use search_flights I need the destination (the arrival city) and date. Could you tell me?")
    # nothing of the call came from the conversation: not meant, so nothing to ask
    unrelated = check_calls(calls, flights, "How fast are trains?")
    assert ask_for_missing(calls, unrelated, flights) is None


def test_values_are_spelled_as_the_schema_spells_them() -> None:
    schema = {"type": "object", "properties": {
        "country": {"type": "string", "enum": ["GB", "US"]}, "currency": {"type": "string", "enum": ["USD", "EUR"]},
        "unit": {"type": "string", "enum": ["km", "mi"]}, "count": {"type": "integer"}, "rate": {"type": "number"},
        "regions": {"type": "array", "items": {"type": "string", "enum": ["North_America", "Europe"]}},
        "owner": {"type": "object", "properties": {"tier": {"type": "string", "enum": ["Gold", "Silver"]}}}}}
    given = {"country": "gb", "currency": "US dollars", "unit": "kilometers", "count": "2,000", "rate": "3.5",
             "regions": ["north america"], "owner": {"tier": "GOLD"}}
    assert conform(given, schema) == {"country": "GB", "currency": "USD", "unit": "km", "count": 2000, "rate": 3.5,
                                      "regions": ["North_America"], "owner": {"tier": "Gold"}}


def test_values_that_differ_in_more_than_notation_are_left_for_the_check() -> None:
    assert conform("UK", {"enum": ["GB", "US"]}) == "UK"  # another value, not another spelling
    assert conform("celsius", {"enum": ["Celsius", "CELSIUS"]}) == "celsius"  # two entries fit: no guess
    assert conform("2.5", {"type": "integer"}) == "2.5"
    assert conform("about ten", {"type": "number"}) == "about ten"
    assert conform(7, {"type": "string", "enum": ["7"]}) == 7


def test_a_reply_read_after_the_fact_gets_enum_entries_in_the_schemas_case() -> None:
    tools = [_fn("set_thermostat", "Set the heating", ["mode"],
                 mode={"type": "string", "enum": ["Heat", "Cool"]}, degrees={"type": "integer"})]
    prepared = prepare_chat(ChatCompletionRequest(messages=[{"role": "user", "content": "heat to 21"}], tools=tools,
                                                  tool_choice="required"))
    text = json.dumps({"tool_calls": [{"name": "set_thermostat", "arguments": {"mode": "heat", "degrees": "21"}}]})
    result = prepared.finish({"choices": [{"message": {"role": "assistant", "content": text},
                                           "finish_reason": "stop"}]})
    call = result["choices"][0]["message"]["tool_calls"][0]["function"]
    assert json.loads(call["arguments"]) == {"mode": "Heat", "degrees": 21}
