"""Nano extractors: field extraction learned from examples, in seconds, on the CPU.

A linear-chain CRF (python-crfsuite) tags each word ``B-field`` / ``I-field`` / ``O``. Its
features are cheap lexical ones (the word and its neighbours, shape, digits, char n-grams,
small general-language word lists for dates, times, numbers and currencies, the words a few
positions around) plus what the nano encoder knows, compressed into a few numbers per field:
the cosine of the word's contextual vector (MiniLM after its 4th of 6 layers: measured
better for words than the last, which is tuned for whole sentences) to each tag's centroid
in the training data, to its nearest training word of each tag, and to the field's
description. Values are always copied from the text. A linear probe (logistic regression on
the word's contextual vector and its two neighbours') reads each tag's probability straight
from the encoder; the CRF sees those probabilities as features, learned from out-of-fold
probe outputs so it weighs them as they behave on unseen text. With the fast encoder it also
reads the shipped value tagger's (``nano.value_tagger``): how much each word looks like the start
or the inside of some slot value, learned from other domains' slot sets.

Each field's confidence is a calibrated P(correct): the CRF's marginal probability of the
chosen span (or of no span at all) mapped through isotonic regression fitted on out-of-fold
predictions of the training examples, as the nano classifier does.

Why one module (over 400 lines): features, the CRF, the probe and calibration are one model
whose parts are fitted together, out of fold; they are read and changed together.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import ExtractorNotFound, InvalidRequest
from litegate.nano import value_tagger
from litegate.nano.encoders import EncoderRegistry
from litegate.nano.span_scorer import SpanDoc, SpanStage, fit_stage
from litegate.nano.vectors import unit as _unit
from litegate.nano.versions import VersionedStore

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_FIELDS = 64
# words: numbers keep their inner separators and ordinal endings (67.27, 10:10, 1,200, 4th);
# runs of letters and digits (with an apostrophe: o'clock); each other character alone
WORD = re.compile(r"\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?|\w+(?:'\w+)?|[^\w\s]")
ENCODER_LAYER = 4  # of MiniLM's 6; deeper encoders are read at the same share of their depth
OOF_FOLDS = 4
PROBE_C = 100.0  # the probe's inverse regularisation: the vectors carry the signal; the CRF smooths
PROBE_FOLDS = 4  # out-of-fold probe outputs for the CRF to learn from
# the value tagger's P(a value starts here) and P(a value goes on) as two more CRF features, for
# extractors trained with the encoder it reads (nano.value_tagger; off: bench before/after runs)
VALUE_TAGGER = True


@dataclass
class ExtractorInfo:
    name: str
    version: int
    fields: dict[str, str]  # field -> description
    examples: int
    encoder: str  # the key of the encoder it was trained with (fast, accurate)
    trained_at: str
    train_seconds: float
    field_examples: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    oof_f1: float | None = None  # slot F1 of the out-of-fold predictions (an honest estimate)
    learn: bool = False  # keep the texts of calls made to it, to learn from corrections (litegate.learning.loop)
    base_examples: int | None = None  # how many of its examples were given by the user (the rest were learned)
    distilled: dict[str, Any] | None = None  # how a distilled version beat the one before (litegate.learning.loop)
    decoder: str = "crf"  # "spans": candidate spans scored per field (nano.span_scorer); "crf": the CRF's path
    decoder_oof_f1: dict[str, float] | None = None  # each decoder's out-of-fold slot F1; the better one is kept


def find_value(text: str, value: str) -> tuple[int, int] | None:
    """Where ``value`` is written in ``text``: exactly, then ignoring case and spacing."""
    idx = text.find(value)
    if idx >= 0:
        return idx, idx + len(value)
    pattern = r"\s+".join(re.escape(part) for part in value.split())
    m = re.search(pattern, text, flags=re.IGNORECASE) if pattern else None
    return (m.start(), m.end()) if m else None


def check_examples(examples: Any, fields: dict[str, str] | None) -> tuple[list[str], list[dict[str, tuple[int, int]]],
                                                                          dict[str, str], list[str]]:
    """Validate ``[{"text", "data": {field: value}}]``; returns texts, gold spans per text, the
    fields and warnings. A value that is not written in its text is an error naming the line."""
    if not isinstance(examples, list) or not examples:
        raise InvalidRequest("'examples' must be a non-empty list of {\"text\", \"data\"} objects", param="examples")
    if fields is not None:
        if not isinstance(fields, dict) or not fields:
            raise InvalidRequest("'fields' must map each field name to a description", param="fields")
        for name, desc in fields.items():
            if not FIELD_RE.fullmatch(str(name)) or not isinstance(desc, str):
                raise InvalidRequest(f"field {name!r}: names are letters, digits, '_', '.', '-'; descriptions "
                                     "are strings", param="fields")
    texts: list[str] = []
    golds: list[dict[str, tuple[int, int]]] = []
    seen: Counter[str] = Counter()
    for i, ex in enumerate(examples):
        where = f"examples.{i}"
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str) or not ex["text"].strip():
            raise InvalidRequest(f"'{where}.text' must be a non-empty string", param=f"{where}.text")
        data = ex.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidRequest(f"'{where}.data' must be an object of field -> value", param=f"{where}.data")
        spans: dict[str, tuple[int, int]] = {}
        for name, value in data.items():
            if value is None:
                continue
            if fields is not None and name not in fields:
                raise InvalidRequest(f"'{where}.data.{name}': {name!r} is not one of the fields "
                                     f"({', '.join(fields)})", param=f"{where}.data.{name}")
            if not FIELD_RE.fullmatch(name):
                raise InvalidRequest(f"'{where}.data': field name {name!r} is not valid (letters, digits, '_', "
                                     "'.', '-')", param=f"{where}.data")
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(f"'{where}.data.{name}' must be a non-empty string copied from the text",
                                     param=f"{where}.data.{name}")
            span = find_value(ex["text"], value)
            if span is None:
                raise InvalidRequest(f"'{where}.data.{name}': {value!r} does not occur in the text; values must be "
                                     "written as they appear in it", param=f"{where}.data.{name}")
            spans[name] = span
            seen[name] += 1
        texts.append(ex["text"])
        golds.append(spans)
    fields = dict(fields) if fields is not None else {name: "" for name in sorted(seen)}
    if not fields:
        raise InvalidRequest("no fields: give 'fields', or examples whose 'data' holds at least one value",
                             param="fields")
    if len(fields) > MAX_FIELDS:
        raise InvalidRequest(f"an extractor takes at most {MAX_FIELDS} fields, got {len(fields)}", param="fields")
    warnings = [f"field {name!r} has {seen[name]} example{'s' if seen[name] != 1 else ''}; it needs at least 2 to "
                "be learned well" for name in fields if seen[name] < 2]
    return texts, golds, fields, warnings


def _shape(word: str) -> str:
    s = re.sub(r"[A-Z]", "X", word)
    s = re.sub(r"[a-z]", "x", s)
    s = re.sub(r"[0-9]", "d", s)
    return re.sub(r"(.)\1{2,}", r"\1\1", s)


@dataclass
class _Doc:
    """A text as words: character offsets, a contextual vector per word (the mean of its
    word pieces) and lexical features."""

    text: str
    offsets: np.ndarray  # (t, 2)
    vectors: np.ndarray  # (t, dim)
    lexical: list[dict[str, float]]

    @functools.cached_property
    def value_probabilities(self) -> np.ndarray:
        """(t, 3) the shipped value tagger's P(O), P(B), P(I) of each word: read once per text by
        every CRF fitted or run on it and by the span stage (only for taggers that read it)."""
        return value_tagger.shipped().probabilities(_probe_inputs(_unit(self.vectors)))


# small general-language word lists: what dates, times, numbers and amounts are made of
_WORD_LISTS = {
    "month": "january february march april may june july august september october november december jan feb mar "
             "apr jun jul aug sep sept oct nov dec",
    "weekday": "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
               "weekend weekday",
    "numword": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
               "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
               "thousand million billion half quarter dozen first second third fourth fifth",
    "when": "today tomorrow yesterday tonight morning afternoon evening night noon midnight day days week weeks "
            "month months year years ago next last this coming past previous",
    "clockword": "am pm a.m. p.m. o'clock oclock hour hours minute minutes mins past to",
    "currency": "$ € £ ¥ ₹ usd eur gbp dollar dollars euro euros pound pounds cent cents bucks quid yen",
}
_LISTS_OF: dict[str, list[str]] = {}
for _name, _words in _WORD_LISTS.items():
    for _w in _words.split():
        _LISTS_OF.setdefault(_w, []).append(_name)
WINDOW = 3  # words before and after that a word's features see as a bag


def _lexical(words: list[str], i: int) -> dict[str, float]:
    w = words[i]
    lw = w.lower()
    f = {"word=" + lw: 1.0, "shape=" + _shape(w): 1.0, "digit": float(any(c.isdigit() for c in w)),
         "alldigit": float(w.isdigit()), "title": float(w.istitle()), "upper": float(w.isupper() and len(w) > 1),
         "punct": float(not w[:1].isalnum()), "len=" + str(min(len(w), 8)): 1.0}
    padded = f"<{lw}>"
    for n in (3, 4):
        for k in range(max(0, len(padded) - n + 1)):
            f[f"c{n}=" + padded[k:k + n]] = 0.5
    for d in (-2, -1, 1, 2):
        j = i + d
        other = words[j] if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")
        f[f"w{d}=" + other.lower()] = 1.0
        if abs(d) == 1:
            f[f"shape{d}=" + _shape(other)] = 1.0
    for j in range(max(0, i - WINDOW), i):
        f["before=" + words[j].lower()] = 0.5
    for j in range(i + 1, min(len(words), i + 1 + WINDOW)):
        f["after=" + words[j].lower()] = 0.5
    for d in (-1, 0, 1):
        if 0 <= i + d < len(words):
            for name in _LISTS_OF.get(words[i + d].lower(), ()):
                f[f"list{d}={name}"] = 1.0
    if re.fullmatch(r"\d+(?:st|nd|rd|th)", lw):
        f["ordinal"] = 1.0
    if re.fullmatch(r"\d{1,2}[:.]\d{2}", w):
        f["clock"] = 1.0
    return f


def word_layer(encoder: Any) -> int:
    """The layer whose vectors describe words: two thirds of the way up (4 of MiniLM's 6, 8 of
    MPNet's 12); the last layers are tuned for whole sentences."""
    layers = getattr(encoder, "layers", None)
    return max(1, round(int(layers) * 2 / 3)) if isinstance(layers, int) else ENCODER_LAYER


def _prepare(texts: list[str], encoder: Any) -> list[_Doc]:
    docs = []
    for text, (pieces, vectors) in zip(texts, encoder.encode_tokens(texts, layer=word_layer(encoder))):
        spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
        words = [text[a:b] for a, b in spans]
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        word_vectors = np.zeros((len(spans), dim), np.float32)
        j = 0
        for k, (start, end) in enumerate(spans):
            while j < len(pieces) and pieces[j][1] <= start:
                j += 1
            inside, m = [], j
            while m < len(pieces) and pieces[m][0] < end:  # pieces are in order: stop past the word
                if pieces[m][1] > start:
                    inside.append(m)
                m += 1
            if inside:
                word_vectors[k] = vectors[inside].mean(0)
        docs.append(_Doc(text, np.array(spans, dtype=np.int64).reshape(-1, 2), word_vectors,
                         [_lexical(words, k) for k in range(len(words))]))
    return docs


def _tags(doc: _Doc, spans: dict[str, tuple[int, int]], tag_index: dict[str, int]) -> list[int]:
    tags = [tag_index["O"]] * len(doc.offsets)
    for name, (start, end) in spans.items():
        inside = [i for i, (s, e) in enumerate(doc.offsets) if s < end and e > start]
        for k, i in enumerate(inside):
            tags[i] = tag_index[("B-" if k == 0 else "I-") + name]
    return tags


def _probe_inputs(v: np.ndarray) -> np.ndarray:
    """Each word's unit vector (rows of ``v``) beside its neighbours' (zeros past either end)."""
    pad = np.zeros((1, v.shape[1]), v.dtype)
    return np.hstack([v, np.vstack([pad, v[:-1]]), np.vstack([v[1:], pad])])


def _fit_probe(docs: list[_Doc], labels: list[list[int]]) -> Any:
    """A multinomial logistic regression from a word's inputs to its tag; None when the
    examples hold fewer than two tags."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y = np.concatenate([np.asarray(t, np.int64) for t in labels]) if labels else np.zeros(0, np.int64)
    if len(set(y.tolist())) < 2:
        return None
    probe = LogisticRegression(C=PROBE_C, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(np.vstack([_probe_inputs(_unit(d.vectors)) for d in docs]).astype(np.float32), y)
    return probe


def _probe_probabilities(probe: Any, v: np.ndarray, n_tags: int) -> np.ndarray | None:
    """Each word's tag probabilities from its unit vector (rows of ``v``) and its neighbours'."""
    if probe is None:
        return None
    p = np.zeros((len(v), n_tags))
    if len(v):
        p[:, probe.classes_] = probe.predict_proba(_probe_inputs(v).astype(np.float32))
    return p


class _Tagger:
    """A CRF over lexical features plus encoder similarities (to tag centroids, to the nearest
    training word of each tag, to field descriptions) and a linear probe's tag probabilities."""

    MAX_NEIGHBOURS = 20_000  # training words kept for the nearest-word features

    def __init__(self, tags: list[str], model: bytes, centroids: np.ndarray, neighbours: np.ndarray,
                 neighbour_tags: np.ndarray, descriptions: np.ndarray):
        self.tags = tags
        self.model = model  # the CRF model file's bytes
        self.centroids = centroids  # (tags, dim), unit rows (zero for tags never seen)
        self.neighbours = neighbours  # (n, dim) unit rows of tagged training words
        self.neighbour_tags = neighbour_tags  # (n,) tag index
        self.descriptions = descriptions  # (fields, dim) unit rows (zero without a description)
        self.probe: Any = None  # the linear probe (None in versions trained before it, or without tags)
        self.values = False  # reads the value tagger (False in versions trained before it, or with other encoders)
        self._tagger: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_tagger", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"probe": None, "values": False, **state}, _tagger=None, _lock=threading.Lock())

    def features(self, doc: _Doc, own: int = -1, owners: np.ndarray | None = None,
                 probed: np.ndarray | None = None) -> list[dict[str, float]]:
        """Each word's features; ``own`` hides a training doc's own words from its
        nearest-word features (they would be exact matches); ``probed`` gives a training
        doc's out-of-fold probe probabilities."""
        v = _unit(doc.vectors)
        to_centroids = v @ self.centroids.T
        to_descriptions = v @ self.descriptions.T
        nearest = np.zeros((len(v), len(self.tags)))
        for start in range(0, len(v) if len(self.neighbours) else 0, 512):  # blocks: long texts stay small
            sims = v[start:start + 512] @ self.neighbours.T
            if owners is not None and own >= 0:
                sims[:, owners == own] = -1.0
            for t in range(1, len(self.tags)):
                mask = self.neighbour_tags == t
                if mask.any():
                    nearest[start:start + 512, t] = sims[:, mask].max(1)
        fields = [t[2:] for t in self.tags if t.startswith("B-")]
        if probed is None:
            probed = _probe_probabilities(self.probe, v, len(self.tags))
        valued = doc.value_probabilities if self.values and len(v) else None
        out = []
        for i, lexical in enumerate(doc.lexical):
            f = dict(lexical)
            for t in range(1, len(self.tags)):
                if self.centroids[t].any():
                    f["centroid=" + self.tags[t]] = float(to_centroids[i, t]) * 2
                if nearest[i, t] > 0.5:
                    f["nearest=" + self.tags[t]] = float(nearest[i, t]) * 2
            for k, name in enumerate(fields):
                if self.descriptions[k].any():
                    f["description=" + name] = float(to_descriptions[i, k]) * 2
            if probed is not None:
                f["probe=O"] = float(probed[i, 0])
                for t in range(1, len(self.tags)):
                    if probed[i, t] > 0.02:
                        f["probe=" + self.tags[t]] = float(probed[i, t]) * 2
            if valued is not None:
                f["value=B"], f["value=I"] = float(valued[i, 1]) * 2, float(valued[i, 2]) * 2
            out.append(f)
        return out

    @classmethod
    def fit(cls, docs: list[_Doc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
            encoder: Any) -> _Tagger:
        import os
        import tempfile

        import pycrfsuite

        names = list(fields)
        tags = ["O"] + [f"{p}-{f}" for f in names for p in ("B", "I")]
        index = {t: i for i, t in enumerate(tags)}
        dim = docs[0].vectors.shape[1] if docs else 0
        labels = [_tags(d, g, index) for d, g in zip(docs, golds)]
        rows, owners, row_tags = [], [], []
        for n, (d, y) in enumerate(zip(docs, labels)):
            v = _unit(d.vectors)
            for i, t in enumerate(y):
                if t:
                    rows.append(v[i])
                    owners.append(n)
                    row_tags.append(t)
        neighbours = np.array(rows, np.float32).reshape(-1, dim)
        owner_ids, neighbour_tags = np.array(owners), np.array(row_tags)
        centroids = np.zeros((len(tags), dim), np.float32)
        for t in range(1, len(tags)):
            if (neighbour_tags == t).any():
                c = neighbours[neighbour_tags == t].mean(0)
                centroids[t] = c / max(float(np.linalg.norm(c)), 1e-9)
        descriptions = np.zeros((len(names), dim), np.float32)
        described = [(k, f"{n.replace('_', ' ')}: {d}") for k, (n, d) in enumerate(fields.items()) if d.strip()]
        if described:
            for (k, _), (_, vec) in zip(described, encoder.encode_tokens([t for _, t in described],
                                                                         layer=word_layer(encoder))):
                c = vec.mean(0)
                descriptions[k] = c / max(float(np.linalg.norm(c)), 1e-9)
        tagger = cls(tags, b"", centroids, neighbours, neighbour_tags, descriptions)
        tagger.values = VALUE_TAGGER and value_tagger.shipped().applies(encoder, word_layer(encoder))
        # with too few examples to hold any out, the CRF learns without a probe
        tagger.probe = _fit_probe(docs, labels) if len(docs) >= 2 * PROBE_FOLDS else None
        probed: list[np.ndarray | None] = [None] * len(docs)
        if tagger.probe is not None:
            order = np.random.default_rng(1).permutation(len(docs))
            for k in range(PROBE_FOLDS):
                held = set(order[k::PROBE_FOLDS].tolist())
                rest = [i for i in range(len(docs)) if i not in held]
                probe = _fit_probe([docs[i] for i in rest], [labels[i] for i in rest])
                for i in held:  # a fold whose rest holds one tag only: every word "O" for sure
                    probed[i] = (_probe_probabilities(probe, _unit(docs[i].vectors), len(tags)) if probe is not None
                                 else np.eye(len(tags))[np.zeros(len(docs[i].offsets), np.int64)])
        trainer = pycrfsuite.Trainer(verbose=False)
        for n, (d, y) in enumerate(zip(docs, labels)):
            trainer.append(pycrfsuite.ItemSequence(tagger.features(d, n, owner_ids, probed[n])),
                           [tags[t] for t in y])
        trainer.set_params({"c1": 0.05, "c2": 0.1, "max_iterations": 200, "feature.possible_transitions": True})
        fd, path = tempfile.mkstemp(suffix=".crfsuite")
        os.close(fd)
        try:
            trainer.train(path)
            tagger.model = Path(path).read_bytes()
        finally:
            os.unlink(path)
        if len(neighbours) > cls.MAX_NEIGHBOURS:  # bound the per-call cost of the nearest-word features
            keep = np.random.default_rng(0).choice(len(neighbours), cls.MAX_NEIGHBOURS, replace=False)
            tagger.neighbours, tagger.neighbour_tags = neighbours[keep], neighbour_tags[keep]
        return tagger

    def _open(self) -> Any:
        import os
        import tempfile

        import pycrfsuite

        if self._tagger is None:
            fd, path = tempfile.mkstemp(suffix=".crfsuite")
            with os.fdopen(fd, "wb") as f:
                f.write(self.model)
            tagger = pycrfsuite.Tagger()
            tagger.open(path)  # crfsuite maps the file; it may go once opened
            os.unlink(path)
            self._tagger = tagger
        return self._tagger

    def marginals(self, doc: _Doc) -> tuple[list[str], np.ndarray]:
        """The best tag path and each tag's marginal probability at each word (words x tags)."""
        import pycrfsuite

        table = np.zeros((len(doc.offsets), len(self.tags)))
        if not len(doc.offsets):
            return [], table
        features = pycrfsuite.ItemSequence(self.features(doc))
        with self._lock:  # a crfsuite tagger holds one sequence at a time
            tagger = self._open()
            path = tagger.tag(features)
            known = set(tagger.labels())
            for k, t in enumerate(self.tags):
                if t in known:
                    table[:, k] = [tagger.marginal(t, i) for i in range(len(path))]
        return list(path), table

    def spans(self, doc: _Doc) -> dict[str, tuple[tuple[int, int] | None, float]]:
        """field -> (character span or None, raw score): the best path's spans (the likeliest
        one when a field has several), scored by the CRF's marginals."""
        fields = [t[2:] for t in self.tags if t.startswith("B-")]
        if not len(doc.offsets):
            return {name: (None, 1.0) for name in fields}
        path, table = self.marginals(doc)
        marginal = {t: table[:, k].tolist() for k, t in enumerate(self.tags) if t != "O"}
        best: dict[str, tuple[tuple[int, int] | None, float]] = {}
        i = 0
        while i < len(path):
            if not path[i].startswith("B-"):
                i += 1
                continue
            name, j = path[i][2:], i + 1
            while j < len(path) and path[j] == "I-" + name:
                j += 1
            inside = marginal["I-" + name]
            score = marginal["B-" + name][i] * float(np.prod(inside[i + 1:j])) * (1.0 - (inside[j] if j < len(path)
                                                                                        else 0.0))
            if name not in best or score > best[name][1]:
                best[name] = ((int(doc.offsets[i][0]), int(doc.offsets[j - 1][1])), float(score))
            i = j
        for name in fields:
            if name not in best:
                best[name] = (None, float(1.0 - max(marginal["B-" + name])))
        return best


class NanoExtractor:
    def __init__(self, info: ExtractorInfo, tagger: _Tagger, calibration: dict[str, Any] | None = None,
                 examples: list[dict[str, Any]] | None = None, embeddings: np.ndarray | None = None,
                 span_stage: SpanStage | None = None):
        self.info = info
        self.tagger = tagger
        self.span_stage = span_stage  # None: the CRF's own path decides (versions trained before the stage)
        self.calibration = calibration or {}  # "found" / "absent": isotonic maps raw score -> P(correct)
        self.examples = examples or []  # the training examples, for LLM tiers to learn from
        self.embeddings = embeddings  # their sentence vectors (float16), for retrieval

    def nearest(self, text: str, k: int, encoder: Any) -> list[dict[str, Any]]:
        """The ``k`` training examples most like ``text`` (cosine of sentence vectors), most
        similar last, so the closest sits next to the question in a prompt."""
        if not self.examples or self.embeddings is None or k <= 0:
            return []
        sims = self.embeddings.astype(np.float32) @ encoder.encode([text])[0]
        top = np.argsort(-sims, kind="stable")[:k]
        return [self.examples[int(i)] for i in top[::-1]]

    @property
    def fields(self) -> list[str]:
        return list(self.info.fields)

    @functools.cached_property
    def common_values(self) -> dict[str, list[str]]:
        """Each field's training values, most frequent first (counted once per loaded version)."""
        counts: dict[str, Counter[str]] = {name: Counter() for name in self.info.fields}
        for ex in self.examples:
            for name, value in ex["data"].items():
                if name in counts and isinstance(value, str) and value.strip():
                    counts[name][value] += 1
        return {name: [v for v, _ in c.most_common()] for name, c in counts.items()}

    def similarity(self, text: str, encoder: Any) -> float | None:
        """Cosine of ``text`` to its nearest training example: how typical it is."""
        if self.embeddings is None or not len(self.embeddings):
            return None
        return float((self.embeddings.astype(np.float32) @ encoder.encode([text])[0]).max())

    @classmethod
    def train(cls, name: str, examples: list[dict[str, Any]], encoder: Any, fields: dict[str, str] | None = None,
              version: int = 1, calibrate: bool = True, learn: bool = False,
              base_examples: int | None = None, encoder_name: str | None = None, spans: bool = True) -> NanoExtractor:
        """``spans``: choose among candidate spans with the second stage (``nano.span_scorer``;
        needs at least 8 examples), kept when its out-of-fold slot F1 beats the CRF's best path,
        which otherwise decides as in versions before the stage."""
        started = time.perf_counter()
        texts, golds, fields, warnings = check_examples(examples, fields)
        docs = _prepare(texts, encoder)
        calibration: dict[str, Any] = {}
        oof_f1 = None
        tagger = _Tagger.fit(docs, golds, fields, encoder)
        stage, measured = None, {}
        if (calibrate or spans) and len(docs) >= 2 * OOF_FOLDS:
            folds = _oof_taggers(docs, golds, fields, encoder)
            calibration, oof_f1 = _calibrate(docs, golds, fields, folds)
            measured["crf"] = oof_f1
            if spans:
                stage, stage_f1 = _fit_span_stage(docs, golds, fields, folds, tagger)
                if stage is not None and stage_f1 is not None:
                    measured["spans"] = stage_f1
                if stage is not None and (stage_f1 or 0.0) > oof_f1:  # kept only where it measures better
                    oof_f1 = stage_f1
                else:
                    stage = None
        counts = Counter(n for g in golds for n in g)
        info = ExtractorInfo(name=name, version=version, fields=fields, examples=len(texts),
                             encoder=encoder_name or str(getattr(encoder, "name", "encoder")),
                             trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             train_seconds=round(time.perf_counter() - started, 2),
                             field_examples={n: counts[n] for n in fields}, warnings=warnings, oof_f1=oof_f1,
                             learn=learn, base_examples=base_examples, decoder="spans" if stage else "crf",
                             decoder_oof_f1=measured or None)
        kept = [{"text": t, "data": {n: t[a:b] for n, (a, b) in g.items()}} for t, g in zip(texts, golds)]
        return cls(info, tagger, calibration, kept, encoder.encode(texts).astype(np.float16), stage)

    def predict(self, texts: list[str], encoder: Any) -> list[dict[str, Any]]:
        """Per text: ``data`` (every field; null when not stated), ``spans``, ``field_confidence``
        (calibrated P(correct)) and ``confidence`` (the weakest field)."""
        results = []
        for doc in _prepare(texts, encoder):
            stage = self.span_stage
            raw = stage.spans(_span_doc(doc, self.tagger)) if stage is not None else self.tagger.spans(doc)
            data, spans, conf = {}, {}, {}
            for name in self.fields:
                span, score = raw[name]
                data[name] = doc.text[span[0]:span[1]] if span else None
                spans[name] = list(span) if span else None
                iso = None if stage is not None else self.calibration.get("found" if span else "absent")
                conf[name] = round(float(iso.predict([score])[0]) if iso is not None else score, 6)
            results.append({"data": data, "spans": spans, "field_confidence": conf,
                            "confidence": min(conf.values()) if conf else 1.0})
        return results

    def save(self, directory: Path) -> None:
        """Written beside, then renamed into place: a version is whole or absent."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "info.json").write_text(json.dumps(asdict(self.info), indent=2))
        with open(tmp / "examples.jsonl", "w", encoding="utf-8") as f:
            for ex in self.examples:
                f.write(json.dumps(ex, ensure_ascii=False) + "\n")
        with open(tmp / "model.pkl", "wb") as f:
            pickle.dump({"tagger": self.tagger, "calibration": self.calibration, "embeddings": self.embeddings,
                         "span_stage": self.span_stage}, f)
        tmp.rename(directory)

    @staticmethod
    def load_info(directory: Path) -> ExtractorInfo:
        return ExtractorInfo(**json.loads((directory / "info.json").read_text()))

    @classmethod
    def load(cls, directory: Path) -> NanoExtractor:
        info = cls.load_info(directory)
        with open(directory / "model.pkl", "rb") as f:
            state = pickle.load(f)  # written by this class, under the user's own home
        examples = [json.loads(line) for line in (directory / "examples.jsonl").read_text(encoding="utf-8")
                    .splitlines() if line.strip()]
        return cls(info, state["tagger"], state["calibration"], examples, state.get("embeddings"),
                   state.get("span_stage"))


def _span_doc(doc: _Doc, tagger: _Tagger | None) -> SpanDoc:
    """What the span stage reads of a text: its words, vectors and (given a tagger) the CRF's
    marginals and best path."""
    path, table = tagger.marginals(doc) if tagger is not None else ([], np.zeros((len(doc.offsets), 0)))
    values = doc.value_probabilities if tagger is not None and tagger.values and len(doc.offsets) else None
    return SpanDoc(doc.text, doc.offsets, _unit(doc.vectors), table, path, values)


def _oof_taggers(docs: list[_Doc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
                 encoder: Any) -> list[tuple[list[int], list[int], _Tagger]]:
    """Per fold: the examples a CRF trained on, the ones held out of it, and the CRF."""
    order = np.random.default_rng(0).permutation(len(docs))
    folds = []
    for k in range(OOF_FOLDS):
        held = sorted(order[k::OOF_FOLDS].tolist())
        out = set(held)
        rest = [i for i in range(len(docs)) if i not in out]
        folds.append((rest, held, _Tagger.fit([docs[i] for i in rest], [golds[i] for i in rest], fields, encoder)))
    return folds


def _fit_span_stage(docs: list[_Doc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
                    folds: list[tuple[list[int], list[int], _Tagger]],
                    final: _Tagger) -> tuple[SpanStage | None, float | None]:
    """The span stage learns from CRFs that did not see the examples they tag (out of fold), so
    it weighs the CRF's marginals as they behave on new text."""
    held_out = [(rest, held, [_span_doc(docs[i], tagger) for i in held], {t: j for j, t in enumerate(tagger.tags)},
                 tagger.descriptions) for rest, held, tagger in folds]
    return fit_stage([_span_doc(d, None) for d in docs], golds, fields, held_out,
                     {t: j for j, t in enumerate(final.tags)}, final.descriptions)


def _calibrate(docs: list[_Doc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
               folds: list[tuple[list[int], list[int], _Tagger]]) -> tuple[dict[str, Any], float]:
    """Isotonic maps from the CRF's raw scores to P(correct), fitted on the predictions of the
    out-of-fold CRFs ``folds`` (``_oof_taggers``); and the out-of-fold slot F1 (an honest
    estimate of what to expect)."""
    from sklearn.isotonic import IsotonicRegression

    found: list[tuple[float, float]] = []
    absent: list[tuple[float, float]] = []
    tp = fp = fn = 0
    for _, held, tagger in folds:
        for i in held:
            raw = tagger.spans(docs[i])
            for name in fields:
                span, score = raw[name]
                gold = golds[i].get(name)
                if span is None:
                    absent.append((score, float(gold is None)))
                    fn += gold is not None
                else:
                    right = gold is not None and _same(docs[i].text, span, gold)
                    found.append((score, float(right)))
                    tp += right
                    fp += not right
                    fn += gold is not None and not right
    calibration = {}
    for key, pairs in (("found", found), ("absent", absent)):
        if len(pairs) >= 5 and len({y for _, y in pairs}) == 2:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit([s for s, _ in pairs], [y for _, y in pairs])
            calibration[key] = iso
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return calibration, round(f1, 4)


def normalize_value(s: str) -> str:
    """How slot values are compared: case, spacing and surrounding punctuation ignored."""
    return re.sub(r"\s+", " ", s).strip(" .,;:!?\"'").lower()


def _same(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    return normalize_value(text[a[0]:a[1]]) == normalize_value(text[b[0]:b[1]])


class ExtractorStore(VersionedStore):
    """Named, versioned extractors under ``<home>/extractors`` (newest used; old versions kept)."""

    kind = "extractor"
    not_found = ExtractorNotFound
    train_hint = "train one with POST /v1/extractors or `litegate train {name} --task extract --data FILE.jsonl`"

    def __init__(self, home: Path, encoders: EncoderRegistry):
        super().__init__(home, NanoExtractor.load, NanoExtractor.load_info, encoders)

    def train(self, name: str, examples: list[dict[str, Any]], fields: dict[str, str] | None = None,
              learn: bool = False, encoder: str | None = None) -> ExtractorInfo:
        """``encoder``: a registry key that gives word vectors, ``auto`` or None (the default)."""
        self.check_name(name)
        texts, _, _, _ = check_examples(examples, fields)  # fail fast, before loading the encoder
        key = self.encoders.choose(encoder, texts, words=True)
        version = self.next_version(name)
        ext = NanoExtractor.train(name, examples, self.encoders.get(key), fields=fields, version=version,
                                  learn=learn, base_examples=len(examples), encoder_name=key)
        self.put(name, version, ext)
        return ext.info
