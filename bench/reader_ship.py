"""Writes a reader saved by bench/reader_pilot.py --save as the package ships it
(src/litegate/nano/reader.npz): only its tuned top layers, their matrices in 8 bits, and the
head; the frozen lower layers are the installed encoder's. Checks that the lower layers saved
are the encoder's own, that the written file reads back, and prints its size and sha256 (JSON).

    python bench/reader_ship.py /tmp/reader-top2.npz --tuned-layers 2 --examples 20000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.reader import FILE, ReaderWeights
from litegate.nano.tuned import NAMES, TunedLayers
from litegate.packages import file_sha256

OUT = Path(__file__).resolve().parent.parent / "src" / "litegate" / "nano" / FILE


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("saved", type=Path, help="a reader written by bench/reader_pilot.py --save")
    ap.add_argument("--tuned-layers", type=int, required=True, help="how many top layers it tuned")
    ap.add_argument("--examples", type=int, help="training examples seen (recorded with the weights)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    encoder = MiniLMEncoder(runtime="numpy")
    if not 1 <= args.tuned_layers <= encoder.layers:
        sys.exit(f"--tuned-layers must be 1 to {encoder.layers}")
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
    weights = ReaderWeights(TunedLayers(encoder.name, encoder.layers, layers[frozen:], settings), head_w, head_b)
    weights.save(args.out)
    back = ReaderWeights.load(args.out)
    worst = max(float(np.abs(a - b).max()) for la, lb in zip(back.tuned.layers, layers[frozen:])
                for a, b in zip(la, lb))
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, "sha256": file_sha256(args.out),
                      "tuned_layers": args.tuned_layers, "largest_8bit_change": round(worst, 5)}, indent=1))


if __name__ == "__main__":
    main()
