"""The AST check of bench/bfcl.py (written after BFCL's rules): what it accepts and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_scripts import load

pytestmark = pytest.mark.unit
bfcl = load("bfcl")

AREA = {"name": "geometry.area", "description": "Area of a triangle", "parameters": {
    "type": "dict", "required": ["base", "height"], "properties": {
        "base": {"type": "integer"}, "height": {"type": "float"}, "unit": {"type": "string", "optional": True},
        "tags": {"type": "array", "items": {"type": "string"}}}}}
ITEM = {"id": "simple_9", "function": [AREA],
        "truth": [{"geometry.area": {"base": [10], "height": [5.0], "unit": ["units", ""], "tags": [["a b"], ""]}}]}


def test_right_calls_pass_in_any_spelling_bfcl_forgives() -> None:
    assert bfcl.check(ITEM, [{"geometry.area": {"base": 10, "height": 5}}], "simple") is None  # int for a float
    assert bfcl.check(ITEM, [{"geometry.area": {"base": 10, "height": 5.0, "unit": "Units"}}], "simple") is None
    assert bfcl.check(ITEM, [{"geometry.area": {"base": 10, "height": 5, "tags": ["A-B"]}}], "simple") is None


def test_wrong_calls_fail_with_the_reason() -> None:
    check = bfcl.check
    assert check(ITEM, [], "simple") == "no_call"
    assert check(ITEM, [{"geometry.area": {"base": 10}}], "simple") == "missing_required"
    assert check(ITEM, [{"geometry.area": {"base": 11, "height": 5}}], "simple") == "wrong_value"
    assert check(ITEM, [{"geometry.area": {"base": "10", "height": 5}}], "simple") == "wrong_type"
    assert check(ITEM, [{"geometry.area": {"base": 10, "height": 5, "color": "red"}}], "simple") == \
        "unexpected_parameter"
    assert check(ITEM, [{"other": {"base": 10, "height": 5}}], "simple") == "wrong_function"
    assert check(ITEM, [{"geometry.area": {"base": 10, "height": 5}}] * 2, "simple") == "wrong_count"


def test_parallel_calls_match_in_any_order_and_irrelevance_wants_none() -> None:
    item = {"id": "parallel_1", "function": [AREA], "truth": [
        {"geometry.area": {"base": [1], "height": [2.0]}}, {"geometry.area": {"base": [3], "height": [4.0]}}]}
    calls = [{"geometry.area": {"base": 3, "height": 4}}, {"geometry.area": {"base": 1, "height": 2}}]
    assert bfcl.check(item, calls, "parallel") is None
    assert bfcl.check(item, [calls[0], calls[0]], "parallel").startswith("no_match")
    assert bfcl.check({"function": [AREA]}, [], "irrelevance") is None
    assert bfcl.check({"function": [AREA]}, calls[:1], "irrelevance") == "called"


def test_tools_are_sent_as_openai_functions_and_live_data_is_refused(tmp_path: Path) -> None:
    tools, names = bfcl.openai_tools([AREA])
    fn = tools[0]["function"]
    assert fn["name"] == "geometry_area" and names == {"geometry_area": "geometry.area"}
    assert fn["parameters"]["type"] == "object" and fn["parameters"]["properties"]["height"]["type"] == "number"
    assert "optional" not in fn["parameters"]["properties"]["unit"]
    assert bfcl.text_calls('```json\n{"name": "geometry_area", "arguments": {"base": 1}}\n```', names) == [
        {"geometry.area": {"base": 1}}]
    assert {bfcl.split_of(f"simple_{i}") for i in range(20)} == {"tuning", "untouched"}
    with pytest.raises(SystemExit, match="held out"):
        bfcl.load(tmp_path, "live_simple")
