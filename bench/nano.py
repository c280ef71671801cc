"""The nano classifier per encoder: accuracy, ECE and p50 latency, 10-shot and full, beside a
plain logistic regression on the same vectors.

    python bench/nano.py [--encoders fast,accurate,multilingual] [--sets clinc150,nlupp,xsid]
                         [--regimes 10shot,full] [--test-per-label 10] [--xsid DIR] [--hwu DIR] [--encode-only]
                         [--adapters linear-ce,linear-pairs,mlp-ce] [--runtimes onnx,numpy]
                         [--tune default --tune layers=3,epochs=2,loss=pairs] [--clinc-test val]
                         [--seeds 0,1,2] [--label-names on|both] [--readings final,default,6+4]

Prints JSON. Sets: CLINC150 (150 intents; train split, 10 per intent or all 100; scored on the
test split, ``--test-per-label`` items per intent, 0 for all 4,500), NLU++ banking read as
classification of each utterance's set of intents (sets with at least 12 utterances in folds
0-14, which train; folds 16-19 test; fold 15 is held for tuning and never scored), and xSID
(``--xsid``: a folder of xSID 0.5 ``LANG.valid.conll`` / ``LANG.test.conll`` files; 10 per
intent from valid, scored on test; intents with fewer than 10 in valid are left out), and
HWU64 (``--hwu``, set ``hwu64``: NLU-Evaluation-Data, Liu et al. 2019, CC BY-SA 3.0; the
BANKING77-class fine-grained check, 64 intents; its CrossValidation folder: KFold_1's testset is
the test split (``--test-per-label`` per intent, 0 for all), the other nine folds' testsets the
pool, exact texts once, none also in the test split). The
vectors of every text are computed once per encoder and kept in ``--cache`` (one .npz per
encoder), so a second run only trains and scores. ``--encode-only`` fills the cache and stops.

ECE: 15 equal-width confidence bins, |accuracy - mean confidence| weighted by bin size; for
the nano classifier the confidence is its calibrated P(correct), for the plain logistic
regression its top probability. p50: one text per call through the real encoder and the
10-shot classifier of ``--latency-set`` (``predict`` with a one-text batch), after a warm-up,
the encoders taking turns text by text. ``--adapters``: beside each encoder's own vectors, the
same rows over a cheap adapter fitted on the training examples (bench/nano_adapter.py), keyed
``ENCODER+ADAPTER``. ``--runtimes onnx,numpy``: beside each encoder as it serves (``onnx``, its
layers in 8-bit onnxruntime), the same encoder on the float32 NumPy path as a peer, keyed
``ENCODER/numpy`` (fast and accurate), and ``ENCODER/numpy>onnx`` (trained on NumPy vectors, scored on onnx ones: a
classifier trained before the 8-bit runtime, served after it). ``--tune SPEC`` (repeatable;
``default`` or ``layers=2,epochs=3,loss=supcon,...``, nano.tuning.TuneSettings' fields): beside
each encoder, the same rows with its top layers tuned on the training examples first, keyed
``ENCODER+tuned:SPEC``, vectors from the tuned encoder as it serves (8-bit), with the tuning's
seconds; the timed calls include it (with ``--latency-only``, ``ENCODER+tuned-shape:SPEC``: the
shipped top layers served as tuned ones, the same shapes and graphs, no tuning run).
``--clinc-test val`` scores CLINC150 on its validation split
(``--test-per-label`` per intent) instead of test: where tuning settings are chosen; ``val,test``
scores one tuning on both (set ``clinc150-val`` beside ``clinc150``). ``--seeds 0,1,2``: beside
the 10-shot draw of seed 0 (``10shot``, the one every earlier figure used), the draws of the other
seeds (``10shot-seedN``), and per set ``10shot-draws``: each row's mean, standard deviation, lowest
and highest over the draws. The nano classifier takes each label's name as one more example
(nano.classifier.label_text); ``--label-names both`` adds its rows without them (``KEY:no-names``).
``--readings``: which vectors each encoder's classifiers read (``TransformerEncoder.features``):
``final`` the sentence vector (rows ``KEY``), ``default`` what a new classifier of that encoder
reads (``EncoderKind.reading``; the same as final for encoders without one), ``12+10`` those
layers' pooled word pieces joined (rows ``KEY@12+10``; skipped for an encoder with fewer layers).
The timed calls then run each reading through the real encoder (one pass either way).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.evals.datasets import clinc150, shared_data_dir
from litegate.nano.classifier import NanoClassifier, label_text
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.encoders import KINDS, Encoder, EncoderRegistry, features
from litegate.nano.mpnet import MPNetEncoder
from litegate.nano.tuned import MATRICES, TunedLayers, frozen_states, to_8bit
from litegate.nano.tuning import TuneSettings, tune

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nano_adapter  # noqa: E402 - a sibling script module, found once bench/ is on the path

BINS = 15


def log(message: str) -> None:
    print(f"[nano bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class VectorCache:
    """Sentence vectors of one encoder, by text, saved as it goes (an interrupted run resumes)."""

    def __init__(self, path: Path, encoder: Any, reading: tuple[int, ...] | None = None):
        self.path = path
        self.encoder = encoder
        self.reading = reading
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.vectors = dict(zip(data["texts"].tolist(), data["vectors"]))

    def fill(self, texts: list[str], chunk: int = 256) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            self.vectors.update(zip(part, features(self.encoder(), part, self.reading)))
            self.save()
            log(f"{self.path.stem}: {min(start + chunk, len(missing))}/{len(missing)} new texts encoded")

    def save(self) -> None:
        texts = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, texts=np.array(texts), vectors=np.stack([self.vectors[t] for t in texts]))
        os.replace(tmp, self.path)


class CachedEncoder:
    """The Encoder protocol over cached vectors (training and scoring need no forward pass)."""

    def __init__(self, name: str, cache: VectorCache):
        self.name = name
        self.cache = cache
        self.reading = cache.reading  # what the cached vectors are: a classifier trained on them records it
        self.dim = len(next(iter(cache.vectors.values())))

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        return np.stack([self.cache.vectors[t] for t in texts]).astype(np.float32)

    def features(self, texts: list[str], layers: Any = None) -> np.ndarray:
        return self.encode(texts)


def per_label(items: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    by: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        by.setdefault(it["label"], []).append(it)
    return [it for label in sorted(by) for it in rng.sample(by[label], min(n, len(by[label])))]


def nlupp_intents(seeds: tuple[int, ...] = (0,)) -> dict[str, list[dict[str, Any]]]:
    base = shared_data_dir() / "nlupp_banking"
    folds: dict[int, list[dict[str, Any]]] = {}
    for k in range(20):  # the label is the utterance's set of intents
        folds[k] = [{"text": it["text"], "label": "+".join(sorted(it["intents"]))}
                    for it in json.loads((base / f"fold{k}.json").read_text()) if it.get("intents")]
    pool = [it for k in range(15) for it in folds[k]]
    test = [it for k in range(16, 20) for it in folds[k]]
    counts = Counter(it["label"] for it in pool)
    keep = {label for label, n in counts.items() if n >= 12}
    pool = [it for it in pool if it["label"] in keep]
    return {"full": pool, **draws(pool, seeds), "test": [it for it in test if it["label"] in keep]}


def draws(pool: list[dict[str, Any]], seeds: tuple[int, ...]) -> dict[str, list[dict[str, Any]]]:
    """The 10-shot draws: seed 0 as ``10shot``, the others as ``10shot-seedN``."""
    return {draw_name(seed): per_label(pool, 10, seed) for seed in dict.fromkeys((0, *seeds))}


def draw_name(seed: int) -> str:
    return "10shot" if seed == 0 else f"10shot-seed{seed}"


def read_xsid(path: Path) -> list[dict[str, Any]]:
    out, text = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# text:") or line.startswith("# text ="):
            text = line.split(":", 1)[1].strip() if line.startswith("# text:") else line.split("=", 1)[1].strip()
        elif (line.startswith("# intent:") or line.startswith("# intent =")) and text:
            label = line.split(":", 1)[1].strip() if line.startswith("# intent:") else line.split("=", 1)[1].strip()
            out.append({"text": text, "label": label})
            text = None
    return out


def xsid_sets(folder: Path, seeds: tuple[int, ...] = (0,)) -> dict[str, dict[str, list[dict[str, Any]]]]:
    sets = {}
    for valid in sorted(folder.glob("*.valid.conll")):
        lang = valid.name.split(".")[0]
        test_path = folder / f"{lang}.test.conll"
        if not valid.stat().st_size or not test_path.exists():
            continue
        pool = read_xsid(valid)
        keep = {label for label, n in Counter(it["label"] for it in pool).items() if n >= 10}
        sets[f"xsid-{lang}"] = {**draws([it for it in pool if it["label"] in keep], seeds),
                                "test": [it for it in read_xsid(test_path) if it["label"] in keep]}
    return sets


def hwu_fold(folder: Path, k: int) -> list[dict[str, Any]]:
    """HWU64's KFold_k testset: one JSON file per annotation batch, in a folder per intent."""
    return [{"text": it["text"].strip(), "label": it["intent"]}
            for path in sorted(folder.glob(f"KFold_{k}/testset/annotated/*/*.json"))
            for it in json.loads(path.read_text(encoding="utf-8"))["test_data_annotation"] if it["text"].strip()]


def hwu64(folder: Path, test_per_label: int, seeds: tuple[int, ...] = (0,)) -> dict[str, list[dict[str, Any]]]:
    if not (folder / "KFold_1").exists():  # the archive's outer folder: find the one holding the folds
        found = next(folder.rglob("KFold_1"), None)
        if found is None:
            raise SystemExit(f"{folder} holds no KFold_1: pass HWU64's CrossValidation folder")
        folder = found.parent
    test = hwu_fold(folder, 1)
    seen = {it["text"] for it in test}
    pool: dict[str, dict[str, Any]] = {}
    for k in range(2, 11):  # a text once (the first fold's label), none that is also a test text
        for it in hwu_fold(folder, k):
            pool.setdefault(it["text"], it)
    train = [it for text, it in pool.items() if text not in seen]
    return {"full": train, **draws(train, seeds),
            "test": per_label(test, test_per_label, 1) if test_per_label else test}


def load_sets(names: list[str], test_per_label: int, xsid: Path | None,
              clinc_test: str = "test", seeds: tuple[int, ...] = (0,),
              hwu: Path | None = None) -> dict[str, dict[str, list[dict]]]:
    sets: dict[str, dict[str, list[dict]]] = {}
    for split in clinc_test.split(",") if "clinc150" in names else []:
        test = clinc150(split)
        sets["clinc150" if split == "test" else f"clinc150-{split}"] = {
            "full": clinc150("train"), **draws(clinc150("train"), seeds),
            "test": per_label(test, test_per_label, 1) if test_per_label else test}
    if "nlupp" in names:
        sets["nlupp-banking-intents"] = nlupp_intents(seeds)
    if "xsid" in names and xsid is not None:
        sets.update(xsid_sets(xsid, seeds))
    if "hwu64" in names and hwu is not None:
        sets["hwu64"] = hwu64(hwu, test_per_label, seeds)
    return sets


def ece(confidence: np.ndarray, correct: np.ndarray) -> float:
    edges = np.linspace(0, 1, BINS + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return round(float(total), 4)


def score(train: list[dict], test: list[dict], encoder: CachedEncoder,
          test_encoder: CachedEncoder | None = None, label_names: bool = True) -> dict[str, Any]:
    """Both classifiers trained on ``encoder``'s vectors, scored on ``test_encoder``'s (the same
    by default); ``label_names``: the nano classifier's (the plain one never has them)."""
    from sklearn.linear_model import LogisticRegression

    test_encoder = test_encoder or encoder
    texts, gold = [it["text"] for it in test], np.array([it["label"] for it in test])
    started = time.perf_counter()
    clf = NanoClassifier.train("bench", train, encoder, label_names=label_names,
                               vector_layers=getattr(encoder, "reading", None))
    seconds = time.perf_counter() - started
    probs, confidence = clf.predict(texts, test_encoder)
    right = np.array(clf.labels)[probs.argmax(1)] == gold
    plain = LogisticRegression(C=20, max_iter=1000).fit(encoder.encode([it["text"] for it in train]),
                                                         [it["label"] for it in train])
    plain_probs = plain.predict_proba(test_encoder.encode(texts))
    plain_right = plain.classes_[plain_probs.argmax(1)] == gold
    return {"train": len(train), "test": len(test), "labels": len(clf.labels),
            "nano": {"accuracy": round(float(right.mean()), 4), "ece": ece(confidence, right.astype(float)),
                     "train_seconds": round(seconds, 1)},
            "logreg": {"accuracy": round(float(plain_right.mean()), 4),
                       "ece": ece(plain_probs.max(1), plain_right.astype(float))}}


def name_texts(items: list[dict]) -> list[str]:
    """The texts the nano classifier reads from ``items``' label names (encoded beside the examples)."""
    return [t for t in (label_text(label) for label in sorted({it["label"] for it in items})) if t]


def summary(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per row key, accuracy and ECE over the 10-shot draws: mean, standard deviation, lowest, highest."""
    out: dict[str, Any] = {}
    draws_ = [r for r in rows if r.startswith("10shot")]
    for key in rows[draws_[0]]:
        for model in ("nano", "logreg"):
            accs = [rows[r][key][model]["accuracy"] for r in draws_ if key in rows[r]]
            eces = [rows[r][key][model]["ece"] for r in draws_ if key in rows[r]]
            out.setdefault(key, {})[model] = {
                "draws": len(accs), "accuracy_mean": round(statistics.mean(accs), 4),
                "accuracy_sd": round(statistics.pstdev(accs), 4), "accuracy_min": min(accs),
                "accuracy_max": max(accs), "ece_mean": round(statistics.mean(eces), 4)}
    return out


def score_adapted(kind: str, train: list[dict], test: list[dict], encoder: CachedEncoder) -> dict[str, Any]:
    started = time.perf_counter()
    adapter = nano_adapter.fit(kind, encoder.encode([it["text"] for it in train]), [it["label"] for it in train])
    fitted = time.perf_counter() - started
    return {**score(train, test, nano_adapter.AdaptedEncoder(encoder, adapter)), "adapter_seconds": round(fitted, 1)}


class MemoryVectors:
    """The Encoder protocol over vectors computed once in this run (a tuned encoder's), read at
    ``reading``."""

    def __init__(self, name: str, texts: list[str], vectors: np.ndarray, reading: tuple[int, ...] | None = None):
        self.name = name
        self.vectors = dict(zip(texts, vectors))
        self.dim = vectors.shape[1]
        self.reading = reading

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def features(self, texts: list[str], layers: Any = None) -> np.ndarray:
        return self.encode(texts)


# the word-piece vectors below the tuned layers, by (encoder, frozen layers, text): computed once
# for every tuning setting with the same number of layers
FROZEN: dict[tuple[str, int], dict[str, np.ndarray]] = {}


TUNED: dict[tuple[str, str, tuple[str, ...]], tuple[Any, float]] = {}


def frozen(base: Any, layers: int, texts: list[str]) -> list[np.ndarray]:
    cache = FROZEN.setdefault((base.name, layers), {})
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        started = time.perf_counter()
        cache.update(zip(missing, frozen_states(base, missing, layers)))
        log(f"{base.name}: {len(missing)} texts through its first {layers} layers in "
            f"{time.perf_counter() - started:.0f} s")
    return [cache[t] for t in texts]


def parse_tune(spec: str) -> TuneSettings:
    if spec == "default":
        return TuneSettings()
    fields: dict[str, Any] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        default = getattr(TuneSettings, name)
        fields[name] = type(default)(value)
    return TuneSettings(**fields)


def score_tuned(registry: EncoderRegistry, key: str, spec: str, train: list[dict], test: list[dict],
                reading: tuple[int, ...] | None = None) -> tuple[dict[str, Any], Any, NanoClassifier]:
    """Tune ``key``'s top layers on ``train``, then score as ``score`` does on the tuned vectors
    read at ``reading`` (layers at or above the frozen ones)."""
    base = registry.get(key)
    settings = parse_tune(spec)
    layers = base.layers - settings.layers
    train_texts = [it["text"] for it in train]
    test_texts = list(dict.fromkeys([it["text"] for it in test] + name_texts(train)))
    started = time.perf_counter()
    train_states = frozen(base, layers, train_texts)
    frozen_seconds = time.perf_counter() - started  # 0 when an earlier setting computed them
    started = time.perf_counter()
    done = TUNED.get((key, spec, tuple(train_texts)))
    if done is None:  # the same training set scored on two splits: tuned once
        done = TUNED[(key, spec, tuple(train_texts))] = (
            tune(base, train_texts, [it["label"] for it in train], settings, states=train_states),
            time.perf_counter() - started)
    tuned, tuned_seconds = done
    encoder = tuned.encoder(base)
    # the tuned layers over the frozen vectors: what encoder.encode computes, without the lower layers again
    train_vectors = MemoryVectors(base.name, train_texts, encoder.encode_states(train_states, layers=reading),
                                  reading)
    vectors = MemoryVectors(base.name, test_texts,
                            encoder.encode_states(frozen(base, layers, test_texts), layers=reading), reading)
    vectors.vectors.update(train_vectors.vectors)
    row = score(train, test, vectors)
    row["tune"] = tuned.settings
    row["tune_seconds"] = round(tuned_seconds, 1)
    row["frozen_layers_seconds"] = round(frozen_seconds, 1)
    return row, encoder, NanoClassifier.train("bench", train, vectors, vector_layers=reading)


def same_shape_tuned(base: Any, settings: TuneSettings) -> Any:
    """A tuned encoder whose tuned layers are the shipped top layers in 8 bits: the served shape."""
    top = [tuple(to_8bit(w) if j in MATRICES else w for j, w in enumerate(layer))
           for layer in base._layers[base.layers - settings.layers:]]
    return TunedLayers(base.name, base.layers, top, {}).encoder(base)


def latency(models: dict[str, tuple[Any, NanoClassifier]], texts: list[str]) -> dict[str, Any]:
    """Per encoder, one text per call; the encoders take turns text by text, so a busy moment
    of the machine falls on all of them alike and their ratios hold."""
    for encoder, clf in models.values():
        for text in texts[:5]:
            clf.predict([text], encoder)
    encode_ms: dict[str, list[float]] = {key: [] for key in models}
    call_ms: dict[str, list[float]] = {key: [] for key in models}
    load = os.getloadavg()[0]
    for text in texts:
        for key, (encoder, clf) in models.items():
            t0 = time.perf_counter()
            clf.vectors([text], encoder)  # the encoder's pass as the classifier reads it (its layers)
            t1 = time.perf_counter()
            clf.predict([text], encoder)
            call_ms[key].append((time.perf_counter() - t1) * 1000)
            encode_ms[key].append((t1 - t0) * 1000)
    return {key: {"encode_p50_ms": round(statistics.median(encode_ms[key]), 2),
                  "call_p50_ms": round(statistics.median(call_ms[key]), 2), "calls": len(texts),
                  "loadavg_1m": [round(load, 2), round(os.getloadavg()[0], 2)]} for key in models}


def readings(key: str, specs: list[str]) -> list[tuple[str, tuple[int, ...] | None]]:
    """(row key, layers read) for encoder ``key`` (``KEY`` or ``KEY/numpy``) per ``--readings`` spec."""
    kind = KINDS[key.split("/")[0]]
    layers = {"fast": 6, "accurate": 12}.get(kind.key, 0)
    out: dict[str, tuple[int, ...] | None] = {}
    for spec in specs:
        reading = kind.reading if spec == "default" else None if spec == "final" else \
            tuple(int(k) for k in spec.split("+"))
        if reading and (max(reading) > layers or min(reading) < 1):
            log(f"{key}: no layers {spec}; skipped")
            continue
        out[key if not reading else f"{key}@{'+'.join(map(str, reading))}"] = reading
    return list(out.items())


NUMPY_PEERS = ("fast", "accurate")  # the encoders with a float32 NumPy path (multilingual runs its own engine)


def make_encoder(registry: EncoderRegistry, key: str) -> Encoder:
    """``KEY`` as the registry serves it, or ``KEY/numpy``: the same weights on the float32 NumPy path."""
    if not key.endswith("/numpy"):
        return registry.get(key)
    if key == "fast/numpy":
        return MiniLMEncoder(runtime="numpy")
    return MPNetEncoder(registry.models_dir, runtime="numpy")


def score_rows(args: argparse.Namespace, registry: EncoderRegistry, encoders: dict[str, CachedEncoder], key: str,
               name: str, regime: str, data: dict[str, list[dict]], sets: dict[str, Any],
               timed: dict[str, tuple[Any, NanoClassifier]]) -> None:
    """Every row of encoder ``key`` (``KEY[/numpy][@layers]``) for one set and regime: the nano
    classifier and the plain peer, and beside them as asked: no names, served runtime, adapters, tunings."""
    encoder = encoders[key]
    log(f"{key}: {name} {regime}")
    rows = sets.setdefault(name, {}).setdefault(regime, {})
    rows[key] = score(data[regime], data["test"], encoder)
    log(f"{key}: {json.dumps(rows[key])}")
    if args.label_names == "both":
        rows[f"{key}:no-names"] = score(data[regime], data["test"], encoder, label_names=False)
        log(f"{key}:no-names: {json.dumps(rows[f'{key}:no-names'])}")
    base_key, _, at = key.partition("@")
    served = encoders.get(base_key.split("/")[0] + (f"@{at}" if at else ""))
    if base_key.endswith("/numpy") and served is not None:
        rows[key + ">onnx"] = score(data[regime], data["test"], encoder, served)
    for kind in filter(None, args.adapters.split(",")):
        log(f"{key}+{kind}: {name} {regime}")
        rows[f"{key}+{kind}"] = score_adapted(kind, data[regime], data["test"], encoder)
    for spec in args.tune if "/" not in key else []:
        log(f"{key}+tuned:{spec}: {name} {regime} (load {os.getloadavg()[0]:.1f})")
        rows[f"{key}+tuned:{spec}"], tuned_encoder, tuned_clf = score_tuned(
            registry, base_key, spec, data[regime], data["test"], encoder.reading)
        if name == args.latency_set and regime == "10shot" and args.latency_calls:
            timed[f"{key}+tuned:{spec}"] = (tuned_encoder, tuned_clf)
        log(json.dumps(rows[f"{key}+tuned:{spec}"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoders", default="fast,accurate,multilingual")
    ap.add_argument("--sets", default="clinc150,nlupp,xsid")
    ap.add_argument("--regimes", default="10shot,full")
    ap.add_argument("--test-per-label", type=int, default=10)
    ap.add_argument("--xsid", type=Path, default=None)
    ap.add_argument("--hwu", type=Path, default=None, help="HWU64's CrossValidation folder (set hwu64)")
    ap.add_argument("--cache", type=Path, default=Settings().home / "bench-nano-cache")
    ap.add_argument("--latency-calls", type=int, default=40)
    ap.add_argument("--latency-set", default="clinc150", help="the set whose 10-shot classifier and test texts "
                                                               "time the calls")
    ap.add_argument("--encode-only", action="store_true")
    ap.add_argument("--adapters", default="", help=f"also score over adapters: {', '.join(nano_adapter.KINDS)}")
    ap.add_argument("--latency-only", action="store_true", help="time the calls; score nothing")
    ap.add_argument("--runtimes", default="onnx", help="onnx (as served), numpy (the float32 peer), or both")
    ap.add_argument("--tune", action="append", default=[], help="also tune the encoder's top layers first: "
                                                                "'default' or 'layers=2,epochs=3,...' (repeatable)")
    ap.add_argument("--seeds", default="0", help="the 10-shot draws: seed 0 (10shot) and others (10shot-seedN)")
    ap.add_argument("--label-names", default="on", choices=("on", "both"),
                    help="both: also the nano rows without label names as examples (KEY:no-names)")
    ap.add_argument("--readings", default="final", help="final, default, or layers joined (12+10), comma-separated")
    ap.add_argument("--clinc-test", default="test", help="CLINC150's splits to score on: test, val or val,test "
                                                          "(one tuning scored on both)")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    registry = EncoderRegistry(Settings().model_cache_dir())
    seeds = tuple(int(s) for s in args.seeds.split(","))
    regimes: list[str] = []
    for name in args.regimes.split(","):  # "10shot": every draw
        regimes += [draw_name(s) for s in dict.fromkeys((0, *seeds))] if name == "10shot" else [name]
    sets = load_sets(args.sets.split(","), args.test_per_label, args.xsid, args.clinc_test, seeds, args.hwu)
    if args.latency_only:
        sets, regimes = {args.latency_set: sets[args.latency_set]}, ["10shot"]
    out: dict[str, Any] = {"bench": "nano", "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                           "cpus": os.cpu_count(), "sets": {}, "latency": {}}
    timed: dict[str, tuple[Any, NanoClassifier]] = {}
    runtimes = args.runtimes.split(",")
    keys = [key + ("" if runtime == "onnx" else "/" + runtime) for key in args.encoders.split(",")
            for runtime in runtimes if runtime == "onnx" or key in NUMPY_PEERS]
    encoders: dict[str, CachedEncoder] = {}
    rows_to_score = [row for encoder_key in keys for row in readings(encoder_key, args.readings.split(","))]
    for key, reading in rows_to_score:
        # "-served": the vectors as the registry serves them (before the 8-bit runtime, "KEY.npz" held NumPy's)
        base_key, _, at = key.partition("@")
        stem = (base_key.replace("/", "-") if "/" in base_key else base_key + "-served") + (f"@{at}" if at else "")
        cache = VectorCache(args.cache / f"{stem}.npz", lambda k=base_key: make_encoder(registry, k), reading)
        for data in sets.values():
            wanted = [r for r in regimes if r in data]
            parts = wanted if args.latency_only else [*wanted, "test"]
            cache.fill([it["text"] for part in parts for it in data[part]]
                       + [t for r in wanted for t in name_texts(data[r])])
        if args.encode_only:
            continue
        encoder = encoders[key] = CachedEncoder(KINDS[key.split("/")[0].split("@")[0]].model, cache)
        for name, data in (sets if not args.latency_only else {}).items():
            for regime in (r for r in regimes if r in data):
                score_rows(args, registry, encoders, key, name, regime, data, out["sets"], timed)
        if args.latency_set in sets and args.latency_calls:
            timed[key] = (make_encoder(registry, base_key),
                          NanoClassifier.train("bench", sets[args.latency_set]["10shot"], encoder,
                                               vector_layers=reading))
            for spec in args.tune if args.latency_only and "/" not in key else []:
                # the time of a call depends on the layers' shapes, not their values: the top layers as
                # shipped, through the tuned encoder's two graphs (no tuning run)
                timed[f"{key}+tuned-shape:{spec}"] = (same_shape_tuned(registry.get(base_key), parse_tune(spec)),
                                                      timed[key][1])
    for rows in out["sets"].values():
        if sum(r.startswith("10shot") for r in rows) > 1:
            rows["10shot-draws"] = summary({r: v for r, v in rows.items() if r.startswith("10shot")})
    if timed:
        test = sets[args.latency_set]["test"]
        texts = [it["text"] for it in random.Random(2).sample(test, min(args.latency_calls, len(test)))]
        out["latency"] = latency(timed, texts)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
