"""Values a conversation states, in the notations people write them: numbers ("$2,000,000",
"2.5 million", "15%", "3k", "twenty-five"), currencies by name or code ("US dollars" = USD),
units by name or symbol ("kilometers" = km) and dates (written out or relative to today).

The argument check (chat/grounding.py) asks here whether a value a model put in a tool call is
one of these, so a call that copies the user's "$2,000,000" as ``2000000`` counts as taken from
the conversation rather than made up.
"""

from __future__ import annotations

import datetime as dt
import re

# -- numbers ---------------------------------------------------------------------------------------

_SMALL = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * n for n, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "mm": 1e6,
           "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12, "lakh": 1e5, "crore": 1e7}
_WORDS = {**_SMALL, **_TENS, "a": 1, "an": 1, "single": 1, "once": 1, "twice": 2, "couple": 2, "pair": 2,
          "dozen": 12, "half": 0.5, "quarter": 0.25, "third": 1 / 3, "double": 2, "triple": 3}
# digits with optional thousands separators (1,000,000 or 1 000 000 or 1'000) and decimals
_DIGITS = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:[,'’\u202f\u00a0]\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?"
                     r"|(?<![\w.])[-−]?\.\d+", re.IGNORECASE)
_AFTER = re.compile(r"\s*(hundred|thousand|million|billion|trillion|lakh|crore|bn|mn|mm|tn|k|m|b)\b\.?",
                    re.IGNORECASE)
_FRACTION = re.compile(r"(?<![\w/])(\d+)\s*/\s*(\d+)(?![\w/])")
_WORD_RUN = re.compile(r"[a-z]+(?:[\s-]+[a-z]+)*")


def _parse_digits(text: str) -> float:
    return float(re.sub(r"[,'’\u202f\u00a0]", "", text).replace("−", "-"))


def _word_numbers(text: str) -> set[float]:
    """Numbers written in words: "twenty-five", "two hundred", "a dozen", "one and a half"."""
    out: set[float] = set()
    for run in _WORD_RUN.findall(text.lower()):
        total, current, seen = 0.0, 0.0, False
        for word in re.split(r"[\s-]+", run):
            if word in _WORDS and word not in ("a", "an"):
                if word in ("half", "quarter", "third") and seen:
                    out.add(total + current + _WORDS[word])  # "one and a half"
                current += _WORDS[word]
                seen = True
            elif word in _SCALES and len(word) > 2 and seen:
                if _SCALES[word] == 100:
                    current *= 100
                else:
                    total, current = total + current * _SCALES[word], 0.0
            elif word in ("a", "an", "and"):
                continue
            else:
                total, current, seen = 0.0, 0.0, False
                continue
            out.add(total + current)
    return out


_PERCENT = re.compile(r"\s*(?:%|percent\b|per cent\b|pct\b)", re.IGNORECASE)


def numbers(text: str) -> set[float]:
    """Every number the text states, and the forms a value taken from it may have: "2.5 million"
    is 2.5 and 2500000; "15%" is 15 and 0.15; "3/4" is 3, 4 and 0.75."""
    out: set[float] = set()
    for m in _DIGITS.finditer(text):
        try:
            value = _parse_digits(m.group())
        except ValueError:
            continue
        out.add(value)
        scale = _AFTER.match(text, m.end())
        if scale:
            word = scale.group(1).lower()
            # a lone "m" or "b" after a number is a scale only when nothing but an end follows
            if word not in ("m", "b") or re.match(r"\s*(?:[^\w]|$)", text[scale.end():]):
                out.add(value * _SCALES[word])
        if _PERCENT.match(text, m.end()):
            out.add(value / 100)
    for m in _FRACTION.finditer(text):
        if int(m.group(2)):
            out.add(int(m.group(1)) / int(m.group(2)))
    out |= _word_numbers(text)
    return out


def percents(text: str) -> set[float]:
    """The numbers the text states as percentages: 15 for "15%" or "15 percent"."""
    out: set[float] = set()
    for m in _DIGITS.finditer(text):
        if _PERCENT.match(text, m.end()):
            try:
                out.add(_parse_digits(m.group()))
            except ValueError:
                continue
    return out


def as_number(value: object) -> float | None:
    """A call argument as a number: ints, floats and strings holding one number ("2,000", "15%")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        m = re.fullmatch(r"[$€£¥]?\s*([-−]?[\d,'’.]+(?:e[-+]?\d+)?)\s*%?", text, re.IGNORECASE)
        if m:
            try:
                return _parse_digits(m.group(1))
            except ValueError:
                return None
    return None


def number_stated(value: float, stated: set[float]) -> bool:
    """Whether ``value`` is one of the stated numbers (relative tolerance for rounding)."""
    return any(abs(value - s) <= 1e-6 * max(1.0, abs(s)) for s in stated)


# -- currencies and units --------------------------------------------------------------------------

# ISO 4217 codes and the names and symbols people write for them
CURRENCIES: dict[str, tuple[str, ...]] = {
    "USD": ("us dollar", "u.s. dollar", "american dollar", "dollar", "usd", "$", "us$", "bucks"),
    "EUR": ("euro", "eur", "€"),
    "GBP": ("british pound", "pound sterling", "pound", "sterling", "quid", "gbp", "£"),
    "JPY": ("japanese yen", "yen", "jpy", "¥"),
    "CNY": ("chinese yuan", "yuan", "renminbi", "rmb", "cny"),
    "CAD": ("canadian dollar", "cad", "c$"), "AUD": ("australian dollar", "aud", "a$"),
    "NZD": ("new zealand dollar", "nzd"), "CHF": ("swiss franc", "chf"), "INR": ("indian rupee", "rupee", "inr", "₹"),
    "MXN": ("mexican peso", "mxn"), "BRL": ("brazilian real", "real", "reais", "brl"),
    "KRW": ("south korean won", "korean won", "won", "krw", "₩"), "RUB": ("russian ruble", "rouble", "ruble", "rub"),
    "SEK": ("swedish krona", "swedish kronor", "sek"), "NOK": ("norwegian krone", "nok"),
    "DKK": ("danish krone", "dkk"), "PLN": ("polish zloty", "zloty", "pln"), "HKD": ("hong kong dollar", "hkd"),
    "SGD": ("singapore dollar", "sgd"), "ZAR": ("south african rand", "rand", "zar"),
    "TRY": ("turkish lira", "lira", "try"), "AED": ("uae dirham", "dirham", "aed"), "THB": ("thai baht", "baht"),
    "BTC": ("bitcoin", "btc"), "ETH": ("ether", "ethereum", "eth"),
}
# unit symbols and names (singular; plurals are found by their stem)
UNITS: dict[str, tuple[str, ...]] = {
    "km": ("kilometer", "kilometre"), "m": ("meter", "metre"), "cm": ("centimeter", "centimetre"),
    "mm": ("millimeter", "millimetre"), "mi": ("mile",), "ft": ("foot", "feet"), "in": ("inch",),
    "yd": ("yard",), "kg": ("kilogram", "kilo"), "g": ("gram",), "mg": ("milligram",), "lb": ("pound", "lbs"),
    "oz": ("ounce",), "l": ("liter", "litre"), "ml": ("milliliter", "millilitre"), "gal": ("gallon",),
    "s": ("second", "sec"), "min": ("minute",), "h": ("hour", "hr"), "ms": ("millisecond",),
    "c": ("celsius", "centigrade", "°c"), "f": ("fahrenheit", "°f"), "k": ("kelvin",),
    "kmh": ("km/h", "kph", "kilometers per hour"), "mph": ("miles per hour",), "m/s": ("meters per second",),
    "kwh": ("kilowatt hour",), "w": ("watt",), "kw": ("kilowatt",), "v": ("volt",), "a": ("ampere", "amp"),
    "hz": ("hertz",), "pa": ("pascal",), "atm": ("atmosphere",), "j": ("joule",), "n": ("newton",),
    "mol": ("mole",), "sqft": ("square foot", "square feet"), "acre": ("acres",),
}


def _alias_index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for code, names in table.items():
        index.setdefault(code.casefold(), code)
        for name in names:
            index.setdefault(name.casefold(), code)
    return index


_CURRENCY_INDEX = _alias_index(CURRENCIES)
_UNIT_INDEX = _alias_index(UNITS)
# unit names that are also everyday words ("the second circle", "a minute ago", "on foot"):
# a unit only right after a number
_UNIT_WORDS = frozenset({"second", "sec", "minute", "foot", "mole", "amp"})


def _mentioned(text: str, index: dict[str, str], min_symbol: int,
               after_number: frozenset[str] = frozenset()) -> set[str]:
    folded = text.casefold()
    found = set()
    for alias, code in index.items():
        if alias in after_number:
            if re.search(r"\d\s*-?\s*" + re.escape(alias) + r"(?:s|es)?(?![a-z])", folded):
                found.add(code)
            continue
        if len(alias) < min_symbol and alias.isalpha():
            pattern = r"(?<![a-z])" + re.escape(alias) + r"(?![a-z])"  # "m" only as a word of its own
            if re.search(r"\d\s*" + re.escape(alias) + r"(?![a-z])", folded):
                found.add(code)
            continue
        pattern = (r"(?<![a-z])" + re.escape(alias) + r"(?:s|es)?(?![a-z])") if alias[-1:].isalpha() \
            else re.escape(alias)
        if re.search(pattern, folded):
            found.add(code)
    return found


def currencies(text: str) -> set[str]:
    """ISO codes of the currencies the text names ("500 US dollars to Canadian dollars" -> USD, CAD)."""
    found = _mentioned(text, _CURRENCY_INDEX, 3)
    if "CAD" in found or "AUD" in found or "NZD" in found or "HKD" in found or "SGD" in found:
        # "Canadian dollars" says nothing about US dollars unless the US ones are named too
        if not re.search(r"\b(?:us|u\.s\.|american)\s+dollars?\b|\$|\busd\b", text, re.IGNORECASE):
            found.discard("USD")
    return found


def currency_code(value: str) -> str | None:
    return _CURRENCY_INDEX.get(value.strip().casefold().rstrip("s")) or _CURRENCY_INDEX.get(value.strip().casefold())


def units(text: str) -> set[str]:
    """Symbols of the units the text names ("5 kilometers" -> km; "5km" -> km)."""
    return _mentioned(text, _UNIT_INDEX, 3, _UNIT_WORDS)


def unit_symbol(value: str) -> str | None:
    key = value.strip().casefold()
    return _UNIT_INDEX.get(key) or _UNIT_INDEX.get(key.rstrip("s")) or (
        _UNIT_INDEX.get(key[:-2]) if key.endswith("es") else None)


# -- dates -----------------------------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate("january february march april may june july august september october "
                                           "november december".split())}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())}, sept=9)
_WEEKDAYS = {d: i for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())}
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_ISO = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_DMY = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b")
_MONTH_DAY = re.compile(_MONTH + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s*(\d{4}))?", re.IGNORECASE)
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"\.?(?:,?\s*(\d{4}))?", re.IGNORECASE)
_IN_DAYS = re.compile(r"\bin\s+(\w+)\s+(day|week)s?\b", re.IGNORECASE)


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def dates(text: str, today: dt.date | None = None) -> set[dt.date]:
    """Dates the text states: written out (2024-03-04, 4/3/2024 either way round, "March 4th,
    2024", "4 March") or relative to ``today`` ("today", "tomorrow", "next Friday", "in 3 days")."""
    today = today or dt.date.today()
    out: set[dt.date | None] = set()
    for y, mo, d in _ISO.findall(text):
        out.add(_date(int(y), int(mo), int(d)))
    for a, b, y in _DMY.findall(text):
        year = int(y) + (2000 if len(y) == 2 else 0)
        out |= {_date(year, int(a), int(b)), _date(year, int(b), int(a))}
    for mon, d, y in _MONTH_DAY.findall(text):
        out.add(_date(int(y) if y else today.year, _MONTHS[mon.lower()[:3] if mon.lower()[:4] != "sept" else "sept"],
                      int(d)))
    for d, mon, y in _DAY_MONTH.findall(text):
        out.add(_date(int(y) if y else today.year, _MONTHS[mon.lower()[:3] if mon.lower()[:4] != "sept" else "sept"],
                      int(d)))
    lowered = text.lower()
    relative = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2}
    for word, shift in relative.items():
        if re.search(r"\b" + word + r"\b", lowered):
            out.add(today + dt.timedelta(days=shift))
    for m in re.finditer(r"\b(?:(next|this|last|coming|on)\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|"
                         r"sunday)\b", lowered):
        ahead = (_WEEKDAYS[m.group(2)] - today.weekday()) % 7
        if m.group(1) == "last":
            out.add(today - dt.timedelta(days=(7 - ahead) % 7 or 7))
        else:
            out |= {today + dt.timedelta(days=ahead or 7), today + dt.timedelta(days=ahead + 7)}
    for n, unit in _IN_DAYS.findall(lowered):
        count = int(n) if n.isdigit() else _SMALL.get(n, _WORDS.get(n))
        if isinstance(count, (int, float)):
            out.add(today + dt.timedelta(days=int(count) * (7 if unit == "week" else 1)))
    return {d for d in out if d is not None}


def as_date(value: str) -> dt.date | None:
    """A call argument that is one date (ISO, with or without a time after it)."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+\S*)?\s*", value)
    return _date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


# -- values as a schema spells them ----------------------------------------------------------------

def _spelled(text: str) -> str:
    return re.sub(r"[\s_\-.]+", " ", text.strip().casefold())


def _enum_entry(value: str, allowed: list[object]) -> object | None:
    """The one entry of ``allowed`` that ``value`` names: the same up to case, spaces and
    underscores ("united states" for "United_States"), or the code of a currency or unit it names
    ("US dollars" for "USD", "kilometers" for "km"). None when no entry or several fit."""
    strings = [a for a in allowed if isinstance(a, str)]
    same = [a for a in strings if _spelled(a) == _spelled(value)]
    if len(same) == 1:
        return same[0]
    for code in (currency_code(value), unit_symbol(value)):
        coded = [a for a in strings if code is not None and a.casefold() == code.casefold()]
        if len(coded) == 1:
            return coded[0]
    return None


def conform(value: object, schema: object) -> object:
    """``value`` as ``schema`` spells it, where the two differ only in notation: an enum entry in
    another case or as a currency or unit name, a number written as a string ("2,000" for an
    integer). Anything else comes back unchanged, for the schema check to judge."""
    if not isinstance(schema, dict):
        return value
    allowed = schema.get("enum")
    if isinstance(value, str) and isinstance(allowed, list) and value not in allowed:
        entry = _enum_entry(value, allowed)
        return value if entry is None else entry
    kind = schema.get("type")
    if isinstance(value, str) and kind in ("integer", "number"):
        number = as_number(value)
        if number is None:
            return value
        if kind == "integer":
            return int(number) if number.is_integer() else value
        return number
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        return {k: conform(v, props.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [conform(v, schema["items"]) for v in value]
    return value
