"""Few-shot intent classification with examples written by an LLM tier (the lever of ICDA, the
best 10-shot anchor issue 32 names): for each label of a 10-shot draw, a tier is shown the
label's name and its examples and asked for new requests with the same intent; the nano
classifier is then trained on the examples alone (the peer, in the same run) and on the
examples with the written ones, unfiltered or filtered.

    python bench/nano_augment.py --set hwu64 --hwu DIR --tier pro --seeds 0,1,2 --encoders accurate,fast
    python bench/nano_augment.py --set clinc150 --tier lite --seeds 0 --per-label 10

Filters (each a row): ``all`` (every written request), ``agree`` (those the classifier trained
on the examples alone assigns to their label), ``agree-unsure`` (of those, the ones it gives
under 0.9: the informative ones), ``agree-half`` (every other agreed one), ``centroid`` (those
nearer their label's mean example vector than any other label's: the ambiguity check of
DDAIR). The written requests are kept in ``--cache`` (one JSON line per label and draw), so a
second run only trains and scores. Sets as in bench/nano.py, scored on every test item. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.nano.classifier import NanoClassifier
from litegate.nano.encoders import KINDS, EncoderRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nano  # noqa: E402 - the sibling bench script: sets, vector caches, scoring

PROMPT = ("Here are requests people said to a virtual assistant, all with the intent \"{label}\":\n{examples}\n\n"
          "Write {n} new, different requests with exactly this intent, one per line, starting with \"- \". "
          "Vary the wording and the details.")
FILTERS = ("all", "agree", "agree-unsure", "agree-half", "centroid")


def written_lines(text: str, have: set[str]) -> list[str]:
    """The requests of a tier's answer: one per line, list marks and quotes taken off, none that
    repeats an example or another line (case aside), none empty or over 200 characters."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip('"').strip()
        if 3 <= len(line) <= 200 and line.lower() not in have:
            have.add(line.lower())
            out.append(line)
    return out


def write(tier: str, draw: list[dict[str, Any]], path: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """The written requests of one draw, from ``path`` where a label was already asked."""
    by: dict[str, list[str]] = {}
    for it in draw:
        by.setdefault(it["label"], []).append(it["text"])
    done = {r["label"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}
    missing = [label for label in sorted(by) if label not in done]
    if missing:
        from litegate import Litegate

        with Litegate() as lg:
            for k, label in enumerate(missing, 1):
                examples = "\n".join(f"- {t}" for t in by[label])
                prompt = PROMPT.format(label=label.replace("_", " "), examples=examples, n=n)
                started = time.perf_counter()
                reply = lg.chat(prompt, model=tier, max_tokens=30 * n, temperature=0.8, seed=seed)
                text = reply["choices"][0]["message"]["content"]
                row = {"label": label, "texts": written_lines(text, {t.lower() for t in by[label]}),
                       "seconds": round(time.perf_counter() - started, 1)}
                with path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done[label] = row
                nano.log(f"{path.stem}: {k}/{len(missing)} labels written ({label}: {len(row['texts'])})")
    return [{"text": t, "label": label} for label in sorted(by) for t in done[label]["texts"]]


def filtered(kind: str, draw: list[dict[str, Any]], written: list[dict[str, Any]], encoder: Any,
             clf: NanoClassifier | None) -> list[dict[str, Any]]:
    """The written requests ``kind`` keeps; ``clf``, the classifier of the draw alone, is read by
    the ``agree`` filters only."""
    if kind == "all" or not written:
        return written
    texts = [it["text"] for it in written]
    if kind == "centroid":
        base = encoder.encode([it["text"] for it in draw])
        vecs = encoder.encode(texts)
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        labels = sorted({it["label"] for it in draw})
        gold = np.array([it["label"] for it in draw])
        centres = np.stack([base[gold == label].mean(0) for label in labels])
        nearest = (vecs @ (centres / np.linalg.norm(centres, axis=1, keepdims=True)).T).argmax(1)
        return [it for it, k in zip(written, nearest) if labels[k] == it["label"]]
    assert clf is not None, f"the {kind} filter reads the classifier of the examples alone"
    probs, _ = clf.predict(texts, encoder)
    top = np.array(clf.labels)[probs.argmax(1)]
    own = probs[np.arange(len(written)), [clf.labels.index(it["label"]) for it in written]]
    agreed = [i for i, it in enumerate(written) if top[i] == it["label"]]
    if kind == "agree-unsure":
        agreed = [i for i in agreed if own[i] < 0.9]
    elif kind == "agree-half":
        agreed = agreed[::2]
    return [written[i] for i in agreed]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="hwu64", choices=["hwu64", "clinc150", "nlupp", "xsid"])
    ap.add_argument("--hwu", type=Path, help="HWU64's CrossValidation folder (set hwu64)")
    ap.add_argument("--xsid", type=Path, help="xSID's folder (set xsid: its English files)")
    ap.add_argument("--tier", default="pro", help="the LLM tier that writes (lite, pro, or a configured one)")
    ap.add_argument("--per-label", type=int, default=10, help="new requests asked for per label")
    ap.add_argument("--seeds", default="0", help="10-shot draws, as bench/nano.py's --seeds")
    ap.add_argument("--encoders", default="accurate,fast")
    ap.add_argument("--filters", default=",".join(FILTERS))
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "litegate-nano-augment")
    args = ap.parse_args()
    filters = [f for f in args.filters.split(",") if f]
    if unknown := [f for f in filters if f not in FILTERS]:
        raise SystemExit(f"unknown --filters {', '.join(unknown)}; known: {', '.join(FILTERS)}")
    if args.set == "hwu64" and args.hwu is None:
        raise SystemExit("--set hwu64 needs --hwu DIR (HWU64's CrossValidation folder)")
    if args.per_label < 1:
        raise SystemExit("--per-label must be at least 1")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    sets = nano.load_sets([args.set], 0, args.xsid, seeds=seeds, hwu=args.hwu)
    name = {"nlupp": "nlupp-banking-intents", "xsid": "xsid-en"}.get(args.set, args.set)
    data = sets.get(name)
    if data is None:
        raise SystemExit(f"set {args.set} could not be read (its folder?)")
    args.cache.mkdir(parents=True, exist_ok=True)
    written = {s: write(args.tier, data[nano.draw_name(s)],
                        args.cache / f"{name}-{args.tier}-n{args.per_label}-s{s}.jsonl", args.per_label, s)
               for s in seeds}
    registry = EncoderRegistry(Settings().model_cache_dir())
    out: dict[str, Any] = {"bench": "nano_augment", "set": name, "tier": args.tier, "per_label": args.per_label,
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()], "rows": {}}
    for key in args.encoders.split(","):
        reading = KINDS[key].reading
        cache = nano.VectorCache(args.cache / f"vectors-{key}.npz", lambda k=key: registry.get(k), reading)
        draws = [data[nano.draw_name(s)] for s in seeds]
        cache.fill([it["text"] for it in data["test"]] + [it["text"] for d in draws for it in d]
                   + [it["text"] for s in seeds for it in written[s]] + [t for d in draws for t in nano.name_texts(d)])
        encoder = nano.CachedEncoder(KINDS[key].model, cache)
        for s, draw in zip(seeds, draws):
            row: dict[str, Any] = {"written": len(written[s]), "base": nano.score(draw, data["test"], encoder)}
            # the classifier of the examples alone, for the filters that ask it (the base row trained its twin)
            clf = NanoClassifier.train("bench", draw, encoder, vector_layers=reading) \
                if any(kind.startswith("agree") for kind in filters) else None
            for kind in filters:
                extra = filtered(kind, draw, written[s], encoder, clf)
                row[kind] = {**nano.score(draw + extra, data["test"], encoder), "added": len(extra)}
            out["rows"][f"{key}/{nano.draw_name(s)}"] = row
            nano.log(f"{key} seed {s}: " + json.dumps({k: v["nano"]["accuracy"] for k, v in row.items()
                                                      if isinstance(v, dict)}))
        means = {}
        for kind in ["base", *filters]:
            accs = [out["rows"][f"{key}/{nano.draw_name(s)}"][kind]["nano"]["accuracy"] for s in seeds]
            means[kind] = round(float(np.mean(accs)), 4)
        out["rows"][f"{key}/mean"] = means
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
