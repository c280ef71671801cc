"""The nano extractor per encoder, side by side: slot F1 and p50 per call from about 100
training utterances, beside a plain CRF on the same data.

    python bench/extract_encoders.py [--encoders fast,accurate] [--sets nlupp,xsid-en] [--xsid DIR]
                                     [--train 100] [--test-limit 300] [--decoders spans,crf]
                                     [--nlupp-folds 15-19 --draws 3] [--nlupp-dev 0,1,2,3]
                                     [--values on|off|both]

Sets: NLU++ banking (the first ``--train`` utterances of fold 0 train; a fixed random sample of
``--test-limit`` utterances of folds 1-19 scores) and xSID English (``--xsid``: a folder with
xSID 0.5's ``en.valid.conll`` and ``en.test.conll``; a fixed random ``--train`` of valid
trains, test scores; slot names have '/' read as '.'; a slot stated twice keeps its first
value). ``--nlupp-folds A-B --draws N``: N draws instead, draw k training on the first
``--train`` utterances of fold A+k and scored on the other folds of A-B (a split kept apart from
the folds the extractor's design was chosen on), with each row's mean and spread over the draws.
``--decoders``: the extractor as shipped (``spans``: candidate spans scored per field), with the
first span stage (``spans1``: its candidates and features, a logistic scorer) and as before the
stage (``crf``: the CRF's own best path), side by side as ``ENCODER``, ``ENCODER/spans1`` and
``ENCODER/crf``; ``spans2``, the second stage (all but the value tagger's reading of a span's
edges), as ``ENCODER/spans2``. ``--nlupp-dev K,K,...``: the development draws (the first ``--train`` of fold K
trains, folds 5-9 score; the folds the extractor's design is chosen on). ``--values both``: each
also trained without the value tagger's features (``nano.value_tagger``), as ``ENCODER/novalues``.
``--sets sgd-Hotels_2 --sgd DIR``: a Schema-Guided Dialogue service (github.com/google-research-
datasets/dstc8-schema-guided-dialogue, CC BY-SA 4.0; ``DIR`` its ``train`` folder): its user turns
shuffled (seed 0), the first 600 scored, ``--draws`` draws of the next ``--train`` each.
Slot F1 is micro over the test utterances, as in bench/extract.py. Latency: one text
per ``predict`` call, the encoders taking turns text by text so a busy moment of the machine
falls on all of them alike. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from litegate.config import Settings
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.nano import extractor, span_scorer
from litegate.nano.extractor import NanoExtractor
from litegate.runtime import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import crf_baseline, p, scores  # noqa: E402 - a sibling script module

DEV_SCORED = range(5, 10)  # the folds the development draws are scored on (bench/README.md, "Extraction")


def log(message: str) -> None:
    print(f"[extract encoders {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_xsid_slots(path: Path) -> list[dict[str, Any]]:
    """xSID's ``# text`` and ``# slots: start:end:name,...`` lines as extraction records."""
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# text"):
            out.append({"text": line.split(":" if line.startswith("# text:") else "=", 1)[1].strip(), "data": {}})
        elif line.startswith("# slots") and out:
            text, data = out[-1]["text"], out[-1]["data"]
            for part in filter(None, line.split(":", 1)[1].strip().split(",")):
                start, end, name = part.split(":", 2)
                value = text[int(start):int(end)].strip()
                if value:
                    data.setdefault(name.replace("/", "."), value)
    return out


def read_sgd(folder: Path, service: str) -> list[dict[str, Any]]:
    """The user turns of one Schema-Guided Dialogue service (``Hotels_2``; a prefix such as
    ``Hotels`` takes all of its services) as extraction records: its frame's non-categorical
    slots, whose values the set marks by their characters (a slot stated twice keeps its first)."""
    paths = sorted(folder.glob("dialogues_*.json"))
    if not paths:
        raise SystemExit(f"{folder} holds no dialogues_*.json: pass the set's train folder")
    out: list[dict[str, Any]] = []
    for path in paths:
        for dialogue in json.loads(path.read_text(encoding="utf-8")):
            for turn in dialogue["turns"]:
                frames = [f for f in turn["frames"] if f["service"].startswith(service)]
                if turn["speaker"] != "USER" or not frames:
                    continue
                text, data = turn["utterance"], {}
                for slot in frames[0]["slots"]:
                    value = text[slot["start"]:slot["exclusive_end"]].strip()
                    if value:
                        data.setdefault(slot["slot"], value)
                out.append({"text": text, "data": data})
    return out


def load_sets(names: list[str], train_n: int, test_limit: int, xsid: Path | None, nlupp_folds: list[int] | None = None,
              draws: int = 1, nlupp_dev: list[int] | None = None, sgd: Path | None = None,
              sgd_test: int = 600) -> dict[str, dict[str, Any]]:
    sets: dict[str, dict[str, Any]] = {}
    rng = random.Random(0)
    if "nlupp" in names and nlupp_dev:
        test = nlupp_banking(DEV_SCORED)
        for k in nlupp_dev:
            sets[f"nlupp-banking-draw{k}"] = {
                "train": nlupp_banking([k])[:train_n], "fields": nlupp_fields(),
                "test": rng.sample(test, min(test_limit, len(test))) if test_limit else test}
    elif "nlupp" in names and nlupp_folds:
        for k in nlupp_folds[:draws]:
            test = nlupp_banking([f for f in nlupp_folds if f != k])
            sets[f"nlupp-banking-draw{k}"] = {
                "train": nlupp_banking([k])[:train_n], "fields": nlupp_fields(),
                "test": rng.sample(test, min(test_limit, len(test))) if test_limit else test}
    elif "nlupp" in names:
        test = nlupp_banking(range(1, 20))
        sets["nlupp-banking"] = {"train": nlupp_banking([0])[:train_n], "fields": nlupp_fields(),
                                 "test": rng.sample(test, min(test_limit, len(test))) if test_limit else test}
    for service in [n[4:] for n in names if n.startswith("sgd-")] if sgd is not None else []:
        rows = read_sgd(sgd, service)
        random.Random(0).shuffle(rows)
        for k in range(draws):  # the first sgd_test utterances score; each draw trains on the next train_n
            sets[f"sgd-{service}-draw{k}"] = {"train": rows[sgd_test + train_n * k:sgd_test + train_n * (k + 1)],
                                              "fields": {}, "test": rows[:sgd_test]}
    if "xsid-en" in names and xsid is not None:
        valid, test = read_xsid_slots(xsid / "en.valid.conll"), read_xsid_slots(xsid / "en.test.conll")
        sets["xsid-en"] = {"train": rng.sample(valid, min(train_n, len(valid))), "fields": {},
                           "test": rng.sample(test, min(test_limit, len(test))) if test_limit else test}
    return sets


def run_set(data: dict[str, Any], encoders: dict[str, Any], decoders: list[str],
            values: tuple[bool, ...] = (True,)) -> dict[str, Any]:
    train, test = data["train"], data["test"]
    fields = sorted({k for r in train for k in r["data"]} | {k for r in test for k in r["data"]})
    gold = [r["data"] for r in test]
    crf_pred, crf_s, crf_lat = crf_baseline(train, test)
    row: dict[str, Any] = {"train_items": len(train), "test_items": len(test), "fields": len(fields),
                           "crf": {**scores(gold, crf_pred, fields), "train_seconds": round(crf_s, 2),
                                   "predict_ms_p50": p(crf_lat, 50)}}
    seen = sorted({k for r in train for k in r["data"]})
    models, encoder_of = {}, {}
    for name, encoder in encoders.items():
        for decoder, valued in ((d, v) for d in decoders for v in values):
            key = (name if decoder == "spans" else f"{name}/{decoder}") + ("" if valued else "/novalues")
            log(f"train {key}")
            t0 = time.perf_counter()
            shipped = span_scorer.FEATURES, span_scorer.SCORER, extractor.VALUE_TAGGER
            if decoder == "spans1":  # the first span stage: its candidates and features, the logistic scorer
                span_scorer.FEATURES, span_scorer.SCORER = 1, "logistic"
            elif decoder == "spans2":  # the second: not reading the value tagger's edges of a span
                span_scorer.FEATURES = 2
            extractor.VALUE_TAGGER = valued
            try:
                models[key] = NanoExtractor.train("bench", train, encoder, spans=decoder != "crf",
                                                  fields={k: data["fields"].get(k, "") for k in seen})
            finally:
                span_scorer.FEATURES, span_scorer.SCORER, extractor.VALUE_TAGGER = shipped
            encoder_of[key] = encoder
            row[key] = {"train_seconds": round(time.perf_counter() - t0, 1), "out_of_fold_f1": models[key].info.oof_f1}
    preds: dict[str, list[dict[str, Any]]] = {key: [] for key in models}
    lat: dict[str, list[float]] = {key: [] for key in models}
    load = os.getloadavg()[0]
    for i, r in enumerate(test):
        for key, model in models.items():
            t0 = time.perf_counter()
            preds[key].append(model.predict([r["text"]], encoder_of[key])[0]["data"])
            lat[key].append((time.perf_counter() - t0) * 1000)
        if (i + 1) % 50 == 0:
            log(f"{i + 1}/{len(test)} scored")
    for key in models:
        row[key].update({**scores(gold, preds[key], fields), "predict_ms_p50": p(lat[key], 50),
                         "predict_ms_p95": p(lat[key], 95),
                         "loadavg_1m": [round(load, 2), round(os.getloadavg()[0], 2)]})
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoders", default="fast,accurate")
    ap.add_argument("--sets", default="nlupp,xsid-en")
    ap.add_argument("--xsid", type=Path, default=None, help="a folder with xSID 0.5's en.valid.conll and en.test.conll")
    ap.add_argument("--train", type=int, default=100, help="training utterances")
    ap.add_argument("--test-limit", type=int, default=300, help="test utterances (a fixed random sample; 0: all)")
    ap.add_argument("--decoders", default="spans,crf",
                    help="spans (as shipped), spans1 / spans2 (the first / second span stage), crf (the CRF's path)")
    ap.add_argument("--nlupp-folds", default=None, help="A-B: draws within these NLU++ folds (see above)")
    ap.add_argument("--draws", type=int, default=3, help="with --nlupp-folds: how many training draws")
    ap.add_argument("--nlupp-dev", default=None, metavar="K,K,...",
                    help="development draws instead: each trains on the first --train of fold K, scored on folds 5-9")
    ap.add_argument("--sgd", type=Path, default=None,
                    help="Schema-Guided Dialogue's train folder (dialogues_*.json), for sets sgd-SERVICE")
    ap.add_argument("--values", default="on", choices=["on", "off", "both"],
                    help="the value tagger's features in the CRF (both: side by side, the other as ENCODER/novalues)")
    args = ap.parse_args()
    out: dict[str, Any] = {"bench": "extract_encoders", "cpus": os.cpu_count(),
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()], "sets": {}}
    folds = None
    if args.nlupp_folds:
        first, last = (int(x) for x in args.nlupp_folds.split("-"))
        folds = list(range(first, last + 1))
    dev = [int(k) for k in args.nlupp_dev.split(",")] if args.nlupp_dev else None
    sets = load_sets(args.sets.split(","), args.train, args.test_limit, args.xsid, folds, args.draws, dev, args.sgd)
    values = {"on": (True,), "off": (False,), "both": (True, False)}[args.values]
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        encoders = {key: rt.encoders.get(key) for key in args.encoders.split(",")}
        for name, data in sets.items():
            log(name)
            out["sets"][name] = run_set(data, encoders, args.decoders.split(","), values)
        rt.close()
    drawn_sets = [("nlupp-banking-draw", "nlupp_draws")]
    drawn_sets += [(f"{n}-draw", f"{n}_draws") for n in args.sets.split(",") if n.startswith("sgd-")]
    for prefix, key in drawn_sets:
        drawn = [row for name, row in out["sets"].items() if name.startswith(prefix)]
        if len(drawn) > 1:  # each row's mean and spread over the draws
            keys = [k for k, v in drawn[0].items() if isinstance(v, dict) and "f1" in v]
            out[key] = {k: {"f1_mean": round(statistics.mean(r[k]["f1"] for r in drawn), 4),
                            "f1_sd": round(statistics.stdev(r[k]["f1"] for r in drawn), 4),
                            "f1": [r[k]["f1"] for r in drawn]} for k in keys}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
