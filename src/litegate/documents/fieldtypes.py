"""Typed fields: a value as printed on a document read into a normalized, checked one (ISO 8601
dates and times, decimal amounts with an ISO 4217 currency, phone numbers, e-mail addresses),
and detectors that find every candidate of a type in a text with its character span.

Each parser takes the text as printed and returns a ``Typed`` (normalized value, the text as
printed) or None when the text is not a value of that type. Ambiguous day/month orders are
read day first unless only month first makes a valid date (most of the world writes the day
first); ``Typed.ambiguous`` says when both readings were valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

TYPES = ("string", "date", "time", "money", "number", "address", "phone", "email", "id")
MULTILINE = {"address", "string"}  # types whose values may run over several lines (an address, a name)

MONTHS = {name: i for i, names in enumerate([
    ("jan", "january", "januar", "janvier", "enero", "gennaio", "januari"),
    ("feb", "february", "februar", "fevrier", "février", "febrero", "febbraio", "februari", "feber"),
    ("mar", "march", "märz", "maerz", "mars", "marzo", "maret", "mrz"),
    ("apr", "april", "avril", "abril", "aprile"),
    ("may", "mai", "mayo", "maggio", "mei"),
    ("jun", "june", "juni", "juin", "junio", "giugno"),
    ("jul", "july", "juli", "juillet", "julio", "luglio"),
    ("aug", "august", "aout", "août", "agosto", "agustus", "agu"),
    ("sep", "sept", "september", "septembre", "septiembre", "settembre"),
    ("oct", "october", "oktober", "octobre", "octubre", "ottobre", "okt"),
    ("nov", "november", "novembre", "noviembre", "nop"),
    ("dec", "december", "dezember", "decembre", "décembre", "diciembre", "dicembre", "des", "dez"),
], 1) for name in names}

# symbols and words that name a currency; "$" alone is read as USD (the most common), noted as a guess
CURRENCY_SIGNS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW",
                  "₫": "VND", "฿": "THB", "₱": "PHP", "RM": "MYR", "RP": "IDR", "S$": "SGD", "A$": "AUD",
                  "C$": "CAD", "HK$": "HKD", "NZ$": "NZD", "R$": "BRL", "FR.": "CHF", "KR": "SEK", "ZŁ": "PLN",
                  "EURO": "EUR", "EUROS": "EUR", "DM": "DEM"}
ISO_CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CNY", "INR", "KRW", "VND", "THB", "PHP", "MYR", "IDR", "SGD",
                  "AUD", "CAD", "HKD", "NZD", "BRL", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "MXN",
                  "ZAR", "TRY", "AED", "SAR", "RUB", "ILS", "TWD"}


@dataclass
class Typed:
    """A value of a type: ``value`` normalized (JSON-ready), ``text`` as printed."""

    type: str
    value: Any
    text: str
    ambiguous: bool = False
    currency: str | None = None  # money only
    amount: float | None = None  # money only

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "text": self.text, "type": self.type}
        if self.type == "money":
            out["amount"], out["currency"] = self.amount, self.currency
        return out


# ---- dates and times -------------------------------------------------------------------------

# a four-digit year may run straight into the time after it when a scan loses the space (18.05.202016:07);
# two digits followed by a colon and minutes are the hour of a time after a day and month printed
# without a year (a card slip's "20.05. 14:57"), not a year
_NUMERIC_DATE = re.compile(r"(?<![\d.])(\d{1,4})\s?([./\-])\s?(\d{1,2})\s?\2\s?"
                           r"(\d{4}(?=\d{1,2}:\d\d)|\d{3,4}(?!\d)|\d{2}(?!\d)(?!\s?[:h]\s?[0-5]\d))")
_WORD_DATE = re.compile(r"(?<![\w])(\d{1,2})(?:st|nd|rd|th)?[\s.\-/]*([A-Za-zÀ-ÿ]{3,9})\.?[\s.\-/,]*(\d{2,4})(?!\d)")
_WORD_DATE_US = re.compile(r"(?<![\w])([A-Za-zÀ-ÿ]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)")
_COMPACT_DATE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")


def _year(y: str) -> int:
    n = int(y)
    return n + 2000 if len(y) == 2 and n < 70 else n + 1900 if len(y) == 2 else n


def _make(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d) if 1900 <= y <= 2100 else None
    except ValueError:
        return None


def _numeric(a: str, b: str, c: str, day_first: bool = True) -> tuple[date | None, bool]:
    if len(a) == 4:  # year first: 2020-03-02, 2020/3/2
        return _make(int(a), int(b), int(c)), False
    if len(a) == 3 or len(c) == 3:
        return None, False
    y = _year(c)
    dmy, mdy = _make(y, int(b), int(a)), _make(y, int(a), int(b))
    if dmy and mdy and dmy != mdy:
        return (dmy if day_first else mdy), True
    return dmy or mdy, False


def find_dates(text: str, day_first: bool = True) -> list[tuple[int, int, Typed]]:
    """Every date written in ``text``: (start, end, Typed with an ISO 8601 value)."""
    found: list[tuple[int, int, Typed]] = []
    taken: list[tuple[int, int]] = []

    def add(m: re.Match[str], value: date | None, ambiguous: bool = False) -> None:
        if value is None or any(s < m.end() and m.start() < e for s, e in taken):
            return
        taken.append((m.start(), m.end()))
        found.append((m.start(), m.end(), Typed("date", value.isoformat(), m.group(0), ambiguous)))

    for m in _NUMERIC_DATE.finditer(text):
        add(m, *_numeric(m.group(1), m.group(3), m.group(4), day_first))
    for m in _month_matches(_WORD_DATE, text, 2):
        add(m, _make(_year(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1))))
    for m in _month_matches(_WORD_DATE_US, text, 1):
        add(m, _make(int(m.group(3)), MONTHS[m.group(1).lower()], int(m.group(2))))
    for m in _COMPACT_DATE.finditer(text):
        add(m, _make(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return sorted(found, key=lambda f: f[0])


def _month_matches(pattern: re.Pattern[str], text: str, group: int) -> list[re.Match[str]]:
    """``pattern``'s matches whose word ``group`` is a month. A word that is no month does not
    hide a date that overlaps it: in "3 CLOSED 23 Nov 17" the search goes on from "CLOSED"."""
    out, pos = [], 0
    while (m := pattern.search(text, pos)) is not None:
        if m.group(group).lower() in MONTHS:
            out.append(m)
            pos = m.end()
        else:
            pos = m.start() + 1
    return out


@dataclass
class ParsedDate:
    value: date
    text: str
    ambiguous: bool


def parse_date(text: str, day_first: bool = True) -> ParsedDate | None:
    """The first date in ``text`` (a value may carry a time or a label beside it)."""
    dates = find_dates(text, day_first)
    if not dates:
        return None
    t = dates[0][2]
    return ParsedDate(date.fromisoformat(t.value), t.text, t.ambiguous)


_TIME = re.compile(r"(?<![\d:.])([01]?\d|2[0-3])\s?[:.h]\s?([0-5]\d)(?:\s?:\s?([0-5]\d))?(?:\s?([AaPp])\.?\s?[Mm]\.?)?"
                   r"(?![\d])")


def find_times(text: str) -> list[tuple[int, int, Typed]]:
    out = []
    for m in _TIME.finditer(text):
        hour, minute, second, half = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        if "." in m.group(0) and not half and not second:
            continue  # 12.50 is an amount far more often than a time
        if half:
            if hour > 12 or hour == 0:
                continue
            hour = hour % 12 + (12 if half.lower() == "p" else 0)
        value = f"{hour:02d}:{minute:02d}" + (f":{int(second):02d}" if second else "")
        out.append((m.start(), m.end(), Typed("time", value, m.group(0))))
    return out


# ---- amounts ---------------------------------------------------------------------------------

_SIGN_WORDS = sorted(CURRENCY_SIGNS, key=len, reverse=True)
_CUR = "(?:" + "|".join(re.escape(s) for s in _SIGN_WORDS) + "|" + "|".join(sorted(ISO_CURRENCIES)) + ")"
_NUMBER = r"[-–]?\d{1,3}(?:[ .,'’]\d{3})+(?:[.,]\d{1,2})?|[-–]?\d+(?:[.,]\d{1,2})?"
_MONEY = re.compile(rf"(?<![\w.,/#:])(?:({_CUR})\s?)?({_NUMBER})(?:\s?({_CUR}))?(?![\w/]|[.,]\d)", re.IGNORECASE)


def parse_number(text: str) -> Decimal | None:
    """A number as printed: 1,234.56 / 1.234,56 / 1 234,56 / 12,50 / 28.000 (thousands)."""
    s = text.strip().replace("–", "-").replace("’", "'").replace(" ", "").replace("'", "")
    if not re.fullmatch(r"-?[\d.,]+", s) or not re.search(r"\d", s):
        return None
    last = max(s.rfind("."), s.rfind(","))
    if last >= 0:
        head, tail = s[:last], s[last + 1:]
        seps = set(re.sub(r"[\d-]", "", head))
        if len(tail) == 3 and (not seps or seps == {s[last]}):
            s = s.replace(s[last], "")  # 28.000 and 1,234,567: thousands separators only
        else:
            s = re.sub(r"[.,]", "", head) + "." + tail
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def _currency(sign: str | None) -> str | None:
    if not sign:
        return None
    up = sign.upper()
    return up if up in ISO_CURRENCIES else CURRENCY_SIGNS.get(up)


def find_money(text: str, default_currency: str | None = None) -> list[tuple[int, int, Typed]]:
    """Every amount in ``text`` that could be money: a number with at most two decimals, with
    its currency when one is written beside it."""
    out = []
    for m in _MONEY.finditer(text):
        amount = parse_number(m.group(2))
        if amount is None or len(re.sub(r"\D", "", m.group(2))) > 9:
            continue  # a barcode, an account or card number: no amount on a receipt has ten digits
        currency = _currency(m.group(1) or m.group(3)) or default_currency
        value = f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else str(amount)
        out.append((m.start(), m.end(), Typed("money", value, m.group(0).strip(), currency=currency,
                                              amount=float(amount))))
    return out


@dataclass
class Money:
    amount: float
    currency: str | None
    text: str


def parse_money(text: str, default_currency: str | None = None) -> Money | None:
    """The amount in ``text``: the last one written, as totals are printed after their label."""
    found = find_money(text, default_currency)
    if not found:
        return None
    t = found[-1][2]
    currency = t.currency or next((f[2].currency for f in found if f[2].currency), None)
    return Money(t.amount or 0.0, currency, t.text)


def currency_of(text: str) -> str | None:
    """The currency a document is written in: the most common one named in it."""
    counts: dict[str, int] = {}
    for m in re.finditer(rf"(?<![A-Za-z]){_CUR}(?![A-Za-z])", text, flags=re.IGNORECASE):
        code = _currency(m.group(0))
        if code and not (m.group(0) == "$" and False):
            counts[code] = counts.get(code, 0) + 1
    return max(counts, key=lambda c: counts[c]) if counts else None


# ---- contact details and ids -----------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w+])(\+?\(?\d[\d ()/.\-]{5,18}\d)(?![\w])")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def find_phones(text: str) -> list[tuple[int, int, Typed]]:
    out = []
    for m in _PHONE.finditer(text):
        raw = m.group(1)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or find_dates(raw) or re.fullmatch(r"[\d.,]+", raw):
            continue
        out.append((m.start(1), m.end(1), Typed("phone", ("+" if raw.startswith("+") else "") + digits, raw)))
    return out


def find_emails(text: str) -> list[tuple[int, int, Typed]]:
    return [(m.start(), m.end(), Typed("email", m.group(0).lower(), m.group(0))) for m in _EMAIL.finditer(text)]


# ---- one entry point -------------------------------------------------------------------------

def normalize(kind: str, text: str, default_currency: str | None = None) -> Typed | None:
    """``text`` (a value as printed) read as a value of type ``kind``, or None when it is not
    one (a date field whose text holds no date). Whitespace of strings and addresses is
    collapsed; their line breaks become ", "."""
    if kind not in TYPES:
        raise ValueError(f"unknown field type {kind!r}; one of {', '.join(TYPES)}")
    text = text.strip()
    if not text:
        return None
    if kind == "date":
        d = parse_date(text)
        return Typed("date", d.value.isoformat(), d.text, d.ambiguous) if d else None
    if kind == "time":
        times = find_times(text)
        return times[0][2] if times else None
    if kind == "money":
        m = parse_money(text, default_currency)
        if m is None:
            return None
        return Typed("money", f"{m.amount:.2f}", m.text, currency=m.currency, amount=m.amount)
    if kind == "number":
        n = parse_number(re.sub(r"[^\d.,\-' ]", "", text))
        return Typed("number", float(n), text) if n is not None else None
    if kind == "phone":
        phones = find_phones(text)
        return phones[0][2] if phones else None
    if kind == "email":
        emails = find_emails(text)
        return emails[0][2] if emails else None
    if kind == "id":
        return Typed("id", re.sub(r"\s+", "", text), text)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return Typed(kind, ", ".join(lines), text)


def find(kind: str, text: str, default_currency: str | None = None) -> list[tuple[int, int, Typed]]:
    """Candidates of type ``kind`` in ``text`` (dates, times, money, phones, e-mails)."""
    finders = {"date": find_dates, "time": find_times, "phone": find_phones, "email": find_emails}
    if kind == "money":
        return find_money(text, default_currency)
    return finders[kind](text) if kind in finders else []
