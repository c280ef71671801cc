"""Averages readers saved by bench/reader_pilot.py --save, weight by weight, into one saved the
same way (for bench/reader_choice.py --reader and bench/reader_ship.py). Readers trained on
different rows from the same reader (``--init`` with one seed and different ``--skip``) sit in
one basin, so their mean reads what each learned, at one reader's cost when served.

    python bench/reader_average.py /tmp/reader-e.npz /tmp/reader-f.npz --out /tmp/reader-ef.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("saved", type=Path, nargs="+", help="readers written by bench/reader_pilot.py --save")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if len(args.saved) < 2:
        sys.exit("give two readers or more")
    arrays: list[dict[str, np.ndarray]] = []
    for path in args.saved:
        try:
            with np.load(path) as z:
                arrays.append({k: np.array(z[k], np.float64) for k in z.files})
        except (OSError, ValueError) as e:
            sys.exit(f"{path}: not a saved reader: {e}")
    keys = set(arrays[0])
    if "head_w" not in keys or any(set(a) != keys for a in arrays):
        sys.exit("the readers must be saved by bench/reader_pilot.py --save, with the same layers")
    if any(a[k].shape != arrays[0][k].shape for a in arrays for k in keys):
        sys.exit("the readers' weights differ in shape")
    mean = {k: (sum(a[k] for a in arrays) / len(arrays)).astype(np.float32) for k in sorted(keys)}
    np.savez(args.out, **mean)  # type: ignore[arg-type]
    apart = [float(np.linalg.norm(arrays[0][k] - arrays[1][k]) / max(np.linalg.norm(arrays[0][k]), 1e-12))
             for k in keys if k.startswith("l")]
    print(json.dumps({"out": str(args.out), "readers": [str(p) for p in args.saved],
                      "relative_distance_first_two_mean": round(float(np.mean(apart)), 5)}, indent=1))


if __name__ == "__main__":
    main()
