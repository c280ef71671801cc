"""The prebuilt extractors' scorer: per field, a logistic regression over its candidates'
features, stored as a small JSON file of weights in the package (no pickle, no training at
run time). ``fit`` trains one from labeled candidates (scikit-learn, used only when training)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from litegate.documents.prebuilt.candidates import Candidate


class FieldScorer:
    """``calibration`` (a, b): the scorer's answer is right with probability
    sigmoid(a * logit(p) + b), fitted on labeled real documents (``bench/receipt_calibration.py``):
    trained on generated documents alone, the scorer is overconfident on real ones. It maps
    confidences only; which candidate wins is the raw score's choice."""

    def __init__(self, weights: dict[str, float], bias: float, threshold: float = 0.5,
                 calibration: tuple[float, float] | None = None):
        self.weights = weights
        self.bias = bias
        self.threshold = threshold
        self.calibration = calibration

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def calibrated(self, p: float) -> float:
        if self.calibration is None:
            return p
        a, b = self.calibration
        p = min(max(p, 1e-9), 1 - 1e-9)
        z = a * math.log(p / (1 - p)) + b
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def best(self, candidates: list[Candidate]) -> tuple[Candidate | None, float]:
        """The most probable candidate and its (calibrated) probability; (None, P(no
        candidate is right)) when none reaches the threshold."""
        if not candidates:
            return None, 1.0
        scored = sorted(((self.probability(c.features), i) for i, c in enumerate(candidates)), reverse=True)
        p, i = scored[0]
        if p < self.threshold:
            return None, 1.0 - self.calibrated(p)
        return candidates[i], self.calibrated(p)

    def ranked(self, candidates: list[Candidate], k: int) -> list[tuple[float, Candidate]]:
        """The ``k`` most probable candidates with different values, most probable first (a
        value printed twice, the total on a card slip, is one choice at its best probability)."""
        scored = sorted(((self.probability(c.features), i) for i, c in enumerate(candidates)), reverse=True)
        out: list[tuple[float, Candidate]] = []
        seen: set[str] = set()
        for p, i in scored:
            key = str(candidates[i].value.value).casefold()
            if key in seen:
                continue
            seen.add(key)
            out.append((self.calibrated(p), candidates[i]))
            if len(out) >= k:
                break
        return out

    def as_json(self) -> dict[str, Any]:
        return {"bias": round(self.bias, 5), "threshold": self.threshold,
                "weights": {k: round(v, 5) for k, v in sorted(self.weights.items()) if abs(v) > 1e-4}}


def load(path: Path) -> dict[str, Any]:
    """Weights from ``<name>.json`` and, when ``<name>.calibration.json`` lies beside it and
    was fitted to these weights, each field's calibration."""
    data = json.loads(path.read_text())
    calibration: dict[str, Any] = {}
    cal_path = path.with_suffix(".calibration.json")
    if cal_path.is_file():
        cal = json.loads(cal_path.read_text())
        if cal.get("weights_sha1") == weights_sha1(path):  # fitted to other weights: stale, not used
            calibration = cal.get("fields", {})
    data["scorers"] = {name: FieldScorer(f["weights"], f["bias"], f.get("threshold", 0.5),
                                         _pair(calibration.get(name)))
                       for name, f in data.get("fields", {}).items()}
    return data


def _pair(entry: dict[str, float] | None) -> tuple[float, float] | None:
    return (float(entry["a"]), float(entry["b"])) if entry else None


def weights_sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def fit(rows: list[tuple[dict[str, float], int]], c: float = 1.0, threshold: float = 0.3,
        sample_weights: list[float] | None = None) -> FieldScorer:
    """A scorer from (features, 1 if this candidate is the right value else 0) rows; ``sample_weights``:
    how much each row counts (real documents' rows beside many generated ones)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = DictVectorizer(sparse=True)
    x = vec.fit_transform([f for f, _ in rows])
    y = [label for _, label in rows]
    if len(set(y)) < 2:
        return FieldScorer({}, -5.0 if not any(y) else 5.0, threshold)
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    model.fit(x, y, sample_weight=sample_weights)
    weights = {name: float(w) for name, w in zip(vec.get_feature_names_out(), model.coef_[0])}
    return FieldScorer(weights, float(model.intercept_[0]), threshold)
