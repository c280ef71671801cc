"""Candidates only invoices have: the recipient's block as the customer, a vendor named inside a
one-line letterhead or footer, tax as the sum of per-rate amounts, and a due date written as
payment terms ("payable within 30 days"). General layout and trade vocabulary, no producer's."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from litegate.documents import fieldtypes
from litegate.documents.prebuilt import candidates as cands
from litegate.documents.prebuilt.layout import Line, Page

PARTY_ROWS = 60  # the recipient's block is printed in the page's head
LABEL_ROWS_UP = 8  # how many rows up a block's label may stand over the candidate


def _overlap(a: Line, b: Line) -> float:
    return min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])


def _column_up(page: Page, line: Line) -> list[Line]:
    """The pieces above ``line`` in its column (the one overlapping it most on each row), nearest
    first, while they stay one block (no gap of more than two lines between them). Unlike the
    ``above`` link, a piece spanning two columns does not hide the label of the one below it."""
    out: list[Line] = []
    last = line
    for r in range(line.row - 1, max(line.row - 1 - LABEL_ROWS_UP, -1), -1):
        row = [o for o in page.row_lines(r) if o.page == line.page and _overlap(o, line) > -page.median_height / 2]
        if not row:
            continue
        hit = max(row, key=lambda o: (_overlap(o, line), -abs(o.box[0] - line.box[0])))
        if last.box[1] - hit.box[3] > 2.2 * page.median_height:
            break
        out.append(hit)
        last = hit
    return out


def _column_down(page: Page, line: Line, limit: int = 4) -> list[Line]:
    """Up to ``limit`` lines under ``line`` in its block (its column's pieces, or the next lines)."""
    group = cands._chain(page, line, limit + 1, cands.columned(page))
    return group[1:]


def block_of(page: Page, line: Line) -> list[Line]:
    """``line`` and the lines of its block under it (a recipient's name and its postal lines)."""
    return [line, *_column_down(page, line, cands.MAX_RUN)]


def _label_only(line: Line) -> bool:
    """A line that is a label and nothing more ("Rechnungsempfänger", "Bill to:")."""
    rest = line.text.lower()
    for spans in line.keywords.values():
        for a, b in spans:
            rest = rest[:a] + " " * (b - a) + rest[b:]
    return sum(ch.isalpha() for ch in rest) < 3


def _contact(text: str) -> bool:
    return bool(fieldtypes.find_emails(text) or fieldtypes.find_phones(text) or
                re.search(r"www\.|https?:|@", text.lower()))


def _party_features(page: Page, first_page_height: float, group: list[Line]) -> dict[str, float]:
    """Where a name stands as the first line of a recipient's block: the label over the block
    (Bill to, Rechnungsempfänger, Kunde, Client) or left of it, a window envelope's place in
    the page's upper left, the postal lines under it, and whether it is a contact's line."""
    first, last = group[0], group[-1]
    f: dict[str, float] = {}
    up = _column_up(page, first)
    for steps, piece in enumerate(up):
        party = [g for g in ("customer", "vendor", "salutation") if g in piece.keywords]
        # a line of the block itself (an identifier "GLN ...", a contact's name) is passed over
        if party or (piece.keywords and _label_only(piece)):
            f.update({f"plab_{g}": 1.0 for g in party} or {"plab_other": 1.0})
            f["plab_steps"] = min(steps, 4) / 4
            f["plab_only"] = 1.0 if _label_only(piece) else 0.0
            break
    f["pblock_top"] = 1.0 if not up or (up[0].keywords and _label_only(up[0])) or "salutation" in up[0].keywords \
        else 0.0
    for piece in page.row_left(first):
        if "customer" in piece.keywords:
            f["pleft_customer"] = 1.0
    below = _column_down(page, last)
    below_text = "\n".join(b.text for b in below)
    f["pbelow_zip"] = 1.0 if cands._ZIP_PLACE.search(below_text) else 0.0
    f["pbelow_street"] = 1.0 if any(cands._street_or_postcode(b) for b in below[:2]) else 0.0
    f["pbelow_contact"] = 1.0 if below and _contact(below[0].text) else 0.0
    f["pbelow_n"] = len(below) / 4
    text = " ".join(g.text for g in group)
    f["pcontact"] = 1.0 if _contact(text) else 0.0
    f["plabel_only"] = 1.0 if all(_label_only(g) for g in group) else 0.0
    f["plabel_in"] = 1.0 if any(_label_only(g) and g.keywords for g in group) else 0.0
    # a contact person's line: "z. Hd. Herr Muster", "Attn: ...", not the recipient's name
    f["psalutation"] = 1.0 if "salutation" in first.keywords and min(first.keywords["salutation"])[0] == 0 else 0.0
    f["pref"] = 1.0 if any(k in first.keywords for k in ("other_ref", "number", "invoice_no", "date", "tax", "due",
                                                          "total", "subtotal")) else 0.0
    f["plegal"] = 1.0 if cands._LEGAL_FORM.search(text) else 0.0
    y = first.page_y0 / max(first_page_height, 1.0)
    x = page.x_rel(first.box[0])
    f["pwindow"] = 1.0 if first.page == 1 and x < 0.5 and 0.08 < y < 0.4 else 0.0
    f["pfirst_page"] = 1.0 if first.page == 1 else 0.0
    # printed again among the page's last lines (a footer's legal name): the issuer, not the recipient;
    # a recipient's name printed again higher up (a delivery address) says nothing
    words = cands._words(text)
    foot = set().union(*(cands._words(line.text) for line in page.lines[-10:] if line.index > last.index + 3))
    f["pfoot_echo"] = len(words & foot) / len(words) if words else 0.0
    return f


# the runs' keyword features of the line and of the lines above it: a customer word inside a name
# ("Muster-Kunde GmbH") is no label, and a block's label is found by ``_party_features`` instead
_NAME_KEYWORDS = ("kw_customer", "kwlast_customer")
_LABEL_PREFIXES = ("kwprev_", "kwabove_", "kwcol_")


def customers(page: Page) -> list[cands.Candidate]:
    """A recipient's name: runs of one or two lines in the page's head (``candidates.runs``),
    and the text after a customer label on its line ("Bill to: ..."), each with the features
    of the block it opens."""
    first_page_height = max((line.page_y0 + line.height for line in page.lines if line.page == 1), default=1.0)
    found = [c for c in cands.runs(page, 0, min(len(page.lines), PARTY_ROWS)) if c.lines <= 2]
    for c in found:
        for k in [k for k in c.features if k in _NAME_KEYWORDS or k.startswith(_LABEL_PREFIXES)]:
            c.features.pop(k)
        c.features.update(_party_features(page, first_page_height, [page.lines[i] for i in c.indices()]))
    for line in page.lines:
        if line.row >= PARTY_ROWS or "customer" not in line.keywords:
            continue
        start, end = min(line.keywords["customer"])
        after = line.text[end:]
        rest = after.strip(" :-–")
        # "Bill to: Muster GmbH", "Kunde - Muster GmbH": a label that opens the line, then its value
        if start == 0 and re.match(r"\s*[:\-–]", after) and sum(ch.isalpha() for ch in rest) >= 3:
            f = cands._position(page, line)
            f.update(cands._text_shape(rest))
            f.update(_party_features(page, first_page_height, [line]))
            f["after_label"] = 1.0
            found.append(cands.Candidate(fieldtypes.Typed("string", rest, rest), line.index, 1, f))
    return found


_SEPARATOR = re.compile(r"\s+[-–|·•/]\s+|\s*[|·•]\s*|,\s+")


def _letterhead_lines(page: Page) -> list[tuple[Line, list[str]]]:
    """One-line letterheads and footers ("Muster GmbH · Hauptstr. 5 · 12345 Ort · USt-IdNr ...",
    "Muster SARL - 12 rue ..."), each with its parts: lines of the page's head or foot that a
    separator parts into a name, a place or a contact. A line of an address alone is none."""
    out = []
    lines = [line for line in page.lines if line.row < cands.NAME_LINES] + \
        [line for line in page.lines[-12:] if line.row >= cands.NAME_LINES]
    for line in lines:
        parts = [p.strip() for p in _SEPARATOR.split(line.text) if p.strip()]
        if len(parts) < 2 or sum(ch.isalpha() for ch in parts[0]) < 3 or fieldtypes.find_dates(line.text) or \
                cands._PAGE_NUMBER.search(line.text):
            continue
        head, rest = parts[0], " ".join(parts[1:])
        if not (cands._ZIP_PLACE.search(rest) or _contact(rest) or cands._LEGAL_FORM.search(head)):
            continue  # "Station Road, 21": a line of an address, no letterhead
        if (cands._STREET_WORD.search(head) and re.search(r"\d", head)) or cands._COMPOUND_STREET.search(head):
            continue  # "Lilienthalallee 26, 80786 München": an address on one line starts with its street
        out.append((line, parts))
    return out


def _segment_features(page: Page, line: Line, part: str) -> dict[str, float]:
    f = cands._position(page, line)
    f.update(cands._text_shape(part))
    f.update(cands._kw_features("kw_", line.keywords))
    # a footer: past the page's head, or in its lower part (a short page has few rows)
    foot = line.row >= cands.NAME_LINES or page.y_rel(line) > 0.6
    f.update({"segment": 1.0, "seg_foot": 1.0 if foot else 0.0,
              "seg_small": 1.0 if line.height < 0.8 * page.median_height else 0.0})
    return f


def letterhead_names(page: Page) -> list[cands.Candidate]:
    """A vendor named inside a one-line letterhead or footer: the line's first part, and any
    later part holding a legal form ("Tel. 0521 1234 · Muster GmbH · ..."), as name candidates
    of their own."""
    found = []
    full_names = [(line.index, cands.squash(line.text)) for line in page.lines if cands._LEGAL_FORM.search(line.text)]
    for line, parts in _letterhead_lines(page):
        rest = " ".join(parts[1:])
        for k, part in enumerate(parts):
            legal = bool(cands._LEGAL_FORM.search(part))
            if k and not (legal and sum(ch.isalpha() for ch in part) >= 4 and not _contact(part)
                          and not cands._ZIP_PLACE.search(part)):
                continue
            short = cands.squash(part)
            f = _segment_features(page, line, part)
            f.update({"seg_legal": 1.0 if legal else 0.0, "seg_later": 1.0 if k else 0.0,
                      "seg_rest_zip": 1.0 if cands._ZIP_PLACE.search(rest) else 0.0,
                      "seg_rest_contact": 1.0 if _contact(rest) else 0.0,
                      "rank": 1.0 if line.row >= 12 else 0.0, "legal_form": 1.0 if legal else 0.0,
                      # a short form of a name printed in full elsewhere (a window's sender line: "Muster, Str. 1, Ort")
                      "seg_short_form": 1.0 if any(i != line.index and full.startswith(short) and len(full) > len(short)
                                                   for i, full in full_names) else 0.0})
            f.update(cands._echo(page, [line]))
            found.append(cands.Candidate(fieldtypes.Typed("string", part, part), line.index, 1, f))
    return found


# a street as a part of a line: a house number before or after a word ("12 rue ...", "Am Markt 5")
_HOUSE_NUMBER_ENDS = re.compile(r"^\d{1,5}[a-zA-Z]?,?\s+[^\W\d_]{3,}|[^\W\d_]{3,}\s+\d{1,5}[a-zA-Z]?$")


def _street_part(part: str) -> bool:
    return bool(re.search(r"\d", part)) and bool(re.search(r"[^\W\d_]{3,}", part)) and not _contact(part) and \
        bool(cands._STREET_WORD.search(part) or cands._COMPOUND_STREET.search(part) or _HOUSE_NUMBER_ENDS.search(part))


def letterhead_addresses(page: Page) -> list[cands.Candidate]:
    """The vendor's address inside a one-line letterhead or footer: the part with a postcode and
    its town, and the street part before it ("Hauptstr. 5 · 12345 Ort" of "Muster GmbH ·
    Hauptstr. 5 · 12345 Ort · Tel ..."), as one address of the run's shape."""
    found = []
    for line, parts in _letterhead_lines(page):
        for k, part in enumerate(parts):
            if not k or not cands._ZIP_PLACE.search(part) or _contact(part):
                continue
            if _street_part(part) and k + 1 < len(parts) and cands._ZIP_PLACE.search(parts[k + 1]):
                continue  # "1242 chemin des Vignes" before "84000 Avignon": a street, its place comes next
            street = parts[k - 1] if _street_part(parts[k - 1]) else ""
            text = f"{street}, {part}" if street else part
            f = _segment_features(page, line, text)
            f.update({"span": 2 / cands.MAX_RUN if street else 1 / cands.MAX_RUN, "span2" if street else "span1": 1.0,
                      "postcode": 1.0, "zip_place": 1.0, "street_first": 1.0 if street else 0.0,
                      "postcode_last": 1.0, "house_number": 1.0 if street else 0.0,
                      "comma": min(text.count(","), 3) / 3, "rank": 1.0 if line.row >= cands.NAME_LINES else 0.0,
                      "seg_after_name": 1.0 if k - (2 if street else 1) == 0 else 0.0,
                      "seg_parts": min(len(parts), 8) / 8})
            found.append(cands.Candidate(fieldtypes.Typed("address", text, text), line.index, 1, f))
    return found


def tax_sums(page: Page, pool: list[cands.Candidate]) -> list[cands.Candidate]:
    """Tax printed only per rate ("USt 7% 3,50" and "USt 19% 19,00", or a tax table's column):
    the sum of the per-rate amounts as a candidate, when it is not printed itself. Its features
    that compare it with other amounts are still its last part's: ``with_tax_sums`` gives it its own."""
    rows: dict[int, list[cands.Candidate]] = {}
    for c in pool:
        f = c.features
        taxed = f.get("kw_tax") or f.get("kwcol_tax") or f.get("kwleft_tax")
        rate = f.get("percent_line") or any("%" in o.text for o in page.row_lines(page.lines[c.line].row))
        # an invoice prints its amounts with cents: "7,0" after "MwSt.-%" is a rate, no part
        if taxed and rate and f.get("decimals") and not f.get("kw_total") and (c.value.amount or 0) > 0:
            rows.setdefault(page.lines[c.line].row, []).append(c)
    # one per row: a rate's row prints its tax beside its net (and gross), and the tax is the
    # smallest of them (no rate reaches 100%)
    parts = [min(row, key=lambda c: (not c.features.get("decimals"), c.value.amount or 0)) for row in rows.values()]
    if len(parts) < 2:
        return []
    total = sum((Decimal(str(p.value.amount)) for p in parts), Decimal(0)).quantize(Decimal("0.01"))
    printed = {Decimal(str(c.value.amount or 0)).quantize(Decimal("0.01")) for c in pool}
    if total in printed or total >= max(printed):  # printed, or more than the gross: not this page's tax
        return []
    last = max(parts, key=lambda p: p.line)
    currency = last.value.currency
    f = dict(last.features)
    f.update({"synth_sum": 1.0, "sum_parts": min(len(parts), 4) / 4,
              "sum_closes": 1.0 if any(a + total in printed for a in printed if a > 0) else 0.0})
    typed = fieldtypes.Typed("money", str(total), f"{total}", currency=currency, amount=float(total))
    return [cands.Candidate(typed, last.line, 1, f)]


def with_tax_sums(page: Page, pool: list[cands.Candidate], cents_rank: bool = True,
                  credit_note: bool = True) -> list[cands.Candidate]:
    """The page's amounts with the per-rate tax sum (``tax_sums``) placed after its last part,
    and every amount's relations (largest, rank, net + tax = gross) computed again with it: the
    sum's are its own, and a printed net and gross now see the tax that joins them."""
    sums = tax_sums(page, pool)
    if not sums:
        return pool
    out = list(pool)
    for s in sums:
        at = max((i for i, c in enumerate(out) if c.line <= s.line), default=len(out) - 1)
        out.insert(at + 1, s)
    cands.relate(out, cents_rank, credit_note)
    return out


def column_sums(page: Page, pool: list[cands.Candidate]) -> None:
    """Mark an amount that is the sum of the amounts printed over it in its column (a table's
    sum row under its rate or item rows: ``column_sum``), on a page whose rows are parted into
    columns (a text layer). A sum built by ``tax_sums`` is printed nowhere and is no such sum."""
    if not cands.columned(page):
        return
    for c in pool:
        line = page.lines[c.line]
        above: list[Decimal] = []
        at = line.above
        while at is not None and len(above) < 12:
            found = fieldtypes.find_money(page.lines[at].text)
            if len(found) != 1 or found[0][2].amount is None:
                break
            above.append(Decimal(str(found[0][2].amount)))
            at = page.lines[at].above
        own = Decimal(str(c.value.amount or 0)).quantize(Decimal("0.01"))
        c.features["column_sum"] = 1.0 if len(above) >= 2 and not c.features.get("synth_sum") and \
            sum(above, Decimal(0)).quantize(Decimal("0.01")) == own and own != 0 else 0.0


_TERMS = re.compile(r"(?:innerhalb|binnen|within|in|à|a|sous|dans|net|netto|zahlungsziel|payable|zahlbar)\D{0,12}?"
                    r"(\d{1,3})\s*(?:tage|tagen|days|day|jours|días|dias|giorni)\b"
                    r"|(?:net|netto)\s*(\d{1,3})\b", re.IGNORECASE)
_DISCOUNT_TERM = re.compile(r"skonto|discount|escompte|%", re.IGNORECASE)


def dates(page: Page) -> list[cands.Candidate]:
    """The page's dates, a label printed over a date read as its label on the line ("Due Date"
    over "March 3, 2026" as "Due Date: March 3, 2026"): invoices print their facts as label and
    value side by side or as a row of labels over a row of values."""
    found = cands.dates(page)
    for c in found:
        line = page.lines[c.line]
        if line.above is None or any(k.startswith(("kw_", "kwleft_")) for k in c.features):
            continue
        label = page.lines[line.above]
        near = line.box[1] - label.box[3] < 1.5 * page.median_height
        if label.keywords and _label_only(label) and near and _overlap(label, line) > 0:
            c.features.update(cands._kw_features("kw_", label.keywords))
            c.features.update(cands._kw_features("kwleft_", label.keywords))
            c.features["label_above"] = 1.0
    return found


def due_dates(page: Page) -> list[cands.Candidate]:
    """The page's dates, and a due date written as payment terms: each distinct date the page
    prints plus the days the terms give, with the features of the date it counts from (the
    scorer learns which date is the invoice's)."""
    found = dates(page)
    bases: dict[str, cands.Candidate] = {}
    for c in found:
        bases.setdefault(str(c.value.value), c)
    terms = []
    for line in page.lines:
        for m in _TERMS.finditer(line.text):
            days = int(m.group(1) or m.group(2))
            if 0 < days <= 120:
                discount = bool(_DISCOUNT_TERM.search(line.text[max(0, m.start() - 20):m.end()]))
                terms.append((line, days, discount))
    # a date printed on the terms' own line ("within 30 days net, by 04.07.2013") is the due date as
    # the issuer counted it; the days added to a date are only an estimate of it
    terms_lines = {line.index: line for line, _, _ in terms}
    for c in found:
        c.features["on_terms_line"] = 1.0 if c.line in terms_lines else 0.0
        c.features["discount_date"] = 0.0
    for index, line in terms_lines.items():
        # "netto bis 04.04.2013, 3% Skonto innerhalb 10 Tagen bis 15.03.2013": the date after a
        # cash-discount term is the discount's last day, not the due date
        end = 0
        for start, stop, typed in fieldtypes.find_dates(line.text):
            if _DISCOUNT_TERM.search(line.text[end:start]):
                for c in found:
                    if c.line == index and c.value.value == typed.value:
                        c.features["discount_date"] = 1.0
            end = stop
    for line, days, discount in terms[:4]:
        dated_line = 1.0 if fieldtypes.find_dates(line.text) else 0.0
        for value, base in list(bases.items())[:8]:
            try:
                due = date.fromisoformat(value) + timedelta(days=days)
            except ValueError:
                continue
            f = cands._position(page, line)
            f.update({f"base_{k}": v for k, v in base.features.items() if k.startswith(("kw", "first", "order"))})
            f.update({"terms": 1.0, "terms_days": days / 90, "terms_discount": 1.0 if discount else 0.0,
                      "terms_zero": 1.0 if days == 0 else 0.0, "terms_line_dated": dated_line})
            text = line.text
            found.append(cands.Candidate(fieldtypes.Typed("date", due.isoformat(), text), line.index, 1, f))
    return found
