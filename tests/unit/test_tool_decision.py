"""The learned call decision (litegate.chat.decision) on its own, with the fake encoder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder, FakeEngine

from litegate.chat.decision import (
    FEATURES,
    SHIPPED,
    AfterCall,
    ToolDecision,
    call_name_cover,
    case_features,
    decide,
    encoder_signals,
    fit,
    load_for,
    logit,
    name_words,
    read_cases,
    refit,
    relevance_messages,
    required_params,
    supplied,
)
from litegate.chat.tools import parse_tools
from litegate.errors import InvalidRequest

pytestmark = pytest.mark.unit

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"]}}}
AREA = {"type": "function", "function": {"name": "triangle_area", "description": "Area of a triangle",
                                         "parameters": {"type": "object", "required": ["base", "height"],
                                                        "properties": {"base": {"type": "number"},
                                                                       "height": {"type": "number"}}}}}


def _row(p_call: float, match: float, overlap: float) -> dict[str, float]:
    return {"logit_p_call": math.log(p_call / (1 - p_call)), "tool_match": match, "param_match": match,
            "overlap": overlap, "fillable": 1.0, "param_mean": match, "param_min": match, "supplied": 1.0,
            "name_cover": match}


def _toy() -> tuple[list[dict[str, float]], list[bool]]:
    due = [_row(p, m, o) for p, m, o in [(0.6, 0.7, 0.8), (0.1, 0.6, 0.6), (0.3, 0.8, 0.5), (0.05, 0.55, 0.7)]]
    not_due = [_row(p, m, o) for p, m, o in [(0.02, 0.3, 0.1), (0.2, 0.2, 0.0), (0.01, 0.45, 0.2), (0.4, 0.1, 0.0)]]
    return due + not_due, [True] * 4 + [False] * 4


def test_a_fitted_decision_separates_due_calls_and_round_trips(tmp_path: Path) -> None:
    rows, labels = _toy()
    model = fit(rows, labels)
    assert [model.probability(r) >= 0.5 for r in rows] == labels
    assert model.probability(_row(0.5, 0.9, 0.9)) > 0.9 > 0.1 > model.probability(_row(0.01, 0.05, 0.0))
    model.save(tmp_path / "d.json")
    again = ToolDecision.load(tmp_path / "d.json")
    assert again.probability(rows[0]) == pytest.approx(model.probability(rows[0]))
    assert len(again.rows) == len(rows) and again.rows[0]["call"] is True
    with pytest.raises(ValueError, match="needs labeled cases of both kinds"):
        fit(rows[:4], labels[:4])


def test_the_bar_for_calls_that_made_up_values_round_trips_and_survives_a_refit(tmp_path: Path) -> None:
    model = fit(*_toy())
    assert model.made_up_threshold is None and not model.declines_made_up(0.1, 3)  # no bar: nothing declined
    model.made_up_threshold = 0.9
    assert model.declines_made_up(0.85, 1) and not model.declines_made_up(0.95, 1)
    assert not model.declines_made_up(0.5, 0) and not model.declines_made_up(None, 2)  # nothing made up / no p_due
    model.save(tmp_path / "d.json")
    again = ToolDecision.load(tmp_path / "d.json")
    assert again.made_up_threshold == 0.9
    assert refit(again, [_row(0.5, 0.9, 0.9)], [True]).made_up_threshold == 0.9


def test_the_after_call_mix_replaces_the_bar_reads_the_cover_only_when_it_weighs_and_round_trips(
        tmp_path: Path) -> None:
    model = fit(*_toy())
    model.made_up_threshold = 0.9
    # made-up values weigh -2, the name's cover +3: a call that made up a value needs a well covered name
    model.after_call = AfterCall([0.5, -2.0, 3.0], -1.0, 0.0)
    asked: list[int] = []

    def cover(value: float):
        return lambda: asked.append(1) or value

    assert model.declines_written(0.95, 1, cover(0.4)) and not model.declines_written(0.95, 1, cover(0.9))
    assert model.declines_written(0.6, 0, cover(0.2)) and not model.declines_written(0.6, 0, cover(0.5))
    assert not model.declines_written(None, 3, cover(0.0)) and len(asked) == 4  # no p_due: nothing to weigh
    model.save(tmp_path / "d.json")
    again = ToolDecision.load(tmp_path / "d.json")
    assert again.after_call == model.after_call and refit(again, [_row(0.5, 0.9, 0.9)], [True]).after_call
    without_cover = AfterCall([1.0, -3.0], 0.0, 0.0, ["logit_p_due", "made_up"])
    model.after_call = without_cover
    assert model.declines_written(0.7, 1, cover(1.0)) and len(asked) == 4  # the cover is never computed
    with pytest.raises(ValueError, match="other features"):
        AfterCall.from_dict({"features": ["logit_p_due", "tool_match"], "coef": [1.0, 1.0], "intercept": 0,
                             "cut": 0})
    saved = json.loads((tmp_path / "d.json").read_text())
    saved["after_call"]["features"] = ["logit_p_due", "tool_match", "name_cover"]
    (tmp_path / "bad.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"bad\.json: an after-call check fitted on other features"):
        ToolDecision.load(tmp_path / "bad.json")


def test_the_called_tool_name_cover_is_the_least_covered_name_word() -> None:
    fn = parse_tools([{"type": "function", "function": {"name": "get_museum_artists", "description": "",
                                                        "parameters": {"type": "object", "properties": {}}}}])[0]
    encoder = FakeEncoder()
    assert call_name_cover(encoder, "Which artists are shown at the museum?", fn) \
        > call_name_cover(encoder, "Who are the famous dancers of the 19th century?", fn)
    assert call_name_cover(encoder, "", fn) == 0.0  # no word of the request to cover the name


def test_a_decision_on_other_features_is_refused(tmp_path: Path) -> None:
    data = fit(*_toy()).as_dict()
    data["features"] = ["tool_match"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refit it"):
        ToolDecision.load(tmp_path / "old.json")


def test_the_users_refit_decision_wins_over_the_shipped_one(tmp_path: Path) -> None:
    shipped = load_for(tmp_path)  # nothing of the user's yet: the package's own
    assert (shipped is None and not SHIPPED.exists()) or shipped.rows == ToolDecision.load(SHIPPED).rows
    base = fit(*_toy())
    rows, labels = [_row(0.02, 0.35, 0.1)] * 3, [True] * 3  # the user says: these are due
    mine = refit(base, rows, labels, weight=5.0)
    assert mine.trained_on["user_cases"] == 3 and len(mine.rows) == len(base.rows) + 3
    assert mine.probability(rows[0]) > base.probability(rows[0])
    mine.save(tmp_path / "tool_decision.json")
    assert load_for(tmp_path).rows == mine.rows


def test_signals_and_the_decision_reported() -> None:
    functions = parse_tools([WEATHER, AREA])
    encoder = FakeEncoder()
    signals = encoder_signals(encoder, "area of a triangle with base 10 and height 5", functions)
    assert set(signals) == set(FEATURES) - {"logit_p_call", "logit_relevance"} and signals["fillable"] == 1.0
    assert encoder_signals(encoder, "area of a triangle", functions)["fillable"] == 0.0  # no numbers to fill
    messages = [{"role": "user", "content": "area of a triangle with base 10 and height 5"}]
    model = fit(*_toy())
    info = decide(model, 0.3, False, messages, functions, encoder)
    assert set(info) == {"p_call", "tool_match", "after_result", "p_due", "call"}
    assert info["call"] == (info["p_due"] >= model.threshold)
    # without a model the fixed rule decides; right after a tool result only a sure model calls
    assert decide(None, 0.6, False, messages, functions, encoder)["call"] is True
    assert decide(None, 0.01, False, messages, functions, encoder, rule=(0.5, 1.01))["call"] is False
    assert decide(model, 0.6, True, messages, functions, encoder)["call"] is False


def test_name_cover_is_the_least_covered_word_of_the_tools_name() -> None:
    weather, area = parse_tools([WEATHER, AREA])
    assert name_words(weather) == ["weather"]  # "get" says how, not what
    camel = parse_tools([{"type": "function", "function": {"name": "calculateFinalPrice", "parameters": {}}}])[0]
    assert name_words(camel) == ["final", "price"]
    encoder = FakeEncoder()  # one bucket per word: a word of the request covers a name word or not
    assert encoder_signals(encoder, "the triangle area with base 10 and height 5", [area])["name_cover"] \
        == pytest.approx(1.0)
    # "area" is stated, "triangle" is not: the name is covered only as well as its least covered word
    assert encoder_signals(encoder, "the area of a square with side 10", [area])["name_cover"] < 0.5
    generic = parse_tools([{"type": "function", "function": {"name": "get_info", "parameters": {}}}])
    assert encoder_signals(encoder, "anything at all", generic)["name_cover"] == 1.0  # nothing to cover


def test_a_decision_fitted_before_a_signal_was_added_still_loads_and_reads_its_own(tmp_path: Path) -> None:
    rows, labels = _toy()
    old = fit(rows, labels, encoder_features=("tool_match", "overlap"))
    old.save(tmp_path / "old.json")
    again = ToolDecision.load(tmp_path / "old.json")
    assert again.encoder_features == ["tool_match", "overlap"] and len(again.coef) == 2
    assert again.probability(rows[0]) == pytest.approx(old.probability(rows[0]))
    mine = refit(again, rows[:2], labels[:2])
    assert mine.encoder_features == ["tool_match", "overlap"]
    encoded: list[str] = []

    class Recording(FakeEncoder):
        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            encoded.extend(texts)
            return super().encode(texts, batch_size)

    messages = [{"role": "user", "content": "area of a triangle with base 10 and height 5"}]
    info = decide(again, 0.3, False, messages, parse_tools([WEATHER, AREA]), Recording())
    assert "p_due" in info and "triangle" not in encoded  # name_cover's words are not encoded for it
    decide(fit(rows, labels), 0.3, False, messages, parse_tools([WEATHER, AREA]), Recording())
    assert "triangle" in encoded and "height" in encoded


def test_supplied_reads_the_request_against_each_required_parameter() -> None:
    weather, area = parse_tools([WEATHER, AREA])
    assert supplied("area of a triangle with base 10 and height 5", required_params(area)) == 1.0
    assert supplied("area of a triangle with base 10", required_params(area)) == 0.5  # one number for two
    assert supplied("area of a triangle", required_params(area)) == 0.0
    assert supplied("what is the weather in Oslo?", required_params(weather)) == 1.0  # a name for the city
    assert supplied("what is the weather like?", required_params(weather)) == 0.0  # no value a city could be
    search = {"name": "search_docs", "description": "Search the docs", "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "description": "what to look for"}, "mode": {"type": "string",
                                                                             "enum": ["fast", "thorough"]}}}}
    docs = parse_tools([{"type": "function", "function": search}])[0]
    assert [k for k, _ in required_params(docs)] == ["query", "mode"]  # none marked required: every one
    assert supplied("find the travel policy, thorough please", required_params(docs)) == 1.0  # free text, an option
    assert supplied("find the travel policy", required_params(docs)) == 0.5


def test_labeled_cases_are_checked_before_any_is_measured() -> None:
    good = {"messages": [{"role": "user", "content": "weather in Oslo"}], "tools": [WEATHER], "call": True}
    assert read_cases([good])[0][2] is True
    with pytest.raises(InvalidRequest, match="line 2: a tool decision case is"):
        read_cases([good, {**good, "call": "yes"}])
    with pytest.raises(InvalidRequest, match="line 1: "):
        read_cases([{**good, "tools": [{"type": "function", "function": {"name": "bad name!"}}]}])


def test_the_encoder_stage_learns_from_rows_without_the_models_probability() -> None:
    rows, labels = _toy()
    cheap = [{k: v for k, v in r.items() if k != "logit_p_call"} for r in rows] * 3  # encoder signals only
    model = fit(cheap + rows, labels * 3 + labels)
    assert model.mix != [0.0, 1.0, 0.0] and model.mix[1] > 0  # the mix was fitted on the measured rows
    assert [model.probability(r) >= 0.5 for r in rows] == labels
    assert sum("logit_p_call" in r for r in model.rows) == len(rows)
    only_cheap = fit(cheap, labels * 3)
    assert only_cheap.mix == [0.0, 1.0, 0.0]  # nothing measured: the encoder stage alone decides


def _with_relevance(rows: list[dict[str, float]], labels: list[bool]) -> list[dict[str, float]]:
    # the model's yes leans the right way on every case but one of each kind
    yes = [0.8, 0.7, 0.3, 0.75, 0.2, 0.35, 0.65, 0.1]
    return [{**r, "logit_relevance": logit(p)} for r, p in zip(rows, yes)]


def test_the_relevance_pass_joins_the_mix_and_is_made_only_when_it_can_tip_the_decision(tmp_path: Path) -> None:
    rows, labels = _toy()
    model = fit(_with_relevance(rows, labels), labels)
    assert model.uses_relevance and model.mix[3] > 0
    assert model.relevance_range == pytest.approx([logit(0.1), logit(0.8)])
    sure, unsure = _row(0.9, 0.95, 1.0), rows[2]
    assert model.settled(sure) is True  # no yes or no moves it: the pass is not made
    functions = parse_tools([WEATHER, AREA])
    messages = [{"role": "user", "content": "area of a triangle with base 10 and height 5"}]
    asked: list[str] = []

    def relevant(request: str, fn: object) -> float:
        asked.append(fn.name)
        return 0.05

    wide = ToolDecision(**{**model.__dict__, "mix": [*model.mix[:3], 50.0]})  # any yes or no tips it
    info = decide(wide, 0.3, False, messages, functions, FakeEncoder(), relevant=relevant)
    assert asked == ["triangle_area"] and info["p_relevant"] == 0.05 and info["relevance_ms"] >= 0
    assert info["call"] is False
    faint = ToolDecision(**{**model.__dict__, "mix": [*model.mix[:3], 1e-9]})  # no answer can tip it
    info = decide(faint, 0.3, False, messages, functions, FakeEncoder(), relevant=relevant)
    assert asked == ["triangle_area"] and "p_relevant" not in info
    # a clear no lowers P(due), clipped to the range it was fitted on
    low, high = ({**unsure, "logit_relevance": logit(p)} for p in (0.01, 0.99))
    assert model.probability(low) < model.probability(high)
    assert model.probability(low) == pytest.approx(model.probability({**unsure, "logit_relevance": logit(0.1)}))
    model.save(tmp_path / "d.json")
    again = ToolDecision.load(tmp_path / "d.json")
    assert again.relevance_range == model.relevance_range and again.probability(low) == pytest.approx(
        model.probability(low))


def test_a_decision_fitted_before_the_relevance_pass_never_asks_for_it(tmp_path: Path) -> None:
    data = fit(*_toy()).as_dict()
    data["features"] = [f for f in FEATURES if f != "logit_relevance"]
    del data["relevance_fill"], data["relevance_range"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = ToolDecision.load(tmp_path / "old.json")
    assert not old.uses_relevance
    messages = [{"role": "user", "content": "area of a triangle with base 10 and height 5"}]

    def relevant(request: str, fn: object) -> float:
        raise AssertionError("the pass was made for a decision that does not read it")

    info = decide(old, 0.3, False, messages, parse_tools([WEATHER, AREA]), FakeEncoder(), relevant=relevant)
    assert "p_relevant" not in info


def test_the_relevance_question_names_the_tool_its_parameters_and_the_request() -> None:
    area = parse_tools([AREA])[0]
    text = relevance_messages("area of a triangle {with} base 10", area)[0]["content"]
    assert "Tool: triangle_area \u2014 Area of a triangle (parameters: base (number); height (number))" in text
    assert "Request: area of a triangle {with} base 10" in text and text.endswith("Answer yes or no.")


def test_a_labeled_case_gets_the_relevance_pass_only_when_the_decision_reads_it() -> None:
    engine = FakeEngine(lambda body: "x")
    messages = [{"role": "user", "content": "area of a triangle with base 10 and height 5"}]
    plain = case_features(engine, FakeEncoder(), messages, [WEATHER, AREA])
    assert "logit_relevance" not in plain and len(engine.bodies) == 1
    row = case_features(engine, FakeEncoder(), messages, [WEATHER, AREA], with_relevance=True)
    asked = engine.bodies[-1]["messages"][-1]["content"]
    assert "Tool: triangle_area" in asked and "Can this tool answer the request exactly?" in asked
    assert engine.bodies[-1]["max_tokens"] == 1 and math.isfinite(row["logit_relevance"])
