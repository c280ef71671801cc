"""The argument check behind ``tool_choice: "auto"`` (litegate.chat.grounding), on its own."""

from __future__ import annotations

import pytest

from litegate.chat.grounding import check_calls, conversation_text, kept_calls
from litegate.chat.tools import parse_tools

pytestmark = pytest.mark.unit

FLIGHTS = {"type": "function", "function": {
    "name": "search_flights", "description": "Find flights between two cities on a date",
    "parameters": {"type": "object", "required": ["origin", "destination", "date"], "properties": {
        "origin": {"type": "string"}, "destination": {"type": "string"}, "date": {"type": "string"},
        "cabin": {"type": "string", "enum": ["economy", "business"]}, "note": {"type": "string"}}}}}
TABLE = {"type": "function", "function": {
    "name": "book_table", "description": "Reserve a table at a restaurant",
    "parameters": {"type": "object", "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"},
                                                    "vegan": {"type": "boolean"}}}}}
FUNCTIONS = parse_tools([FLIGHTS, TABLE])


def check(text: str, name: str, **args):
    return check_calls([{"name": name, "arguments": args}], FUNCTIONS, text)[0]


def test_values_taken_from_the_request_pass_and_made_up_ones_do_not() -> None:
    ok = check("Flights from Madrid to Lisbon on 2026-11-24?", "search_flights", origin="Madrid",
               destination="Lisboa", date="2026-11-24")  # "Lisboa" for "Lisbon" passes on its stem
    assert ok.kept and ok.grounded == ["origin", "destination", "date"] and not ok.invented
    made_up = check("How fast do high-speed trains go?", "search_flights", origin="London", destination="Paris",
                    date="2026-01-01")
    assert not made_up.kept and made_up.invented == ["origin", "destination", "date"]


def test_half_the_arguments_is_enough_and_normalised_values_count_by_their_parts() -> None:
    assert check("Flights Oslo to Bergen please", "search_flights", origin="Oslo", destination="Nowhere",
                 date="2026-11-27").kept is False  # 1 of 3: the city and the date were made up
    assert check("Oslo to Bergen please", "search_flights", origin="Oslo", destination="Bergen",
                 date="2026-11-27").kept  # 2 of 3


def test_a_date_written_out_passes_when_the_conversation_names_a_time() -> None:
    friday = check("Flights Oslo to Bergen on Friday", "search_flights", origin="Oslo", destination="Nowhere",
                   date="2026-11-27")
    assert friday.grounded == ["origin", "date"] and friday.kept
    assert check("a table at Nopa tonight", "book_table", restaurant="Nopa", people="19:30").grounded == [
        "restaurant", "people"]
    # no time named: a date is as made up as any other value
    assert check("a trip from Oslo to Bergen", "search_flights", origin="Oslo", destination="Bergen",
                 date="2026-11-27").invented == ["date"]


def test_words_of_the_tool_itself_and_common_words_prove_nothing() -> None:
    # "restaurant" is the tool's own word; "people" is an integer the user never said
    echo = check("What is a good tip at a restaurant?", "book_table", restaurant="The Restaurant", people=2)
    assert echo.invented == ["people"] and not echo.kept
    # booleans, enums and optional arguments are not judged; a call with nothing to judge is kept
    assert check("book something", "book_table", vegan=True).kept
    flagged = check("Oslo to Rome on 2026-12-03", "search_flights", origin="Oslo", destination="Rome",
                    date="2026-12-03", cabin="business", note="window seat")
    assert flagged.grounded == ["origin", "destination", "date"] and not flagged.invented


def test_numbers_match_without_leading_zeros_and_the_listing_is_left_out() -> None:
    assert check("a table for 004 at Nopa", "book_table", restaurant="Nopa", people=4).kept
    listing = "You can call: book_table for Luigi's"
    text = conversation_text([{"role": "system", "content": "Be brief.\n" + listing},
                              {"role": "user", "content": [{"type": "text", "text": "a table please"}]}],
                             leave_out=listing)
    assert "Luigi" not in text and "a table please" in text
    assert not check(text, "book_table", restaurant="Luigi's", people=2).kept


def test_numbers_written_as_words_ground_their_digits() -> None:
    assert check("a table at Nopa for two", "book_table", restaurant="Nopa", people=2).grounded == ["restaurant",
                                                                                                    "people"]
    assert check("a table at Nopa for twenty people", "book_table", restaurant="Nopa", people="20").kept


def test_values_in_scripts_without_spaces_are_looked_for_as_characters() -> None:
    assert check("请帮我订北京饭店的桌子，四个人", "book_table", restaurant="北京饭店", people=4).kept
    assert not check("今天天气怎么样", "book_table", restaurant="北京饭店").kept
    assert check("จองโต๊ะที่ร้านบ้านไทย", "book_table", restaurant="บ้านไทย").kept
    assert check("Ресторан «Пушкин», на двоих", "book_table", restaurant="Пушкин", people=2).kept


STATS = parse_tools([{"type": "function", "function": {
    "name": "p_value", "description": "The p-value of a test on a sample",
    "parameters": {"type": "object", "required": ["sample_mean", "sample_size"], "properties": {
        "sample_mean": {"type": "number"}, "sample_size": {"type": "integer"},
        "tax_rate": {"type": "number", "description": "The tax rate, default is 0.2."},
        "alpha": {"type": "number", "description": "Significance level, e.g. 0.01 or 0.05."},
        "alternative": {"type": "string", "enum": ["less", "greater", "two_sided"]},
        "database": {"type": "string", "description": "The database to search.", "default": "GenBank"},
        "state": {"type": "string", "description": "The state of the board, e.g. pieces and positions."}}}}}])


def stats(text: str, **args):
    return check_calls([{"name": "p_value", "arguments": args}], STATS, text)[0]


def test_optional_values_copied_from_the_listing_or_options_never_named_are_left_out() -> None:
    made_up = stats("The p-value for a sample mean of 98.2 with 40 samples", sample_mean=98.2, sample_size=40,
                    alpha=0.05, alternative="less", state="pieces and positions")
    assert made_up.kept and made_up.grounded == ["sample_mean", "sample_size"]
    assert made_up.left_out == ["alpha", "alternative", "state"] and made_up.made_up == 3
    said = stats("p-value of mean 98.2, 40 samples, alpha 0.05, two sided, pieces on e4", sample_mean=98.2,
                 sample_size=40, alpha=0.05, alternative="two_sided", state="pieces on e4")
    assert said.left_out == [] and said.made_up == 0


def test_the_schema_default_passes_as_given_or_as_the_description_states_it() -> None:
    defaults = stats("p-value for mean 98.2 and 40 samples", sample_mean=98.2, sample_size=40, tax_rate=0.2,
                     database="GenBank")
    assert defaults.left_out == [] and defaults.invented == [] and defaults.made_up == 0
    assert stats("mean 98.2, 40 samples", sample_mean=98.2, sample_size=40, tax_rate=0.3).left_out == ["tax_rate"]


def test_an_optional_default_the_request_does_not_ask_for_is_dropped_without_counting_as_made_up() -> None:
    defaults = stats("p-value for mean 98.2 and 40 samples", sample_mean=98.2, sample_size=40, tax_rate=0.2,
                     database="GenBank")
    assert defaults.defaults == ["tax_rate", "database"] and defaults.made_up == 0
    assert kept_calls([{"name": "p_value", "arguments": {"sample_mean": 98.2, "sample_size": 40, "tax_rate": 0.2}}],
                      [defaults]) == [{"name": "p_value", "arguments": {"sample_mean": 98.2, "sample_size": 40}}]
    asked = stats("mean 98.2, 40 samples, a tax rate of 0.2, in GenBank", sample_mean=98.2, sample_size=40,
                  tax_rate=0.2, database="GenBank")  # stated by the user: sent as asked
    assert asked.defaults == [] and asked.made_up == 0


RATES = parse_tools([{"type": "function", "function": {
    "name": "future_value", "description": "The future value of a deposit",
    "parameters": {"type": "object", "required": ["deposit", "rate"], "properties": {
        "deposit": {"type": "integer"}, "rate": {"type": "number", "description": "The annual interest rate."},
        "fee": {"type": "number", "description": "The fee in percent."},
        "share": {"type": "number", "description": "Share of the deposit, as a decimal between 0 and 1."},
        "years": {"type": "integer", "description": "The growth rate period in years."}}}}}])


def test_a_stated_percentage_takes_the_form_of_its_parameter() -> None:
    text = "A deposit of $1,000 at 3% a year, a fee of 0.5% and 40% of it, for 5 years"
    call = {"name": "future_value", "arguments": {"deposit": 1000, "rate": 3, "fee": 0.005, "share": 40, "years": 5}}
    done = check_calls([call], RATES, text)[0]
    assert done.corrected == {"rate": 0.03, "fee": 0.5, "share": 0.4} and done.grounded == ["deposit", "rate"]
    assert kept_calls([call], [done])[0]["arguments"] == {"deposit": 1000, "rate": 0.03, "fee": 0.5, "share": 0.4,
                                                          "years": 5}
    as_given = {"name": "future_value", "arguments": {"deposit": 1000, "rate": 0.03, "fee": 0.5, "share": 0.4}}
    assert check_calls([as_given], RATES, text)[0].corrected == {}  # already in its form
    assert check_calls([call], RATES, "A deposit of 1000 at a rate of 3, for 5 years")[0].corrected == {}  # no "%"


def test_a_required_value_copied_from_the_listing_counts_as_made_up() -> None:
    copied = check_calls([{"name": "p_value", "arguments": {"sample_mean": 0.05, "sample_size": 40}}], STATS,
                         "What is the p-value of 40 samples?")[0]
    assert copied.invented == ["sample_mean"] and copied.grounded == ["sample_size"]


def test_a_description_sent_as_the_value_is_made_up_and_a_dict_is_judged_by_its_parts() -> None:
    echo = stats("What is a sample of 40?", sample_mean=1.0, sample_size=40,
                 state="The state of the board")
    assert echo.left_out == ["state"]
    books = parse_tools([{"type": "function", "function": {
        "name": "find_homes", "description": "Homes for sale", "parameters": {
            "type": "object", "required": ["budget"], "properties": {"budget": {"type": "object"}, "extras": {
                "type": "array", "items": {"type": "string", "enum": ["Garage", "Garden", "Pool"]}}}}}}])
    call = {"name": "find_homes", "arguments": {"budget": {"min": 300000, "max": 400000},
                                                "extras": ["Garages", "Pool"]}}
    said = check_calls([call], books, "a house within $300,000 to $400,000 with a garage")[0]
    assert said.grounded == ["budget"] and said.corrected == {"extras": ["Garages"]}  # a pool was never asked for
    call["arguments"]["extras"] = ["Garages"]
    assert check_calls([call], books, "a house within $300,000 to $400,000 with a garage")[0].left_out == []
    assert check_calls([call], books, "a house for $300,000 to $400,000")[0].left_out == ["extras"]


def test_a_list_of_options_keeps_the_ones_the_conversation_names() -> None:
    finder = parse_tools([{"type": "function", "function": {
        "name": "find_restaurant", "description": "Restaurants for a group",
        "parameters": {"type": "object", "required": ["location"], "properties": {
            "location": {"type": "string"},
            "cuisine": {"type": "array", "items": {"type": "string", "enum": ["Seafood", "Italian", "Indian"]}}}}}}])
    text = "A seafood restaurant in Seattle for five"

    def cuisine(value):
        return check_calls([{"name": "find_restaurant", "arguments": {"location": "Seattle", "cuisine": value}}],
                           finder, text)[0]

    assert cuisine(["Seafood", "Italian"]).corrected == {"cuisine": ["Seafood"]}  # the one asked for
    assert cuisine(["Seafood"]).corrected == {} and cuisine(["Seafood"]).made_up == 0
    assert cuisine(["Italian", "Indian"]).left_out == ["cuisine"]  # none named: left out whole, as before
    library = parse_tools([{"type": "function", "function": {
        "name": "find_library", "description": "Public libraries nearby",
        "parameters": {"type": "object", "required": ["location", "facilities"], "properties": {
            "location": {"type": "string"}, "facilities": {"type": "array", "items": {
                "type": "string", "enum": ["Wi-Fi", "Reading Room", "Fiction", "Children Section", "Cafe"]}}}}}}])
    every = check_calls([{"name": "find_library", "arguments": {"location": "Boston", "facilities": [
        "Wi-Fi", "Reading Room", "Fiction", "Children Section", "Cafe"]}}], library,
        "The nearest library in Boston with an English fiction section and free Wi-Fi")[0]
    assert every.corrected == {"facilities": ["Wi-Fi", "Fiction"]}  # required too; each option by all its words
