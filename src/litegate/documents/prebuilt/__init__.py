"""Prebuilt extractors shipped in the package: ``receipt`` and ``invoice``.

A document's lines (with boxes when it was read from a file, else the lines of its text) give
candidates per field from the typed detectors and line runs (``candidates``); a per-field
logistic scorer over general layout features chooses one or none (``model``; weights in
``<name>.json`` beside this file, trained by ``bench/prebuilt.py`` on generated documents of
many layouts and languages). Each answer keeps the value as printed beside its normalized form
(``documents.fieldtypes``), where it was found, and a confidence.

    extract("receipt", doc_or_text) -> {"data": {...}, "fields": {name: {...}}, "notes": [...]}
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litegate.documents import fieldtypes
from litegate.documents.prebuilt import candidates as cands
from litegate.documents.prebuilt import invoice as invoice_cands
from litegate.documents.prebuilt import layout, model
from litegate.errors import ExtractorNotFound

HERE = Path(__file__).parent


@dataclass(frozen=True)
class FieldSpec:
    type: str  # a documents.fieldtypes type
    source: str  # which candidates: money, dates, due_dates, times, phones, ids, names, address,
    # shop_address, party, currency
    description: str


RECEIPT = {
    "merchant_name": FieldSpec("string", "names", "the shop or business that issued the receipt"),
    "merchant_address": FieldSpec("address", "shop_address", "the merchant's street address, as printed"),
    "merchant_phone": FieldSpec("phone", "phones", "the merchant's phone number"),
    "date": FieldSpec("date", "dates", "the date of purchase"),
    "time": FieldSpec("time", "times", "the time of purchase"),
    "subtotal": FieldSpec("money", "money", "the amount before tax"),
    "tax": FieldSpec("money", "money", "the tax amount"),
    "tip": FieldSpec("money", "money", "the tip or gratuity"),
    "total": FieldSpec("money", "money", "the amount paid, after tax and rounding"),
    "currency": FieldSpec("string", "currency", "the ISO 4217 currency of the amounts"),
}
INVOICE = {
    "vendor": FieldSpec("string", "names", "the business that issued the invoice"),
    "vendor_address": FieldSpec("address", "address", "the vendor's address, as printed"),
    "invoice_number": FieldSpec("id", "ids", "the invoice's number"),
    "invoice_date": FieldSpec("date", "dates", "the date the invoice was issued"),
    "due_date": FieldSpec("date", "due_dates", "the date payment is due"),
    "customer": FieldSpec("string", "party", "who the invoice is addressed to"),
    "subtotal": FieldSpec("money", "money", "the amount before tax"),
    "tax": FieldSpec("money", "money", "the tax amount"),
    "total": FieldSpec("money", "money", "the amount due, after tax"),
    "currency": FieldSpec("string", "currency", "the ISO 4217 currency of the amounts"),
}
SPECS = {"receipt": RECEIPT, "invoice": INVOICE}
NAME_FIELDS = {"merchant_name", "vendor"}
# a printed date answers one of these fields: the one chosen as the invoice's own date is not
# also its due date, wherever the page prints that date again (a footer, a letter's line, a
# service period), unless a due label says so ("Fällig am" beside it)
ONE_ANSWER = {"due_date": "invoice_date"}
OWN_LABEL = {"due_date": "due"}
# a field whose answer is not inside the block of lines another field's answer opens: the
# vendor's address is not the customer's postal lines under the customer's name
OTHER_BLOCK = {"vendor_address": "customer"}


def apart_from(field_name: str, pool: list[cands.Candidate], other_value: Any) -> list[cands.Candidate]:
    """``pool`` without the candidates holding the value chosen for the field ``ONE_ANSWER`` parts
    ``field_name`` from, except those the field's own label marks (before them on their line, or
    printed over them)."""
    label = OWN_LABEL.get(field_name)
    return [c for c in pool if str(c.value.value) != str(other_value) or (label and c.features.get(f"kwleft_{label}"))]


def names() -> list[str]:
    return list(SPECS)


def describe(name: str) -> dict[str, Any]:
    """A prebuilt extractor as the extractor listings show it."""
    spec = SPECS[name]
    weights = _weights(name)
    return {"name": name, "prebuilt": True, "fields": {f: s.description for f, s in spec.items()},
            "types": {f: s.type for f, s in spec.items()}, "version": weights.get("version", 1),
            "trained_on": weights.get("trained_on", ""), "encoder": None}


@functools.cache
def _weights(name: str) -> dict[str, Any]:
    path = HERE / f"{name}.json"
    if not path.is_file():
        return {"scorers": {}}
    return model.load(path)


# invoices print cents on every amount, so whole numbers there (postcodes, quantities, ids) take
# no part in the amounts' ranks and sums; receipts keep every number (some currencies have no cents)
CENTS_RANK = {"invoice"}


def candidates_for(page: layout.Page, source: str, currency: str | None, kind: str) -> list[cands.Candidate]:
    if source == "money":
        pool = cands.money(page, currency, cents_rank=kind in CENTS_RANK, credit_note=kind == "invoice")
        if kind != "invoice":
            return pool
        pool = invoice_cands.with_tax_sums(page, pool)
        invoice_cands.column_sums(page, pool)
        return pool
    if source == "address":  # an invoice may print its vendor's address only inside a one-line letterhead or footer
        return cands.runs(page) + (invoice_cands.letterhead_addresses(page) if kind == "invoice" else [])
    if source == "shop_address":  # a receipt may print its shop's address at the foot
        return cands.addresses(page)
    if source == "party":
        return invoice_cands.customers(page)
    if source == "names" and kind == "invoice":  # a vendor may be named only inside a one-line letterhead
        return cands.names(page) + invoice_cands.letterhead_names(page)
    if source == "dates" and kind == "invoice":
        return invoice_cands.dates(page)
    return {"dates": cands.dates, "due_dates": invoice_cands.due_dates, "times": cands.times, "phones": cands.phones,
            "ids": cands.ids, "names": cands.names}[source](page)


def page_of(source: Any) -> layout.Page:
    """A page of lines from a read ``Document``, plain text, or a page already made."""
    if isinstance(source, layout.Page):
        return source
    return layout.from_text(source) if isinstance(source, str) else layout.from_document(source)


def extract(name: str, source: Any, fields: list[str] | None = None, alternatives: int = 0,
            scorers: dict[str, model.FieldScorer] | None = None) -> dict[str, Any]:
    """Fields of a document (a ``Document`` read from a file, or plain text) by the prebuilt
    extractor ``name``: {"data": {field: normalized value or None}, "fields": {field: {value,
    text, confidence, line, box, page}}, "notes": [...]}. With ``alternatives`` > 0 each field
    also lists up to that many candidates with different values, most probable first
    (``fields[f]["candidates"]``: value, text, probability, line, the line as printed), for a
    tier that chooses among them. ``scorers``: weights of an extended ``name`` (``extend``)
    instead of the shipped ones."""
    if name not in SPECS:
        raise ExtractorNotFound(f"no prebuilt extractor called {name!r}; prebuilt: {', '.join(SPECS)}",
                                param="extractor")
    page = page_of(source)
    spec = SPECS[name]
    wanted = fields or list(spec)
    scorers = scorers if scorers is not None else _weights(name)["scorers"]
    full_text = "\n".join(line.text for line in page.lines)
    currency = fieldtypes.currency_of(full_text)
    pools: dict[str, list[cands.Candidate]] = {}
    out: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    if not page.lines:
        notes.append("no text was found to extract from (a blank page, or no document in the image)")
    taken_lines: set[int] = set()
    taken_names: set[str] = set()  # the issuer's name printed again elsewhere is still not the customer
    if page.lines and not cands.money(page, currency) and not cands.dates(page):
        # no amount and no date anywhere: a photo or a page that is no receipt or invoice
        notes.append(f"no amounts or dates were found: this does not look like a {name}")
        page = layout.Page([], 1.0, 1.0, 1.0)
    # names first (addresses skip their lines); a field that ONE_ANSWER parts from another after it
    for field_name in sorted(wanted, key=lambda f: (f not in NAME_FIELDS, f in ONE_ANSWER or f in OTHER_BLOCK)):
        fs = spec[field_name]
        if fs.source == "currency":
            out[field_name] = _answer(fieldtypes.Typed("string", currency, currency) if currency else None,
                                      0.9 if currency else 0.5, None, page)
            continue
        pool = pools.setdefault(fs.source, candidates_for(page, fs.source, currency, name))
        pool = _left_over(field_name, fs.source, pool, page, out, taken_lines, taken_names)
        scorer = scorers.get(field_name)
        best, p = scorer.best(pool) if scorer is not None else (None, 0.0)
        if best is not None and field_name in NAME_FIELDS:
            taken_lines.update(best.indices())
            taken_names.add(cands.squash(str(best.value.value)))
        out[field_name] = _answer(best.value if best else None, p, best, page, currency)
        if alternatives and scorer is not None:
            out[field_name]["candidates"] = [_alternative(c, q, page, currency)
                                             for q, c in scorer.ranked(pool, alternatives)]
    if page.lines and all(v["value"] is None for f, v in out.items() if spec[f].source != "currency"):
        notes.append("none of the fields was found: the text may not be a " + name)
    ordered = {f: out[f] for f in wanted}
    return {"data": {f: v["value"] for f, v in ordered.items()}, "fields": ordered, "notes": notes}


def _left_over(field_name: str, source: str, pool: list[cands.Candidate], page: layout.Page,
               out: dict[str, dict[str, Any]], taken_lines: set[int], taken_names: set[str]) -> list[cands.Candidate]:
    """The candidates a field may still answer with, given the fields answered before it."""
    # the issuer's name is neither its address nor the customer (a part of a letterhead's line
    # is not its name, the part before it)
    if source in ("address", "shop_address", "party"):
        pool = [c for c in pool if (not taken_lines & set(c.indices()) or c.features.get("segment"))
                and cands.squash(str(c.value.value)) not in taken_names]
    block = out.get(OTHER_BLOCK.get(field_name, ""))
    if block and block.get("line") is not None:
        inside = {line.index for line in invoice_cands.block_of(page, page.lines[block["line"]])}
        pool = [c for c in pool if not inside & set(c.indices())]
    other = out.get(ONE_ANSWER.get(field_name, ""))
    if other and other.get("value") is not None:
        pool = apart_from(field_name, pool, other["value"])
    return pool


def _answer(typed: fieldtypes.Typed | None, p: float, cand: cands.Candidate | None, page: layout.Page,
            currency: str | None = None) -> dict[str, Any]:
    if typed is None:
        return {"value": None, "text": None, "confidence": round(min(p, 1.0), 4)}
    out: dict[str, Any] = {"value": typed.value, "text": typed.text, "confidence": round(p, 4)}
    if typed.type == "money":
        out["amount"], out["currency"] = typed.amount, typed.currency or currency
    if cand is not None and page.lines:
        members = [page.lines[i] for i in cand.indices() if i < len(page.lines)] or [page.lines[cand.line]]
        first, last = members[0], members[-1]
        x0, x1 = min(m.box[0] for m in members), max(m.box[2] for m in members)
        out["line"] = cand.line
        out["line_text"] = first.text
        out["page"] = first.page
        out["box"] = {"x": round(x0, 1), "y": round(first.page_y0, 1), "w": round(x1 - x0, 1),
                      "h": round(last.page_y0 + last.height - first.page_y0, 1)}
    return out


def _alternative(cand: cands.Candidate, p: float, page: layout.Page, currency: str | None) -> dict[str, Any]:
    """A candidate as an answer would give it, with where it stands among the page's lines."""
    out = _answer(cand.value, p, cand, page, currency)
    out["lines"] = len(page.lines)
    out["line_text"] = "\n".join(page.lines[i].text for i in cand.indices() if i < len(page.lines))
    return out


def extract_document(name: str, doc: Any, fields: list[str] | None = None) -> dict[str, Any]:
    return extract(name, doc, fields)
