"""Candidates per field of a document, each with general layout features: the typed detectors
(dates, times, amounts, phones, ids) and line runs for names, addresses and parties propose;
a linear scorer (``prebuilt.model``) chooses.

Features never name a shop or a template: they say where a candidate sits (how far down the
page, how far right, how tall its text is against the page's usual line), which keyword groups
label it (on its line, left of it, on the line above), and how it relates to the other
candidates (the largest amount, an amount printed twice, one that is the sum of two others,
or cash minus change).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

from litegate.documents import fieldtypes
from litegate.documents.prebuilt.layout import GROUPS, Line, Page

NAME_LINES = 12  # a merchant's or vendor's name is printed among the first lines
ADDRESS_LINES = 16
MAX_RUN = 4  # lines an address may span


@dataclass
class Candidate:
    value: fieldtypes.Typed
    line: int  # index of its (first) line
    lines: int = 1  # how many lines it spans
    features: dict[str, float] = field(default_factory=dict)
    members: tuple[int, ...] = ()  # its lines when they are not consecutive (a block of a column)

    def indices(self) -> tuple[int, ...]:
        return self.members or tuple(range(self.line, self.line + self.lines))


def _kw_features(prefix: str, groups: dict[str, list[tuple[int, int]]], before: int | None = None) -> dict[str, float]:
    out = {}
    for g, spans in groups.items():
        if before is None or any(s < before for s, _ in spans):
            out[f"{prefix}{g}"] = 1.0
    return out


def _position(page: Page, line: Line) -> dict[str, float]:
    """Where a line sits; its print size only when the page's boxes were measured (``boxed``)."""
    y = page.y_rel(line)
    f = {"y": y, "y2": y * y, "top": 1.0 if line.index < 3 else 0.0,
         "bottom_half": 1.0 if y > 0.5 else 0.0,
         "x1": page.x_rel(line.box[2]), "x0": page.x_rel(line.box[0]),
         "centered": 1.0 - min(abs((line.box[0] + line.box[2]) / 2 / page.width - 0.5) * 2, 1.0)}
    if page.boxed:
        f["height"] = min(line.height / max(page.median_height, 1.0), 3.0)
    return f


def columned(page: Page) -> bool:
    """Whether the page's rows are parted into pieces (a PDF's text layer): then a block of
    lines (an address, a party) runs down its column rather than through the next piece."""
    return len(page.rows) < len(page.lines)


def _chain(page: Page, line: Line, span: int, columns: bool) -> list[Line]:
    """``span`` lines from ``line`` down: consecutive lines, or the column's pieces below it
    while they stay within a line's spacing of each other (one block)."""
    if not columns:
        return page.lines[line.index:line.index + span]
    group = [line]
    while len(group) < span:
        last = group[-1]
        if last.below is None:
            break
        nxt = page.lines[last.below]
        if nxt.box[1] - last.box[3] > 1.2 * page.median_height:
            break
        group.append(nxt)
    return group


COLUMN_LABEL_STEPS = 3


def _column_label(page: Page, line: Line) -> dict[str, list[tuple[int, int]]]:
    """The keyword groups of the nearest labelled piece up the line's column, a few pieces up
    at most (a table's header over its rows, "Käufer" over a buyer's block)."""
    at = line.above
    for _ in range(COLUMN_LABEL_STEPS):
        if at is None:
            break
        if page.lines[at].keywords:
            return page.lines[at].keywords
        at = page.lines[at].above
    return {}


def _block_features(page: Page, group: list[Line]) -> dict[str, float]:
    """Where a run of lines stands in its column's block: its start, its end, what is above."""
    first, last = group[0], group[-1]
    above = page.lines[first.above] if first.above is not None else None
    below = page.lines[last.below] if last.below is not None else None
    near = 1.2 * page.median_height
    f = {"block_start": 1.0 if above is None or first.box[1] - above.box[3] > near else 0.0,
         "block_end": 1.0 if below is None or below.box[1] - last.box[3] > near else 0.0,
         "right_half": 1.0 if page.x_rel(first.box[0]) > 0.45 else 0.0}
    f.update(_kw_features("kwcol_", _column_label(page, first)))
    if above is not None:
        f.update(_kw_features("kwabove_", above.keywords))
        if above.height < 0.8 * page.median_height and first.box[1] - above.box[3] < 2 * near:
            f["small_above"] = 1.0  # a sender's line in small print over a window envelope's address
    return f


def _context(page: Page, line: Line, start: int | None) -> dict[str, float]:
    """Keyword groups around a value: on its line (pieces of its row left of it count, as they
    would on an OCR'd row), left of it, on the rows above and below, and on the piece above it
    in the same column (a table's header, a label printed over its value)."""
    left = page.row_left(line)
    f = _kw_features("kw_", line.keywords)
    for piece in left:
        f.update(_kw_features("kw_", piece.keywords))
    if start is not None:
        f.update(_kw_features("kwleft_", line.keywords, before=start))
        for piece in left:
            f.update(_kw_features("kwleft_", piece.keywords))
    for prefix, row in (("kwprev_", line.row - 1), ("kwnext_", line.row + 1)):
        for other in page.row_lines(row):
            f.update(_kw_features(prefix, other.keywords))
    if line.above is not None:
        f.update(_kw_features("kwabove_", page.lines[line.above].keywords))
    f.update(_kw_features("kwcol_", _column_label(page, line)))
    if left:
        f["after_gap"] = 1.0
    return f


_PAGE_NUMBER = re.compile(r"\b(?:page|seite|pag|p\.)\s*\d+\s*(?:/|of|von|sur|de)\s*\d+\b|^\s*\d+\s*/\s*\d+\s*$",
                          re.IGNORECASE)


def money(page: Page, default_currency: str | None = None, cents_rank: bool = False,
          credit_note: bool = False) -> list[Candidate]:
    """Every amount on the page that could be a subtotal, tax, tip or total. ``cents_rank``: on
    a page that prints cents, whole numbers take no part in the amounts' ranks and sums;
    ``credit_note``: a page printing its amounts negative is compared by their size (``relate``)."""
    found: list[Candidate] = []
    for line in page.lines:
        on_line = fieldtypes.find_money(line.text, default_currency)
        for k, (start, end, typed) in enumerate(on_line):
            if fieldtypes.find_dates(line.text[max(0, start - 3):end + 3]) or "%" in line.text[end:end + 2] or \
                    _PAGE_NUMBER.search(line.text[max(0, start - 8):end + 6]):
                continue  # part of a date, a tax rate, or a page number
            f = _position(page, line)
            f.update(_context(page, line, start))
            f.update({"last_on_line": 1.0 if k == len(on_line) - 1 else 0.0, "n_on_line": min(len(on_line), 4) / 4,
                      "x_end": page.x_rel(line.box[0] + (line.box[2] - line.box[0]) * end / max(len(line.text), 1)),
                      "currency": 1.0 if typed.currency else 0.0, "negative": 1.0 if (typed.amount or 0) < 0 else 0.0,
                      "decimals": 1.0 if re.search(r"[.,]\d{2}\b", typed.text) else 0.0,
                      "percent_line": 1.0 if "%" in line.text else 0.0,
                      "short_line": 1.0 if len(line.text) < 24 else 0.0})
            found.append(Candidate(typed, line.index, features=f))
    relate(found, cents_rank, credit_note)
    return found


def relate(found: list[Candidate], cents_rank: bool = False, credit_note: bool = False) -> None:
    """(Re)compute the features that compare each amount with the others, in page order (an
    amount added after reading, a sum of printed parts, takes its place among them). With
    ``credit_note`` the amounts of a page that prints most of them negative (a credit note) are
    compared by size, as an invoice's are, and "negative" marks an amount of the other sign."""
    sign = -1 if credit_note and _mostly_negative(found) else 1
    for c in found:
        c.features["negative"] = 1.0 if sign * (c.value.amount or 0) < 0 else 0.0
    _relations(found, cents_rank, sign)
    _payment(found, sign)


def _mostly_negative(found: list[Candidate]) -> bool:
    with_cents = [c.value.amount or 0 for c in found if c.features.get("decimals")]
    return sum(a < 0 for a in with_cents) > max(sum(a > 0 for a in with_cents), 2)


def _payment(found: list[Candidate], sign: int = 1) -> None:
    """How an amount stands to the labelled amounts around the payment: the total is the last
    amount labelled total (a card slip may repeat it; a service charge may come between two
    totals), it is the cash given minus the change, or the subtotal plus the tax; the cash
    given is more than a total printed above it."""
    cents = [sign * round((c.value.amount or 0) * 100) for c in found]

    def labelled(group: str) -> list[int]:
        return [i for i, c in enumerate(found) if c.features.get(f"kw_{group}")]

    totals, cash, change = labelled("total"), labelled("cash"), labelled("change")
    paid_less_change = {cents[i] - cents[j] for i in cash for j in change
                        if found[j].line > found[i].line and cents[i] > cents[j] > 0}
    net_plus_tax = {cents[i] + cents[j] for i in labelled("subtotal") for j in labelled("tax")
                    if found[j].line > found[i].line and cents[j] > 0}
    for k, c in enumerate(found):
        a, f = cents[k], c.features
        if a <= 0:
            continue
        later = [cents[i] for i in totals if found[i].line > c.line]
        f["total_later_larger"] = 1.0 if any(x > a for x in later) else 0.0
        f["last_total"] = 1.0 if k in totals and all(x == a for x in later) else 0.0
        f["paid_less_change"] = 1.0 if a in paid_less_change else 0.0
        f["net_plus_tax"] = 1.0 if a in net_plus_tax else 0.0
        f["cash_over_total"] = 1.0 if k in cash and any(0 < cents[i] < a for i in totals if i != k) else 0.0
        f["paid_same"] = 1.0 if k not in cash and any(cents[i] == a for i in cash) else 0.0


def _relations(found: list[Candidate], cents_rank: bool = False, sign: int = 1) -> None:
    """Features that compare an amount with the others on the page."""
    amounts = [sign * Decimal(str(c.value.amount or 0)).quantize(Decimal("0.01")) for c in found]
    with_cents = [a for a, c in zip(amounts, found) if c.features.get("decimals")]
    # on a page that prints cents, whole numbers are quantities, ids and years: no rank, no sums
    ranked = with_cents if cents_rank and len(with_cents) >= 3 else amounts
    positive = sorted({a for a in ranked if a > 0}, reverse=True)
    counts: dict[Decimal, int] = {}
    for a in amounts:
        counts[a] = counts.get(a, 0) + 1
    small = set(positive[:40])
    for i, c in enumerate(found):
        a = amounts[i]
        rank = positive.index(a) if a in positive else len(positive)
        later = [amounts[j] for j in range(i + 1, len(found))]
        f = c.features
        f.update({"max": 1.0 if rank == 0 else 0.0, "second": 1.0 if rank == 1 else 0.0,
                  "rank": min(rank, 10) / 10, "log_amount": math.log10(float(abs(a)) + 1) / 6,
                  "repeated": min(counts[a] - 1, 3) / 3, "zero": 1.0 if a == 0 else 0.0,
                  "repeated_many": 1.0 if counts[a] >= 4 else 0.0,  # a quantity or price in every item row
                  "integer_big": 1.0 if a == a.to_integral_value() and a >= 1000 else 0.0,
                  "from_bottom": (len(found) - 1 - i) / max(len(found) - 1, 1),
                  "larger_later": 1.0 if any(x > a for x in later) else 0.0})
        if a > 0:
            f["sum_of_two"] = 1.0 if any(b > 0 and (a - b) in small and (a - b) != b for b in small if b < a) else 0.0
            f["plus_one_is_max"] = 1.0 if positive and any(a + b == positive[0] for b in small if b != a) else 0.0
            f["cash_minus_change"] = 1.0 if any(x > a and (x - a) in small for x in small) else 0.0
            # net + tax = gross: the net is the larger addend of another amount, the tax the smaller
            f["addend_large"] = 1.0 if any(b < a and (a + b) in small for b in small) else 0.0
            f["addend_small"] = 1.0 if any(b > a and (a + b) in small for b in small) else 0.0


def dates(page: Page) -> list[Candidate]:
    found = []
    count = 0
    for line in page.lines:
        for start, _end, typed in fieldtypes.find_dates(line.text):
            f = _position(page, line)
            f.update(_context(page, line, start))
            rest = (line.text[:start] + line.text[_end:]).strip(" ,.:;-")
            f.update({"first": 1.0 if count == 0 else 0.0, "order": min(count, 5) / 5,
                      "with_time": 1.0 if fieldtypes.find_times(line.text) else 0.0,
                      "four_digit_year": 1.0 if re.search(r"\d{4}", typed.text) else 0.0,
                      # a letter's date stands alone (or after its town); one inside a sentence is a term
                      "alone": 1.0 if not rest or (len(rest.split()) <= 2 and not line.keywords) else 0.0,
                      "in_prose": 1.0 if sum(1 for w in line.text.split() if w[:1].islower() and len(w) > 2) >= 3
                      else 0.0})
            found.append(Candidate(typed, line.index, features=f))
            count += 1
    _same_value(found)
    return found


def times(page: Page) -> list[Candidate]:
    found: list[Candidate] = []
    for line in page.lines:
        for start, _end, typed in fieldtypes.find_times(line.text):
            f = _position(page, line)
            f.update(_context(page, line, start))
            f.update({"with_date": 1.0 if fieldtypes.find_dates(line.text) else 0.0,
                      "seconds": 1.0 if typed.value.count(":") == 2 else 0.0, "first": 1.0 if not found else 0.0})
            found.append(Candidate(typed, line.index, features=f))
    return found


def phones(page: Page) -> list[Candidate]:
    found: list[Candidate] = []
    for line in page.lines:
        for start, _end, typed in fieldtypes.find_phones(line.text):
            f = _position(page, line)
            f.update(_context(page, line, start))
            f.update({"first": 1.0 if not found else 0.0, "digits": len(typed.value) / 15})
            found.append(Candidate(typed, line.index, features=f))
    return found


_ID = re.compile(r"(?<![\w])([A-Z0-9][A-Z0-9\-/.]{2,24}[A-Z0-9])(?![\w])", re.IGNORECASE)


def ids(page: Page) -> list[Candidate]:
    """Tokens that look like a document number: letters and digits, at least one digit."""
    found = []
    for line in page.lines:
        dated = fieldtypes.find_dates(line.text) + fieldtypes.find_money(line.text)
        for m in _ID.finditer(line.text):
            token = m.group(1)
            if not re.search(r"\d", token) or any(s <= m.start() < e for s, e, _ in dated if "." in line.text[s:e] or
                                                   "," in line.text[s:e] or "/" in line.text[s:e]):
                continue
            f = _position(page, line)
            f.update(_context(page, line, m.start()))
            f.update({"digits": sum(ch.isdigit() for ch in token) / len(token), "length": min(len(token), 20) / 20,
                      "letters": 1.0 if re.search(r"[A-Za-z]", token) else 0.0,
                      "after_colon": 1.0 if ":" in line.text[:m.start()] or "#" in line.text[:m.start()] else 0.0})
            found.append(Candidate(fieldtypes.Typed("id", token, token), line.index, features=f))
    return found


def _text_shape(text: str) -> dict[str, float]:
    letters = [ch for ch in text if ch.isalpha()]
    lines = text.splitlines() or [text]
    lower_words = sum(1 for w in text.split() if w[:1].islower() and len(w) > 2)
    return {"upper": sum(ch.isupper() for ch in letters) / max(len(letters), 1),
            "alpha": len(letters) / max(len(text), 1), "digit": sum(ch.isdigit() for ch in text) / max(len(text), 1),
            "words": min(len(text.split()), 8) / 8, "chars": min(len(text), 40) / 40,
            # prose (a sentence of the letter) and "label: value" notes are no name or address
            "long_line": 1.0 if max(len(line) for line in lines) > 48 else 0.0,
            "prose": 1.0 if lower_words >= 4 or text.rstrip().endswith(".") and lower_words >= 2 else 0.0,
            "label_colon": 1.0 if re.search(r"\w\s?:\s?\S", text) and not re.search(r"\d:\d", text) else 0.0}


# Legal forms of a business: a line holding one is the company's registered name (the name a
# logo stands for is often printed again this way at the foot of the slip).
_LEGAL_FORM = re.compile(r"(?<![a-z])(gmbh|mbh|ltd|limited|inc|llc|sdn\.? ?bhd|bhd|plc|pty|corp|s\.?a\.?r\.?l|"
                         r"s\.?r\.?l|s\.a|s\.l|b\.?v|e\.k|ohg|kg|ag|& ?co|co\.|a\.g\.|e\.v\.|gbr|kgaa)(?![a-z])",
                         re.IGNORECASE)


def _words(text: str) -> set[str]:
    """The distinctive words of a line: four letters or more, lower case."""
    return {w for w in re.findall(r"[^\W\d_]{4,}", text.lower())}


def squash(text: str) -> str:
    """A name as compared across a page: letters and digits only, case folded."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _echo(page: Page, group: list[Line]) -> dict[str, float]:
    """Whether a candidate's words are printed again in a legal name further down the page
    (``ALDI GmbH & Co. KG`` at the foot under an ``ALDI`` logo): an advertisement or a logo's
    marks seldom are. ``echo`` is the share of its distinctive words found there (other lines
    are no evidence: an item's or a discount's words repeat among the items)."""
    words = _words(" ".join(g.text for g in group))
    if not words:
        return {"no_words": 1.0}
    last = max(g.index for g in group)
    elsewhere: set[str] = set()
    for other in page.lines[last + 1:]:
        if _LEGAL_FORM.search(other.text) and not _money_line(other):
            elsewhere |= _words(other.text)
    share = len(words & elsewhere) / len(words)
    # a legal name further down that does not repeat these words: they may be a logo's marks
    unechoed = 1.0 if elsewhere and not share else 0.0
    return {"echo": share, "echo_any": 1.0 if share else 0.0, "repeat_line": _repeat_line(page, group),
            "legal_below_unechoed": unechoed}


def _repeat_line(page: Page, group: list[Line]) -> float:
    """1.0 when the candidate's text is printed again as a line of its own further down, away
    from the items (a card slip names the merchant again); a word repeated among the items, a
    modifier under each dish, is not."""
    text = re.sub(r"\W", "", " ".join(g.text for g in group).lower())
    last = max(g.index for g in group)
    for other in page.lines[last + 3:]:
        if re.sub(r"\W", "", other.text.lower()) != text:
            continue
        around = page.lines[max(other.index - 1, 0):other.index + 2]
        if not any(_money_line(a) for a in around):
            return 1.0
    return 0.0


def _name_features(page: Page, group: list[Line]) -> dict[str, float]:
    text = " ".join(g.text for g in group)
    f = _echo(page, group)
    f["legal_form"] = 1.0 if _LEGAL_FORM.search(text) else 0.0
    f["exclaim"] = 1.0 if re.search(r"[!?]", text) else 0.0
    if len(group) == 2:  # "CHO EUN" over "KOREAN RESTAURANT": a name and the kind of business
        f["kind_second"] = 1.0 if _kind_line(group[1]) else 0.0
    elif group[0].index > 0 and _kind_line(group[0]):  # the kind of business alone, under the name
        above = page.lines[group[0].index - 1]
        f["kind_under_text"] = 1.0 if sum(ch.isalpha() for ch in above.text) >= 3 and not above.keywords else 0.0
    return f


_STORE_NUMBER = re.compile(r"#\s?\d{1,6}\b|\b(?:store|no|nr|unit|branch|outlet)\.?:?\s?#?\d{1,6}\b", re.IGNORECASE)


def _name_block(page: Page, group: list[Line], tallest: float) -> dict[str, float]:
    """A shop's name is the tallest print at the top and is printed whole: a candidate that
    leaves out a line of the same print just above or below it holds part of the name (``CIR``
    over ``CENTRAL``, ``VOLUME ONE`` over ``BOOKSHOP``). Print is known only on a ``boxed`` page:
    plain text's lines are all alike, so there only the store number is told."""
    first, last = group[0], group[-1]
    text = " ".join(g.text for g in group)
    f = {"store_number": 1.0 if _STORE_NUMBER.search(text) else 0.0}
    if not page.boxed:
        return f
    height = max(g.height for g in group)
    above = page.lines[first.index - 1] if first.index > 0 else None
    below = page.lines[last.index + 1] if last.index + 1 < len(page.lines) else None
    f.update({"tallest": 1.0 if height >= 0.9 * tallest else 0.0, "height_top": height / max(tallest, 1.0),
              "cut_above": 1.0 if above is not None and _same_print(above, first) else 0.0,
              "cut_below": 1.0 if below is not None and _same_print(last, below) else 0.0})
    return f


def _same_print(upper: Line, lower: Line) -> bool:
    """Two lines of one block of print: about the same letter height, close under each other,
    both mostly letters and neither a labelled line (an address, a total, a header)."""
    ratio = upper.height / max(lower.height, 1.0)
    gap = lower.box[1] - upper.box[3]
    wordy = all(sum(ch.isalpha() for ch in g.text) >= 3 and sum(ch.isdigit() for ch in g.text) <= 2
                for g in (upper, lower))
    labelled = any(set(g.keywords) - {"company"} for g in (upper, lower))
    return 0.8 <= ratio <= 1.25 and gap < 0.8 * max(upper.height, lower.height) and wordy and not labelled


def _kind_line(line: Line) -> bool:
    """A short line naming a kind of business (RESTAURANT, Bäckerei, KOREAN RESTAURANT)."""
    return "company" in line.keywords and len(line.text.split()) <= 3 and not _LEGAL_FORM.search(line.text)


def names(page: Page) -> list[Candidate]:
    """The first lines of the page, one or two at a time, as a merchant's or vendor's name."""
    found = []
    seen_text = 0
    columns = columned(page)
    top = [line for line in page.lines if line.row < NAME_LINES] if columns else page.lines[:NAME_LINES]
    tallest = max((line.height for line in top if sum(ch.isalpha() for ch in line.text) >= 2), default=1.0)
    for line in top:
        if sum(ch.isalpha() for ch in line.text) < 2 or _currency_word(line.text):
            continue  # a column header "EUR" is no name
        for span in (1, 2):
            group = _chain(page, line, span, columns)
            if len(group) < span:
                break
            text = "\n".join(g.text for g in group)
            f = _position(page, line)
            del f["bottom_half"]  # among the first lines of a short receipt, not a sign of the foot's legal name
            f.update(_kw_features("kw_", line.keywords))
            previous = line.above if columns else line.index - 1
            if previous is not None and previous >= 0:  # a label above the name (Seller, Lieferant)
                f.update(_kw_features("kwprev_", page.lines[previous].keywords))
            if columns:
                f.update(_block_features(page, group))
            f.update(_text_shape(text))
            f.update({"rank": seen_text / NAME_LINES, "first": 1.0 if seen_text == 0 else 0.0,
                      "two_lines": 1.0 if span == 2 else 0.0,
                      "typed": 1.0 if any(fieldtypes.find(k, text) for k in ("date", "phone", "email")) else 0.0,
                      "money": 1.0 if fieldtypes.find_money(text) and re.search(r"[.,]\d{2}\b", text) else 0.0,
                      "postcode": 1.0 if re.search(r"(?<!\d)\d{4,6}(?!\d)", text) else 0.0})
            if page.boxed:
                f["same_height"] = 1.0 if span == 2 and abs(group[0].height - group[1].height) < 0.2 * group[0].height \
                    else 0.0
            if span == 2:
                f.update(_kw_features("kw2_", group[1].keywords))
            f.update(_name_goes_on(page, group, columns))
            f.update(_followed_by_address(page, group[-1].index + 1, group[-1] if columns else None))
            f.update(_name_features(page, group))
            if not columns:
                f.update(_name_block(page, group, tallest))
            f["other_script"] = _other_script(text)
            f["currency_only"] = 1.0 if fieldtypes.currency_of(text) and len(text.strip()) <= 4 else 0.0
            found.append(Candidate(fieldtypes.Typed("string", " ".join(g.text for g in group), text), line.index,
                                   span, f, tuple(g.index for g in group) if columns else ()))
        seen_text += 1
    for line in page.lines[len(top):]:  # a company line further down (the legal name printed at the foot)
        if "company" in line.keywords and sum(ch.isalpha() for ch in line.text) >= 4:
            f = _position(page, line)
            f.update(_kw_features("kw_", line.keywords))
            f.update(_text_shape(line.text))
            f.update({"rank": 1.0, "below_top": 1.0})
            f.update(_name_features(page, [line]))
            found.append(Candidate(fieldtypes.Typed("string", line.text, line.text), line.index, 1, f))
    return found


def _name_goes_on(page: Page, group: list[Line], columns: bool) -> dict[str, float]:
    """A company's name broken over two lines carries its legal form on the last ("MVM
    Musterhafter" over "Versicherungsverein Musterstadt a.G."): a line without one whose next line
    in the block, of the same print, has one holds only the name's start (told on ``boxed`` pages
    only: plain text's lines are all of one print)."""
    last = group[-1]
    text = " ".join(g.text for g in group)
    f = {"legal_last_only": 1.0 if len(group) > 1 and _LEGAL_FORM.search(last.text) and
         not _LEGAL_FORM.search(group[0].text) else 0.0}
    if page.boxed:
        below = _chain(page, group[-1], 2, columns)[1:]
        same = bool(below) and abs(below[0].height - last.height) < 0.2 * last.height and \
            below[0].box[1] - last.box[3] < 0.8 * last.height and not below[0].keywords.keys() - {"company"}
        f["legal_below"] = 1.0 if same and not _LEGAL_FORM.search(text) and _LEGAL_FORM.search(below[0].text) else 0.0
    return f


_POSTCODE = re.compile(r"(?<![\d.,])\d{4,6}(?![\d.,])")


def _followed_by_address(page: Page, after: int, column_of: Line | None = None) -> dict[str, float]:
    """Whether the lines after a name read like its address (a shop's name sits on top of it):
    the next lines, or with ``column_of`` the lines below that one in its column."""
    out = {}
    following = _chain(page, column_of, 3, True)[1:] if column_of is not None else page.lines[after:after + 2]
    for nxt, tag in zip(following, ("next", "next2")):
        if "street" in nxt.keywords or _POSTCODE.search(nxt.text):
            out[f"{tag}_address"] = 1.0
    return out


def _currency_word(text: str) -> bool:
    word = text.strip().upper()
    return word in fieldtypes.ISO_CURRENCIES or word in fieldtypes.CURRENCY_SIGNS


def _other_script(text: str) -> float:
    """The share of letters outside the Latin script (a QR code or logo read as CJK marks)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ord(ch) > 0x2FF for ch in letters) / max(len(letters), 1)


# A postcode as addresses write it: beside a place name (``85630 Grasbrunn``, ``D-20095
# Hamburg``, ``Omaha, NE 68154``, ``CHENNAI-600096``; not a number after ``#`` or ``:``) or
# in the British and Canadian letter-digit forms (``LE65 2FH``, ``V3S 9N7``); a bare number
# of four to six digits is as often a transaction's or an item's.
_ZIP_PLACE = re.compile(
    r"(?<![\w.,#])(?<!#\s)(?<!:\s)(?:[A-Z]{1,2}-)?\d{4,6}(?:-\d{4})?\s+[^\W\d_]{3,}"
    r"|[^\W\d_]{3,},?\s+[A-Z]{2}\.?,?\s+\d{5}(?:-\d{4})?(?![\d.,])"
    r"|[^\W\d_]{3,}\s?-\s?\d{5,6}(?![\d.,])"
    r"|(?<![A-Za-z0-9])[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}(?![A-Za-z0-9])"
    r"|(?<![A-Za-z0-9])[A-Z]\d[A-Z]\s?\d[A-Z]\d(?![A-Za-z0-9])")


def runs(page: Page, first: int = 0, last: int = ADDRESS_LINES) -> list[Candidate]:
    """Runs of one to ``MAX_RUN`` consecutive lines among the first lines (rows, when the page's
    rows are parted into pieces: then a run goes down its column): an address, a party."""
    found = []
    columns = columned(page)
    top = [line for line in page.lines if first <= line.row < last] if columns else page.lines[first:last]
    for i, line in enumerate(top):
        for span in range(1, MAX_RUN + 1):
            group = _chain(page, line, span, True) if columns else top[i:i + span]
            if len(group) < span:
                break
            text = "\n".join(g.text for g in group)
            f = _position(page, line)
            f.update(_text_shape(text))
            f.update({"span": span / MAX_RUN, f"span{span}": 1.0, "rank": (line.index - first) / max(last - first, 1),
                      "postcode": 1.0 if re.search(r"(?<![\d.,])\d{4,6}(?![\d.,])", text) else 0.0,
                      "zip_place": 1.0 if _ZIP_PLACE.search(text) else 0.0,
                      "house_number": 1.0 if re.search(r"(?<![\d.,])\d{1,4}[a-zA-Z]?(?![\d.,:])", text) else 0.0,
                      "comma": min(text.count(","), 3) / 3,
                      "phone": 1.0 if fieldtypes.find_phones(text) else 0.0,
                      "date": 1.0 if fieldtypes.find_dates(text) else 0.0,
                      "money": 1.0 if re.search(r"\d[.,]\d{2}\b", text) else 0.0,
                      "url": 1.0 if re.search(r"www\.|https?:|@|\.com\b|\.de\b", text.lower()) else 0.0})
            f.update(_street_shape(group))
            for k, g in enumerate(group):
                for name in g.keywords:
                    f[f"kw_{name}"] = f.get(f"kw_{name}", 0.0) + 1.0 / span
                    if k == span - 1:
                        f[f"kwlast_{name}"] = 1.0
            previous = line.above if columns else line.index - 1
            if previous is not None and previous >= 0:
                f.update(_kw_features("kwprev_", page.lines[previous].keywords))
            after = group[-1].below if columns else line.index + span
            if after is not None and after < len(page.lines):
                nxt = page.lines[after]
                f["next_postcode"] = 1.0 if re.search(r"(?<![\d.,])\d{4,6}(?![\d.,])", nxt.text) else 0.0
                f.update(_kw_features("kwafter_", nxt.keywords))
            if columns:
                f.update(_block_features(page, group))
                f["rank"] = (line.row - first) / max(last - first, 1)
            found.append(Candidate(fieldtypes.Typed("address", ", ".join(g.text for g in group), text), line.index,
                                   span, f, tuple(g.index for g in group) if columns else ()))
    return found


_STREET_WORD = re.compile(r"\w(?:straße|strasse|str\.|weg|platz|allee|gasse|damm|ring|ufer|chaussee)(?:\s|$|,)"
                          r"|\b(?:rue|avenue|chemin|boulevard|bd|place|impasse|allée|via|calle|street|road|lane)\b",
                          re.IGNORECASE)


def _street_shape(group: list[Line]) -> dict[str, float]:
    """Whether a run reads as street then place: the first line a street with a house number,
    the last a postcode and a town (the order of postal addresses in most countries)."""
    first, last = group[0].text, group[-1].text
    street = bool(_STREET_WORD.search(first) or "street" in group[0].keywords) and bool(re.search(r"\d", first))
    # the postcode and the town close an address in most countries: a run going on past them
    # has taken the next line of the head (opening hours, a note, a register line)
    place = [k for k, g in enumerate(group) if _ZIP_PLACE.search(g.text)]
    return {"past_place": 1.0 if place and place[-1] < len(group) - 1 else 0.0,
            "street_first": 1.0 if street else 0.0,
            "postcode_last": 1.0 if re.match(r"^(?:[A-Z]{1,2}-)?\d{4,5}\s+\w", last.strip()) or
            re.search(r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b", last) else 0.0,
            "postcode_first": 1.0 if re.match(r"^(?:[A-Z]{1,2}-)?\d{4,5}\s+\w", first.strip()) else 0.0}


_STREET_NUMBER = re.compile(r"(?<![\d.,])\d{1,5}[a-zA-Z]?(?![\d.,:])")


def addresses(page: Page) -> list[Candidate]:
    """Runs among the first lines (``runs``), and further down the page the runs that read like
    an address: some receipts print the shop's address at the foot, under the last amounts.
    A run there holds a line with a street word, a compound street or a postcode, and no
    amount."""
    found = runs(page)
    for line in page.lines[ADDRESS_LINES:]:
        for span in range(1, MAX_RUN):
            group = page.lines[line.index:line.index + span]
            if len(group) < span or any(_money_line(g) for g in group):
                break
            if not any(_street_or_postcode(g) for g in group):
                continue
            cand = runs(page, line.index, line.index + span)
            found.extend(c for c in cand if c.line == line.index and c.lines == span)
    for c in found:
        if c.line >= ADDRESS_LINES:
            c.features["below_top"], c.features["rank"] = 1.0, 1.0
        group = page.lines[c.line:c.line + c.lines]
        c.features["legal_form"] = 1.0 if any(_LEGAL_FORM.search(g.text) for g in group) else 0.0
        c.features["street_number"] = 1.0 if any(("street" in g.keywords and _STREET_NUMBER.search(g.text))
                                                 or _COMPOUND_STREET.search(g.text) for g in group) else 0.0
    return found


# A street written as one word with its kind (Hauptstraße 5, Balkenweg 2, Lindenallee 12a)
_COMPOUND_STREET = re.compile(r"[^\W\d_]{3,}(?:straße|strasse|str\.|weg|platz|allee|ring|damm|gasse|laan|straat)"
                              r"\s*\d{1,4}", re.IGNORECASE)


def _street_or_postcode(line: Line) -> bool:
    return "street" in line.keywords or bool(_POSTCODE.search(line.text) or _COMPOUND_STREET.search(line.text))


def _money_line(line: Line) -> bool:
    return bool(re.search(r"\d[.,]\d{2}\b", line.text))


def _same_value(found: list[Candidate]) -> None:
    counts: dict[str, int] = {}
    for c in found:
        counts[str(c.value.value)] = counts.get(str(c.value.value), 0) + 1
    for c in found:
        c.features["repeated"] = min(counts[str(c.value.value)] - 1, 3) / 3


def feature_names() -> list[str]:
    """Every keyword group a feature may be keyed by (for documentation and tests)."""
    return list(GROUPS)
