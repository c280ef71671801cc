"""Trains the nano extractor's value tagger (src/litegate/nano/value_tagger.npz): a logistic
regression from a word's fast-encoder vector and its neighbours' to B / I / O of any slot value,
learned from other domains' slot sets. Prints JSON: what it was trained on, how it tags each
source's own test file (never trained on), the file's size and sha256.

    python bench/value_tagger.py --data path/to/task-specific-datasets/span_extraction
    python bench/value_tagger.py --data ... --out /tmp/value_tagger.npz --cap 1000 --c 0.1

Sources (PolyAI's span-extraction data, github.com/PolyAI-LDN/task-specific-datasets, CC BY 4.0):
the ``train_0.json`` of DSTC8's buses, events, homes and rental cars and of Restaurant8k, each
shuffled (one seeded generator, in that order) and cut to ``--cap`` utterances so that no one
domain outweighs the rest. Every labelled value of an utterance is tagged (its first word ``B``,
the rest ``I``), whatever its slot; utterances stating none teach ``O``. The vectors are the
ones an extractor reads (``extractor._prepare`` with the served fast encoder), so the tagger
learns what it will be given. Whether the extractor gains by it is measured by
``bench/extract_encoders.py --values both`` (bench/README.md, "a value tagger from other domains").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.nano import extractor as ex
from litegate.nano.value_tagger import FILE, TAGS, ValueTagger
from litegate.packages import file_sha256
from litegate.runtime import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from span_prior import read_polyai  # noqa: E402 - a sibling script module

OUT = Path(__file__).resolve().parent.parent / "src" / "litegate" / "nano" / FILE
SOURCES = ("dstc8/Buses_1", "dstc8/Events_1", "dstc8/Homes_1", "dstc8/RentalCars_1", "restaurant8k")


def tagged(records: list[dict[str, Any]], encoder: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every word's inputs (as the extractor's probe reads them) and its tag (0 O, 1 B, 2 I)."""
    inputs, tags = [], []
    for start in range(0, len(records), 256):
        batch = records[start:start + 256]
        for doc, r in zip(ex._prepare([r["text"] for r in batch], encoder), batch):
            y = np.zeros(len(doc.offsets), np.int64)
            for a, b in r["spans"]:
                inside = [i for i, (s, e) in enumerate(doc.offsets) if s < b and e > a]
                y[inside[:1]], y[inside[1:]] = 1, 2
            inputs.append(ex._probe_inputs(ex._unit(doc.vectors)))
            tags.append(y)
    return np.vstack(inputs).astype(np.float32), np.concatenate(tags)


def starts_f1(truth: np.ndarray, guess: np.ndarray) -> float:
    """F1 of the words read as a value's first word."""
    hit = int(((truth == 1) & (guess == 1)).sum())
    return round(2 * hit / max(int((truth == 1).sum() + (guess == 1).sum()), 1), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="PolyAI's span_extraction folder")
    ap.add_argument("--cap", type=int, default=3000, help="utterances per source at most")
    ap.add_argument("--c", type=float, default=1.0, help="the logistic regression's inverse regularisation")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    missing = [s for s in SOURCES if not (args.data / s / "train_0.json").is_file()]
    if missing:
        sys.exit(f"{args.data} lacks {', '.join(f'{s}/train_0.json' for s in missing)}")
    rng = random.Random(0)
    train: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for source in SOURCES:
        rows = read_polyai(args.data / source / "train_0.json")
        rng.shuffle(rows)
        train += rows[:args.cap]
        counts[source] = min(len(rows), args.cap)
    from sklearn.linear_model import LogisticRegression

    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        encoder = rt.encoders.get("fast")
        t0 = time.perf_counter()
        x, y = tagged(train, encoder)
        encoded = time.perf_counter() - t0
        model = LogisticRegression(C=args.c, max_iter=500)
        model.fit(x, y)
        fitted = time.perf_counter() - t0 - encoded
        if list(model.classes_) != [0, 1, 2]:
            sys.exit("the sources hold no values to learn from")
        tagger = ValueTagger(model.coef_.astype(np.float32), model.intercept_.astype(np.float32), encoder.name,
                             ex.word_layer(encoder), int(encoder.dim),
                             {"sources": counts, "utterances": len(train), "words": int(len(y)), "c": args.c,
                              "data": "PolyAI span_extraction (CC BY 4.0)"})
        held_out = {}
        for source in SOURCES:  # each source's test file: never trained on
            tx, ty = tagged(read_polyai(args.data / source / "test.json"), encoder)
            guess = tagger.probabilities(tx).argmax(1)
            held_out[source] = {"words": int(len(ty)), "accuracy": round(float((guess == ty).mean()), 4),
                                "value_starts_f1": starts_f1(ty, guess)}
        rt.close()
    tagger.save(args.out)
    again = ValueTagger.load(args.out)
    assert np.allclose(again.probabilities(x[:50]), tagger.probabilities(x[:50]))
    print(json.dumps({"bench": "value_tagger", "sources": counts, "utterances": len(train), "words": int(len(y)),
                      "tags": dict(zip(TAGS, np.bincount(y, minlength=3).tolist())), "c": args.c,
                      "encode_seconds": round(encoded, 1), "fit_seconds": round(fitted, 1),
                      "train_accuracy": round(float(model.score(x, y)), 4), "held_out": held_out,
                      "out": str(args.out), "bytes": args.out.stat().st_size, "sha256": file_sha256(args.out)},
                     indent=1))


if __name__ == "__main__":
    main()
