"""The prebuilt receipt extractor's optional fields (subtotal, tax, tip, phone) on real receipts:
each is right when the receipt labels it and the answer is one of its labeled values (amounts
to the cent, phones by their digits), or when the receipt labels none and the answer is null (a
receipt that prints no subtotal must not get one).
Scored at several answer thresholds, from the OCR dumps of bench/receipts.py --dump; also on
generated receipts (bench/prebuilt.py's, boxed and as plain text) of a seed the weights were not
trained on.

    python bench/receipt_optional.py --data path/to/wildreceipt --dump wild-dev.jsonl --split dev \
        [--thresholds 0.5,0.7,0.9] [--generated 300 --seed 2007]

WildReceipt's classes (class_list.txt): 17 Subtotal_value, 19 Tax_value, 21 Tips_value, 5
Tel_value. A field labeled more than once (several tax lines, a card slip repeating the
subtotal) is right at any of its values. Prints one JSON object: per threshold and field, the share right, how many
receipts that label the field got a wrong amount or none, and how many that label none got one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from litegate.documents import prebuilt
from litegate.documents.fieldtypes import parse_money

sys.path.insert(0, str(Path(__file__).parent))
from receipts import LOADERS, _from_dump, wildreceipt_rows  # noqa: E402  (a sibling bench script)

CLASSES = {"subtotal": 17, "tax": 19, "tip": 21, "merchant_phone": 5}
MONEY = {"subtotal", "tax", "tip"}


def _key(name: str, text: Any) -> Any:
    """What a value is compared by: cents for an amount, digits (7 or more) for a phone."""
    if name in MONEY:
        if isinstance(text, (int, float)):  # a generated receipt's truth
            return round(text * 100)
        m = parse_money(str(text))
        return round(m.amount * 100) if m is not None else None
    digits = re.sub(r"\D", "", str(text))
    return digits if len(digits) >= 7 else None


def labels(root: Path) -> dict[str, dict[str, frozenset[Any]]]:
    """Per receipt (file name): each optional field's labeled values as compared (absent: none labeled)."""
    out: dict[str, dict[str, frozenset[Any]]] = {}
    for row in wildreceipt_rows(root):
        fields = {}
        for name, cls in CLASSES.items():
            keys = {k for a in row["annotations"] if a["label"] == cls and (k := _key(name, a["text"])) is not None}
            if keys:
                fields[name] = frozenset(keys)
        out[row["file_name"]] = fields
    return out


def tally(cases: list[tuple[dict[str, Any], dict[str, Any]]], thresholds: list[float]) -> dict[str, Any]:
    """``cases``: (truth {field: cents set or None}, the extractor's fields); per threshold, as if
    each field answered only at that confidence or more (the raw scorer's, before calibration)."""
    out: dict[str, Any] = {}
    for t in thresholds:
        row: dict[str, Any] = {}
        for name in CLASSES:
            right = wrong = invented = missed = 0
            for truth, got in cases:
                f = got[name]
                answered = f["value"] is not None and f["_raw"] >= t
                want = truth.get(name)
                if want is None:
                    right += not answered
                    invented += answered
                elif answered and _key(name, f["value"]) in want:
                    right += 1
                elif answered:
                    wrong += 1
                else:
                    missed += 1
            row[name] = {"right": round(right / max(1, len(cases)), 3), "labeled": sum(name in c[0] for c in cases),
                         "wrong_amount": wrong, "missed": missed, "answered_unlabeled": invented}
        row["mean"] = round(sum(row[n]["right"] for n in CLASSES) / len(CLASSES), 3)
        out[str(t)] = row
    return out


def extracted(source: Any, raw_scorers: dict[str, Any]) -> dict[str, Any]:
    """The fields with every best candidate answered (threshold 0), each with its raw probability."""
    fields: dict[str, Any] = prebuilt.extract("receipt", source, scorers=raw_scorers)["fields"]
    for name in CLASSES:
        fields[name]["_raw"] = fields[name]["confidence"] if fields[name]["value"] is not None else 0.0
    return fields


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="WildReceipt (test.txt beside image_files/)")
    ap.add_argument("--dump", type=Path, help="bench/receipts.py --dump of that set")
    ap.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9,0.95")
    ap.add_argument("--generated", type=int, default=0, help="also this many generated receipts")
    ap.add_argument("--seed", type=int, default=2007, help="the generated receipts' seed (not the weights' 7)")
    args = ap.parse_args()
    if (args.data is None) != (args.dump is None):
        sys.exit("--data and --dump go together")
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    from litegate.documents.prebuilt import model

    scorers = prebuilt._weights("receipt")["scorers"]
    # raw probabilities, every best candidate answered: the thresholds are applied here
    raw = {f: model.FieldScorer(s.weights, s.bias, 0.0) for f, s in scorers.items()}
    report: dict[str, Any] = {"load_start": [round(x, 2) for x in os.getloadavg()],
                              "shipped_thresholds": {n: scorers[n].threshold for n in CLASSES}}
    if args.data is not None:
        dumped = {r["id"]: r for r in map(json.loads, args.dump.read_text().splitlines())}
        truth = labels(args.data)
        cases = []
        for s in LOADERS["wildreceipt"](args.data):
            if (args.split != "all" and s.split != args.split) or s.id not in dumped:
                continue
            cases.append((truth.get(s.id, {}), extracted(_from_dump(dumped[s.id]), raw)))
        report["wildreceipt"] = {"split": args.split, "receipts": len(cases), "by_threshold": tally(cases, thresholds)}
    if args.generated:
        import prebuilt as gen  # bench/prebuilt.py

        for label, plain in (("generated_boxed", 0.0), ("generated_plain", 1.0)):
            cases = []
            for doc, page in gen.generate("receipt", args.generated, args.seed, plain):
                want = {n: frozenset({_key(n, doc.truth[n])}) for n in CLASSES if doc.truth.get(n) is not None}
                cases.append((want, extracted(page, raw)))
            report[label] = {"seed": args.seed, "receipts": len(cases), "by_threshold": tally(cases, thresholds)}
    report["load_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
