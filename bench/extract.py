"""Extraction on NLU++ banking: the nano extractor against a plain CRF baseline in the same
run, the lite model with the extractor's retrieved examples (grounded decoding), and a
calibrated nano -> lite cascade.

    python bench/extract.py [--sizes 1,2,10] [--llm-limit 150] [--zero-shot-limit 60] [--pro-limit 0] [--no-llm]
                            [--encoder fast|accurate]

Protocol: train on the first N folds (1, 2 or 10 of 20), score on all the others; slot F1 is
micro over every test utterance, a predicted (field, value) right when the value matches the
gold one after normalisation (case, spacing, surrounding punctuation). The baseline is a plain
linear-chain CRF (python-crfsuite) with the classic word features (the word, its suffixes,
case and digit flags, its shape, the same for its neighbours). The LLM rows (lite with the
extractor's 4 most similar training examples and its fields' descriptions with their most
common training values; lite zero-shot with the field descriptions alone, on the first 60)
use a fixed random sample of the 2-fold test set; the cascade is calibrated on
fold 2 (kept out of that test sample) and simulated on the sample from the two tiers' answers
(the same decisions `tier: auto` makes). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from litegate.config import Settings
from litegate.errors import LitegateError
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.evals.metrics import extraction_metrics, field_correct
from litegate.nano.extractor import NanoExtractor, find_value
from litegate.runtime import build
from litegate.tasks.cascade import TierResults, choose_policy

TOKEN = re.compile(r"\w+|[^\w\s]")


def crf_features(words: list[str], i: int) -> dict[str, object]:
    w = words[i]
    f: dict[str, object] = {"bias": 1.0, "lower": w.lower(), "suf3": w[-3:], "suf2": w[-2:],
                            "upper": w.isupper(), "title": w.istitle(), "digit": w.isdigit(),
                            "shape": re.sub(r"\d", "d", re.sub(r"[a-z]", "x", re.sub(r"[A-Z]", "X", w)))}
    for d, name in ((-1, "prev"), (1, "next")):
        j = i + d
        if 0 <= j < len(words):
            o = words[j]
            f.update({f"{name}_lower": o.lower(), f"{name}_title": o.istitle(), f"{name}_digit": o.isdigit()})
        else:
            f["BOS" if d < 0 else "EOS"] = True
    return f


def crf_baseline(train: list[dict], test: list[dict]) -> tuple[list[dict], float, list[float]]:
    import pycrfsuite

    started = time.perf_counter()
    trainer = pycrfsuite.Trainer(verbose=False)
    for r in train:
        spans = [(m.start(), m.end()) for m in TOKEN.finditer(r["text"])]
        tags = ["O"] * len(spans)
        for name, value in r["data"].items():
            at = find_value(r["text"], value)
            inside = [k for k, (a, b) in enumerate(spans) if at and a < at[1] and b > at[0]]
            for n, k in enumerate(inside):
                tags[k] = ("B-" if n == 0 else "I-") + name
        words = [r["text"][a:b] for a, b in spans]
        trainer.append([crf_features(words, i) for i in range(len(words))], tags)
    trainer.set_params({"c1": 0.1, "c2": 0.1, "max_iterations": 100, "feature.possible_transitions": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "m.crfsuite")
        trainer.train(path)
        train_s = time.perf_counter() - started
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        preds, lat = [], []
        for r in test:
            t0 = time.perf_counter()
            spans = [(m.start(), m.end()) for m in TOKEN.finditer(r["text"])]
            words = [r["text"][a:b] for a, b in spans]
            tags = tagger.tag([crf_features(words, i) for i in range(len(words))]) if words else []
            data: dict[str, str] = {}
            i = 0
            while i < len(tags):
                if tags[i].startswith("B-"):
                    name, j = tags[i][2:], i + 1
                    while j < len(tags) and tags[j] == "I-" + name:
                        j += 1
                    data.setdefault(name, r["text"][spans[i][0]:spans[j - 1][1]])
                    i = j
                else:
                    i += 1
            preds.append(data)
            lat.append((time.perf_counter() - t0) * 1000)
    return preds, train_s, lat


def scores(gold: list[dict], pred: list[dict], fields: list[str]) -> dict[str, float]:
    m = extraction_metrics(gold, [{k: v for k, v in p.items() if v is not None} for p in pred], fields)
    return {"precision": round(m["slot_precision"], 4), "recall": round(m["slot_recall"], 4),
            "f1": round(m["slot_f1"], 4)}


def all_right(gold: dict, pred: dict, fields: list[str]) -> bool:
    return all(field_correct(gold.get(f), pred.get(f)) for f in fields)


def p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,2,10", help="training folds for each run")
    ap.add_argument("--llm-limit", type=int, default=150, help="test items for the LLM rows (2-fold run)")
    ap.add_argument("--zero-shot-limit", type=int, default=60,
                    help="of those, how many the zero-shot row runs (every field as a key: slow)")
    ap.add_argument("--calibration-limit", type=int, default=60, help="fold-2 items to calibrate the cascade on")
    ap.add_argument("--pro-limit", type=int, default=0,
                    help="of the LLM sample, how many the pro model also answers with retrieved examples "
                         "(the same prompt on a bigger model; ~6 s an item)")
    ap.add_argument("--no-llm", action="store_true")
    ap.add_argument("--encoder", default="fast", help="the nano encoder whose word vectors the extractor reads")
    args = ap.parse_args()
    load_start = os.getloadavg()
    described = nlupp_fields()
    out: dict[str, object] = {"bench": "extract", "data": "NLU++ banking (20 folds)", "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        encoder = rt.encoders.get(args.encoder)
        out["encoder"] = args.encoder
        for size in [int(s) for s in args.sizes.split(",")]:
            train, test = nlupp_banking(range(size)), nlupp_banking(range(size, 20))
            fields = sorted({k for r in train for k in r["data"]} | {k for r in test for k in r["data"]})
            gold = [r["data"] for r in test]
            print(f"[{size} folds] crf baseline", file=sys.stderr)
            crf_pred, crf_s, crf_lat = crf_baseline(train, test)
            print(f"[{size} folds] nano extractor", file=sys.stderr)
            t0 = time.perf_counter()
            seen = sorted({k for r in train for k in r["data"]})
            nano = NanoExtractor.train("bench", [{"text": r["text"], "data": r["data"]} for r in train], encoder,
                                       fields={k: described.get(k, "") for k in seen})
            nano_s = time.perf_counter() - t0
            nano_pred, nano_lat = [], []
            for r in test:
                t1 = time.perf_counter()
                nano_pred.append(nano.predict([r["text"]], encoder)[0])
                nano_lat.append((time.perf_counter() - t1) * 1000)
            run = {"train_items": len(train), "test_items": len(test), "fields": len(fields),
                   "crf": {**scores(gold, crf_pred, fields), "train_seconds": round(crf_s, 2),
                           "predict_ms_p50": p(crf_lat, 50), "predict_ms_p95": p(crf_lat, 95)},
                   "nano": {**scores(gold, [x["data"] for x in nano_pred], fields),
                            "train_seconds": round(nano_s, 2), "out_of_fold_f1": nano.info.oof_f1,
                            "predict_ms_p50": p(nano_lat, 50), "predict_ms_p95": p(nano_lat, 95)}}
            out["runs"][f"{size}_folds"] = run
            if size != 2 or args.no_llm:
                continue
            rt.extractors.dir.mkdir(parents=True, exist_ok=True)
            nano.save(rt.extractors.dir / "bench" / "v1")
            rng = random.Random(0)
            sample = [r for r in nlupp_banking(range(3, 20))]
            sample = [sample[i] for i in sorted(rng.sample(range(len(sample)), args.llm_limit))]
            calib = nlupp_banking([2])
            calib = [calib[i] for i in sorted(rng.sample(range(len(calib)), min(args.calibration_limit, len(calib))))]
            rt.registry.engine("lite")
            time.sleep(3)  # the engine's grammar warm-up

            failed: dict[str, int] = {}

            # called within this iteration; the defaults bind this iteration's values explicitly
            def answers(records: list[dict], request: dict, label: str, failed: dict[str, int] = failed) -> list[dict]:
                got = []
                for k, r in enumerate(records):
                    try:
                        got.append(rt.tasks.run("extract", {**request, "text": r["text"]}))
                    except LitegateError as e:  # counted as stating nothing, and reported
                        failed[label] = failed.get(label, 0) + 1
                        print(f"  {label}: {e}", file=sys.stderr)
                        got.append({"data": {}, "confidence": 0.0, "cost_usd": 0.0, "latency_ms": 0.0,
                                    "usage": {"completion_tokens": 0}})
                    print(f"  {label} {k + 1}/{len(records)}", file=sys.stderr, end="\r")
                return got

            seen_fields = {k: described.get(k, "") for k in seen}
            print("[2 folds] lite with retrieved examples, zero-shot lite, nano, calibration", file=sys.stderr)
            lite = answers(sample, {"tier": "lite", "extractor": "bench"}, "lite")
            zero_sample = sample[:args.zero_shot_limit]
            zero = answers(zero_sample, {"tier": "lite", "fields": seen_fields}, "lite zero-shot")
            pro_sample = sample[:args.pro_limit]
            pro = answers(pro_sample, {"tier": "pro", "extractor": "bench"}, "pro") if pro_sample else []
            nano_s_out = answers(sample, {"tier": "nano", "extractor": "bench"}, "nano")
            cal_nano = answers(calib, {"tier": "nano", "extractor": "bench"}, "calibration nano")
            cal_lite = answers(calib, {"tier": "lite", "extractor": "bench"}, "calibration lite")
            sg = [r["data"] for r in sample]

            def tier_results(name: str, got: list[dict], records: list[dict],
                             fields: list[str] = fields) -> TierResults:
                return TierResults(name, np.array([g["confidence"] for g in got]),
                                   np.array([float(all_right(r["data"], g["data"], fields)) for r, g in
                                             zip(records, got)]), np.array([g["cost_usd"] for g in got]))

            policy = choose_policy("extract", [tier_results("nano", cal_nano, calib),
                                               tier_results("lite", cal_lite, calib)], target_accuracy=0.0)
            first = policy.steps[0]
            second = policy.steps[1] if len(policy.steps) > 1 else None
            picked, answered = [], []
            for a, b in zip(nano_s_out, lite):
                if a["confidence"] >= first.threshold:
                    picked.append(a["data"]), answered.append(True)
                elif first.escalate and second is not None:
                    picked.append(b["data"]), answered.append(b["confidence"] >= second.threshold)
                else:
                    picked.append(a["data"]), answered.append(False)
            lat = [g["latency_ms"] for g in lite]
            run["llm_sample"] = {
                "items": len(sample),
                "lite_retrieved": {**scores(sg, [g["data"] for g in lite], fields), "latency_ms_p50": p(lat, 50),
                                   "latency_ms_p95": p(lat, 95),
                                   "completion_tokens_mean": round(statistics.mean(
                                       g["usage"]["completion_tokens"] for g in lite), 1)},
                "lite_zero_shot": {"items": len(zero_sample),
                                   **scores([r["data"] for r in zero_sample], [g["data"] for g in zero], fields),
                                   "latency_ms_p50": p([g["latency_ms"] for g in zero], 50)},
                **({"pro_retrieved": {"items": len(pro_sample), **scores([r["data"] for r in pro_sample],
                                                                         [g["data"] for g in pro], fields),
                                      "lite_on_same_items": scores([r["data"] for r in pro_sample],
                                                                   [g["data"] for g in lite[:len(pro)]], fields),
                                      "latency_ms_p50": p([g["latency_ms"] for g in pro], 50)}}
                   if pro_sample else {}),
                "failed_calls": failed,
                "nano": scores(sg, [g["data"] for g in nano_s_out], fields),
                "cascade": {"policy": [s.__dict__ for s in policy.steps], **scores(sg, picked, fields),
                            "escalated": round(sum(a["confidence"] < first.threshold for a in nano_s_out)
                                               / len(sample), 3) if first.escalate else 0.0,
                            "answered": round(sum(answered) / len(sample), 3)},
                "all_fields_right": {
                    "nano": round(float(np.mean([all_right(r["data"], g["data"], fields)
                                                 for r, g in zip(sample, nano_s_out)])), 3),
                    "lite_retrieved": round(float(np.mean([all_right(r["data"], g["data"], fields)
                                                           for r, g in zip(sample, lite)])), 3),
                    "cascade": round(float(np.mean([all_right(r["data"], d, fields)
                                                    for r, d in zip(sample, picked)])), 3)},
            }
        rt.close()
    out["machine"] = {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in load_start],
                      "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
