"""Invoices made elsewhere through the document layer and the prebuilt ``invoice`` extractor,
scored against the structured data each PDF carries.

    python bench/invoices.py --data path/to/ZUGFeRD-corpus [--repos path/to/repos] [--split dev|test|all]
        [--rows out.jsonl]

The set: the PDFs of github.com/ZUGFeRD/corpus (Apache-2.0) that validate ("correct" folders),
and with ``--repos`` those of the test files of e-invoicing libraries REPO_FAMILIES names.
Each is a ZUGFeRD / Factur-X invoice: a PDF with the invoice's data embedded as XML (seller,
addresses, number, dates, amounts), which gives every field's right value without labeling by
hand. Two kinds of page are kept apart:

- ``layout``: invoices laid out by invoicing software as a customer receives them (the ZUGFeRD
  1.0 information package's examples, the French FNFE examples, Mustang's GnuAccounting
  invoices, the Factur-X example generator's, factur-x-kit's pages, and single examples of
  other producers, listed with the split below);
- ``rendering``: the 2.x examples whose PDF page is the standard's generic stylesheet view of
  the XML ("Verkäufer: ... Käufer: ..."), one layout for every invoice.

The same invoice printed by several producers is kept once (by seller, number and total). Split: by
producer family, so no layout is in both: ``dev`` (ZUGFeRD 1.0 package, Konik, 4s4u, the
renderings of the 2.0 package, and from ``--repos`` the Factur-X example generator's invoices
and two single producers) was looked at while working; ``test`` (FNFE, Mustang, gpFacturX, the
renderings of the 2.1 and 2.2 packages, and from ``--repos`` factur-x-kit's own pages and
single invoices of PDFlib, weclapp, Securibox's hotel, obwyse ZUGFeRD-Tools,
tulo.eInvoiceCreatorZUGFeRD, facturx-php's FPDF invoice, a ReportLab page of facturx-cas-limites
and audrenbdb/facturx) was not.

A field is right when: names and addresses equal the data ignoring case, spacing, punctuation
and a leading salutation (Herrn, Mr, Madame; an address is street, postcode and city, the
country may be printed or not);
numbers equal as strings of letters and digits; dates as dates; amounts to the cent; the
currency as its ISO code. Fields the XML leaves empty are not scored. PDFs are read by their
text layer (no OCR). Each wrong field says where it comes from (``wrong_from``: ``page``,
``candidates`` or ``choice``, counted per group). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from litegate.documents import Limits, Part, fieldtypes, read
from litegate.documents.fieldtypes import parse_date
from litegate.documents.prebuilt import INVOICE, candidates_for, extract_document, page_of

# producer folder -> (kind of page, split)
FAMILIES = {
    "ZUGFeRDv1/correct/Intarsys": ("layout", "dev"),
    "ZUGFeRDv1/correct/Konik": ("layout", "dev"),
    "ZUGFeRDv1/correct/4s4u": ("layout", "dev"),
    "ZUGFeRDv1/correct/Mustangproject": ("layout", "test"),
    "ZUGFeRDv2/correct/Mustangproject": ("layout", "test"),
    "ZUGFeRDv2/correct/FNFE-factur-x-examples": ("layout", "test"),
    "ZUGFeRDv2/correct/PHP_@gpFacturX": ("layout", "test"),
    "ZUGFeRDv2/correct/intarsys": ("rendering", "dev"),
    "ZUGFeRDv2/correct/symtrax": ("rendering", "test"),
    "XML-Rechnung/FX": ("rendering", "test"),
}
# Invoices of other producers in the test files of e-invoicing libraries (``--repos``: a folder
# holding copies of these repositories as owner+name/): repository, path in it (a file, a folder, or
# a glob pattern when one producer's pages share a folder with others) -> (kind, split).
# One layout (the Factur-X specification's example generator, "LE FOURNISSEUR") recurs in
# several libraries: it is one producer, kept to PER_PRODUCER invoices so it cannot carry the mean.
REPO_FAMILIES = {
    ("FacturX-NET/FacturXDotNet", "src/Tests.FacturXDotNet/TestFiles/FacturX/3.EN16931"): ("layout", "dev"),
    ("ZUGFeRD/mustangproject", "library/src/test/resources/ZTESTZUGFERD_1_INVDSS_012015738820PDF-1.pdf"):
        ("layout", "dev"),
    ("ZUGFeRD/mustangproject", "validator/src/test/resources/103767-Invoice-2026-03-24-1.pdf"): ("layout", "dev"),
    ("ZUGFeRD/mustangproject", "library/src/test/resources/MustangBeispiel20221026.pdf"): ("layout", "test"),
    ("ZUGFeRD/mustangproject", "library/src/test/resources/zugferd_invoice.pdf"): ("layout", "test"),
    ("Securibox/facturx", "Securibox.FacturX.Tests/Invoices/Custom"): ("layout", "test"),
    # factur-x-kit's own pages (pdf-lib; MIT), not its one-line MINIMUM page or the FeRD renderings
    ("NikolaiMe/factur-x-kit", "test/**/createdPDFs/*_[BCD]*.pdf"): ("layout", "test"),
    # obwyse ZUGFeRD-Tools, kept in factur-x-kit's tests (MIT)
    ("NikolaiMe/factur-x-kit", "test/pdfs/ZFdemo_2p1_en16931_67b499beca63e.pdf"): ("layout", "test"),
    # tulo.eInvoiceCreatorZUGFeRD's example (Apache-2.0)
    ("TuloSharp/tulo.eInvoiceCreatorZUGFeRD", "ReadMeAsserts/6063636771001_PdfA3.pdf"): ("layout", "test"),
    # MIT; removed from the repository after commit ad3a9395340bc0a6a7861f97e59473d0b9c4843c (copy that one)
    ("mahdiabderraouf/facturx-php", "Facture_F-20240000014.pdf"): ("layout", "test"),
    # MIT; the other cases there are this invoice with defects put in
    ("VALENTINDML/facturx-cas-limites", "cas/OK-001/facture.pdf"): ("layout", "test"),
    ("audrenbdb/facturx", "facture-test.pdf"): ("layout", "test"),  # MIT
}
PER_PRODUCER = 6
REPO_FAMILIES_BY_PATH = {f"{repo}/{sub}" for repo, sub in REPO_FAMILIES}
FIELDS = ("vendor", "vendor_address", "invoice_number", "invoice_date", "due_date", "customer", "subtotal", "tax",
          "total", "currency")


@dataclass
class Invoice:
    id: str
    path: Path
    kind: str
    split: str
    truth: dict[str, Any] = field(default_factory=dict)
    producer: str = ""  # the family (FAMILIES, REPO_FAMILIES) the PDF came from


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: ET.Element, *names: str) -> ET.Element | None:
    """The first descendant whose local names follow ``names`` (each a child of the one before)."""
    if not names:
        return node
    for child in node.iter():
        if child is not node and _local(child.tag) == names[0]:
            found = _find(child, *names[1:])
            if found is not None:
                return found
    return None


def _text(node: ET.Element | None, *names: str) -> str | None:
    hit = _find(node, *names) if node is not None else None
    return " ".join(hit.text.split()) if hit is not None and hit.text and hit.text.strip() else None


def _day(node: ET.Element | None) -> date | None:
    s = _text(node, "DateTimeString") if node is not None else None
    if s and re.fullmatch(r"\d{8}", s):
        return date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return None


def labels(xml: bytes) -> dict[str, Any]:
    """The invoice's fields from its CII XML (ZUGFeRD 1.0 and 2.x name them alike)."""
    root = ET.fromstring(xml)
    doc = _find(root, "ExchangedDocument") or _find(root, "HeaderExchangedDocument")
    seller, buyer = _find(root, "SellerTradeParty"), _find(root, "BuyerTradeParty")
    sums = _find(root, "SpecifiedTradeSettlementHeaderMonetarySummation") or _find(
        root, "SpecifiedTradeSettlementMonetarySummation")
    address = _find(seller, "PostalTradeAddress") if seller is not None else None
    out: dict[str, Any] = {
        "vendor": _text(seller, "Name"), "customer": _text(buyer, "Name"),
        "invoice_number": _text(doc, "ID"), "invoice_date": _day(_find(doc, "IssueDateTime") if doc is not None
                                                                 else None),
        "due_date": _day(_find(root, "SpecifiedTradePaymentTerms", "DueDateDateTime")),
        "subtotal": _text(sums, "TaxBasisTotalAmount"), "tax": _text(sums, "TaxTotalAmount"),
        "total": [t for t in (_text(sums, "GrandTotalAmount"), _text(sums, "DuePayableAmount")) if t],
        "currency": _text(root, "InvoiceCurrencyCode"),
    }
    if address is not None:
        street = " ".join(t for t in (_text(address, "LineOne"), _text(address, "LineTwo")) if t)
        place = [_text(address, "PostcodeCode"), _text(address, "CityName")]
        if street and all(place):
            out["vendor_address"] = [street, *place]
    return {k: v for k, v in out.items() if v}


def _xml_of(pdf: Path) -> bytes | None:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        for i in range(doc.count_attachments()):
            att = doc.get_attachment(i)
            if att.get_name().lower().endswith(".xml"):
                return bytes(att.get_data())
    finally:
        doc.close()
    return None


def _pdfs(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.pdf"))


def _sources(root: Path, repos: Path | None) -> list[tuple[str, Path, str, str]]:
    """(producer, PDF, kind, split) for every file the families name, corpus first."""
    out = [(family, pdf, kind, split) for family, (kind, split) in FAMILIES.items() for pdf in _pdfs(root / family)]
    for (repo, sub), (kind, split) in REPO_FAMILIES.items():
        base = repos / repo.replace("/", "+") if repos else None
        if base is None or not base.is_dir():
            print(f"skipped {repo}: no copy of it under --repos", file=sys.stderr)
            continue
        pdfs = sorted(base.glob(sub)) if any(c in sub for c in "*?[") else _pdfs(base / sub)
        out.extend((f"{repo}/{sub}", pdf, kind, split) for pdf in pdfs)
    return out


def load(root: Path, repos: Path | None = None) -> list[Invoice]:
    if not (root / "ZUGFeRDv2").is_dir():
        raise SystemExit(f"{root} is not a copy of github.com/ZUGFeRD/corpus")
    seen: set[tuple[str, str]] = set()
    per_producer: dict[str, int] = {}
    out = []
    for producer, pdf, kind, split in _sources(root, repos):
        xml = _xml_of(pdf)
        if xml is None:
            continue
        try:
            truth = labels(xml)
        except ET.ParseError:
            continue
        key = (str(truth.get("vendor")), str(truth.get("invoice_number")), str(truth.get("total")))
        if "vendor" not in truth or key in seen:
            continue  # no seller in the data, or the same invoice from another producer
        if producer in REPO_FAMILIES_BY_PATH and per_producer.get(producer, 0) >= PER_PRODUCER:
            continue
        seen.add(key)
        per_producer[producer] = per_producer.get(producer, 0) + 1
        name = str(pdf.relative_to(root)) if pdf.is_relative_to(root) else f"{producer.split('/')[1]}:{pdf.name}"
        out.append(Invoice(name, pdf, kind, split, truth, producer))
    return out


SALUTATION = re.compile(r"^\s*(?:herrn?|frau|firma|mr|mrs|ms|monsieur|madame|mme)\.?\s+", re.IGNORECASE)


def squash(text: Any) -> str:
    return re.sub(r"[^0-9a-z]", "", str(text or "").lower().replace("ß", "ss"))


def squash_name(text: Any) -> str:
    """A name without the salutation a letter's address puts before it (Herrn, Mr, Madame)."""
    return squash(SALUTATION.sub("", str(text or "")))


def field_right(name: str, truth: Any, got: dict[str, Any]) -> bool:
    value = got.get("value")
    if value is None:
        return False
    if name == "vendor_address":
        street, postcode, city = (squash(t) for t in truth)
        s = squash(value)
        rest = s.replace(street, "", 1).replace(postcode, "", 1).replace(city, "", 1)
        return street in s and postcode in s and city in s and len(rest) <= len("deutschland")
    if name in ("invoice_date", "due_date"):
        parsed = parse_date(str(value))
        return parsed is not None and parsed.value == truth
    if name in ("subtotal", "tax", "total"):
        amount = got.get("amount")
        wanted = truth if isinstance(truth, list) else [truth]
        return amount is not None and any(round(float(amount) * 100) == round(float(w) * 100) for w in wanted)
    if name == "currency":
        return str(value).upper() == str(truth).upper()
    return squash_name(truth) == squash_name(value)


def blame(doc: Any, name: str, truth: Any) -> str:
    """Where a wrong answer comes from: ``page`` (the value is not printed on the page as the
    data has it: a name holding more than the page prints, an amount's other sign),
    ``candidates`` (it is printed but no candidate is it) or ``choice`` (a candidate is right
    and another was answered). Text layers only: no OCR takes part."""
    page = page_of(doc)
    text = "\n".join(line.text for line in page.lines)
    pool = candidates_for(page, INVOICE[name].source, fieldtypes.currency_of(text), "invoice")
    if any(field_right(name, truth, _as_answer(c.value)) for c in pool):
        return "choice"
    if name in ("vendor", "customer", "vendor_address", "invoice_number"):
        parts = truth if isinstance(truth, list) else [truth]
        printed = squash(text)
        return "candidates" if all(squash_name(p) in printed for p in parts) else "page"
    found = [d[2] for d in fieldtypes.find_dates(text)] + [m[2] for m in fieldtypes.find_money(text)]
    return "candidates" if any(field_right(name, truth, _as_answer(t)) for t in found) else "page"


def _as_answer(typed: Any) -> dict[str, Any]:
    return {"value": typed.value, "amount": getattr(typed, "amount", None)}


def run(invoices: list[Invoice], rows_out: Any = None) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for inv in invoices:
        started = time.perf_counter()
        doc = read(Part("application/pdf", inv.path.read_bytes(), inv.id), Limits())
        found = extract_document("invoice", doc)["fields"]
        seconds = time.perf_counter() - started
        fields = {n: {"truth": str(t), "got": found[n]["value"], "confidence": found[n]["confidence"],
                      "right": field_right(n, t, found[n])} for n, t in inv.truth.items() if n in FIELDS}
        for n, f in fields.items():
            if not f["right"] and n != "currency":
                f["wrong_from"] = blame(doc, n, inv.truth[n])
        row = {"id": inv.id, "kind": inv.kind, "split": inv.split, "pages": doc.pages, "method": doc.method,
               "seconds": round(seconds, 3), "fields": fields}
        groups.setdefault(f"{inv.split}/{inv.kind}", []).append(row)
        if rows_out:
            rows_out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        print(f"{inv.id} {sum(f['right'] for f in fields.values())}/{len(fields)}", file=sys.stderr)
    return {g: summarise(rows) for g, rows in sorted(groups.items())}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    acc = {}
    for n in FIELDS:
        scored = [r["fields"][n]["right"] for r in rows if n in r["fields"]]
        if scored:
            acc[n] = round(sum(scored) / len(scored), 3)
    seconds = sorted(r["seconds"] for r in rows)
    wrong: dict[str, dict[str, int]] = {}
    for r in rows:
        for n, f in r["fields"].items():
            if f.get("wrong_from"):
                wrong.setdefault(n, {}).setdefault(f["wrong_from"], 0)
                wrong[n][f["wrong_from"]] += 1
    return {"invoices": len(rows), "pages": sum(r["pages"] for r in rows), "fields_right": acc,
            "fields_mean": round(sum(acc.values()) / len(acc), 3) if acc else None,
            "wrong_from": wrong, "seconds_p50": seconds[len(seconds) // 2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a local copy of github.com/ZUGFeRD/corpus")
    ap.add_argument("--repos", type=Path, help="a folder with copies of the other repositories REPO_FAMILIES names "
                    "(owner+name/ each)")
    ap.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--rows", type=Path, help="write each invoice's fields (truth, answer, confidence) as JSON lines")
    args = ap.parse_args()
    invoices = [i for i in load(args.data, args.repos) if args.split == "all" or i.split == args.split]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows_out = args.rows.open("w") if args.rows else None
    try:
        results = run(invoices, rows_out)
    finally:
        if rows_out:
            rows_out.close()
    print(json.dumps({"set": "ZUGFeRD corpus", "load_before": load_before,
                      "load_after": [round(x, 2) for x in os.getloadavg()], "groups": results}, indent=2))


if __name__ == "__main__":
    main()
