"""The nano tier: named classifiers trained from examples, saved and versioned on disk.

A classifier is sentence embeddings (all-MiniLM-L6-v2) joined with character n-gram
TF-IDF features, under a multinomial logistic regression. Its label probabilities are
temperature-scaled on cross-validated predictions. Its confidence also knows how typical
the text is: its nearest-training-example similarity is placed among the training set's own
(cross-validated) nearest-neighbour similarities, and a text less typical than 95% of the
training texts has its top probability scaled down in proportion. That score is mapped to
P(correct) by isotonic regression fitted on the same out-of-fold predictions. So confidence
stays calibrated on in-scope data, the ranking of ordinary texts is left alone, and texts
unlike anything in training (out of scope) get low confidence.

The vectors are what the version records it read (``vector_layers``): the encoder's sentence
vector, or for the accurate encoder its final layer joined with layer 10's pooled word pieces
(the top layers are trained for sentence similarity and drop some of what tells intents apart;
measured in bench/README.md). Versions trained before the record read the sentence vector.

A label's own name, read as words ("card_lost" -> "card lost"), joins its examples as one more:
with 10 examples per label it is often the clearest one (measured in bench/README.md, Nano
encoders). Codes that name nothing ("A", "L17") are left out.

On disk: ``<home>/classifiers/<name>/v<N>/`` holds ``model.pkl`` (written only by
litegate; load classifiers only from a home directory you trust) and ``meta.json``.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import ClassifierNotFound, InvalidRequest, StorageError
from litegate.nano.encoders import DEFAULT as DEFAULT_ENCODER
from litegate.nano.encoders import KINDS, Encoder, EncoderRegistry, MemoEncoder, features
from litegate.nano.tuned import TunedLayers, frozen_states
from litegate.nano.tuning import TuneSettings, check_tunable, require_torch, tunable
from litegate.nano.tuning import tune as tune_encoder
from litegate.nano.vectors import softmax as _softmax
from litegate.nano.versions import VersionedStore

MAX_LABELS = 1000
EMBEDDING_WEIGHT = 2.0  # balances the unit-norm embedding against the TF-IDF block
ATYPICAL_QUANTILE = 0.05  # texts less typical than this fraction of training texts lose confidence
_NAME_WORD = re.compile(r"[^\W_]+")


@dataclass
class ClassifierInfo:
    name: str
    version: int
    labels: list[str]
    examples: int
    encoder: str  # the key of the encoder it was trained with (fast, accurate, multilingual)
    temperature: float
    cv_accuracy: float | None
    trained_at: str
    train_seconds: float
    calibration: str = "temperature"
    learn: bool = False  # keep the texts of calls made to it, to learn from corrections (litegate.learning.loop)
    base_examples: int | None = None  # how many of its examples were given by the user (the rest were learned)
    distilled: dict[str, Any] | None = None  # how a distilled version beat the one before (litegate.learning.loop)
    tuned: dict[str, Any] | None = None  # how its encoder's top layers were tuned on its examples (nano.tuning)
    label_names: int = 0  # labels whose name, read as words, was one more example of them
    # the encoder layers whose pooled word pieces, joined, are its vectors (nano.encoders.features);
    # None: the encoder's own sentence vector, as every version before readings were recorded
    vector_layers: list[int] | None = None
    prebuilt: bool = False  # trained on first use from examples shipped in the package (PREBUILT)


@dataclass
class Calibration:
    temperature: float = 1.0
    cv_accuracy: float | None = None
    typical_sims: np.ndarray | None = None  # sorted out-of-fold nearest-neighbour similarities
    isotonic: Any = None  # P(correct) from top probability x typicality

    def typicality(self, sims: np.ndarray) -> np.ndarray:
        """1 for ordinary texts, falling to 0 below the ATYPICAL_QUANTILE of training texts."""
        if self.typical_sims is None or not len(self.typical_sims):
            return np.ones_like(sims)
        rank = np.searchsorted(self.typical_sims, sims, side="right") / len(self.typical_sims)
        return np.minimum(1.0, rank / ATYPICAL_QUANTILE)

    def confidence(self, probs: np.ndarray, sims: np.ndarray) -> np.ndarray:
        top = probs.max(axis=1)
        if self.isotonic is None:
            return top
        score = top * self.typicality(sims)
        # a tiny monotone term breaks the isotonic plateaus' ties without moving calibration
        return np.clip(self.isotonic.predict(score) * (1 - 1e-3) + 1e-3 * score, 0.0, 1.0)


def label_text(label: str) -> str | None:
    """A label's name as words ("card_lost" -> "card lost", "refundRequest" -> "refund request"),
    or None when it names nothing (no word of three letters or more: "A", "L17", "x_1")."""
    words = _NAME_WORD.findall(re.sub(r"([a-z])([A-Z])", r"\1 \2", label))
    if not any(sum(c.isalpha() for c in w) >= 3 for w in words):
        return None
    return " ".join(w.lower() for w in words)


def check_examples(examples: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Validate ``[{"text", "label"}, ...]`` (an optional ``"weight"`` > 0 per example, 1 by
    default); return texts and labels."""
    if not isinstance(examples, list) or not examples:
        raise InvalidRequest("'examples' must be a non-empty list of {\"text\", \"label\"} objects", param="examples")
    texts, labels = [], []
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str) or not ex["text"].strip():
            raise InvalidRequest(f"'examples.{i}.text' must be a non-empty string", param=f"examples.{i}.text")
        label = ex.get("label")
        if not isinstance(label, str) or not label.strip():
            raise InvalidRequest(f"'examples.{i}.label' must be a non-empty string", param=f"examples.{i}.label")
        weight = ex.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            raise InvalidRequest(f"'examples.{i}.weight' must be a number in (0, 100]", param=f"examples.{i}.weight")
        texts.append(ex["text"])
        labels.append(label)
    counts = Counter(labels)
    if len(counts) < 2:
        raise InvalidRequest("a classifier needs at least two labels", param="examples")
    if len(counts) > MAX_LABELS:
        raise InvalidRequest(f"a classifier takes at most {MAX_LABELS} labels, got {len(counts)}", param="examples")
    thin = sorted(label for label, n in counts.items() if n < 2)
    if thin:
        shown = ", ".join(repr(t) for t in thin[:5]) + (" ..." if len(thin) > 5 else "")
        raise InvalidRequest(f"every label needs at least two examples; these have one: {shown}", param="examples")
    return texts, labels


class NanoClassifier:
    def __init__(self, info: ClassifierInfo, vectorizer: Any, model: Any, calibration: Calibration | None = None,
                 train_embeddings: np.ndarray | None = None, examples: list[dict[str, str]] | None = None,
                 tuned: TunedLayers | None = None):
        self.info = info
        self.tuned = tuned  # its encoder's tuned top layers, stored with the version (None: the shipped encoder)
        self._vectorizer = vectorizer
        self._model = model
        self._calibration = calibration or Calibration(temperature=info.temperature)
        self._train_embeddings = train_embeddings  # float16 on disk
        self.examples = examples or []  # the training examples (text, label), for LLM tiers to learn from
        self._train_matrix = train_embeddings.astype(np.float32).T.copy() if train_embeddings is not None else None
        self.labels: list[str] = list(model.classes_)

    @staticmethod
    def _features(vectorizer: Any, embeddings: np.ndarray, texts: list[str]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        return hstack([csr_matrix(embeddings * EMBEDDING_WEIGHT), vectorizer.transform(texts)]).tocsr()

    @classmethod
    def train(cls, name: str, examples: list[dict[str, Any]], encoder: Encoder, version: int = 1,
              calibrate: bool = True, learn: bool = False, base_examples: int | None = None,
              encoder_name: str | None = None, tuned: TunedLayers | None = None,
              label_names: bool = True, vector_layers: list[int] | tuple[int, ...] | None = None) -> NanoClassifier:
        """``encoder_name``: the encoder's key in the registry, recorded so the version loads
        with it (default: the encoder's own name). ``tuned``: the tuned layers ``encoder``
        serves, kept with the version (``encoder`` is then ``tuned.encoder(base)``).
        ``label_names``: each label's name, read as words, is one more example of it.
        ``vector_layers``: the encoder layers read and joined (None: its sentence vector)."""
        from scipy.sparse import vstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        texts, labels = check_examples(examples)
        weights = np.array([float(ex.get("weight", 1.0)) for ex in examples])
        named = {label: label_text(label) for label in sorted(set(labels))} if label_names else {}
        name_labels = [label for label, text in named.items() if text]
        name_texts = [str(named[label]) for label in name_labels]
        layers = [int(k) for k in vector_layers] if vector_layers else None
        encoded = features(encoder, texts + name_texts, layers)
        embeddings, name_embeddings = encoded[:len(texts)], encoded[len(texts):]
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, max_features=60000)
        vectorizer.fit(texts + name_texts)
        matrix = cls._features(vectorizer, embeddings, texts)
        names = (cls._features(vectorizer, name_embeddings, name_texts), np.array(name_labels)) if name_texts else None
        calibration = _calibrate(matrix, np.array(labels), embeddings, names) if calibrate else Calibration()
        model = LogisticRegression(C=20, max_iter=500)
        if names is not None:  # the names train the head; the examples alone measure typicality
            matrix = vstack([matrix, names[0]]).tocsr()
            weights = np.concatenate([weights, np.ones(len(name_labels))])
        model.fit(matrix, labels + name_labels, sample_weight=weights)
        info = ClassifierInfo(name=name, version=version, labels=sorted(set(labels)), examples=len(texts),
                              encoder=encoder_name or encoder.name, temperature=calibration.temperature,
                              cv_accuracy=calibration.cv_accuracy,
                              trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              train_seconds=round(time.perf_counter() - started, 2),
                              calibration="temperature+typicality+isotonic" if calibration.isotonic is not None
                              else "temperature" if calibrate else "none",
                              learn=learn, base_examples=base_examples,
                              tuned=tuned.settings if tuned is not None else None, label_names=len(name_labels),
                              vector_layers=layers)
        kept = [{"text": t, "label": lab, **({"weight": w} if w != 1.0 else {})}
                for t, lab, w in zip(texts, labels, weights.tolist())]
        return cls(info, vectorizer, model, calibration, embeddings.astype(np.float16), kept, tuned)

    def vectors(self, texts: list[str], encoder: Encoder) -> np.ndarray:
        """The texts' vectors as this version reads them (the layers it was trained on)."""
        return features(encoder, texts, self.info.vector_layers)

    def similarity(self, text: str, encoder: Encoder) -> float | None:
        """Cosine of ``text`` to its nearest training example: how typical it is."""
        if self._train_matrix is None:
            return None
        return float((self.vectors([text], encoder)[0] @ self._train_matrix).max())

    def nearest(self, text: str, k: int, encoder: Encoder) -> list[dict[str, str]]:
        """The ``k`` training examples most like ``text``, most similar last."""
        if not self.examples or self._train_matrix is None or k <= 0:
            return []
        sims = self.vectors([text], encoder)[0] @ self._train_matrix
        top = np.argsort(-sims, kind="stable")[:k]
        return [self.examples[int(i)] for i in top[::-1]]

    def predict(self, texts: list[str], encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
        """(label probabilities (n, labels), calibrated confidence of the top label (n,))."""
        embeddings = self.vectors(texts, encoder)
        logits = self._model.decision_function(self._features(self._vectorizer, embeddings, texts))
        if logits.ndim == 1:  # two classes: sklearn returns one margin
            logits = np.stack([-logits / 2, logits / 2], axis=1)
        probs = _softmax(logits / self._calibration.temperature)
        if self._train_matrix is None:
            return probs, probs.max(axis=1)
        sims = (embeddings @ self._train_matrix).max(axis=1)
        return probs, self._calibration.confidence(probs, sims)

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "model.pkl", "wb") as f:
            pickle.dump({"vectorizer": self._vectorizer, "model": self._model, "calibration": self._calibration,
                         "train_embeddings": self._train_embeddings, "examples": self.examples}, f)
        (tmp / "meta.json").write_text(json.dumps(asdict(self.info), indent=2))
        if self.tuned is not None:
            self.tuned.save(tmp)
        tmp.rename(directory)

    @staticmethod
    def load_info(directory: Path) -> ClassifierInfo:
        return ClassifierInfo(**json.loads((directory / "meta.json").read_text()))

    @classmethod
    def load(cls, directory: Path) -> NanoClassifier:
        info = cls.load_info(directory)
        with open(directory / "model.pkl", "rb") as f:
            parts = pickle.load(f)  # noqa: S301 - files written by ClassifierStore.save only
        return cls(info, parts["vectorizer"], parts["model"], parts.get("calibration"),
                   parts.get("train_embeddings"), parts.get("examples"), TunedLayers.load(directory))


def _calibrate(features: Any, labels: np.ndarray, embeddings: np.ndarray,
               always: tuple[Any, np.ndarray] | None = None) -> Calibration:
    """Fit temperature, typicality and isotonic mapping on out-of-fold predictions. ``always``:
    (features, labels) of rows in every fold's training part and never scored (label names)."""
    from scipy.sparse import vstack
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    folds = min(3, int(min(Counter(labels.tolist()).values())))
    if folds < 2:
        return Calibration()
    classes = np.unique(labels)
    logits = np.zeros((len(labels), len(classes)))
    sims = np.zeros(len(labels), dtype=np.float32)
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=0).split(features, labels):
        model = LogisticRegression(C=20, max_iter=300)
        if always is None:
            model.fit(features[train_idx], labels[train_idx])
        else:
            model.fit(vstack([features[train_idx], always[0]]).tocsr(),
                      np.concatenate([labels[train_idx], always[1]]))
        fold_logits = model.decision_function(features[test_idx])
        if fold_logits.ndim == 1:
            fold_logits = np.stack([-fold_logits / 2, fold_logits / 2], axis=1)
        cols = np.searchsorted(classes, model.classes_)
        logits[np.ix_(test_idx, cols)] = fold_logits
        sims[test_idx] = (embeddings[test_idx] @ embeddings[train_idx].T).max(axis=1)
    target = np.searchsorted(classes, labels)
    best_t, best_loss = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.05), np.log(20), 80)):
        p = _softmax(logits / t)
        loss = -np.log(np.clip(p[np.arange(len(target)), target], 1e-12, None)).mean()
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    probs = _softmax(logits / best_t)
    correct = (probs.argmax(axis=1) == target).astype(float)
    calibration = Calibration(temperature=best_t, cv_accuracy=float(correct.mean()), typical_sims=np.sort(sims))
    score = probs.max(axis=1) * calibration.typicality(sims)
    calibration.isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, correct)
    return calibration


# classifiers shipped as their training examples (generated documents, nothing real: see
# bench/document_types.py), trained on the default encoder the first time a name is asked for
PREBUILT = {"document_type": Path(__file__).resolve().parents[1] / "documents" / "prebuilt" / "document_type.jsonl.gz"}


@functools.cache
def _digest(path: Path, encoder: str) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes() + encoder.encode()).hexdigest()[:12]


@functools.cache
def _shipped(path: Path) -> tuple[list[str], int]:
    """The labels and the number of a prebuilt classifier's shipped examples (read once: listings ask often)."""
    examples = _read_examples(path)
    return sorted({ex["label"] for ex in examples}), len(examples)


def _untrained(name: str) -> ClassifierInfo:
    labels, count = _shipped(PREBUILT[name])
    return ClassifierInfo(name=name, version=0, labels=list(labels), examples=count, encoder=DEFAULT_ENCODER,
                          temperature=1.0, cv_accuracy=None, trained_at="", train_seconds=0.0, base_examples=count,
                          prebuilt=True)


def prebuilt_examples(name: str) -> list[dict[str, Any]]:
    return _read_examples(PREBUILT[name])


def _read_examples(path: Path) -> list[dict[str, Any]]:
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class ClassifierStore(VersionedStore):
    """Named, versioned classifiers under ``<home>/classifiers``, each run with the encoder it
    was trained with (from the injected registry)."""

    kind = "classifier"
    not_found = ClassifierNotFound
    train_hint = "train one with POST /v1/classifiers or `litegate train {name} --data FILE.jsonl`"

    def __init__(self, home: Path, encoders: EncoderRegistry):
        super().__init__(home, NanoClassifier.load, NanoClassifier.load_info, encoders)

    def folder(self, name: str) -> Path:
        """A prebuilt name (``PREBUILT``) nobody here has trained answers from the machine's model
        cache, where it is trained once from its shipped examples (on its first use)."""
        if name in PREBUILT and not self._own(name).is_dir() and not (self.dir / name).is_dir():
            return self._prebuilt(name)
        return super().folder(name)

    def names(self) -> list[str]:
        """The caller's and the shared names, and the prebuilt ones once trained on this machine."""
        return sorted(set(super().names()) | {n for n in PREBUILT if (self._prebuilt_dir(n) / "v1").is_dir()})

    def _prebuilt_dir(self, name: str) -> Path:
        """Named by the shipped examples' and the encoder's digest: a new release's examples train anew."""
        return self.encoders.models_dir / "prebuilt" / f"classifier-{name}-{_digest(PREBUILT[name], DEFAULT_ENCODER)}"

    def _prebuilt(self, name: str) -> Path:
        import fcntl

        folder = self._prebuilt_dir(name)
        if (folder / "v1").is_dir():
            return folder
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            lock = open(folder.parent / f".{folder.name}.lock", "w")
        except OSError as e:  # checked before the training, which would be lost
            raise StorageError(f"the prebuilt classifier {name!r} is trained once into {folder.parent}, which "
                               f"cannot take a write ({e.strerror or e}); make it writable or point "
                               "LITEGATE_MODELS_DIR at a folder that is") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be training it right now
            if not (folder / "v1").is_dir():
                examples = prebuilt_examples(name)
                clf = NanoClassifier.train(name, examples, self.encoders.get(DEFAULT_ENCODER),
                                           base_examples=len(examples), encoder_name=DEFAULT_ENCODER,
                                           vector_layers=KINDS[DEFAULT_ENCODER].reading)
                clf.info.prebuilt = True
                folder.mkdir(exist_ok=True)
                clf.save(folder / "v1")
        return folder

    def plan(self, name: str, examples: list[dict[str, Any]], encoder: str | None = None,
             tune: Any = None) -> tuple[str, TuneSettings | None]:
        """The checks training makes before any work, so a bad request fails at once (and before
        a background job is queued): the encoder's key and the tuning settings."""
        return self._checked(name, examples, encoder, tune)[2:]

    def _checked(self, name: str, examples: list[dict[str, Any]], encoder: str | None,
                 tune: Any) -> tuple[list[str], list[str], str, TuneSettings | None]:
        """``plan``'s checks, with the examples' texts and labels they read."""
        self.check_name(name)
        texts, labels = check_examples(examples)
        settings = TuneSettings.from_request(tune)
        key = self.encoders.choose(encoder, texts)
        if settings is not None:  # before the encoder loads (it may install its weights)
            check_tunable(key, settings)
            require_torch()
        return texts, labels, key, settings

    def train(self, name: str, examples: list[dict[str, Any]], learn: bool = False,
              encoder: str | None = None, tune: Any = None, progress: Any = None) -> ClassifierInfo:
        """``encoder``: a registry key, ``auto`` (by the examples' language) or None (the default).
        ``tune``: true or TuneSettings' fields tune the encoder's top layers on the examples
        first (PyTorch needed, at training only); ``progress(message)`` hears how tuning goes."""
        texts, labels, key, settings = self._checked(name, examples, encoder, tune)
        version = self.next_version(name)
        encoder_used: Encoder = self.encoders.get(key)
        reading = KINDS[key].reading
        tuned = None
        if settings is not None:
            base = tunable(encoder_used, key)
            settings.check(base.layers)
            states = frozen_states(base, texts, base.layers - settings.layers)  # once: for tuning and the head
            tuned = tune_encoder(base, texts, labels, settings, progress=progress, states=states)
            served = tuned.encoder(base)
            encoder_used = MemoEncoder(served)
            if reading and min(reading) < served.frozen:  # a layer below the frozen states: read it again
                encoder_used.remember(texts, served.features(texts, reading), reading)
            else:
                encoder_used.remember(texts, served.encode_states(states, layers=reading), reading)
        clf = NanoClassifier.train(name, examples, encoder_used, version=version, learn=learn,
                                   base_examples=len(examples), encoder_name=key, tuned=tuned,
                                   vector_layers=reading)
        self.put(name, version, clf)
        return clf.info

    # last in the class: a method named list would shadow the builtin in the annotations after it
    def list(self) -> list[Any]:
        """Every classifier the caller sees, and each prebuilt one not trained on this machine yet
        as it will be (version 0 until its first use trains it)."""
        infos = super().list()
        listed = {info.name for info in infos}
        return sorted(infos + [_untrained(n) for n in PREBUILT if n not in listed], key=lambda info: info.name)
