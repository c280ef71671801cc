"""Metrics for classification (accuracy, macro-F1, calibration, coverage) and extraction."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

ECE_BINS = 10
COVERAGES = (0.5, 0.8, 0.9)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if mask.any():
            out.append({"lo": float(lo), "hi": float(hi), "count": int(mask.sum()),
                        "confidence": float(confidence[mask].mean()), "accuracy": float(correct[mask].mean())})
    return out


def coverage_curve(confidence: np.ndarray, correct: np.ndarray, points: int = 20) -> list[dict[str, float]]:
    """Accuracy on the most confident fraction of items, for fractions 5%..100%."""
    order = np.argsort(-confidence, kind="stable")
    cum = np.cumsum(correct[order])
    n = len(order)
    out = []
    for frac in np.linspace(1 / points, 1, points):
        k = max(1, int(round(frac * n)))
        out.append({"coverage": float(frac), "accuracy": float(cum[k - 1] / k),
                    "threshold": float(confidence[order][k - 1])})
    return out


def accuracy_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    order = np.argsort(-confidence, kind="stable")
    k = max(1, int(round(coverage * len(order))))
    return float(correct[order][:k].mean())


def classification_metrics(gold: list[str], pred: list[str], confidence: list[float],
                           out_of_scope: str | None = None) -> dict[str, Any]:
    """Metrics on in-scope items; when ``out_of_scope`` items are present, also the recall
    of rejecting them at the threshold that keeps 95% of in-scope answers."""
    from sklearn.metrics import f1_score

    gold_a, pred_a, conf_a = np.array(gold), np.array(pred), np.array(confidence, dtype=float)
    inscope = gold_a != out_of_scope if out_of_scope else np.ones(len(gold_a), bool)
    g, p, c = gold_a[inscope], pred_a[inscope], conf_a[inscope]
    correct = (g == p).astype(float)
    result: dict[str, Any] = {
        "items": int(len(gold_a)),
        "in_scope_items": int(inscope.sum()),
        "accuracy": float(correct.mean()) if len(correct) else None,
        "macro_f1": float(f1_score(g, p, average="macro", labels=sorted(set(g)), zero_division=0)) if len(g) else None,
        "ece": expected_calibration_error(c, correct) if len(c) else None,
        "mean_confidence": float(c.mean()) if len(c) else None,
    }
    for cov in COVERAGES:
        result[f"accuracy_at_{int(cov * 100)}pct_coverage"] = accuracy_at_coverage(c, correct, cov) if len(c) else None
    if out_of_scope and (~inscope).any() and inscope.any():
        threshold = float(np.quantile(c, 0.05))
        result["oos_items"] = int((~inscope).sum())
        result["oos_threshold_keep_95pct_in_scope"] = threshold
        result["oos_recall"] = float((conf_a[~inscope] < threshold).mean())
    result["_reliability"] = reliability(c, correct)
    result["_coverage_curve"] = coverage_curve(c, correct)
    return result


def _norm(value: Any) -> str:
    return re.sub(r"[\s.,;:!?'\"]+", " ", str(value)).strip().lower()


def extraction_metrics(gold: list[dict[str, Any]], pred: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    """Slot precision / recall / F1 with normalised exact match (case, spaces, punctuation)."""
    tp = fp = fn = 0
    per_field: dict[str, dict[str, Any]] = {f: {"tp": 0, "fp": 0, "fn": 0} for f in fields}
    for g, p in zip(gold, pred):
        for f in fields:
            gv, pv = g.get(f), p.get(f)
            if pv is not None and gv is not None and _norm(pv) == _norm(gv):
                tp += 1
                per_field[f]["tp"] += 1
            else:
                if pv is not None:
                    fp += 1
                    per_field[f]["fp"] += 1
                if gv is not None:
                    fn += 1
                    per_field[f]["fn"] += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    for counts in per_field.values():
        counts["f1"] = round(2 * counts["tp"] / (2 * counts["tp"] + counts["fp"] + counts["fn"]), 4) \
            if counts["tp"] + counts["fp"] + counts["fn"] else None
    return {"items": len(gold), "slot_precision": precision, "slot_recall": recall, "slot_f1": f1,
            "per_field": per_field}


def field_correct(gold: Any, pred: Any) -> bool:
    """One field of one item: right when both are absent or both say the same (normalised)."""
    if gold is None or pred is None:
        return gold is None and pred is None
    return _norm(str(pred)) == _norm(str(gold))


def field_calibration(gold: list[dict[str, Any]], outputs: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    """How well ``field_confidence`` predicts that a field (stated or null) is right: expected
    calibration error over every (item, field), and the share of items with every field right."""
    conf, right, whole = [], [], []
    for g, o in zip(gold, outputs):
        item = [field_correct(g.get(f), o["data"].get(f)) for f in fields]
        whole.append(all(item))
        for f, ok in zip(fields, item):
            conf.append(float((o.get("field_confidence") or {}).get(f, o.get("confidence", 0.0))))
            right.append(float(ok))
    c, r = np.array(conf), np.array(right)
    out: dict[str, Any] = {"field_accuracy": float(r.mean()) if len(r) else None,
                           "field_ece": expected_calibration_error(c, r) if len(r) else None,
                           "all_fields_right_rate": float(np.mean(whole)) if whole else None}
    if len(r):
        out["_reliability"] = reliability(c, r)
    return out
