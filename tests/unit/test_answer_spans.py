"""Extractive answers: an answer becomes a span its passage holds (or nothing), the model reads
the question's best sentences, and the abstention score is learned and read back."""

from __future__ import annotations

import json
import math

import pytest

from litegate.tasks.abstention import FEATURES, AbstentionModel, answer_probability, fit, logit_p_null, shipped
from litegate.tasks.spans import coverage, focus, sentences, snap, trim

pytestmark = pytest.mark.unit

LEAVE = "Employees get 25 days of paid leave. Travel is reimbursed within 14 days. Sales sold 1.32 million units."


def _span(answer: str, passages: list[str]) -> str | None:
    found = snap(answer, passages)
    return None if found is None else found.text(passages)


def test_an_answer_becomes_whole_words_of_a_passage_or_nothing() -> None:
    assert _span("25 days", [LEAVE]) == "25 days"
    assert _span("25 days of leave per year", [LEAVE]) == "25 days of paid leave"  # padding dropped
    assert _span("1,32 million", [LEAVE]) == "1.32 million"  # separators mixed up, the same number
    assert _span("1", [LEAVE]) is None  # a digit of "14" is not the number 1
    assert _span("5.32 million", [LEAVE]) is None  # an invented figure: "million" alone is no answer
    assert _span("the CEO's phone", [LEAVE]) is None
    assert _span("reimbursing within 14 days", ["x", LEAVE]) == "reimbursed within 14 days"  # another form
    assert snap("reimbursing within 14 days", ["x", LEAVE]).passage == 1  # type: ignore[union-attr]


def test_trim_drops_what_the_question_says_and_keeps_units() -> None:
    assert trim("It unseated Avatar", "What movie did Spectre unseat?") == "Avatar"
    assert trim("of Lanayru", "Where does Link go?") == "Lanayru"
    assert trim("within 30 days", "How many days do I have?") == "within 30 days"
    assert trim("in the late 1990s", "When did she become popular?") == "in the late 1990s"


def test_focus_keeps_whole_passages_that_fit_and_else_the_best_sentences() -> None:
    passages = ["Filming began in December 2014. The crew moved to Rome in February.",
                "Snow in Austria was made with machines. The budget was large."]
    assert focus("Where did the crew move?", passages, 1000) == passages
    shown = focus("Where did the crew move in February?", passages, 50)
    assert shown[0] == "The crew moved to Rome in February." and shown[1] == ""
    assert sentences("One. Two!\nthree") == ["One.", "Two!", "three"]
    assert coverage("Who made snow in Austria?", passages[1]) == 1.0
    assert coverage("Who made snow in Australia?", passages[1]) < 1.0


def _result(tokens: list[tuple[str, float, list[tuple[str, float]]]]) -> dict:
    return {"choices": [{"logprobs": {"content": [
        {"token": t, "logprob": lp, "top_logprobs": [{"token": a, "logprob": b} for a, b in alts]}
        for t, lp, alts in tokens]}}]}


def test_the_models_own_null_odds_are_read_where_the_answer_starts() -> None:
    result = _result([('{"', 0.0, []), ("answer", 0.0, []), ('":', 0.0, []),
                      (' "', math.log(0.8), [(' "', math.log(0.8)), (" null", math.log(0.2))]),
                      ("Rome", math.log(0.5), []), ('"}', 0.0, [])])
    assert logit_p_null(result) == pytest.approx(math.log(0.2 / 0.8))
    assert answer_probability(result) == pytest.approx(math.exp((math.log(0.8) + math.log(0.5)) / 3))
    assert logit_p_null({"choices": [{}]}) is None


def test_the_fit_learns_from_signals_and_keeps_abstentions_precise() -> None:
    rows, right, unanswerable = [], [], []
    for i in range(40):  # right answers have grounded, covered spans; unanswerable questions do not
        good = i % 2 == 0
        rows.append({"logit_p_null": -5.0 if good else -2.0, "answer_prob": 0.9 if good else 0.5,
                     "span_f1": 1.0, "coverage": (0.9 if good else 0.4) + (i % 5) / 50, "retrieval": None})
        right.append(good)
        unanswerable.append(not good)
    model = fit(rows, right, unanswerable)
    assert model.features == FEATURES
    assert all(model.p_right(r) >= model.threshold for r, ok in zip(rows, right) if ok)
    assert all(model.p_right(r) < model.threshold for r, ok in zip(rows, right) if not ok)
    assert model.p_unanswerable(rows[1]) > 0.5 > model.p_unanswerable(rows[0])  # an abstention's confidence
    again = AbstentionModel.from_dict(json.loads(model.to_json()))
    assert again.p_right(rows[0]) == pytest.approx(model.p_right(rows[0]))
    assert again.p_unanswerable(rows[1]) == pytest.approx(model.p_unanswerable(rows[1]))


def test_the_shipped_score_reads_every_signal() -> None:
    model = shipped()
    assert model.features == FEATURES and len(model.coef) == len(FEATURES) == len(model.mean)
    assert 0 <= model.p_right({f: None for f in FEATURES}) <= 1
