"""When a grounded answer should say "not in the documents": a logistic score of P(the answer
is right) over signals of one answer call, with a threshold fit on a tuning split for
abstention precision (bench/answers_fit.py writes abstention.json beside this module)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads where a score is computed: reading TASKS (the CLI's commands) should not load it
    import numpy as np

# the signals of one answer (tasks/text.py): the model's log-odds of null and its mean token
# probability, how closely its phrase matched a span, how much of the question's rarer words the
# cited chunk holds, the chunk's cosine, how much of the answer the question says; then the
# model's yes/no on whether the span's sentence answers the question, that sentence's coverage
# of the question, whether a span of the asked-for kind was shown, and whether the answer is one
FEATURES = ("logit_p_null", "answer_prob", "span_f1", "coverage", "retrieval", "echo", "sentence_yes",
            "sentence_coverage", "kind_found", "kind_match")
# the nano reader's answer (tasks/text.py, answer_read): its no-answer margin, the cited chunk's
# coverage of the question's rarer words and its cosine, how much of the answer the question says
READER_FEATURES = ("reader_margin", "coverage", "retrieval", "echo")
SHIPPED = "abstention.json"
SHIPPED_READER = "abstention_reader.json"


def logit_p_null(result: dict[str, Any]) -> float | None:
    """The model's log-odds of answering null where the answer's value starts (its own
    probabilities, before the grammar's choice), or None without log-probabilities."""
    tokens = (result["choices"][0].get("logprobs") or {}).get("content") or []
    text = ""
    for token in tokens:
        if text.rstrip().endswith('"answer":'):
            null = quote = 0.0
            for alt in token.get("top_logprobs") or [token]:
                head = alt.get("token", "").lstrip()
                p = math.exp(alt.get("logprob", -30.0))
                if head.startswith("null"):
                    null += p
                elif head.startswith('"') or not head:  # a bare space is the way to a quote
                    quote += p
            null, quote = max(null, 1e-6), max(quote, 1e-6)
            return max(-12.0, min(12.0, math.log(null / quote)))
        text += token.get("token", "")
    return None


def answer_probability(result: dict[str, Any]) -> float | None:
    """exp(mean log-probability) of the tokens from the answer's value on."""
    tokens = (result["choices"][0].get("logprobs") or {}).get("content") or []
    text, values = "", []
    for token in tokens:
        if '"answer":' in text:
            values.append(token.get("logprob", 0.0))
        text += token.get("token", "")
    return math.exp(sum(values) / len(values)) if values else None


@dataclass
class AbstentionModel:
    """P(right) = sigmoid(coef · (x - mean) / scale + intercept); answer when it reaches
    ``threshold``. P(unanswerable), the same form with its own coefficients, is the confidence
    of an abstention. A missing signal counts as its training mean (no evidence either way)."""

    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    threshold: float
    unanswerable_coef: list[float] = field(default_factory=list)
    unanswerable_intercept: float = 0.0
    features: tuple[str, ...] = FEATURES
    trained_on: dict[str, Any] = field(default_factory=dict)

    def vector(self, signals: dict[str, float | None]) -> np.ndarray:
        import numpy as np

        return np.array([m if signals.get(f) is None else float(signals[f])  # type: ignore[arg-type]
                         for f, m in zip(self.features, self.mean)])

    def _logistic(self, signals: dict[str, float | None], coef: list[float], intercept: float) -> float:
        import numpy as np

        z = (self.vector(signals) - np.array(self.mean)) / np.array(self.scale)
        return float(1.0 / (1.0 + math.exp(-(float(z @ np.array(coef)) + intercept))))

    def p_right(self, signals: dict[str, float | None]) -> float:
        return self._logistic(signals, self.coef, self.intercept)

    def p_unanswerable(self, signals: dict[str, float | None]) -> float:
        if not self.unanswerable_coef:
            return 1.0 - self.p_right(signals)
        return self._logistic(signals, self.unanswerable_coef, self.unanswerable_intercept)

    def to_json(self) -> str:
        return json.dumps(dict(asdict(self), features=list(self.features)), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbstentionModel:
        return cls(coef=list(data["coef"]), intercept=float(data["intercept"]), mean=list(data["mean"]),
                   scale=list(data["scale"]), threshold=float(data["threshold"]),
                   unanswerable_coef=list(data.get("unanswerable_coef", [])),
                   unanswerable_intercept=float(data.get("unanswerable_intercept", 0.0)),
                   features=tuple(data.get("features", FEATURES)), trained_on=data.get("trained_on", {}))


_shipped: dict[str, AbstentionModel] = {}


def shipped(name: str = SHIPPED) -> AbstentionModel:
    """The model fit for the embedded lite tier, or (``SHIPPED_READER``) for the nano reader
    (each read once)."""
    model = _shipped.get(name)
    if model is None:
        text = resources.files("litegate.tasks").joinpath(name).read_text(encoding="utf-8")
        model = _shipped[name] = AbstentionModel.from_dict(json.loads(text))
    return model


def fit(rows: list[dict[str, float | None]], right: list[bool], unanswerable: list[bool],
        min_precision: float = 0.8, c: float = 1.0, features: tuple[str, ...] = FEATURES) -> AbstentionModel:
    """A logistic regression of ``right`` (the answer would be right) on the signals, and the
    threshold that gets the most items right (a right answer, or an abstention on a question
    the documents do not answer) among those whose abstentions are at least ``min_precision``
    unanswerable questions; without one, the most precise threshold."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    raw = np.array([[np.nan if r.get(f) is None else float(r[f]) for f in features]  # type: ignore[arg-type]
                    for r in rows])
    present = ~np.isnan(raw)
    mean = np.where(present, raw, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)  # a signal never seen: 0
    x = np.where(np.isnan(raw), mean, raw)
    scale = np.maximum(x.std(axis=0), 1e-6)
    z = (x - mean) / scale
    clf = LogisticRegression(C=c, max_iter=1000).fit(z, np.array(right, dtype=int))
    model = AbstentionModel(coef=clf.coef_[0].tolist(), intercept=float(clf.intercept_[0]), mean=mean.tolist(),
                            scale=scale.tolist(), threshold=0.5, features=features)
    if 0 < sum(unanswerable) < len(unanswerable):
        other = LogisticRegression(C=c, max_iter=1000).fit(z, np.array(unanswerable, dtype=int))
        model.unanswerable_coef, model.unanswerable_intercept = other.coef_[0].tolist(), float(other.intercept_[0])
    p = np.array([model.p_right(r) for r in rows])
    unans, ok = np.array(unanswerable), np.array(right)
    best: tuple[float, float, float] | None = None
    for t in sorted(set(np.round(p, 4).tolist()) | {0.5}):
        abstain = p < t
        if not abstain.any():
            continue
        precision = float(unans[abstain].mean())
        correct = float((abstain & unans).sum() + (~abstain & ok).sum())
        key = (float(precision >= min_precision), correct if precision >= min_precision else precision, -t)
        if best is None or key > best:
            best, model.threshold = key, float(t)
    return model
