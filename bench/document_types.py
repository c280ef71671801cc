"""The prebuilt ``document_type`` classifier (receipt, invoice, contract): its shipped training
examples, and how it classifies real documents nobody here made, beside the lite tier given the
intake example's labels (the peer, in the same run).

    python bench/document_types.py --write        # the training examples the package ships
    python bench/document_types.py --receipts wildreceipt=wild.jsonl --receipts softmatic=soft.jsonl \\
        --invoices path/to/ZUGFeRD-corpus --repos path/to/repos --split dev [--peer-limit 20]

Training examples (``src/litegate/documents/prebuilt/document_type.jsonl.gz``): the text of
generated receipts and invoices (bench/prebuilt.py's generators: many layouts, shops, languages,
currencies, OCR noise; invoices also laid out as a PDF's text layer gives them) and of generated
contracts (``contract_text``: service, lease, employment, supply and non-disclosure agreements in
English and German, with parties, terms, fees and signatures). Nothing real is shipped.

Real documents scored (nothing downloaded; the text each became when read):
- receipts: ``--receipts NAME=DUMP`` takes the OCR text of bench/receipts.py ``--dump`` files
  (WildReceipt, softmatic), with their own dev/test split;
- invoices: bench/invoices.py's real ZUGFeRD / Factur-X PDFs (``--invoices``, ``--repos``), split by
  producer, laid out by their producers and the standard's renderings;
- contracts: generated with a seed the shipped examples do not use (no public set of contracts is
  at hand: this row only says contracts are not lost to the other two).

Prints one JSON object: per source and split, the share classified right and the mean confidence,
for the prebuilt classifier (nano) and, on the first ``--peer-limit`` documents of each source,
for lite with the intake example's labels.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
SHIPPED = ROOT / "src" / "litegate" / "documents" / "prebuilt" / "document_type.jsonl.gz"
PER_KIND = {"receipt": 320, "invoice": 240, "contract": 80}


def log(message: str) -> None:
    print(f"[document types {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


PARTIES = ["Orchid Facilities Ltd", "Granite Peak Software Inc.", "Harbor Lane Cleaning Co", "Saffron Catering Group",
           "Ironwood Security Services LLC", "Cobalt Data Systems", "Northwind Traders", "Blue Harbor Logistics",
           "Maple & Finch Bakery", "Kestrel Office Supply", "Müller Bau GmbH", "Schneider & Partner KG",
           "Alpenblick Hotel AG", "Jane Whitfield", "Rahul Mehta", "Lena Vogt", "Tomasz Nowak", "Sunrise Dental PC"]
KINDS = {
    "en": [("MASTER SERVICES AGREEMENT", "the Provider", "the Client", "services described in Schedule A"),
           ("RESIDENTIAL LEASE AGREEMENT", "the Landlord", "the Tenant", "the premises at {addr}"),
           ("EMPLOYMENT CONTRACT", "the Employer", "the Employee", "the position of {role}"),
           ("SUPPLY AGREEMENT", "the Supplier", "the Buyer", "the goods listed in Annex 1"),
           ("MUTUAL NON-DISCLOSURE AGREEMENT", "the Disclosing Party", "the Receiving Party",
            "confidential information exchanged for {purpose}")],
    "de": [("DIENSTLEISTUNGSVERTRAG", "der Auftragnehmer", "der Auftraggeber",
            "die in Anlage A beschriebenen Leistungen"),
           ("MIETVERTRAG", "der Vermieter", "der Mieter", "die Wohnung in {addr}"),
           ("ARBEITSVERTRAG", "der Arbeitgeber", "der Arbeitnehmer", "die Stelle als {role}")],
}
ROLES = ["Senior Accountant", "Warehouse Supervisor", "Software Engineer", "Sales Manager", "Buchhalterin"]
ADDRESSES = ["14 Elm Street, Springfield", "Hauptstraße 5, 10115 Berlin", "221 Harbour Road, Leeds LS1 4AB",
             "Via Roma 12, 20121 Milano"]
PURPOSES = ["a possible joint venture", "the evaluation of a software licence", "a merger discussion"]
EN_CLAUSES = [
    "{n}. Term. This Agreement begins on {start} and continues for {months} months; it renews automatically for "
    "successive one-year terms unless either party gives {notice} days written notice.",
    "{n}. Fees. {b} shall pay {fee} per month, invoiced monthly and payable within 30 days.",
    "{n}. Termination. Either party may terminate this Agreement for material breach not cured within 30 days.",
    "{n}. Confidentiality. Each party shall keep the other party's confidential information secret.",
    "{n}. Liability. Neither party is liable for indirect, incidental or consequential damages.",
    "{n}. Governing Law. This Agreement is governed by the laws of {law}.",
    "{n}. Entire Agreement. This Agreement is the entire agreement of the parties and supersedes all prior ones.",
    "{n}. Notices. Notices shall be given in writing to the addresses stated above.",
    "{n}. Deposit. {b} pays a security deposit of {fee} before the start of the term.",
    "{n}. Obligations. {a} shall perform its obligations with due care and in accordance with applicable law.",
]
DE_CLAUSES = [
    "§ {n} Vertragsdauer. Der Vertrag beginnt am {start} und läuft {months} Monate; er verlängert sich um jeweils "
    "ein Jahr, wenn er nicht mit einer Frist von {notice} Tagen gekündigt wird.",
    "§ {n} Vergütung. {b} zahlt monatlich {fee}, fällig innerhalb von 30 Tagen nach Rechnungsstellung.",
    "§ {n} Kündigung. Das Recht zur außerordentlichen Kündigung aus wichtigem Grund bleibt unberührt.",
    "§ {n} Vertraulichkeit. Die Parteien verpflichten sich, vertrauliche Informationen geheim zu halten.",
    "§ {n} Haftung. Die Haftung für leichte Fahrlässigkeit ist ausgeschlossen.",
    "§ {n} Schlussbestimmungen. Änderungen bedürfen der Schriftform. Gerichtsstand ist {law}.",
    "§ {n} Kaution. {b} leistet eine Kaution in Höhe von {fee}.",
]


def contract_text(rng: random.Random) -> str:
    """A contract's text as a PDF's text layer gives it: heading, parties, numbered clauses,
    signature lines."""
    lang = rng.choice(["en", "en", "en", "de"])
    title, role_a, role_b, subject = rng.choice(KINDS[lang])
    a, b = rng.sample(PARTIES, 2)
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    start = f"{d:02d}.{m:02d}.{y}" if lang == "de" else rng.choice([f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}"])
    fee = rng.randint(3, 900) * 10
    fee_text = f"{fee:,.2f} EUR".replace(",", "X").replace(".", ",").replace("X", ".") if lang == "de" \
        else rng.choice([f"${fee:,.2f}", f"£{fee:,.2f}", f"USD {fee:,.2f}"])
    values = {"start": start, "months": rng.choice([6, 12, 24, 36]), "notice": rng.choice([30, 60, 90]),
              "fee": fee_text, "law": rng.choice(["the State of New York", "England and Wales", "Delaware", "München",
                                                  "Berlin"]),
              "a": role_a[0].upper() + role_a[1:], "b": role_b[0].upper() + role_b[1:]}
    subject = subject.format(addr=rng.choice(ADDRESSES), role=rng.choice(ROLES), purpose=rng.choice(PURPOSES))
    lines = [title]
    if rng.random() < 0.5:
        prefix = rng.choice(["SA", "C", "LV", "AV"])
        lines.append(f"{'Nr.' if lang == 'de' else 'No.'} {prefix}-{y}-{rng.randint(10, 999)}")
    if lang == "de":
        lines += [f"zwischen {a}, nachfolgend {role_a},", f"und {b}, nachfolgend {role_b}.",
                  f"Gegenstand des Vertrages: {subject}."]
    else:
        lines += [f"This Agreement is made on {start} between {a} ({role_a}) and {b} ({role_b}).",
                  f"{values['a']} agrees to provide {subject}."]
    clauses = DE_CLAUSES if lang == "de" else EN_CLAUSES
    for n, clause in enumerate(rng.sample(clauses, rng.randint(3, min(7, len(clauses)))), start=1):
        lines.append(clause.format(n=n, **values))
    if lang == "de":
        lines += [f"Ort, Datum: ____________  {a}: ____________", f"Ort, Datum: ____________  {b}: ____________"]
    else:
        lines += ["IN WITNESS WHEREOF the parties have signed this Agreement.", f"Signed for {a}: ______________",
                  f"Signed for {b}: ______________", "Date: ____________"]
    return "\n".join(lines)


def training_examples(seed: int = 17) -> list[dict[str, str]]:
    import prebuilt as gen

    out = []
    for kind in ("receipt", "invoice"):
        for _, page in gen.generate(kind, PER_KIND[kind], seed=seed):
            out.append({"text": "\n".join(line.text for line in page.lines), "label": kind})
    rng = random.Random(seed)
    out += [{"text": contract_text(rng), "label": "contract"} for _ in range(PER_KIND["contract"])]
    return out


def real_documents(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(kind, source, text) of the real documents of ``args.split``, and held-out generated contracts."""
    docs: list[tuple[str, str, str]] = []
    for spec in args.receipts:
        name, dump = spec.split("=", 1)
        for line in Path(dump).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if args.split in ("all", row.get("split")):
                docs.append(("receipt", name, row["text"]))
    if args.invoices:
        from invoices import load
        from litegate.documents import Limits, Part, read

        for inv in load(args.invoices, args.repos):
            if args.split in ("all", inv.split):
                text = read(Part("application/pdf", inv.path.read_bytes(), inv.id), Limits()).text
                docs.append(("invoice", f"invoices-{inv.kind}", text))
    rng = random.Random(1000 + {"dev": 1, "test": 2}.get(args.split, 3))
    docs += [("contract", "contracts-generated", contract_text(rng)) for _ in range(args.contracts)]
    return docs


def intake_labels() -> dict[str, str]:
    """The labels the intake example gave lite before it used the prebuilt classifier."""
    return {"invoice": "a bill asking for payment of goods or services, with line items and a total due",
            "receipt": "proof that a payment was already made",
            "contract": "an agreement between parties with terms, obligations, a term or renewal, and signatures"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write the shipped training examples and stop")
    ap.add_argument("--receipts", action="append", default=[], metavar="NAME=DUMP")
    ap.add_argument("--invoices", type=Path, default=None, help="bench/invoices.py's --data")
    ap.add_argument("--repos", type=Path, default=None, help="bench/invoices.py's --repos")
    ap.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--contracts", type=int, default=20, help="generated contracts with an unshipped seed")
    ap.add_argument("--peer-limit", type=int, default=20, help="documents per source lite classifies (0: none)")
    args = ap.parse_args()
    if args.write:
        examples = training_examples()
        body = "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples).encode()
        with open(SHIPPED, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(body)  # no time in the header: the same examples give the same bytes
        print(json.dumps({"written": str(SHIPPED), "examples": len(examples), "bytes": SHIPPED.stat().st_size}))
        return
    from litegate.config import Settings
    from litegate.runtime import build

    docs = real_documents(args)
    out: dict[str, Any] = {"bench": "document_types", "split": args.split,
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()], "sources": {}}
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), record=False)
        t0 = time.perf_counter()
        rt.classifiers.get("document_type")
        out["first_use_seconds"] = round(time.perf_counter() - t0, 1)
        peers: dict[str, int] = {}
        for k, (kind, source, text) in enumerate(docs):
            row = out["sources"].setdefault(source, {"n": 0, "nano": [], "lite": []})
            row["n"] += 1
            r = rt.tasks.run("classify", {"text": text, "classifier": "document_type", "tier": "nano"})
            row["nano"].append((r["label"] == kind, r["confidence"], r["latency_ms"]))
            if peers.get(source, 0) < args.peer_limit:
                peers[source] = peers.get(source, 0) + 1
                r = rt.tasks.run("classify", {"text": text, "labels": intake_labels(), "tier": "lite"})
                row["lite"].append((r["label"] == kind, r["confidence"], r["latency_ms"]))
            if (k + 1) % 50 == 0:
                log(f"{k + 1}/{len(docs)}")
        rt.close()
    for row in out["sources"].values():
        for tier in ("nano", "lite"):
            got = row.pop(tier)
            if got:
                lat = sorted(x[2] for x in got)
                row[tier] = {"n": len(got), "right": round(sum(x[0] for x in got) / len(got), 3),
                             "confidence_mean": round(sum(x[1] for x in got) / len(got), 3),
                             "latency_ms_p50": round(lat[len(lat) // 2], 1)}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
