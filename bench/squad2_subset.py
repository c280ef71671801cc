"""Builds the SQuAD-2-style answer set of bench/answers.py from SQuAD 2.0's TRAIN file (never its
dev set): the two train articles that hold unanswerable questions, one for tuning, one for
testing, with every paragraph of both as the collection. Writes bench/data/squad2_*.jsonl.

    python bench/squad2_subset.py --source /path/to/train-v2.0.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
# the split follows the article, so no paragraph is seen by both
SPLITS = {"tune": "The_Legend_of_Zelda:_Twilight_Princess", "test": "Spectre_(2015_film)"}


def questions(article: dict[str, Any], per_kind: int, seed: int) -> list[dict[str, Any]]:
    """``per_kind`` answerable and ``per_kind`` unanswerable questions, drawn at random."""
    rng = random.Random(seed)
    qas = [(i, q) for i, p in enumerate(article["paragraphs"]) for q in p["qas"]]
    answerable = [x for x in qas if not x[1]["is_impossible"]]
    impossible = [x for x in qas if x[1]["is_impossible"]]
    picked = rng.sample(answerable, per_kind) + rng.sample(impossible, per_kind)
    rng.shuffle(picked)
    return [{"id": q["id"], "question": q["question"],
             "answers": list(dict.fromkeys(a["text"] for a in q["answers"])),
             "paragraph": f"{article['title']}#{i}"} for i, q in picked]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="SQuAD 2.0 train-v2.0.json (not dev)")
    ap.add_argument("--per-kind", type=int, default=75, help="answerable (and unanswerable) questions per split")
    args = ap.parse_args()
    articles = {a["title"]: a for a in json.loads(args.source.read_text(encoding="utf-8"))["data"]}
    with (DATA / "squad2_paragraphs.jsonl").open("w", encoding="utf-8") as out:
        for title in SPLITS.values():
            for i, p in enumerate(articles[title]["paragraphs"]):
                out.write(json.dumps({"source": f"{title}#{i}", "text": p["context"]}, ensure_ascii=False) + "\n")
    for seed, (split, title) in enumerate(SPLITS.items()):
        with (DATA / f"squad2_{split}.jsonl").open("w", encoding="utf-8") as out:
            for q in questions(articles[title], args.per_kind, seed):
                out.write(json.dumps(q, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
