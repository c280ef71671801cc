"""Values a "respectively" request pairs, put in the calls they belong to (litegate.chat.pairing)."""

from __future__ import annotations

import pytest

from litegate.chat.pairing import pair_respectively

pytestmark = pytest.mark.unit


def call(name: str, **args):
    return {"name": name, "arguments": args}


def test_a_list_sent_whole_to_every_call_is_split_by_the_request_order() -> None:
    request = ("Stock prices for Apple, Microsoft, Amazon, and Tesla over 1 week, 2 weeks, 3 weeks, and 1 month "
               "respectively?")
    companies = ["Apple", "Microsoft", "Amazon", "Tesla"]
    calls = [call("get_stock_prices", companies=companies, duration=d)
             for d in ["1 week", "2 weeks", "3 weeks", "1 month"]]
    fixed = pair_respectively(calls, request)
    assert [(c["arguments"]["companies"], c["arguments"]["duration"]) for c in fixed] == [
        (["Apple"], "1 week"), (["Microsoft"], "2 weeks"), (["Amazon"], "3 weeks"), (["Tesla"], "1 month")]


def test_values_paired_the_wrong_way_round_are_paired_by_position() -> None:
    request = "Play Taylor Swift and Maroon 5 for 20 minutes and 15 minutes respectively."
    calls = [call("play", artist="Taylor Swift", duration=15), call("play", artist="Maroon 5", duration=20)]
    assert [c["arguments"] for c in pair_respectively(calls, request)] == [
        {"artist": "Taylor Swift", "duration": 20}, {"artist": "Maroon 5", "duration": 15}]
    right = [call("play", artist="Taylor Swift", duration=20), call("play", artist="Maroon 5", duration=15)]
    assert pair_respectively(right, request) == right


def test_without_respectively_or_located_values_nothing_changes() -> None:
    calls = [call("play", artist="Taylor Swift", duration=15), call("play", artist="Maroon 5", duration=20)]
    # no "respectively": each duration may be meant for both, so the model's pairing stands
    assert pair_respectively(calls, "Play Taylor Swift and Maroon 5 for 20 and 15 minutes.") == calls
    # a value the request does not state: the calls are left as they are
    made_up = [call("play", artist="Taylor Swift", duration=30), call("play", artist="Maroon 5", duration=20)]
    assert pair_respectively(made_up, "Taylor Swift and Maroon 5 for 20 and 15 minutes respectively") == made_up
    # every combination asked for (values repeat across calls): nothing to pair
    combos = [call("points", substance=s, level=lv) for s in ("water", "iron") for lv in (0, 1000)]
    request = "boiling points of water and iron at sea levels of 0 meters and 1000 meters respectively"
    assert pair_respectively(combos, request) == combos


def test_calls_of_other_tools_keep_their_values() -> None:
    request = "Drama and Comedy movies of Leonardo DiCaprio in 2010 and 2012 respectively, and the weather in Rome"
    calls = [call("movies", actor="Leonardo DiCaprio", year=2012, category="Drama"),
             call("weather", city="Rome"),
             call("movies", actor="Leonardo DiCaprio", year=2010, category="Comedy")]
    fixed = pair_respectively(calls, request)
    assert fixed[1] == calls[1]
    assert {(c["arguments"]["year"], c["arguments"]["category"]) for c in (fixed[0], fixed[2])} == {
        (2010, "Drama"), (2012, "Comedy")}
