"""Train the prebuilt ``receipt`` extractor on generated receipts and on the dev split of real
ones, and choose how much the real receipts count by cross-validation on them.

    # how much real receipts should count: K folds over the real dev receipts, each fold scored
    # by weights trained on the generated receipts and the other folds
    python bench/receipt_real.py --dump wildreceipt=wild-dev.jsonl:path/to/wildreceipt \\
        --dump softmatic=soft.jsonl:path/to/vision-data --folds 4 --weights 0,5,20
    # the shipped weights: generated + every real dev receipt at the chosen weight, and the
    # confidence calibration fitted on the folds' held-out answers
    python bench/receipt_real.py --dump ... --weights 5 --write

Each ``--dump`` is a set's OCR dump from ``bench/receipts.py --dump`` and the set's folder (for
its labels). Only ``dev`` receipts are read: the test splits stay held out. The generated
receipts are bench/prebuilt.py's (``--receipts``, ``--seed``), so ``--weights 0`` is exactly its
weights. Real rows are added for the four fields the sets label (merchant name, address, date,
total) on receipts where some candidate holds the labeled value (a value the OCR lost teaches
nothing about choosing); softmatic's merchant labels are short keys ("aldi"), not the name as
printed, so its names are scored but not trained on. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import prebuilt as gen
from litegate.documents import fieldtypes
from litegate.documents import prebuilt as pb
from litegate.documents.prebuilt import model

sys.path.insert(0, str(Path(__file__).parent))
from receipt_calibration import fit as fit_calibration  # noqa: E402  (sibling bench scripts)
from receipts import LOADERS, _from_dump, field_right  # noqa: E402

FIELDS = ("merchant_name", "merchant_address", "date", "total")
KEY_LABELS = {("softmatic", "merchant_name")}  # labels that are a key inside the answer, not the answer


class Real:
    """One real dev receipt: its set, labels and page of OCR lines."""

    def __init__(self, set_name: str, sample: Any, page: Any):
        self.set, self.sample, self.page = set_name, sample, page
        self.fold = hashlib.sha1(sample.id.encode()).digest()[1]
        text = "\n".join(line.text for line in page.lines)
        self.currency = fieldtypes.currency_of(text)

    def right(self, field: str, value: Any) -> bool:
        return field_right(field, self.sample.fields[field], value, self.set == "wildreceipt")


def load_real(specs: list[str]) -> list[Real]:
    out = []
    for spec in specs:
        set_name, rest = spec.split("=", 1)
        dump, data = rest.split(":", 1)
        dumped = {r["id"]: r for r in map(json.loads, Path(dump).read_text().splitlines())}
        for s in LOADERS[set_name](Path(data)):
            if s.split == "dev" and s.id in dumped:
                out.append(Real(set_name, s, pb.page_of(_from_dump(dumped[s.id]))))
    return out


def real_rows(receipts: list[Real], field: str) -> list[tuple[dict[str, float], int]]:
    rows: list[tuple[dict[str, float], int]] = []
    for r in receipts:
        if field not in r.sample.fields or (r.set, field) in KEY_LABELS:
            continue
        pool = pb.candidates_for(r.page, pb.RECEIPT[field].source, r.currency, "receipt")
        labels = [int(r.right(field, c.value.value)) for c in pool]
        if any(labels):
            rows.extend((c.features, y) for c, y in zip(pool, labels))
    return rows


def generated_rows(count: int, seed: int, cache: Path | None, plain: float = 0.0
                   ) -> dict[str, list[tuple[dict[str, float], int]]]:
    if cache and cache.is_file():
        return pickle.loads(cache.read_bytes())
    rows = gen.rows_for("receipt", gen.generate("receipt", count, seed, plain))
    if cache:
        cache.write_bytes(pickle.dumps(rows))
    return rows


def train(generated: dict[str, list], real: list[Real], weight: float, c: float,
          fields: tuple[str, ...] = FIELDS) -> dict[str, model.FieldScorer]:
    scorers = {}
    for field in fields:
        rows = generated[field]
        extra = real_rows(real, field) if weight > 0 and field in FIELDS else []
        threshold = gen.answer_threshold("receipt", field)
        scorers[field] = model.fit(rows + extra, c=c, threshold=threshold,
                                   sample_weights=[1.0] * len(rows) + [weight] * len(extra))
    return scorers


def score(receipts: list[Real], scorers: dict[str, model.FieldScorer]) -> list[dict[str, Any]]:
    out = []
    for r in receipts:
        found = pb.extract("receipt", r.page, list(FIELDS), scorers=scorers)["fields"]
        out.append({"set": r.set, "id": r.sample.id,
                    **{f: (found[f]["confidence"], int(r.right(f, found[f]["value"])))
                       for f in FIELDS if f in r.sample.fields}})
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for set_name in sorted({r["set"] for r in rows}):
        acc = {}
        for f in FIELDS:
            hits = [r[f][1] for r in rows if r["set"] == set_name and f in r]
            acc[f] = round(sum(hits) / len(hits), 3) if hits else None
        out[set_name] = {**acc, "mean": round(sum(v for v in acc.values() if v is not None) / 4, 3),
                         "receipts": sum(r["set"] == set_name for r in rows)}
    return out


def weight_list(text: str) -> list[float]:
    """``--weights``: comma-separated, none negative (bench/invoice_real.py reads it too)."""
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise SystemExit(f"--weights takes numbers separated by commas, not {text!r}") from None
    if any(w < 0 for w in weights):
        raise SystemExit("--weights must not be negative")
    return weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", action="append", required=True, metavar="SET=DUMP:DATA")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--weights", default="0,5,20", help="how much a real receipt's row counts against a generated "
                                                        "one's (comma-separated: each is cross-validated)")
    ap.add_argument("--receipts", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--plain", type=float, default=gen.PLAIN, help="the share of generated receipts given as plain "
                                                                     "text (no boxes)")
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--cache", type=Path, help="keep the generated receipts' rows here (they take minutes)")
    ap.add_argument("--write", action="store_true", help="train on every real dev receipt at the (one) weight given "
                                                         "and write receipt.json and its calibration")
    args = ap.parse_args()
    weights = weight_list(args.weights)
    if args.write and len(weights) != 1:
        raise SystemExit("--write takes one weight: --weights W")
    if not 0.0 <= args.plain <= 1.0:
        raise SystemExit("--plain is a share: 0 to 1")
    real = load_real(args.dump)
    generated = generated_rows(args.receipts, args.seed, args.cache, args.plain)
    print(f"{len(real)} real dev receipts; generated rows: {sum(map(len, generated.values()))}", file=sys.stderr)
    report: dict[str, Any] = {"real_receipts": len(real), "folds": args.folds, "cv": {}}
    held_out: dict[float, list[dict[str, Any]]] = {}
    for w in weights:
        rows = []
        fixed = train(generated, [], 0.0, args.c) if w == 0 else None
        for k in range(args.folds):
            inside = [r for r in real if r.fold % args.folds != k]
            scorers = fixed or train(generated, inside, w, args.c)
            rows += score([r for r in real if r.fold % args.folds == k], scorers)
        held_out[w] = rows
        report["cv"][str(w)] = summary(rows)
        print(json.dumps({str(w): report["cv"][str(w)]}), file=sys.stderr)
    if args.write:
        w = weights[0]
        every = tuple(f for f, s in pb.RECEIPT.items() if s.source != "currency")
        scorers = train(generated, real, w, args.c, every)
        sets = sorted({r.set for r in real})
        out = {"name": "receipt", "version": 1, "fields": {f: s.as_json() for f, s in scorers.items()},
               "trained_on": f"{args.receipts} generated receipts (bench/prebuilt.py, seed {args.seed}, "
                             f"{args.plain:g} of them as plain text)" +
                             (f" and the dev split of real receipts ({', '.join(sets)}; {len(real)} receipts, rows "
                              f"weighted {w:g}; bench/receipt_real.py)" if w else "; no real documents")}
        path = pb.HERE / "receipt.json"
        path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        calibration = {}
        for f in FIELDS:
            points = [r[f] for r in held_out[w] if f in r]
            a, b = fit_calibration(points)
            calibration[f] = {"a": round(a, 4), "b": round(b, 4), "receipts": len(points),
                              "right": round(sum(y for _, y in points) / max(len(points), 1), 3)}
        cal = {"fitted_on": f"the held-out folds of {args.folds}-fold cross-validation over the dev split of "
                            f"{', '.join(sets)} (bench/receipt_real.py)",
               "weights_sha1": model.weights_sha1(path), "fields": calibration}
        (pb.HERE / "receipt.calibration.json").write_text(json.dumps(cal, indent=1) + "\n")
        report["written"] = str(path)
        report["calibration"] = calibration
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
