"""What learning needs to know about each kind of nano model, one adapter per kind: the part
of a task's answer a label compares with, how a person's correction is checked, how labels
become training rows, how a model is retrained and scored. The learner (``learning.loop``) asks
the adapter and never which kind it holds; a new kind is one adapter plus a line in ``KINDS``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import numpy as np

from litegate.errors import InvalidRequest
from litegate.nano.classifier import NanoClassifier
from litegate.nano.extractor import NanoExtractor, find_value, normalize_value


def labels_of(answer: dict[str, Any]) -> list[str]:
    return list(answer["labels"]) if "labels" in answer else [answer["label"]]


class ModelKind:
    """The shared shape of an adapter; each kind fills in its own parts."""

    name: ClassVar[str]  # the model kind: its store and the examples table's ``kind``
    task: ClassVar[str]  # the task that calls it
    metric: ClassVar[str]  # what distill scores with

    def answer_of(self, result: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def margin(self, result: dict[str, Any]) -> float:
        """How decided the answer was (the review queue shows the smallest first)."""
        return float(result.get("confidence", 0.0))

    def usable(self, model: Any, text: str, answer: dict[str, Any]) -> bool:
        """Whether a teacher's answer has a shape training can use."""
        raise NotImplementedError

    def check(self, model: Any, text: str, correct: Any) -> dict[str, Any]:
        """A correction in the task's own shape, or InvalidRequest naming the field."""
        raise NotImplementedError

    def options(self, model: Any) -> dict[str, Any]:
        """What a reviewer may answer with."""
        raise NotImplementedError

    def rows(self, model: Any, text: str, answer: dict[str, Any], weight: float) -> list[dict[str, Any]]:
        """Training rows from one label."""
        raise NotImplementedError

    def trainable(self, rows: list[dict[str, Any]], waiting: set[str]) -> list[dict[str, Any]]:
        """The rows a fit can use now; the names of what must wait go to ``waiting``."""
        return rows

    def waits(self, answer: dict[str, Any], waiting: set[str]) -> bool:
        """Whether a label is held back (it names something still waiting)."""
        return False

    def train(self, name: str, current: Any, data: list[dict[str, Any]], calibrate: bool, encoder: Any,
              version: int) -> Any:
        raise NotImplementedError

    def tally(self, model: Any, texts: list[str], golds: list[dict[str, Any]], encoder: Any) -> np.ndarray:
        """Counts to score with (``score`` turns a sum of them into the metric)."""
        raise NotImplementedError

    def score(self, tally: np.ndarray) -> float:
        raise NotImplementedError

    def agree(self, predicted: dict[str, Any], label: dict[str, Any]) -> bool:
        raise NotImplementedError


class ClassifierKind(ModelKind):
    name, task, metric = "classifier", "classify", "accuracy"

    def answer_of(self, result: dict[str, Any]) -> dict[str, Any] | None:
        if isinstance(result.get("labels"), list):
            return {"labels": list(result["labels"])}
        return {"label": result["label"]} if isinstance(result.get("label"), str) else None

    def margin(self, result: dict[str, Any]) -> float:
        probs = sorted((result.get("scores") or {}).values(), reverse=True) + [0.0, 0.0]
        return float(probs[0] - probs[1])

    def usable(self, model: Any, text: str, answer: dict[str, Any]) -> bool:
        return all(isinstance(x, str) and x for x in labels_of(answer))

    def check(self, model: Any, text: str, correct: Any) -> dict[str, Any]:
        if not isinstance(correct, dict) or not correct:
            raise InvalidRequest("'correct' must be {\"label\": ...} or {\"labels\": [...]} for a classify call",
                                 param="correct")
        extra = sorted(set(correct) - {"label", "labels"})
        if extra:
            raise InvalidRequest(f"'correct.{extra[0]}' is not part of a classify correction (label or labels)",
                                 param=f"correct.{extra[0]}")
        if len(correct) != 1:
            raise InvalidRequest("'correct' takes one of label or labels, not both", param="correct")
        if "label" in correct:
            value = correct["label"]
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidRequest("'correct.label' must be a non-empty string of at most 200 characters",
                                     param="correct.label")
            return {"label": value.strip()}
        values = correct["labels"]
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in values)):
            raise InvalidRequest("'correct.labels' must be a non-empty list of label names", param="correct.labels")
        return {"labels": list(dict.fromkeys(v.strip() for v in values))}

    def options(self, model: Any) -> dict[str, Any]:
        return {"labels": list(model.labels)}

    def rows(self, model: Any, text: str, answer: dict[str, Any], weight: float) -> list[dict[str, Any]]:
        return [{"text": text, "label": lab, **({"weight": weight} if weight != 1 else {})}
                for lab in labels_of(answer)]

    def trainable(self, rows: list[dict[str, Any]], waiting: set[str]) -> list[dict[str, Any]]:
        counts = Counter(ex["label"] for ex in rows)  # a label becomes trainable once it has two examples
        waiting.update(label for label, n in counts.items() if n < 2)
        return [ex for ex in rows if counts[ex["label"]] >= 2]

    def waits(self, answer: dict[str, Any], waiting: set[str]) -> bool:
        return any(lab in waiting for lab in labels_of(answer))

    def train(self, name: str, current: Any, data: list[dict[str, Any]], calibrate: bool, encoder: Any,
              version: int) -> Any:
        # a tuned classifier's new version keeps its tuned layers: ``encoder`` serves them
        return NanoClassifier.train(name, data, encoder, version=version, calibrate=calibrate, learn=True,
                                    base_examples=current.info.base_examples or len(current.examples),
                                    encoder_name=current.info.encoder, tuned=getattr(current, "tuned", None),
                                    vector_layers=current.info.vector_layers)

    def tally(self, model: Any, texts: list[str], golds: list[dict[str, Any]], encoder: Any) -> np.ndarray:
        probs, _ = model.predict(texts, encoder)
        right = sum(model.labels[int(i)] in labels_of(g) for i, g in zip(probs.argmax(axis=1), golds))
        return np.array([right, 0, len(texts) - right], dtype=float)

    def score(self, tally: np.ndarray) -> float:
        right, _, wrong = (float(x) for x in tally)
        return right / (right + wrong) if right + wrong else 1.0

    def agree(self, predicted: dict[str, Any], label: dict[str, Any]) -> bool:
        if predicted.get("label" if "label" in predicted else "labels") is None:
            return False
        return sorted(labels_of(predicted)) == sorted(labels_of(label))


class ExtractorKind(ModelKind):
    name, task, metric = "extractor", "extract", "slot_f1"

    def answer_of(self, result: dict[str, Any]) -> dict[str, Any] | None:
        return {"data": dict(result["data"])} if isinstance(result.get("data"), dict) else None

    def usable(self, model: Any, text: str, answer: dict[str, Any]) -> bool:
        data = answer.get("data") or {}
        return all(v is None or (isinstance(v, str) and find_value(text, v) is not None)
                   for k, v in data.items() if k in model.fields)

    def check(self, model: Any, text: str, correct: Any) -> dict[str, Any]:
        if not isinstance(correct, dict) or set(correct) != {"data"} or not isinstance(correct["data"], dict):
            raise InvalidRequest("'correct' must be {\"data\": {field: value or null}} for an extract call",
                                 param="correct.data")
        data: dict[str, str | None] = {}
        for field, value in correct["data"].items():
            where = f"correct.data.{field}"
            if field not in model.fields:
                raise InvalidRequest(f"'{where}': not a field of extractor {model.info.name!r} "
                                     f"({', '.join(model.fields)})", param=where)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidRequest(f"'{where}' must be the value as written in the text, or null", param=where)
            if value is not None and find_value(text, value) is None:
                raise InvalidRequest(f"'{where}': {value!r} does not occur in the call's text; values are copied "
                                     "from the text", param=where)
            data[field] = value
        return {"data": {f: data.get(f) for f in model.fields}}

    def options(self, model: Any) -> dict[str, Any]:
        return {"fields": dict(model.info.fields)}

    def rows(self, model: Any, text: str, answer: dict[str, Any], weight: float) -> list[dict[str, Any]]:
        data = {k: v for k, v in answer["data"].items() if v is not None and k in model.fields}
        return [{"text": text, "data": data}]

    def train(self, name: str, current: Any, data: list[dict[str, Any]], calibrate: bool, encoder: Any,
              version: int) -> Any:
        return NanoExtractor.train(name, data, encoder, fields=dict(current.info.fields), version=version,
                                   calibrate=calibrate, learn=True,
                                   base_examples=current.info.base_examples or len(current.examples),
                                   encoder_name=current.info.encoder)

    def tally(self, model: Any, texts: list[str], golds: list[dict[str, Any]], encoder: Any) -> np.ndarray:
        tp = fp = fn = 0
        for pred, gold in zip(model.predict(texts, encoder), golds):
            for field in model.fields:
                p, g = pred["data"].get(field), gold["data"].get(field)
                if p is not None and g is not None and normalize_value(p) == normalize_value(g):
                    tp += 1
                else:
                    fp += p is not None
                    fn += g is not None
        return np.array([tp, fp, fn], dtype=float)

    def score(self, tally: np.ndarray) -> float:
        tp, fp, fn = (float(x) for x in tally)
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0

    def agree(self, predicted: dict[str, Any], label: dict[str, Any]) -> bool:
        pd = predicted.get("data") or {}
        return all((pd.get(k) is None) == (v is None) and (v is None or normalize_value(pd[k]) == normalize_value(v))
                   for k, v in label["data"].items())


KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (ClassifierKind(), ExtractorKind())}
KIND_OF_TASK = {kind.task: kind.name for kind in KINDS.values()}
