"""The span stage as shipped (pair features read for every field at once, one calibration call per
text) against the code before (features one field at a time, one calibration call per field), in
one process: time per extraction call and identical answers.

    python bench/span_features.py [--train-fold 0] [--test-fold 5] [--limit 100]

An extractor (encoder ``fast``) is trained on the first 100 utterances of an NLU++ banking fold;
then each utterance of another fold is extracted twice, the two feature codes taking turns text by
text so a busy moment of the machine falls on both alike. Prints one JSON object: p50 / p95 per
call (the whole ``predict``: encoder, CRF, stage) and of the stage alone, and whether every answer
was the same (``same_values``: texts whose every value was) and the largest difference of a
field's confidence.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.nano import span_scorer
from litegate.nano.extractor import NanoExtractor
from litegate.nano.span_scorer import Candidate, FieldStats, SpanDoc, SpanStage
from litegate.runtime import build


def p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def per_field(doc: SpanDoc, cands: list[Candidate], stats: FieldStats, tag_index: dict[str, int],
              features: int = 1) -> np.ndarray:
    """The pair features one field at a time, as the stage computed them before (the peer)."""
    ss = span_scorer
    crf = ss._crf_spans(doc, tag_index, stats.fields)
    t = len(doc.path)
    kinds = ss.word_kinds(doc.words)
    zero = np.zeros(doc.vectors.shape[1], np.float32)
    rows = []
    for c in cands:
        a, b = c.start, c.end
        shared = ss._span_features(doc, c, crf, kinds)
        if features >= 2:
            shared += [float(c.source == "phrase"), float(c.source == "known"),
                       float(b < t and ss._content(doc.words[b], kinds[b])),
                       float(a > 0 and ss._content(doc.words[a - 1], kinds[a - 1]))]
        if features >= 3:
            shared += ss._value_edges(doc.values, a, b)
        to_left = stats.left @ (doc.vectors[a - 1] if a else zero)
        to_right = stats.right @ (doc.vectors[b] if b < t else zero)
        v = ss._unit(doc.vectors[a:b].mean(0))
        kv = ss._kind_vector(c.kinds)
        text = ss.normalize(doc.span_text(a, b))
        in_any = [text in vals for vals in stats.values]
        for k, name in enumerate(stats.fields):
            bi, ii = tag_index.get("B-" + name), tag_index.get("I-" + name)
            mb = float(doc.marginals[a, bi]) if bi is not None else 0.0
            mi = float(np.mean(doc.marginals[a + 1:b, ii])) if ii is not None and b > a + 1 else 1.0
            mout = 1.0 - (float(doc.marginals[b, ii]) if ii is not None and b < t else 0.0)
            mspan = mb * (float(np.prod(doc.marginals[a + 1:b, ii])) if ii is not None else 0.0) * mout
            on_path = float(doc.path[a] == "B-" + name and all(x == "I-" + name for x in doc.path[a + 1:b])
                            and (b >= t or doc.path[b] != "I-" + name))
            nk, dk = stats.name_kinds[k], stats.description_kinds[k]
            near = float((stats.value_vectors[k] @ v).max()) if len(stats.value_vectors[k]) else 0.0
            prof = stats.profiles[k]
            rows.append(shared + [
                mb, mi, mout, float(np.log(max(mspan, 1e-4))), on_path,
                float(stats.centroids[k] @ v), near,
                float(stats.descriptions[k] @ v) if len(stats.descriptions) else 0.0,
                len(c.kinds & nk) / max(1, len(nk)), len(nk - c.kinds) / max(1, len(nk)) if c.kinds else 0.0,
                len(c.kinds & dk) / max(1, len(dk)), float(bool(nk or dk)),
                float(prof @ kv / max(1e-9, float(np.linalg.norm(prof) * np.linalg.norm(kv)))) if c.kinds else 0.0,
                stats.typed_share[k] * float(c.source not in ss._UNTYPED),
                (1 - stats.typed_share[k]) * float(c.source in ss._UNTYPED),
                float(in_any[k]), float(any(in_any[:k] + in_any[k + 1:])), float(stats.prior[k]),
                float(to_left[k]), float(to_right[k])])
    return np.array(rows, np.float32).reshape(len(cands) * len(stats.fields), -1)


def before_spans(stage: SpanStage, doc: SpanDoc) -> dict[str, tuple[tuple[int, int] | None, float]]:
    """``SpanStage.spans`` as it was: features one field at a time, one calibration call per field."""
    cands = span_scorer.spans_of(doc, stage.tag_index, stage.fields, stage.features, stage.stats.values) \
        if len(doc.path) else []
    raw = stage.scorer.scores(per_field(doc, cands, stage.stats, stage.tag_index, stage.features)) if cands \
        else np.zeros(0)
    chosen = span_scorer.choose(doc, cands, stage.fields, raw, stage.threshold)
    iso = stage.scorer.calibration
    out: dict[str, tuple[tuple[int, int] | None, float]] = {}
    for name, (span, score) in chosen.items():
        if iso is None:
            out[name] = (span, score)
        elif span is not None:
            out[name] = (span, float(iso.predict([score])[0]))
        else:
            out[name] = (None, float(1.0 - iso.predict([1.0 - score])[0]))
    return out


def timed(model: NanoExtractor, encoder: Any, text: str, spans: Any, spent: list[float]) -> tuple[Any, float]:
    """One ``predict`` with ``spans`` as the stage's ``spans``; the stage's own time is appended to
    ``spent``."""
    def counted(stage: SpanStage, doc: SpanDoc) -> Any:
        t0 = time.perf_counter()
        out = spans(stage, doc)
        spent.append((time.perf_counter() - t0) * 1000)
        return out

    shipped = SpanStage.spans
    SpanStage.spans = counted  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        out = model.predict([text], encoder)[0]
        return out, (time.perf_counter() - t0) * 1000
    finally:
        SpanStage.spans = shipped  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-fold", type=int, default=0)
    ap.add_argument("--test-fold", type=int, default=5)
    ap.add_argument("--limit", type=int, default=100, help="test utterances (the first of the fold)")
    args = ap.parse_args()
    out: dict[str, Any] = {"bench": "span_features", "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    train, test = nlupp_banking([args.train_fold])[:100], nlupp_banking([args.test_fold])[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        encoder = rt.encoders.get("fast")
        seen = sorted({k for r in train for k in r["data"]})
        model = NanoExtractor.train("bench", train, encoder, fields={k: nlupp_fields().get(k, "") for k in seen})
        out["decoder"] = model.info.decoder
        codes = {"shipped": SpanStage.spans, "before": before_spans}
        calls: dict[str, list[float]] = {k: [] for k in codes}
        stage_ms: dict[str, list[float]] = {k: [] for k in codes}
        same_data, confidence_gap = 0, 0.0
        for r in test:
            answers = []
            for key, code in codes.items():
                answer, ms = timed(model, encoder, r["text"], code, stage_ms[key])
                calls[key].append(ms)
                answers.append(answer)
            same_data += answers[0]["data"] == answers[1]["data"]
            confidence_gap = max(confidence_gap, *(abs(answers[0]["field_confidence"][k] - v)
                                                   for k, v in answers[1]["field_confidence"].items()))
        rt.close()
    out["texts"] = len(test)
    out["same_values"] = same_data
    out["largest_confidence_gap"] = round(confidence_gap, 6)
    for key in codes:
        out[key] = {"predict_ms_p50": p(calls[key], 50), "predict_ms_p95": p(calls[key], 95),
                    "stage_ms_p50": p(stage_ms[key], 50) if stage_ms[key] else None,
                    "stage_ms_p95": p(stage_ms[key], 95) if stage_ms[key] else None}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
