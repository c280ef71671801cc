"""Learning from review on CLINC150: does the nano tier get better with use, and does the review
queue's order (active learning) beat labeling random calls?

    python bench/learning.py [--intents 20] [--start 3] [--stream 1000] [--block 250] [--budget 75]

Protocol: a fixed random choice of intents (seed 0); a classifier trained with ``learn`` on
``--start`` examples per intent; a stream of unseen texts of those intents (their train and
val utterances, shuffled) sent one by one through the task runner on the nano tier, exactly as
``POST /v1/tasks/classify`` runs them (the calls land in the ledger and the examples table).
After each block a reviewer labels ``--budget`` calls with the gold intent through
``Learner.correct`` (what ``POST /v1/feedback`` does) and ``Learner.distill`` runs:

- active: the first ``--budget`` items of the review queue (``Learner.review``: smallest
  margin first, then least typical);
- random: ``--budget`` calls of the block chosen at random (same seed for every run).

Per block: accuracy on the intents' test split with the version active after the distill, and
the share of the block's served answers under 0.5 confidence. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from litegate.config import Settings
from litegate.configfile import Config
from litegate.runtime import build

DATA = Path(__file__).resolve().parents[1] / "src/litegate/evals/data/clinc150/data_full.json"


def load(intents: int, seed: int) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    data = json.loads(DATA.read_text())
    names = sorted({label for _, label in data["train"]})
    chosen = sorted(random.Random(seed).sample(names, intents))
    keep = set(chosen)
    return chosen, {split: [(t, lab) for t, lab in data[split] if lab in keep] for split in ("train", "val", "test")}


def run_arm(arm: str, args: argparse.Namespace, chosen: list[str], splits: dict, home: Path) -> dict:
    rng = random.Random(1)
    by_label: dict[str, list[str]] = {}
    for text, label in splits["train"]:
        by_label.setdefault(label, []).append(text)
    start = [{"text": t, "label": lab} for lab in chosen for t in by_label[lab][:args.start]]
    seen = {e["text"] for e in start}
    stream = [(t, lab) for t, lab in splits["train"] + splits["val"] if t not in seen]
    random.Random(2).shuffle(stream)
    stream = stream[:args.stream]
    test_texts = [t for t, _ in splits["test"]]
    test_gold = np.array([lab for _, lab in splits["test"]])

    rt = build(Settings(home=home), Config(), record=True)
    name = f"bench-{arm}"
    try:
        rt.classifiers.train(name, start, learn=True)
        encoder = rt.classifiers.encoder

        def accuracy() -> float:
            clf = rt.classifiers.get(name)
            probs, _ = clf.predict(test_texts, encoder)
            return float((np.array(clf.labels)[probs.argmax(axis=1)] == test_gold).mean())

        blocks = [{"block": 0, "test_accuracy": round(accuracy(), 4), "version": 1}]
        gold_of: dict[str, str] = {}
        for b in range(0, len(stream), args.block):
            chunk = stream[b:b + args.block]
            unsure, ids = 0, []
            t0 = time.perf_counter()
            for text, label in chunk:
                out = rt.tasks.run("classify", {"text": text, "classifier": name, "tier": "nano"})
                unsure += out["confidence"] < 0.5
                gold_of[out["id"]] = label
                ids.append(out["id"])
            serve_s = time.perf_counter() - t0
            rt.learner.flush()
            if arm == "active":
                queue = rt.learner.review("classifier", name, limit=args.budget, below=1.0)["data"]
                picked = [item["id"] for item in queue]
            else:
                picked = rng.sample(ids, min(args.budget, len(ids)))
            for call_id in picked:
                rt.learner.correct(call_id, {"label": gold_of[call_id]})
            t0 = time.perf_counter()
            result = rt.learner.distill("classifier", name)
            distill_s = time.perf_counter() - t0
            blocks.append({"block": b // args.block + 1, "items": len(chunk), "labeled": len(picked),
                           "unsure_share": round(unsure / len(chunk), 4),
                           "promoted": result["promoted"], "version": result["version"],
                           "held_back": result.get("held_back"), "candidate_score": result.get("candidate_score"),
                           "current_score": result.get("current_score"),
                           "test_accuracy": round(accuracy(), 4),
                           "serve_ms_per_item": round(1000 * serve_s / len(chunk), 1),
                           "distill_s": round(distill_s, 2)})
            print(f"{arm} block {blocks[-1]['block']}: {json.dumps(blocks[-1])}", file=sys.stderr)
        first, last = blocks[1]["unsure_share"], blocks[-1]["unsure_share"]
        return {"blocks": blocks, "final_test_accuracy": blocks[-1]["test_accuracy"],
                "unsure_first_block": first, "unsure_last_block": last,
                "unsure_halved": last <= first / 2}
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--intents", type=int, default=20)
    ap.add_argument("--start", type=int, default=3)
    ap.add_argument("--stream", type=int, default=1000)
    ap.add_argument("--block", type=int, default=250)
    ap.add_argument("--budget", type=int, default=75)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", default="active,random")
    args = ap.parse_args()
    chosen, splits = load(args.intents, args.seed)
    out: dict = {"bench": "learning", "dataset": "clinc150", "intents": chosen, "start_per_intent": args.start,
                 "stream": args.stream, "block": args.block, "budget_per_block": args.budget,
                 "test_items": len(splits["test"]), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    for arm in args.arms.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out[arm] = run_arm(arm, args, chosen, splits, Path(tmp))
    if "active" in out and "random" in out:
        out["active_minus_random_accuracy"] = round(out["active"]["final_test_accuracy"]
                                                    - out["random"]["final_test_accuracy"], 4)
    out["targets"] = {"final_accuracy_at_least_0.90": out.get("active", {}).get("final_test_accuracy", 0) >= 0.90,
                      "unsure_share_halved": out.get("active", {}).get("unsure_halved", False)}
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
