"""The nano extractor's second stage: each candidate span (the CRF's spans and the typed
recognizers' dates, times, durations, amounts and numbers; since features version 2 also the words
after a preposition and training values written again) is scored against each field by one model
whose weights every field shares (a logistic model and boosted trees, averaged).

Why shared weights: ~100 training utterances hold one or two examples of a field such as
``time_to``; a per-field model learns nothing from them, while features that say how a span
relates to *a* field (the CRF's marginal for it, the span's likeness to its training values and
description, whether the span's kinds are the words its name is made of, what kinds its training
values were) are learned from every field's examples at once and carry to fields never seen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from litegate.nano.spans import KINDS, TEMPORAL_PART, Candidate, candidates, name_kinds, word_kinds
from litegate.nano.vectors import unit as _unit

_BOUNDARY_OPENERS = ("in", "the", "a", "an", "within", "on", "at", "for", "from", "last", "next", "this")
_CONNECTORS = {"and", "to", "until", "till", "-", "through", "or", ","}
MARGINAL_FLOOR = 0.1  # a word whose B marginal for a field is over this opens a candidate span
THRESHOLD = 0.15  # a pair is a value at this raw score or more (chosen on development data: NLU++ banking)
PROPER = True  # runs of capitalised words are candidates
SCORER_C = 3.0
# what a stage reads: 1 (the first stage), 2 (also the words after a preposition and the training
# values written again, as candidates), 3 (also the value tagger's reading of the span's edges);
# a stage keeps the version it was fitted with
FEATURES = 3
_CUES = {"to", "from", "on", "at", "for", "in", "with", "by", "via", "into", "towards", "toward", "about"}
_DETERMINERS = {"the", "my", "a", "an", "our", "his", "her", "their", "your", "this", "that", "some", "any"}
_FUNCTION_WORDS = set("""i me my you your he him his she her it its we us our they them their this that these those
a an the and or but if so as of to from on at for in with by via into than then there here what which who whom
whose when where why how is am are was were be been being do does did done have has had can could will would
shall should may might must not no yes please thanks thank just also too very much many more most less some any
all each every both either neither one ones up down out off over again about after before between under""".split())


def normalize(s: str) -> str:
    return " ".join(s.split()).strip(" .,;:!?\"'").lower()


@dataclass
class SpanDoc:
    """What the scorer reads of one text: words, unit word vectors, the CRF's marginals."""

    text: str
    offsets: np.ndarray  # (t, 2) character ranges of the words
    vectors: np.ndarray  # (t, dim) unit rows
    marginals: np.ndarray  # (t, tags) the CRF's marginal probability of each tag at each word
    path: list[str]  # the CRF's best tag sequence
    values: np.ndarray | None = None  # (t, 3) the value tagger's P(O), P(B), P(I) (nano.value_tagger), if read

    @cached_property  # read per candidate and per field while the features are built
    def words(self) -> list[str]:
        return [self.text[a:b] for a, b in self.offsets]

    def span_text(self, a: int, b: int) -> str:
        return self.text[int(self.offsets[a][0]):int(self.offsets[b - 1][1])]


@dataclass
class FieldStats:
    """What the training examples say about each field."""

    fields: list[str]
    values: list[set[str]]  # normalized training values
    centroids: np.ndarray  # (fields, dim) unit mean of the values' word vectors (zero: none)
    value_vectors: list[np.ndarray]  # per field (n, dim) unit mean vector of each value
    profiles: np.ndarray  # (fields, kinds) mean kinds of the values the recognizers read
    typed_share: np.ndarray  # (fields,) the share of values a recognizer finds exactly
    prior: np.ndarray  # (fields,) log of the share of texts that state the field
    name_kinds: list[set[str]]
    description_kinds: list[set[str]]
    descriptions: np.ndarray  # (fields, dim) unit description vectors (zero: no description)
    left: np.ndarray  # (fields, dim) unit mean vector of the word before each value (zero: none)
    right: np.ndarray  # (fields, dim) the same for the word after


def _kind_vector(kinds: frozenset[str] | set[str]) -> np.ndarray:
    return np.array([float(k in kinds) for k in KINDS])


def word_span(offsets: np.ndarray, span: tuple[int, int]) -> tuple[int, int] | None:
    inside = [i for i, (s, e) in enumerate(offsets) if s < span[1] and e > span[0]]
    return (inside[0], inside[-1] + 1) if inside else None


def fit_stats(docs: list[SpanDoc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
              descriptions: np.ndarray) -> FieldStats:
    names = list(fields)
    dim = docs[0].vectors.shape[1] if docs else 0
    values: list[set[str]] = [set() for _ in names]
    vecs: list[list[np.ndarray]] = [[] for _ in names]
    kinds: list[list[np.ndarray]] = [[] for _ in names]
    found = np.zeros(len(names))
    counts = np.zeros(len(names))
    left, right = np.zeros((len(names), dim), np.float32), np.zeros((len(names), dim), np.float32)
    for d, gold in zip(docs, golds):
        typed = {(c.start, c.end): c for c in candidates(d.words)}
        for k, name in enumerate(names):
            if name not in gold:
                continue
            counts[k] += 1
            values[k].add(normalize(d.text[gold[name][0]:gold[name][1]]))
            ws = word_span(d.offsets, gold[name])
            if ws is None:
                continue
            vecs[k].append(_unit(d.vectors[ws[0]:ws[1]].mean(0)))
            if ws[0]:
                left[k] += d.vectors[ws[0] - 1]
            if ws[1] < len(d.offsets):
                right[k] += d.vectors[ws[1]]
            if ws in typed:
                found[k] += 1
                kinds[k].append(_kind_vector(typed[ws].kinds))
    centroids = np.zeros((len(names), dim), np.float32)
    for k in range(len(names)):
        if vecs[k]:
            centroids[k] = _unit(np.mean(vecs[k], 0))
    profiles = np.array([np.mean(kinds[k], 0) if kinds[k] else np.zeros(len(KINDS)) for k in range(len(names))])
    read = [name_kinds(n, fields[n]) for n in names]
    return FieldStats(names, values, centroids,
                      [np.array(v, np.float32).reshape(-1, dim) for v in vecs], profiles,
                      found / np.maximum(counts, 1), np.log((counts + 1) / (len(docs) + 2)),
                      [r[0] for r in read], [r[1] for r in read], descriptions,
                      np.array([_unit(r) for r in left]).reshape(-1, dim),
                      np.array([_unit(r) for r in right]).reshape(-1, dim))


def _crf_spans(doc: SpanDoc, tag_index: dict[str, int], fields: list[str]) -> set[tuple[int, int]]:
    """Spans the CRF proposes: its best path's, and where a field's B marginal is high."""
    out: set[tuple[int, int]] = set()
    path, t = doc.path, len(doc.path)
    i = 0
    while i < t:
        if path[i].startswith("B-"):
            j = i + 1
            while j < t and path[j] == "I-" + path[i][2:]:
                j += 1
            out.add((i, j))
            i = j
        else:
            i += 1
    for name in fields:
        b, inside = tag_index.get("B-" + name), tag_index.get("I-" + name)
        if b is None or inside is None:
            continue
        for start in np.flatnonzero(doc.marginals[:, b] > MARGINAL_FLOOR).tolist():
            j = start + 1
            while j < t and doc.marginals[j, inside] > 0.3:
                j += 1
            out.add((start, j))
    return out


def _proper_runs(words: list[str]) -> list[tuple[int, int]]:
    """Runs of capitalised words past the first word ("Amazon Prime Video"): names of things."""
    out, i = [], 1
    while i < len(words):
        if words[i][:1].isupper() and words[i] != "I":
            j = i
            while j < len(words) and (words[j][:1].isupper() or words[j] in ("&", "'s")) and words[j] != "I":
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def _cue_phrases(words: list[str]) -> list[tuple[int, int]]:
    """One to three content words after a preposition ("payments to elia greek restaurant", "spent on
    delivery"): where names of people, shops and things sit, written in any case."""
    lower = [w.lower() for w in words]
    kinds = word_kinds(words)
    out = []
    for i, w in enumerate(lower[:-1]):
        if w not in _CUES:
            continue
        a = i + 2 if lower[i + 1] in _DETERMINERS else i + 1
        for b in range(a + 1, min(a + 3, len(lower)) + 1):
            last = lower[b - 1]
            if last in _FUNCTION_WORDS or not last[:1].isalpha() or kinds[b - 1] & TEMPORAL_PART:
                break
            out.append((a, b))
    return out


def _known_values(words: list[str], values: list[set[str]]) -> list[tuple[int, int]]:
    """Where a training value of any field is written again."""
    lower = [w.lower() for w in words]
    known = {v for vals in values for v in vals}
    longest = max((len(v.split()) for v in known), default=0)
    return [(a, b) for a in range(len(lower)) for b in range(a + 1, min(a + longest, len(lower)) + 1)
            if normalize(" ".join(lower[a:b])) in known]


def spans_of(doc: SpanDoc, tag_index: dict[str, int], fields: list[str], features: int = 1,
             values: list[set[str]] | None = None) -> list[Candidate]:
    found = {(c.start, c.end): c for c in candidates(doc.words)}
    for a, b in _proper_runs(doc.words) if PROPER else []:
        found.setdefault((a, b), Candidate(a, b, frozenset({"name"}), "proper"))
    if features >= 2:
        for a, b in _known_values(doc.words, values or []):
            found.setdefault((a, b), Candidate(a, b, frozenset(), "known"))
        for a, b in _cue_phrases(doc.words):
            found.setdefault((a, b), Candidate(a, b, frozenset(), "phrase"))
    for a, b in _crf_spans(doc, tag_index, fields):
        found.setdefault((a, b), Candidate(a, b, frozenset(), "crf"))
    return sorted(found.values(), key=lambda c: (c.start, c.end))


def _content(word: str, kinds: set[str]) -> bool:
    return word[:1].isalpha() and word.lower() not in _FUNCTION_WORDS and not kinds & TEMPORAL_PART


_UNTYPED = ("crf", "phrase", "known")  # sources that say nothing of what a span reads as


def _span_features(doc: SpanDoc, c: Candidate, crf: set[tuple[int, int]], kinds: list[set[str]]) -> list[float]:
    """What a span is, whatever the field: its source, edges, length, and whether it stops
    short of a date or number next to it (a value cut in two)."""
    words = [w.lower() for w in doc.words[c.start:c.end]]
    n = len(words)
    before = kinds[c.start - 1] if c.start else set()
    after = kinds[c.end] if c.end < len(kinds) else set()
    typed = c.source not in _UNTYPED
    return [float(c.source == "temporal"), float(c.source in ("amount", "number")), float((c.start, c.end) in crf),
            float(c.source == "proper"),
            float(words[0] in _BOUNDARY_OPENERS), float(words[0] == "the"), float(words[-1] == "ago"),
            float(any(w in _CONNECTORS for w in words[1:-1])), float(n == 1), float(n == 2), float(n >= 4),
            float(all(w[:1].isupper() for w in doc.words[c.start:c.end])),
            float(not words[-1][:1].isalnum() and not typed), float(not words[0][:1].isalnum()),
            float(bool(before & TEMPORAL_PART)), float(bool(after & TEMPORAL_PART)),
            float("digits" in before or "digits" in after)]


def _value_edges(values: np.ndarray | None, a: int, b: int) -> list[float]:
    """How the value tagger reads the span's edges: a value starting at its first word, its first
    word rather the inside of one (the span starts late), its other words inside one, and the word
    after it still inside one (the span stops short). Zeros without the tagger."""
    if values is None:
        return [0.0] * 4
    inner = float(values[a + 1:b, 2].mean()) if b > a + 1 else 1.0
    return [float(values[a, 1]), float(values[a, 2]), inner, float(values[b, 2]) if b < len(values) else 0.0]


class _FieldTable:
    """The field statistics as arrays, so each candidate's features are read for every field at
    once (a Python loop over the fields took ~1.5x as long)."""

    def __init__(self, stats: FieldStats, tag_index: dict[str, int]):
        n = len(stats.fields)
        self.b = np.array([tag_index.get("B-" + f, -1) for f in stats.fields])
        self.i = np.array([tag_index.get("I-" + f, -1) for f in stats.fields])
        self.has_b, self.has_i = self.b >= 0, self.i >= 0
        self.b_at, self.i_at = np.maximum(self.b, 0), np.maximum(self.i, 0)
        self.field_of = {f: k for k, f in enumerate(stats.fields)}
        self.name_kinds = np.array([_kind_vector(k) for k in stats.name_kinds]).reshape(n, len(KINDS))
        self.desc_kinds = np.array([_kind_vector(k) for k in stats.description_kinds]).reshape(n, len(KINDS))
        self.n_name = self.name_kinds.sum(1)
        self.n_desc = self.desc_kinds.sum(1)
        self.named = ((self.n_name + self.n_desc) > 0).astype(float)
        self.profile_norm = np.linalg.norm(stats.profiles, axis=1) if n else np.zeros(0)
        self.describe = len(stats.descriptions) > 0


def _rows_dot(rows: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each row's dot product with ``v``, one row at a time: the same float32 sums the features
    were fitted with (a matrix product adds in another order and moves the last bit)."""
    return np.array([float(r @ v) for r in rows])


def _near(stats: FieldStats, v: np.ndarray) -> np.ndarray:
    """Per field, the best cosine of ``v`` to one of its training values (0: none)."""
    return np.array([float((vals @ v).max()) if len(vals) else 0.0 for vals in stats.value_vectors])


def pair_features(doc: SpanDoc, cands: list[Candidate], stats: FieldStats,
                  tag_index: dict[str, int], features: int = 1) -> np.ndarray:
    """(candidates x fields, features): rows in candidate-major order."""
    crf = _crf_spans(doc, tag_index, stats.fields)
    t, n = len(doc.path), len(stats.fields)
    kinds = word_kinds(doc.words)
    zero = np.zeros(doc.vectors.shape[1], np.float32)
    table = _FieldTable(stats, tag_index)
    m = doc.marginals
    prior, typed_share = stats.prior.astype(float), stats.typed_share.astype(float)
    blocks = []
    for c in cands:
        a, b = c.start, c.end
        shared = _span_features(doc, c, crf, kinds)
        if features >= 2:  # a name cut short stops before, or starts after, another content word
            shared += [float(c.source == "phrase"), float(c.source == "known"),
                       float(b < t and _content(doc.words[b], kinds[b])),
                       float(a > 0 and _content(doc.words[a - 1], kinds[a - 1]))]
        if features >= 3:
            shared += _value_edges(doc.values, a, b)
        to_left = stats.left @ (doc.vectors[a - 1] if a else zero)
        to_right = stats.right @ (doc.vectors[b] if b < t else zero)
        v = _unit(doc.vectors[a:b].mean(0))
        kv = _kind_vector(c.kinds)
        text = normalize(doc.span_text(a, b))
        in_any = np.array([text in vals for vals in stats.values], float)
        inner = m[a + 1:b][:, table.i_at]  # (span words - 1, fields)
        mb = np.where(table.has_b, m[a, table.b_at], 0.0)
        mi = np.where(table.has_i & (b > a + 1), inner.mean(0) if b > a + 1 else 1.0, 1.0)
        mout = 1.0 - (np.where(table.has_i, m[b, table.i_at], 0.0) if b < t else np.zeros(n))
        mspan = mb * np.where(table.has_i, np.prod(inner, axis=0), 0.0) * mout
        on_path = np.zeros(n)
        head = doc.path[a]
        if head.startswith("B-") and head[2:] in table.field_of and \
                all(x == "I-" + head[2:] for x in doc.path[a + 1:b]) and (b >= t or doc.path[b] != "I-" + head[2:]):
            on_path[table.field_of[head[2:]]] = 1.0
        if c.kinds:
            over_name, over_desc = table.name_kinds @ kv, table.desc_kinds @ kv
            missing = (table.n_name - over_name) / np.maximum(1, table.n_name)
            profile = (stats.profiles @ kv) / np.maximum(1e-9, table.profile_norm * float(np.linalg.norm(kv)))
        else:
            over_name = over_desc = missing = profile = np.zeros(n)
        typed = float(c.source not in _UNTYPED)
        per_field = np.column_stack([
            mb, mi, mout, np.log(np.maximum(mspan, 1e-4)), on_path,
            _rows_dot(stats.centroids, v), _near(stats, v),
            _rows_dot(stats.descriptions, v) if table.describe else np.zeros(n),
            over_name / np.maximum(1, table.n_name), missing, over_desc / np.maximum(1, table.n_desc), table.named,
            profile, typed_share * typed, (1 - typed_share) * (1.0 - typed),
            in_any, (in_any.sum() - in_any > 0).astype(float), prior, to_left, to_right])
        blocks.append(np.hstack([np.tile(np.array(shared, float), (n, 1)), per_field]))
    if not blocks:
        return np.zeros((0, 0), np.float32)
    return np.vstack(blocks).astype(np.float32)


def labels_for(doc: SpanDoc, cands: list[Candidate], gold: dict[str, tuple[int, int]], fields: list[str]) -> np.ndarray:
    want = {name: normalize(doc.text[s:e]) for name, (s, e) in gold.items()}
    return np.array([float(name in want and normalize(doc.span_text(c.start, c.end)) == want[name])
                     for c in cands for name in fields])


# the scorer: "mean" (a logistic model and boosted trees, their probabilities averaged: measured
# +2.4 points of slot F1 on every development draw against "logistic", the first stage's alone)
SCORER = "mean"
TREES, RATE = 150, 0.05


class _Mean:
    """Probabilities averaged over a linear model and boosted trees fitted on the same pairs."""

    def __init__(self, models: list[Any]):
        self.models = models

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Mean:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):  # OpenMP threads spin and stall on a busy machine
            for m in self.models:
                m.fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.mean([_one_thread_proba(m, x) for m in self.models], axis=0)


def _one_thread_proba(model: Any, x: np.ndarray) -> np.ndarray:
    """A few hundred rows a call: OpenMP threads (and limiting them per call) cost more than they
    save, so boosted trees are read on one thread where scikit-learn lets us say so."""
    raw_predict = getattr(model, "_raw_predict", None)
    if raw_predict is None:
        return np.asarray(model.predict_proba(x))
    p = 1.0 / (1.0 + np.exp(-np.asarray(raw_predict(x, n_threads=1)).ravel()))
    return np.column_stack([1.0 - p, p])


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    if SCORER == "mean":  # the trees see how features combine (a phrase after "to" and its likeness to names)
        from sklearn.ensemble import HistGradientBoostingClassifier
        return _Mean([LogisticRegression(C=SCORER_C, max_iter=1000), HistGradientBoostingClassifier(
            max_iter=TREES, learning_rate=RATE, max_leaf_nodes=8, min_samples_leaf=20, l2_regularization=1.0,
            random_state=0)])
    return LogisticRegression(C=SCORER_C, max_iter=1000)


class SpanScorer:
    """A model over (span, field) pairs (``SCORER``), its feature scaling, and an isotonic map from
    its scores to P(correct) fitted on cross-validated scores of the training pairs."""

    def __init__(self, model: Any, mean: np.ndarray, scale: np.ndarray, calibration: Any = None,
                 held: np.ndarray | None = None):
        self.model, self.mean, self.scale, self.calibration = model, mean, scale, calibration
        self.held = held  # the training pairs' cross-validated scores (not kept when saved)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "held": None}

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> SpanScorer | None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.isotonic import IsotonicRegression

        if len(set(y.tolist())) < 2:
            return None
        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        z = (x - mean) / scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _model().fit(z, y)
            held = np.zeros(len(y))
            folds = np.unique(groups)
            for g in folds:
                part = groups == g
                if len(set(y[~part].tolist())) == 2:
                    held[part] = _model().fit(z[~part], y[~part]).predict_proba(z[part])[:, 1]
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(held, y) if len(folds) > 1 else None
        return cls(model, mean, scale, iso, held)

    def scores(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        return np.asarray(self.model.predict_proba((x - self.mean) / self.scale)[:, 1])


def choose(doc: SpanDoc, cands: list[Candidate], fields: list[str], scores: np.ndarray,
           threshold: float = THRESHOLD) -> dict[str, tuple[tuple[int, int] | None, float]]:
    """Field -> (character span or None, score): the best pairs first, one span per field, no
    two fields on overlapping words; a field with no pair over ``threshold`` is absent, scored
    by how sure the model is that none of its pairs is right."""
    grid = scores.reshape(len(cands), len(fields)) if len(cands) else np.zeros((0, len(fields)))
    out: dict[str, tuple[tuple[int, int] | None, float]] = {}
    taken = np.zeros(len(doc.path), bool)
    for flat in np.argsort(-grid, axis=None, kind="stable"):
        ci, k = divmod(int(flat), len(fields))
        if grid[ci, k] < threshold:
            break
        c = cands[ci]
        if fields[k] in out or taken[c.start:c.end].any():
            continue
        taken[c.start:c.end] = True
        out[fields[k]] = ((int(doc.offsets[c.start][0]), int(doc.offsets[c.end - 1][1])), float(grid[ci, k]))
    for k, name in enumerate(fields):
        if name not in out:
            out[name] = (None, float(1.0 - grid[:, k].max()) if len(grid) else 1.0)
    return out


class SpanStage:
    """The fitted second stage: the field statistics of all training examples, the scorer, and
    the threshold its raw scores are read at."""

    def __init__(self, fields: list[str], tag_index: dict[str, int], stats: FieldStats, scorer: SpanScorer,
                 threshold: float = THRESHOLD, features: int = 1):
        self.fields, self.tag_index, self.stats = fields, tag_index, stats
        self.scorer, self.threshold, self.features = scorer, threshold, features

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"features": 1, **state})  # stages saved before versions read as the first

    def spans(self, doc: SpanDoc) -> dict[str, tuple[tuple[int, int] | None, float]]:
        """Field -> (character span or None, calibrated P(correct))."""
        cands = spans_of(doc, self.tag_index, self.fields, self.features, self.stats.values) if len(doc.path) else []
        raw = (self.scorer.scores(pair_features(doc, cands, self.stats, self.tag_index, self.features)) if cands
               else np.zeros(0))
        chosen = choose(doc, cands, self.fields, raw, self.threshold)
        iso = self.scorer.calibration
        if iso is None:
            return chosen
        # one call for all fields: each of scikit-learn's calls costs ~0.4 ms in input checks alone
        # (13 fields: about half of the stage's time per text)
        names = list(chosen)
        found = np.array([chosen[n][0] is not None for n in names])
        raw = np.array([chosen[n][1] for n in names], float)
        p = np.asarray(iso.predict(np.where(found, raw, 1.0 - raw)), float) if names else np.zeros(0)
        # absent: sure as far as its likeliest pair is unlikely
        return {n: (chosen[n][0], float(p[k] if found[k] else 1.0 - p[k])) for k, n in enumerate(names)}


Items = list[tuple[int, SpanDoc, list[Candidate]]]  # per held-out example: its index, its SpanDoc, its candidates


def stage_rows(train_docs: list[SpanDoc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
               held_out: list[tuple[list[int], list[int], list[SpanDoc], dict[str, int], np.ndarray]],
               features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Items] | None:
    """The (span, field) pairs of the held-out examples of each fold, read against the field
    statistics of that fold's own training examples: features, labels, fold, and per example its
    candidates. None when no example has a candidate."""
    names = list(fields)
    xs, ys, groups, items = [], [], [], []
    for fold, (rest, held, docs, tag_index, descriptions) in enumerate(held_out):
        stats = fit_stats([train_docs[i] for i in rest], [golds[i] for i in rest], fields, descriptions)
        for i, doc in zip(held, docs):
            cands = spans_of(doc, tag_index, names, features, stats.values)
            items.append((i, doc, cands))
            if cands:
                xs.append(pair_features(doc, cands, stats, tag_index, features))
                ys.append(labels_for(doc, cands, golds[i], names))
                groups.append(np.full(len(cands) * len(names), fold))
    if not xs:
        return None
    return np.vstack(xs), np.concatenate(ys), np.concatenate(groups), items


def fit_stage(train_docs: list[SpanDoc], golds: list[dict[str, tuple[int, int]]], fields: dict[str, str],
              held_out: list[tuple[list[int], list[int], list[SpanDoc], dict[str, int], np.ndarray]],
              final_tags: dict[str, int], final_descriptions: np.ndarray,
              features: int | None = None) -> tuple[SpanStage | None, float | None]:
    """The stage from out-of-fold CRF outputs: ``held_out`` holds per fold (the examples it
    trained on, the examples it tagged, their SpanDocs with that fold's marginals, its tag index
    and description vectors). Returns the stage (None when the examples hold no value at all)
    and the out-of-fold slot F1 of its choices."""
    names = list(fields)
    features = features or FEATURES
    rows = stage_rows(train_docs, golds, fields, held_out, features)
    if rows is None:
        return None, None
    x, y, groups, items = rows
    scorer = SpanScorer.fit(x, y, groups)
    if scorer is None:
        return None, None
    held_scores = scorer.held if scorer.held is not None else scorer.scores(x)
    tp = fp = fn = 0
    at = 0
    for i, doc, cands in items:
        n = len(cands) * len(names)
        chosen = choose(doc, cands, names, held_scores[at:at + n], THRESHOLD)
        at += n
        for name in names:
            span, gold = chosen[name][0], golds[i].get(name)
            right = span is not None and gold is not None and \
                normalize(doc.text[span[0]:span[1]]) == normalize(doc.text[gold[0]:gold[1]])
            tp, fp, fn = tp + right, fp + (span is not None and not right), fn + (gold is not None and not right)
    stats = fit_stats(train_docs, golds, fields, final_descriptions)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return SpanStage(names, final_tags, stats, scorer, features=features), round(f1, 4)
