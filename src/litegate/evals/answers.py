"""Metrics for grounded answers on a SQuAD-2-style set (questions with their answers, or none
when the documents do not say): answer exact match and F1 on the answerable ones, abstention
precision and recall, whether the cited chunk holds the answer, calibration, and — over a
collection — retrieval recall@k and nDCG@10 judged by chunks that contain a gold answer."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Any

import numpy as np

from litegate.evals.metrics import coverage_curve, expected_calibration_error, reliability

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = str.maketrans("", "", string.punctuation)
RETRIEVAL_K = (1, 5, 10)


def normalize(text: str) -> str:
    """Lower case, no punctuation, articles or extra spaces (SQuAD's answer normalization)."""
    return " ".join(ARTICLES.sub(" ", text.lower().translate(PUNCTUATION)).split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def gold_answers(record: dict[str, Any]) -> list[str]:
    """A record's answers ([] when the documents do not hold one)."""
    answers = record.get("answers")
    if isinstance(answers, str):
        return [answers] if answers.strip() else []
    return [a for a in answers or [] if isinstance(a, str) and a.strip()]


def holds_answer(text: str, answers: list[str]) -> bool:
    padded = f" {normalize(text)} "
    return any(f" {normalize(a)} " in padded for a in answers if normalize(a))


def _ndcg10(relevant: list[bool]) -> float:
    gains = [1.0 / math.log2(i + 2) for i, r in enumerate(relevant[:10]) if r]
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(10, sum(relevant) or 1)))
    return sum(gains) / ideal


def retrieval_metrics(answers: list[list[str]], retrieved: list[list[str]]) -> dict[str, Any]:
    """recall@k (a chunk in the first k holds a gold answer) and nDCG@10, over answerable items."""
    rows = [(a, r) for a, r in zip(answers, retrieved) if a]
    if not rows:
        return {}
    judged = [[holds_answer(text, a) for text in r] for a, r in rows]
    out: dict[str, Any] = {f"retrieval_recall_at_{k}": sum(any(j[:k]) for j in judged) / len(judged)
                           for k in RETRIEVAL_K}
    out["retrieval_ndcg_at_10"] = sum(_ndcg10(j) for j in judged) / len(judged)
    return out


def answer_metrics(records: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of the answer task's outputs against each record's ``answers``."""
    golds = [gold_answers(r) for r in records]
    answerable = [i for i, g in enumerate(golds) if g]
    unanswerable = [i for i, g in enumerate(golds) if not g]
    found = [bool(o.get("found")) for o in outputs]
    em = [max(float(normalize(outputs[i]["answer"]) == normalize(g)) for g in golds[i]) if found[i] else 0.0
          for i in answerable]
    f1 = [max(token_f1(outputs[i]["answer"], g) for g in golds[i]) if found[i] else 0.0 for i in answerable]
    abstained = [i for i, f in enumerate(found) if not f]
    right_abstentions = sum(1 for i in abstained if not golds[i])
    cited_ok = [holds_answer(" ".join(s.get("text", "") for s in outputs[i].get("sources") or []), golds[i])
                for i in answerable if found[i] and outputs[i].get("sources") is not None]
    # right: an answer with F1 >= 0.5 where there is one, an abstention where there is none
    right = np.array([(f1[answerable.index(i)] >= 0.5) if golds[i] else not found[i] for i in range(len(records))],
                     dtype=float)
    confidence = np.array([float(o.get("confidence", 0.0)) for o in outputs])
    return {
        "items": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "exact_match": sum(em) / len(em) if em else None,
        "f1": sum(f1) / len(f1) if f1 else None,
        "answered_rate_on_answerable": sum(found[i] for i in answerable) / len(answerable) if answerable else None,
        "abstention_precision": right_abstentions / len(abstained) if abstained else None,
        "abstention_recall": right_abstentions / len(unanswerable) if unanswerable else None,
        "citation_holds_answer": sum(cited_ok) / len(cited_ok) if cited_ok else None,
        "accuracy": float(right.mean()),
        "ece": expected_calibration_error(confidence, right),
        "_reliability": reliability(confidence, right),
        "_coverage_curve": coverage_curve(confidence, right),
        # every item, for the report's table: what to read when a figure disappoints
        "_items": [{"question": r.get("question", r.get("text")), "gold": golds[i], "answer": o.get("answer"),
                    "found": found[i], "confidence": round(float(o.get("confidence", 0.0)), 3),
                    "right": bool(right[i])} for i, (r, o) in enumerate(zip(records, outputs))],
    }
