"""``kind = "nano"``: trained nano classifiers and extractors, the sentence encoder and the reader.

No LLM: classify asks a trained classifier (the request's, else the tier's ``classifier``),
extract a trained extractor; rank compares sentence embeddings; answer asks the shipped reader
(``nano.reader``) for each passage's best span. Priced by compute time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from litegate.errors import ExtractorNotFound, InvalidRequest, TierUnavailable
from litegate.ledger.pricing import NANO_USD_PER_HOUR
from litegate.nano.coalesce import Coalescer
from litegate.nano.encoders import Encoder
from litegate.tiers.base import BaseTier, TierConfig

READER_ENCODER = "fast"  # the encoder whose top layers the shipped reader tuned


class NanoTier(BaseTier):
    kind = "nano"
    capabilities = frozenset({"classifier", "extractor", "embed", "reader"})
    default_usd_per_hour = NANO_USD_PER_HOUR

    def __init__(self, config: TierConfig, deps: Any):
        super().__init__(config, deps)
        self.classifiers = deps.classifiers
        self.extractors = getattr(deps, "extractors", None)
        self.encoders = getattr(deps, "encoders", None) or getattr(self.classifiers, "encoders", None)

        # concurrent calls to one classifier run as one batched forward pass (batch jobs, bursts)
        def predict(clf: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            answer: tuple[np.ndarray, np.ndarray] = clf.predict(texts, self.classifiers.encoder_for(clf))
            return answer

        self._predict: Any = (Coalescer(predict, split=lambda r, a, b: (r[0][a:b], r[1][a:b]))
                              if getattr(getattr(deps, "settings", None), "coalesce", True) else predict)
        # answers computed ahead for a batch job's next lines (prefetch), taken by predict
        self._ahead: OrderedDict[tuple[Any, str], tuple[np.ndarray, float]] = OrderedDict()
        self._ahead_lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._default_encoder().name

    def has_classifier(self, requested: str | None) -> bool:
        return bool(requested or self.config.classifier)

    def classifier(self, requested: str | None) -> Any:
        name = requested or self.config.classifier
        if not name:
            raise InvalidRequest(f"the {self.name} tier needs 'classifier': the name of a trained classifier",
                                 param="classifier")
        return self.classifiers.get(name)

    def predict(self, text: str, requested: str | None) -> tuple[Any, dict[str, float], float]:
        """(classifier, label -> probability, calibrated P(correct) with typicality)."""
        clf = self.classifier(requested)
        with self._ahead_lock:
            ahead = self._ahead.pop((clf, text), None)
        if ahead is not None:
            row, conf = ahead
        else:
            probs, confidence = self._predict(clf, [text])
            row, conf = probs[0], float(confidence[0])
        return clf, dict(zip(clf.labels, (float(p) for p in row))), conf

    AHEAD = 8192  # answers kept ahead at most
    PREFETCH_STEP = 32  # texts per batched pass: where NumPy is already fast (bench/batch.py)

    def prefetch(self, requested: str | None, texts: list[str]) -> None:
        """Compute a block of texts' answers in one batched pass (a batch job's next lines);
        each is taken, once, by the predict call for that text."""
        clf = self.classifier(requested)
        todo = list(dict.fromkeys(texts))[:self.AHEAD]
        if not todo:
            return
        # a step at a time: an interactive call to the same classifier waits for one step's
        # pass (it joins the next one), not for the whole block's
        for start in range(0, len(todo), self.PREFETCH_STEP):
            part = todo[start:start + self.PREFETCH_STEP]
            probs, confidence = self._predict(clf, part)
            with self._ahead_lock:
                for text, row, conf in zip(part, probs, confidence):
                    self._ahead[(clf, text)] = (row, float(conf))
                while len(self._ahead) > self.AHEAD:
                    self._ahead.popitem(last=False)

    @property
    def encoder(self) -> Any:
        return self._default_encoder()

    def _default_encoder(self) -> Encoder:
        # deps may carry no encoders (nor classifiers that do): say so instead of an AttributeError
        if self.encoders is None:
            raise TierUnavailable(f"the {self.name} tier was built without sentence encoders")
        default: Encoder = self.encoders.default
        return default

    def extractor(self, requested: str | None) -> Any:
        if not requested:
            raise InvalidRequest(f"the {self.name} tier needs 'extractor': the name of a trained extractor",
                                 param="extractor")
        if self.extractors is None:
            raise ExtractorNotFound(f"no extractor {requested!r}: the {self.name} tier was built without extractors")
        return self.extractors.get(requested)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._default_encoder().encode(texts)

    def read(self, question: str, passages: list[str]) -> Any:
        """The shipped reader's ``Reading`` of the passages (it runs on the fast encoder)."""
        from litegate.nano.reader import shipped

        if self.encoders is None:
            raise TierUnavailable(f"the {self.name} tier was built without sentence encoders")
        return shipped(self.encoders.get(READER_ENCODER)).read(question, passages)
