"""The answer task's eval metrics: SQuAD-style EM/F1, abstention, citations, retrieval."""

from __future__ import annotations

import pytest

from litegate.errors import InvalidRequest
from litegate.evals.answers import answer_metrics, holds_answer, normalize, retrieval_metrics, token_f1
from litegate.evals.runner import _item

pytestmark = pytest.mark.unit


def test_normalization_and_token_f1() -> None:
    assert normalize("The  Answer, is: 25!") == "answer is 25"
    assert token_f1("25 days", "25") == pytest.approx(2 / 3)
    assert token_f1("the x-goog-api-key header", "x-goog-api-key") == pytest.approx(2 / 3)
    assert token_f1("", "25") == 0.0
    assert holds_answer("Employees get 25 days of paid leave.", ["25 days"])
    assert not holds_answer("Employees get 250 days.", ["25"])  # whole words only


def test_answer_metrics_on_a_mixed_set() -> None:
    records = [{"question": "q1", "answers": ["25"]}, {"question": "q2", "answers": ["Paris", "paris, France"]},
               {"question": "q3", "answers": []}, {"question": "q4", "answers": []}]
    outputs = [
        {"answer": "25", "found": True, "confidence": 0.9, "sources": [{"text": "you get 25 days"}]},
        {"answer": "not in the documents", "found": False, "confidence": 0.4},  # a missed answer
        {"answer": "not in the documents", "found": False, "confidence": 0.8},  # a right abstention
        {"answer": "Lyon", "found": True, "confidence": 0.7, "sources": [{"text": "Lyon"}]},  # should abstain
    ]
    m = answer_metrics(records, outputs)
    assert (m["answerable"], m["unanswerable"]) == (2, 2)
    assert m["exact_match"] == 0.5 and m["f1"] == 0.5
    assert m["abstention_precision"] == 0.5 and m["abstention_recall"] == 0.5
    assert m["citation_holds_answer"] == 1.0  # the one answer given cites a chunk with it
    assert m["accuracy"] == 0.5 and 0 <= m["ece"] <= 1


def test_retrieval_metrics_judge_chunks_by_the_answer_they_hold() -> None:
    m = retrieval_metrics([["25"], ["Paris"], []], [["no", "25 days here"], ["Lyon"] * 10, ["x"]])
    assert m["retrieval_recall_at_1"] == 0 and m["retrieval_recall_at_5"] == 0.5
    assert 0 < m["retrieval_ndcg_at_10"] < 0.5


def test_a_record_without_a_question_is_refused_before_any_work() -> None:
    assert _item("answer", "answers", {"question": "why?", "answers": []}, 0) == {"query": "why?"}
    with pytest.raises(InvalidRequest, match="record 3 has no 'question'"):
        _item("answer", "answers", {"answers": ["x"]}, 2)
    with pytest.raises(InvalidRequest, match="'answers' must be a list"):
        _item("answer", "answers", {"question": "q", "answers": 3}, 0)


def test_the_report_lists_every_item_wrong_ones_first(tmp_path) -> None:
    from litegate.evals.runner import public_metrics, write_report

    records = [{"question": "how many days?", "answers": ["25"]}, {"question": "who is the CEO?", "answers": []}]
    outputs = [{"answer": "25", "found": True, "confidence": 0.9, "sources": [{"text": "25 days"}]},
               {"answer": "Ada <b>", "found": True, "confidence": 0.6, "sources": [{"text": "Ada"}]}]
    metrics = answer_metrics(records, outputs)
    assert "_items" not in public_metrics(metrics)  # the JSON stays figures only
    write_report(metrics, tmp_path / "r.html", "answers")
    page = (tmp_path / "r.html").read_text()
    assert page.index("who is the CEO?") < page.index("how many days?")  # the wrong one first
    assert "(not in the documents)" in page and "Ada &lt;b&gt;" in page
