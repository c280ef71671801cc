"""Typed value recognizers for the nano extractor: which words of a text can be part of a date,
a time, a duration, an amount or a number, the candidate spans they make, and what each is.

General English only (no field's values): a span's *kinds* are words such as ``date``, ``time``,
``period``, ``from``, ``to``, ``number``, ``money``, the same words fields tend to be named
with, so a field named ``date_from`` or described as "the start date" can be matched to a span
that reads as a date after "since" without any example of it (``litegate.nano.span_scorer``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORDS = {
    "month": "january february march april may june july august september october november december jan feb mar "
             "apr jun jul aug sep sept oct nov dec",
    "weekday": "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun",
    "numword": "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
               "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
               "million billion couple few several dozen",
    "ordword": "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
               "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth",
    "time_unit": "second seconds sec secs minute minutes min mins hour hours hr hrs",
    "date_unit": "day days week weeks fortnight fortnights month months year years yr yrs quarter quarters "
                 "weekend weekends decade decades semester",
    "dayword": "today tomorrow yesterday tonight now",
    "daypart": "morning afternoon evening night noon midday midnight",
    "relative": "last next this past previous coming current following each every recent upcoming same",
    "period_adverb": "lately recently daily weekly monthly yearly annually quarterly hourly nightly",
    "clockword": "o'clock oclock am pm half quarter",
    "currency": "$ € £ ¥ ₹ usd eur gbp chf jpy dollar dollars euro euros pound pounds cent cents bucks quid yen "
                "franc francs rupee rupees",
}
_KIND_OF: dict[str, set[str]] = {}
for _kind, _words in _WORDS.items():
    for _w in _words.split():
        _KIND_OF.setdefault(_w, set()).add(_kind)

# words that may sit inside a temporal expression between its parts ("the 4th of May", "10 past 9")
_GLUE = {"of", "the", "at", "in", "on", "past", "to", "and", "-", "/", "a", "an", "from", "until", "till", "between",
         "through", "since", ",", "."}
# words that may open a value ("in 10 days", "the 18th"); the learned scorer decides per field
_OPENERS = {"in", "the", "within", "a", "an"}
_START_CUES = {"from", "since", "starting", "after", "beginning", "between", "as"}
_END_CUES = {"to", "until", "till", "til", "through", "thru", "before", "by", "and", "-"}
_PERIOD_CUES = {"for", "during", "within", "over", "per"}
MAX_SPAN_WORDS = 8
KINDS = ("date", "time", "period", "from", "to", "number", "money", "amount", "name")
CLOCK = re.compile(r"\d{1,2}[:.]\d{2}")
ORDINAL = re.compile(r"\d{1,2}(?:st|nd|rd|th)")
YEAR = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True)
class Candidate:
    """Words ``start``..``end`` (exclusive) of a text, and what they read as."""

    start: int
    end: int
    kinds: frozenset[str]
    source: str  # "temporal", "amount", "number"


def word_kinds(words: list[str]) -> list[set[str]]:
    """Each word's kinds: month, weekday, number, ordinal, clock, units, currency..."""
    lower = [w.lower() for w in words]
    out: list[set[str]] = []
    for i, w in enumerate(lower):
        kinds = set(_KIND_OF.get(w, ()))
        if w[:1].isdigit():
            kinds.add("digits")
            if CLOCK.fullmatch(w):
                kinds.add("clock")
            elif ORDINAL.fullmatch(w):
                kinds.add("ordinal")
            elif YEAR.fullmatch(w):
                kinds.add("year")
        if w in ("am", "pm") and not (i and (lower[i - 1][:1].isdigit() or lower[i - 1] in _KIND_OF)):
            kinds.discard("clockword")  # "I am", not "9 am"
        if w in ("a", "p") and lower[i + 1:i + 3] == [".", "m"]:
            kinds.add("clockword")
        out.append(kinds)
    for i, w in enumerate(lower):  # a.m. / p.m. as four words, and the separators of 9/3/2019
        if w in (".", "m") and any("clockword" in out[j] and lower[j] in ("a", "p") for j in range(max(0, i - 3), i)):
            out[i].add("clockword")
        between_digits = 0 < i < len(lower) - 1 and lower[i - 1].isdigit() and lower[i + 1].isdigit()
        if w in ("/", "-", ":") and between_digits:
            out[i].add("separator")
        if w in ("past", "to") and between_digits and int(lower[i - 1]) < 60 and int(lower[i + 1]) <= 24:
            out[i].add("clockword")  # "20 past 7", "25 to 7"
    return out


_TEMPORAL_CORE = {"month", "weekday", "ordword", "time_unit", "date_unit", "dayword", "daypart", "period_adverb",
                  "clock", "ordinal", "year", "clockword"}
TEMPORAL_PART = _TEMPORAL_CORE | {"digits", "numword", "relative", "separator"}


def _temporal_regions(lower: list[str], kinds: list[set[str]]) -> list[tuple[int, int]]:
    """Maximal runs of temporal words and glue holding at least one core temporal word."""
    regions, i = [], 0
    while i < len(lower):
        if not kinds[i] & TEMPORAL_PART:
            i += 1
            continue
        j = i
        while j < len(lower) and (kinds[j] & TEMPORAL_PART or lower[j] in _GLUE or lower[j] == "ago"):
            j += 1
        while j > i and not (kinds[j - 1] & TEMPORAL_PART or lower[j - 1] == "ago"):
            j -= 1  # no glue at the end
        if any(kinds[k] & _TEMPORAL_CORE for k in range(i, j)):
            regions.append((max(0, i - 1) if i and lower[i - 1] in _OPENERS else i, j))
        i = max(j, i + 1)
    return regions


def _edges_ok(lower: list[str], kinds: list[set[str]], a: int, b: int) -> bool:
    first, last = lower[a], lower[b - 1]
    return ((bool(kinds[a] & TEMPORAL_PART) or first in _OPENERS)
            and (bool(kinds[b - 1] & TEMPORAL_PART) or last == "ago")
            and not (kinds[b - 1] <= {"relative"} and kinds[b - 1]))


def _span_kinds(lower: list[str], kinds: list[set[str]], a: int, b: int) -> set[str]:
    """What a temporal span reads as: date / time, a period or a point, and its role cue."""
    inside: set[str] = set().union(*kinds[a:b])
    words = lower[a:b]
    out: set[str] = set()
    if inside & {"clock", "clockword", "time_unit"} or ("daypart" in inside and inside & {"digits", "numword"}):
        out.add("time")
    if inside & {"month", "weekday", "ordinal", "ordword", "year", "date_unit", "dayword", "separator"}:
        out.add("date")
    if "daypart" in inside and "time" not in out:
        out.add("date")
    units = inside & {"time_unit", "date_unit"}
    point = "ago" in words or words[0] == "in" or "dayword" in inside
    if "period_adverb" in inside or (units and not point):
        out.add("period")
    if not out & {"time", "date", "period"} and inside & {"digits", "numword"}:
        out.add("time" if a and lower[a - 1] == "at" else "number")  # "at 4"
    out |= _role(lower, a, b)
    return out


def _role(lower: list[str], a: int, b: int) -> set[str]:
    """The cue before a span: "since"/"from" -> from, "until"/"to" -> to, "for" -> period."""
    while a and lower[a - 1] in ("the", "on"):
        a -= 1  # "from the 16th"
    before = lower[a - 1] if a else ""
    two_before = " ".join(lower[max(0, a - 2):a])
    if before in _START_CUES or two_before in ("starting on", "starting from", "as of", "beginning on"):
        return {"from"}
    if before == "and" and "between" in lower[max(0, a - 8):a]:
        return {"to"}
    if before in _END_CUES or two_before in ("up to", "up until", "ending on", "ending in"):
        return {"to"} if before != "and" else set()
    if before in _PERIOD_CUES:
        return {"period"}
    return set()


def _amounts(lower: list[str], kinds: list[set[str]]) -> list[Candidate]:
    """A number with a currency before or after it ("$2000", "73 pounds", "1 thousand dollars")."""
    out = []
    for i, k in enumerate(kinds):
        if not k & {"digits", "numword"} or (i and kinds[i - 1] & {"digits", "numword"}):
            continue
        j = i + 1
        while j < len(lower) and kinds[j] & {"digits", "numword"}:
            j += 1
        a = i - 1 if i and "currency" in kinds[i - 1] else i
        a = a - 1 if a and lower[a - 1] in ("a", "an") and "numword" in kinds[i] else a  # "a thousand pounds"
        b = j + 1 if j < len(lower) and "currency" in kinds[j] else j
        if (a, b) != (i, j):
            out.append(Candidate(a, b, frozenset({"money", "amount", "number"}), "amount"))
    return out


def candidates(words: list[str]) -> list[Candidate]:
    """Every span of the text that reads as a date, time, duration, amount or bare number."""
    lower = [w.lower() for w in words]
    kinds = word_kinds(words)
    found: dict[tuple[int, int], Candidate] = {}
    for start, end in _temporal_regions(lower, kinds):
        for a in range(start, end):
            for b in range(a + 1, min(end, a + MAX_SPAN_WORDS) + 1):
                if _edges_ok(lower, kinds, a, b):
                    found[(a, b)] = Candidate(a, b, frozenset(_span_kinds(lower, kinds, a, b)), "temporal")
    for c in _amounts(lower, kinds):
        found[(c.start, c.end)] = c
    for i, k in enumerate(kinds):
        if k & {"digits", "numword"} and (i, i + 1) not in found:
            kind = "time" if i and lower[i - 1] == "at" else "number"  # "at 4"
            found[(i, i + 1)] = Candidate(i, i + 1, frozenset({kind} | _role(lower, i, i + 1)), "number")
    return sorted(found.values(), key=lambda c: (c.start, c.end))


def name_kinds(name: str, description: str = "") -> tuple[set[str], set[str]]:
    """The kind words a field's name and its description use ("date_from" -> {date, from})."""
    aliases = {"start": "from", "begin": "from", "end": "to", "until": "to", "duration": "period",
               "price": "money", "cost": "money", "sum": "money", "count": "number", "hour": "time", "day": "date"}

    def read(text: str) -> set[str]:
        words = re.findall(r"[a-z]+", text.lower())
        return {aliases.get(w, w) for w in words} & set(KINDS)

    return read(name.replace("_", " ").replace(".", " ").replace("-", " ")), read(description)
