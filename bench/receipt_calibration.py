"""Fit the prebuilt receipt extractor's confidence calibration on the dev split of real
receipts: per field, sigmoid(a * logit(p) + b) from the scorer's raw confidence to how often
its answer is right, written to src/litegate/documents/prebuilt/receipt.calibration.json.

    python bench/receipt_calibration.py --dump wildreceipt=wild.jsonl:path/to/wildreceipt \\
        --dump softmatic=soft.jsonl:path/to/vision-data

Each ``--dump`` is a set's OCR dump from ``bench/receipts.py --dump`` and the set's folder (for
its labels). Only ``dev`` receipts are used: the test split stays held out. The scorer was
trained on generated documents only; on real scans it is overconfident for some fields
(addresses) and underconfident for others (dates), which a per-field map of two numbers
corrects without changing any answer. The file records the sha1 of the weights it was fitted
to: after ``bench/prebuilt.py`` retrains them it is ignored until refitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from litegate.documents import prebuilt
from litegate.documents.prebuilt import model

sys.path.insert(0, str(Path(__file__).parent))
from receipts import LOADERS, _from_dump, field_right  # noqa: E402  (a sibling bench script)

FIELDS = ("merchant_name", "merchant_address", "date", "total")
PRIOR = 1.0  # pull toward the identity map (a=1, b=0): a few dozen receipts per field are few


def observations(set_name: str, dump: Path, data: Path) -> dict[str, list[tuple[float, int]]]:
    """Per field, (raw confidence, 1 if the answer is right) on the set's dev receipts."""
    dumped = {r["id"]: r for r in map(json.loads, dump.read_text().splitlines())}
    scorers = prebuilt._weights("receipt")["scorers"]
    raw = {f: model.FieldScorer(s.weights, s.bias, s.threshold) for f, s in scorers.items()}
    out: dict[str, list[tuple[float, int]]] = {f: [] for f in FIELDS}
    for s in LOADERS[set_name](data):
        if s.split != "dev" or s.id not in dumped:
            continue
        found = prebuilt.extract("receipt", _from_dump(dumped[s.id]), list(FIELDS), scorers=raw)["fields"]
        for f in FIELDS:
            if f in s.fields:
                right = field_right(f, s.fields[f], found[f]["value"], set_name == "wildreceipt")
                out[f].append((found[f]["confidence"], int(right)))
    return out


def fit(points: list[tuple[float, int]]) -> tuple[float, float]:
    """a, b minimising the log loss plus PRIOR * ((a-1)^2 + b^2) / 2 (logits clipped to +-12:
    a raw 1.0 says no more than a raw 0.999994)."""
    import numpy as np
    from scipy.optimize import minimize

    p = np.clip(np.array([q for q, _ in points]), 1e-6, 1 - 1e-6)
    x = np.clip(np.log(p / (1 - p)), -12, 12)
    y = np.array([r for _, r in points], dtype=float)

    def loss(theta: Any) -> float:
        z = theta[0] * x + theta[1]
        nll = np.sum(np.logaddexp(0, z) - y * z)
        return float(nll + 0.5 * PRIOR * ((theta[0] - 1) ** 2 + theta[1] ** 2))

    a, b = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(0.05, 5.0), (-10.0, 10.0)]).x
    return float(a), float(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", action="append", required=True, metavar="SET=DUMP:DATA")
    args = ap.parse_args()
    points: dict[str, list[tuple[float, int]]] = {f: [] for f in FIELDS}
    for spec in args.dump:
        set_name, rest = spec.split("=", 1)
        dump, data = rest.split(":", 1)
        for f, obs in observations(set_name, Path(dump), Path(data)).items():
            points[f].extend(obs)
    fields: dict[str, Any] = {}
    for f, obs in points.items():
        a, b = fit(obs)
        fields[f] = {"a": round(a, 4), "b": round(b, 4), "receipts": len(obs),
                     "right": round(sum(y for _, y in obs) / max(len(obs), 1), 3)}
    weights = prebuilt.HERE / "receipt.json"
    out = {"fitted_on": "the dev split of " + ", ".join(s.split("=")[0] for s in args.dump) +
                        " (bench/receipt_calibration.py)", "weights_sha1": model.weights_sha1(weights),
           "fields": fields}
    (prebuilt.HERE / "receipt.calibration.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
