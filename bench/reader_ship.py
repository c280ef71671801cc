"""Writes a reader saved by bench/reader_pilot.py --save as the package ships it
(src/litegate/nano/reader.npz): its tuned layers and head, the frozen lower layers being the
installed encoder's; each tuned matrix in 8 bits, or with --rank as its difference from the
encoder's in two rank-R factors (8 bits each). Checks that the lower layers saved are the
encoder's own and that the written file reads back; prints its size, sha256 and how far the
read-back matrices are from the saved ones (JSON).

    python bench/reader_ship.py /tmp/reader-top2.npz --tuned-layers 2 --examples 20000
    python bench/reader_ship.py /tmp/reader.npz --tuned-layers 6 --rank 64 --examples 10344
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.reader import FILE, ReaderWeights
from litegate.nano.tuned import MATRICES, NAMES, TunedLayers
from litegate.packages import file_sha256

OUT = Path(__file__).resolve().parent.parent / "src" / "litegate" / "nano" / FILE


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("saved", type=Path, help="a reader written by bench/reader_pilot.py --save")
    ap.add_argument("--tuned-layers", type=int, required=True, help="how many top layers it tuned")
    ap.add_argument("--examples", type=int, help="training examples seen (recorded with the weights)")
    ap.add_argument("--rank", type=int, help="store each tuned matrix as the encoder's plus a rank-R difference")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    encoder = MiniLMEncoder(runtime="numpy")
    if not 1 <= args.tuned_layers <= encoder.layers:
        sys.exit(f"--tuned-layers must be 1 to {encoder.layers}")
    if args.rank is not None and not 1 <= args.rank <= encoder.dim:
        sys.exit(f"--rank must be 1 to {encoder.dim}")
    frozen = encoder.layers - args.tuned_layers
    try:
        with np.load(args.saved) as z:
            layers = [tuple(np.array(z[f"l{i}_{j}"], np.float32) for j in range(len(NAMES)))
                      for i in range(encoder.layers)]
            head_w, head_b = np.array(z["head_w"], np.float32), np.array(z["head_b"], np.float32)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{args.saved} is not a reader saved by bench/reader_pilot.py --save: {e}")
    for i in range(frozen):  # the layers left out must be the ones the installed encoder serves
        if not all(np.array_equal(a, b) for a, b in zip(layers[i], encoder._layers[i])):
            sys.exit(f"layer {i} of {args.saved} differs from the encoder's: it was tuned, not {args.tuned_layers}")
    settings = {"max_tokens": 256, "stride": 128, "examples": args.examples,
                "data": "SQuAD 1.1 train and the first ten articles of SQuAD 2.0 train (CC BY-SA 4.0)"}
    if args.rank is not None:
        settings["rank"] = args.rank
    weights = ReaderWeights(TunedLayers(encoder.name, encoder.layers, layers[frozen:], settings), head_w, head_b,
                            args.rank)
    weights.save(args.out, encoder._layers[frozen:])
    back = ReaderWeights.load(args.out, encoder._layers)
    changes = [(float(np.linalg.norm(a - b)), float(np.linalg.norm(b - base)))
               for la, lb, lbase in zip(back.tuned.layers, layers[frozen:], encoder._layers[frozen:])
               for j, (a, b, base) in enumerate(zip(la, lb, lbase)) if j in MATRICES]
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, "sha256": file_sha256(args.out),
                      "tuned_layers": args.tuned_layers, "rank": args.rank,
                      "stored_error_over_tuning_change": round(float(np.mean([e / max(c, 1e-12)
                                                                                for e, c in changes])), 3)},
                     indent=1))


if __name__ == "__main__":
    main()
