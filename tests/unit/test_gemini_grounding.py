"""Gemini's metadata filter syntax read into collection filters, and the fileSearch tool checked."""

from __future__ import annotations

import pytest

from litegate.errors import InvalidRequest
from litegate.server.gemini.grounding import file_search_tool, parse_filter

pytestmark = pytest.mark.unit


def test_comparisons_and_or_and_parentheses() -> None:
    assert parse_filter('dept = "hr"') == {"type": "eq", "key": "dept", "value": "hr"}
    assert parse_filter('dept != "hr" AND year >= 2020') == {"type": "and", "filters": [
        {"type": "ne", "key": "dept", "value": "hr"}, {"type": "gte", "key": "year", "value": 2020}]}
    assert parse_filter('a = 1 OR b < 2.5 AND c = "x \\"y\\""') == {"type": "or", "filters": [
        {"type": "eq", "key": "a", "value": 1}, {"type": "and", "filters": [
            {"type": "lt", "key": "b", "value": 2.5}, {"type": "eq", "key": "c", "value": 'x "y"'}]}]}
    assert parse_filter('(a = 1 OR a = 2) AND b = "z"')["type"] == "and"


@pytest.mark.parametrize("bad", ["dept = = ops", "dept", '(a = 1', 'a = 1 AND', "a ~ 1", "x" * 2001,
                                 "(" * 20 + "a = 1" + ")" * 20])
def test_bad_filters_are_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_filter(bad)
    assert e.value.param == "tools[0].fileSearch.metadataFilter"


def test_the_tool_is_checked() -> None:
    assert file_search_tool({"contents": []}) is None
    tool = file_search_tool({"tools": [{"fileSearch": {"fileSearchStoreNames": ["fileSearchStores/vs_1"],
                                                       "topK": 3, "metadataFilter": 'k = "v"'}}]})
    assert tool == {"stores": ["vs_1"], "top_k": 3, "filters": {"type": "eq", "key": "k", "value": "v"}}
    for bad in ({"fileSearchStoreNames": []}, {"fileSearchStoreNames": ["s"], "topK": 0}, "nope"):
        with pytest.raises(InvalidRequest):
            file_search_tool({"tools": [{"fileSearch": bad}]})
    with pytest.raises(InvalidRequest):  # other tools beside it
        file_search_tool({"tools": [{"fileSearch": {"fileSearchStoreNames": ["s"]}}, {"functionDeclarations": []}]})
