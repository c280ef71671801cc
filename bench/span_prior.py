"""A prior for the nano extractor's span stage, learned from other slot sets: does a scorer of
(span, field) pairs that has seen many domains help one trained on ~100 utterances of a new one?

    python bench/span_prior.py --sources DIR --cache /tmp/span-prior [--episodes 4] [--variants ...]
    python bench/span_prior.py --sources DIR --cache DIR --write src/litegate/nano/span_prior.npz

The span stage's features say how a span relates to *a* field (the CRF's marginals for it, its
likeness to the field's training values and description, the kinds its name is made of), so the
same model reads any field of any domain. Each *episode* is what training an extractor sees: 100
utterances of one domain, the four out-of-fold CRFs the stage learns from (exactly as
``NanoExtractor.train`` fits them), and the (span, field) pairs of the held-out utterances.

Sources (``--sources``: a folder holding PolyAI's ``span_extraction`` data, github.com/PolyAI-LDN/
task-specific-datasets, CC BY 4.0; only ``restaurant8k`` and ``dstc8/*`` are read): Restaurant8k
(people, date, time, first and last name) and four DSTC8 domains (buses, events, homes, rental
cars); ``--episodes`` draws of 100 utterances from each domain's ``train_0.json``. The prior is a
logistic model over the pairs of every source episode (each feature standardized).

Checked on sets nothing here was chosen on beside the dev draws: NLU++ banking (the development
draws of bench/README.md "Extraction": the first 100 utterances of folds 0-4 and 10-12 train, each
scored on folds 5-9; ``--nlupp-test``: folds 15-19, three draws, once at the end) and xSID English
(``--xsid``: 100 of its validation file train, its test file scores). Per draw and variant:

- ``local``: the stage as shipped (its scorer fitted on the draw's own pairs);
- ``prior``: the prior's probability alone;
- ``stacked``: the prior's log-odds as one more feature of the draw's own scorer;
- ``mean``: the draw's scorer and the prior, probabilities averaged.

Slot F1 micro over the scored utterances, values compared as the stage compares them (case,
spacing, surrounding punctuation ignored). Episodes and draws are cached (``--cache``) so the
variants are refitted without training CRFs again. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.nano import extractor as ex
from litegate.nano import span_scorer as ss
from litegate.runtime import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_encoders import read_xsid_slots  # noqa: E402 - a sibling script module

DOMAINS = ("restaurant8k", "dstc8/Buses_1", "dstc8/Events_1", "dstc8/Homes_1", "dstc8/RentalCars_1")
VARIANTS = ("local", "prior", "stacked", "mean", "pooled")
POOL_WEIGHT = 0.2  # how much one source pair counts against one of the draw's own (``pooled``)


def log(message: str) -> None:
    print(f"[span prior {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_polyai(path: Path) -> list[dict[str, Any]]:
    """PolyAI span-extraction records as extraction examples (a slot stated twice keeps its first
    value), each with ``spans``: the character ranges of every labelled value (bench/value_tagger.py)."""
    out = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        text = item["userInput"]["text"]
        data: dict[str, str] = {}
        spans: list[tuple[int, int]] = []
        for label in item.get("labels") or []:
            span = label.get("valueSpan") or {}
            start, end = span.get("startIndex", 0), span.get("endIndex", len(text))
            value = text[start:end].strip()
            if value:
                data.setdefault(label["slot"], value)
                spans.append((start, end))
        out.append({"text": text, "data": data, "spans": spans})
    return out


def episode(train: list[dict[str, Any]], score: list[dict[str, Any]], descriptions: dict[str, str],
            encoder: Any) -> dict[str, Any]:
    """What the span stage of an extractor trained on ``train`` learns from and is scored on."""
    seen = sorted({k for r in train for k in r["data"]})
    texts, golds, fields, _ = ex.check_examples(train, {k: descriptions.get(k, "") for k in seen})
    docs = ex._prepare(texts, encoder)
    final = ex._Tagger.fit(docs, golds, fields, encoder)
    folds = ex._oof_taggers(docs, golds, fields, encoder)
    held_out = [(rest, held, [ex._span_doc(docs[i], tagger) for i in held],
                 {t: j for j, t in enumerate(tagger.tags)}, tagger.descriptions) for rest, held, tagger in folds]
    out: dict[str, Any] = {"fields": fields, "golds": golds, "train_docs": [ex._span_doc(d, None) for d in docs],
                           "held_out": held_out, "final_tags": {t: j for j, t in enumerate(final.tags)},
                           "final_descriptions": final.descriptions, "score": []}
    if score:
        s_docs = ex._prepare([r["text"] for r in score], encoder)
        out["score"] = [(ex._span_doc(d, final), r["data"]) for d, r in zip(s_docs, score)]
    return out


def cached(path: Path, make: Any) -> Any:
    """``make()``'s value, kept in ``path`` (the episode's CRFs are trained once); logged when made."""
    if path.is_file():
        with open(path, "rb") as f:
            return pickle.load(f)
    log(f"making {path.stem}")
    value = make()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(value, f)
    tmp.rename(path)
    return value


def rows(ep: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]] | None:
    return ss.stage_rows(ep["train_docs"], ep["golds"], ep["fields"], ep["held_out"], ss.FEATURES)


class Prior:
    """A logistic model over standardized pair features."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float):
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float) -> Prior:
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
        return cls(mean, scale, model.coef_[0], float(model.intercept_[0]))

    def logit(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))


def _pooled(x: np.ndarray, y: np.ndarray, pool: tuple[np.ndarray, np.ndarray, float]) -> Any:
    """The stage's scorer fitted on the draw's pairs and the sources' pairs (``pool``: their
    features, labels, and how much one counts against one of the draw's own)."""
    from threadpoolctl import threadpool_limits

    xx, yy = np.vstack([x, pool[0]]), np.concatenate([y, pool[1]])
    w = np.concatenate([np.ones(len(y)), np.full(len(pool[1]), pool[2])])
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
    model = ss._model()
    with threadpool_limits(1, user_api="openmp"):
        for m in model.models:
            m.fit((xx - mean) / scale, yy, sample_weight=w)
    model.mean_, model.scale_ = mean, scale
    return model


def slot_f1(ep: dict[str, Any], variant: str, prior: Prior | None, threshold: float,
            pool: tuple[np.ndarray, np.ndarray, float] | None = None) -> dict[str, Any]:
    fields = ep["fields"]
    names = list(fields)
    made = rows(ep)
    if made is None:
        return {"f1": 0.0}
    x, y, groups, _ = made
    scorer = None
    if variant == "pooled" and pool is not None:
        scorer = _pooled(x, y, pool)
    if variant in ("local", "stacked", "mean"):
        xx = np.column_stack([x, prior.logit(x)]) if variant == "stacked" and prior else x
        scorer = ss.SpanScorer.fit(xx, y, groups)
    stats = ss.fit_stats(ep["train_docs"], ep["golds"], fields, ep["final_descriptions"])
    tp = fp = fn = 0
    for doc, data in ep["score"]:
        cands = ss.spans_of(doc, ep["final_tags"], names, ss.FEATURES, stats.values) if len(doc.path) else []
        if cands:
            px = ss.pair_features(doc, cands, stats, ep["final_tags"], ss.FEATURES)
            if variant == "local":
                raw = scorer.scores(px)
            elif variant == "stacked":
                raw = scorer.scores(np.column_stack([px, prior.logit(px)]))
            elif variant == "pooled":
                raw = scorer.predict_proba((px - scorer.mean_) / scorer.scale_)[:, 1]
            elif variant == "prior":
                raw = prior.proba(px)
            else:
                raw = 0.5 * (scorer.scores(px) + prior.proba(px))
        else:
            raw = np.zeros(0)
        chosen = ss.choose(doc, cands, names, raw, threshold)
        want = {k: ss.normalize(v) for k, v in data.items()}
        for name in set(names) | set(want):
            span = chosen.get(name, (None, 0.0))[0]
            got = ss.normalize(doc.text[span[0]:span[1]]) if span else None
            right = got is not None and got == want.get(name)
            tp += right
            fp += got is not None and not right
            fn += name in want and not right
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=Path, required=True, help="folder with PolyAI's span_extraction/")
    ap.add_argument("--cache", type=Path, required=True, help="folder for cached episodes and draws")
    ap.add_argument("--episodes", type=int, default=4, help="draws of 100 utterances per source domain")
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--c", type=float, default=0.3, help="the prior's logistic C")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--pool-weight", type=float, default=POOL_WEIGHT)
    ap.add_argument("--threshold", type=float, default=ss.THRESHOLD)
    ap.add_argument("--nlupp-dev", default="0,1,2,3,4,10,11,12", help="dev draws: training folds")
    ap.add_argument("--nlupp-test", action="store_true", help="also the test draws (folds 15-19; once, at the end)")
    ap.add_argument("--xsid", type=Path, default=None, help="folder with xSID 0.5's en.valid.conll, en.test.conll")
    ap.add_argument("--write", type=Path, default=None, help="write the prior fitted on every source episode here")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"bench": "span_prior", "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                           "features": ss.FEATURES, "c": args.c, "threshold": args.threshold}
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        encoder = rt.encoders.get("fast")
        sources = []
        for domain in DOMAINS:
            pool = [r for r in read_polyai(args.sources / "span_extraction" / domain / "train_0.json")]
            for k in range(args.episodes):
                key = f"src-{domain.replace('/', '-')}-{k}"
                train = random.Random(k).sample(pool, args.train)
                sources.append(cached(args.cache / f"{key}.pkl", lambda t=train: episode(t, [], {}, encoder)))
        checks: dict[str, dict[str, Any]] = {}
        descriptions = nlupp_fields()
        dev_folds = [int(f) for f in args.nlupp_dev.split(",") if f]
        for k in dev_folds:
            checks[f"nlupp-dev-{k}"] = cached(args.cache / f"nlupp-dev-{k}.pkl", lambda k=k: episode(
                nlupp_banking([k])[:args.train], nlupp_banking(range(5, 10)), descriptions, encoder))
        if args.nlupp_test:
            for k in (15, 16, 17):
                others = [f for f in range(15, 20) if f != k]
                checks[f"nlupp-test-{k}"] = cached(args.cache / f"nlupp-test-{k}.pkl", lambda k=k, o=others: episode(
                    nlupp_banking([k])[:args.train], nlupp_banking(o), descriptions, encoder))
        if args.xsid:
            rng = random.Random(0)
            valid, test = read_xsid_slots(args.xsid / "en.valid.conll"), read_xsid_slots(args.xsid / "en.test.conll")
            train = rng.sample(valid, args.train)
            checks["xsid-en"] = cached(args.cache / "xsid-en.pkl", lambda: episode(train, test, {}, encoder))
        rt.close()
    made = [rows(ep) for ep in sources]
    xs = [m[0] for m in made if m is not None]
    ys = [m[1] for m in made if m is not None]
    prior = Prior.fit(np.vstack(xs), np.concatenate(ys), args.c) if xs else None
    pool = (np.vstack(xs), np.concatenate(ys), args.pool_weight) if xs else None
    out["source_pairs"] = int(sum(len(y) for y in ys))
    out["source_positives"] = int(sum(y.sum() for y in ys))
    if args.write and prior is not None:
        np.savez(args.write, mean=prior.mean.astype(np.float32), scale=prior.scale.astype(np.float32),
                 coef=prior.coef.astype(np.float32), intercept=np.float32(prior.intercept),
                 features=np.int32(ss.FEATURES))
        out["written"] = str(args.write)
    variants = args.variants.split(",")
    out["checks"] = {}
    for name, ep in checks.items():
        out["checks"][name] = {v: slot_f1(ep, v, prior, args.threshold, pool) for v in variants}
        log(f"{name}: " + " ".join(f"{v} {out['checks'][name][v]['f1']}" for v in variants))
    for group in ("nlupp-dev", "nlupp-test"):
        drawn = [row for name, row in out["checks"].items() if name.startswith(group)]
        if len(drawn) > 1:
            out[group] = {v: {"mean": round(statistics.mean(r[v]["f1"] for r in drawn), 4),
                              "sd": round(statistics.stdev(r[v]["f1"] for r in drawn), 4)} for v in variants}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
