"""Train the prebuilt ``invoice`` extractor on generated invoices and on the dev split of real
ones (bench/invoices.py's laid-out pages), and choose how much the real pages count by
cross-validation over their producers.

    # how much real pages should count: one fold per producer (leave one producer's pages out,
    # train on the generated invoices and the other producers' pages, score the ones left out)
    python bench/invoice_real.py --data path/to/ZUGFeRD-corpus --repos path/to/repos --weights 0,10,30,100
    # the shipped weights: generated + every real dev page at the chosen weight
    python bench/invoice_real.py --data ... --repos ... --weights 30 --write

Only ``dev`` pages laid out by invoicing software are read (the renderings are one stylesheet's
view, and the test split stays held out). The generated invoices are bench/prebuilt.py's
(``--invoices``, ``--seed``, ``--c``), so ``--weights 0`` is exactly its weights. A real page adds
rows for a field its data gives when some candidate holds the right value (bench/invoices.py's
test of a right answer); its candidates are those extraction would choose among with the right
answers of the other fields standing for the chosen ones (the vendor's lines are not its address
or the customer, the customer's block is not the vendor's address, the invoice's date is not its
due date). Folds are producers, so the cross-validated figure is what a layout not trained on
gets. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import prebuilt as gen
from litegate.documents import Limits, Part, fieldtypes, read
from litegate.documents import prebuilt as pb
from litegate.documents.prebuilt import model

sys.path.insert(0, str(Path(__file__).parent))
from invoices import FIELDS, _as_answer, field_right, load  # noqa: E402  (sibling bench script)
from receipt_real import weight_list  # noqa: E402

TRAINED = tuple(f for f, s in pb.INVOICE.items() if s.source != "currency")


class Real:
    """One real dev invoice: its producer, the data's fields and its page of lines."""

    def __init__(self, invoice: Any):
        self.id, self.producer, self.truth = invoice.id, invoice.producer, invoice.truth
        doc = read(Part("application/pdf", invoice.path.read_bytes(), invoice.id), Limits())
        self.page = pb.page_of(doc)
        self.currency = fieldtypes.currency_of("\n".join(line.text for line in self.page.lines))

    def right(self, field: str, typed: Any) -> bool:
        return field_right(field, self.truth[field], _as_answer(typed))


def load_real(data: Path, repos: Path | None) -> list[Real]:
    return [Real(i) for i in load(data, repos) if i.split == "dev" and i.kind == "layout"]


def real_rows(invoices: list[Real], field: str) -> list[tuple[dict[str, float], int]]:
    rows: list[tuple[dict[str, float], int]] = []
    for r in invoices:
        if field not in r.truth:
            continue
        pool = _pool(r, field)
        labels = [int(r.right(field, c.value)) for c in pool]
        if any(labels):
            rows.extend((c.features, y) for c, y in zip(pool, labels))
    return rows


def _pool(r: Real, field: str) -> list[Any]:
    """The field's candidates as extraction leaves them (``_left_over``), the right answers of the
    fields answered before it standing for the chosen ones."""
    source = pb.INVOICE[field].source
    pool = pb.candidates_for(r.page, source, r.currency, "invoice")
    vendors = [c for c in pb.candidates_for(r.page, "names", r.currency, "invoice")
               if "vendor" in r.truth and r.right("vendor", c.value)]
    taken_lines = {i for c in vendors for i in c.indices()}
    taken_names = {pb.cands.squash(str(c.value.value)) for c in vendors}
    out: dict[str, dict[str, Any]] = {}
    if "invoice_date" in r.truth:
        out["invoice_date"] = {"value": r.truth["invoice_date"].isoformat()}
    customers = [c for c in pb.candidates_for(r.page, "party", r.currency, "invoice")
                 if "customer" in r.truth and r.right("customer", c.value)]
    if customers:
        out["customer"] = {"line": customers[0].line}
    return pb._left_over(field, source, pool, r.page, out, taken_lines, taken_names)


def generated_rows(count: int, seed: int, cache: Path | None) -> dict[str, list[tuple[dict[str, float], int]]]:
    if cache and cache.is_file():
        return pickle.loads(cache.read_bytes())
    rows = gen.rows_for("invoice", gen.generate("invoice", count, seed))
    if cache:
        cache.write_bytes(pickle.dumps(rows))
    return rows


def train(generated: dict[str, list], real: list[Real], weight: float, c: float) -> dict[str, model.FieldScorer]:
    scorers = {}
    for field in TRAINED:
        rows = generated[field]
        extra = real_rows(real, field) if weight > 0 else []
        threshold = gen.answer_threshold("invoice", field)
        weights = [1.0] * len(rows) + [weight] * len(extra) if extra else None
        scorers[field] = model.fit(rows + extra, c=c, threshold=threshold, sample_weights=weights)
    return scorers


def score(invoices: list[Real], scorers: dict[str, model.FieldScorer]) -> list[dict[str, Any]]:
    out = []
    for r in invoices:
        found = pb.extract("invoice", r.page, scorers=scorers)["fields"]
        out.append({"id": r.id, "producer": r.producer,
                    **{f: int(field_right(f, r.truth[f], found[f])) for f in FIELDS if f in r.truth}})
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    acc = {}
    for f in FIELDS:
        hits = [r[f] for r in rows if f in r]
        if hits:
            acc[f] = round(sum(hits) / len(hits), 3)
    return {"pages": len(rows), "fields_right": acc, "fields_mean": round(sum(acc.values()) / len(acc), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a local copy of github.com/ZUGFeRD/corpus")
    ap.add_argument("--repos", type=Path, help="copies of the repositories bench/invoices.py's REPO_FAMILIES names")
    ap.add_argument("--weights", default="0,10,30,100", help="how much a real page's row counts against a generated "
                                                             "one's (comma-separated: each is cross-validated)")
    ap.add_argument("--invoices", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--c", type=float, default=0.1)
    ap.add_argument("--cache", type=Path, help="keep the generated invoices' rows here (they take minutes)")
    ap.add_argument("--write", action="store_true", help="train on every real dev page at the (one) weight given "
                                                         "and write invoice.json")
    args = ap.parse_args()
    weights = weight_list(args.weights)
    if args.write and len(weights) != 1:
        raise SystemExit("--write takes one weight: --weights W")
    real = load_real(args.data, args.repos)
    if not real:
        raise SystemExit(f"no laid-out dev invoices under {args.data}")
    producers = sorted({r.producer for r in real})
    generated = generated_rows(args.invoices, args.seed, args.cache)
    print(f"{len(real)} real dev pages from {len(producers)} producers; generated rows: "
          f"{sum(map(len, generated.values()))}", file=sys.stderr)
    report: dict[str, Any] = {"real_pages": len(real), "producers": {p: sum(r.producer == p for r in real)
                                                                     for p in producers},
                              "real_rows": {f: len(real_rows(real, f)) for f in TRAINED}, "cv": {}}
    for w in weights:
        fixed = train(generated, [], 0.0, args.c) if w == 0 else None
        rows = []
        for p in producers:  # leave one producer out
            scorers = fixed or train(generated, [r for r in real if r.producer != p], w, args.c)
            rows += score([r for r in real if r.producer == p], scorers)
        report["cv"][f"{w:g}"] = {**summary(rows), "per_producer": {
            p: summary([x for x in rows if x["producer"] == p])["fields_mean"] for p in producers}}
        print(json.dumps({f"{w:g}": report["cv"][f"{w:g}"]}), file=sys.stderr)
    if args.write:
        w = weights[0]
        scorers = train(generated, real, w, args.c)
        out = {"name": "invoice", "version": 1, "fields": {f: s.as_json() for f, s in scorers.items()},
               "trained_on": f"{args.invoices} generated invoices (bench/prebuilt.py, seed {args.seed}) and the dev "
                             f"split of real invoices (bench/invoices.py: {len(real)} laid-out pages of "
                             f"{len(producers)} producers, rows weighted {w:g}; bench/invoice_real.py)"}
        path = pb.HERE / "invoice.json"
        path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        report["written"] = str(path)
        report["fit_on_dev"] = summary(score(real, scorers))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
