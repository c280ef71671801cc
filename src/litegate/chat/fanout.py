"""Several calls in one turn when the request asks for several things.

A small model asked "the angle at 3:15, 8:20 and 11:50" writes the first call and closes the
list, however the instruction is worded (bench/bfcl.py, BFCL parallel: the count was wrong on
9 of 10). Its own probability of a second call is no help either (0.02-0.04 where one was due).
What tells is the request itself: values it states that no call has used yet, of the kinds the
calls do take — numbers, quoted strings, proper names, the choices a parameter lists (its
``enum`` or the quoted options in its description), the other items of a list a call took a
word from, and a yes-or-no option stated both ways. When such values are left over, the reply
is generated again with the grammar asking for exactly as many calls as they need; the model
repeats its first calls word for word (greedy, same prefix) and goes on. Asked only for "at
least" that many, it went on repeating until the token budget cut the reply, so a round asks
for an exact count and keeps the calls a cut reply completed. A call added this way is kept
only when it uses a value that was left over and repeats no earlier call, so a request that
merely mentions a stray number keeps its single call.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

# a number as written, not inside a word or after "^" (the 2 of "m/s^2" is an exponent), with
# thousands separators (not in "[200,300]") and an exponent ("1e-9"); group 1: a percent sign or word after it
_NUMBER = re.compile(r"(?<![\w.^])-?(?:(?<![\[,])\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+(?!\w))?"
                     r"(\s*(?:%|percent\b))?")
_QUOTED = re.compile(r"'([^'\n]{1,60})'|\"([^\"\n]{1,60})\"")
# a quoted value as mentions reads it: the quotes around words, not "Sword+' in the game 'Legend"
_QUOTE_SPAN = re.compile(r"(?<!\w)'(?! )([^'\n]{1,60})(?<! )'(?!\w)|\"(?! )([^\"\n]{1,60})(?<! )\"")
# a run of capitalised words not at a sentence's start: a proper name ("San Jose", "Florida")
_PROPER = re.compile(r"(?<=[a-z0-9,;:] )(?:[A-Z][\w'-]*)(?: (?:[A-Z][\w'-]*|of|de|la|del))*(?: [A-Z][\w'-]*)?")
# months and weekdays are parts of dates, which calls write in their own formats ("2022-03-10")
_CALENDAR = frozenset("january february march april may june july august september october november december "
                      "jan feb mar apr jun jul aug sep sept oct nov dec "
                      "monday tuesday wednesday thursday friday saturday sunday".split())
# words that join or qualify the items of a list rather than being one
_NOT_ITEMS = frozenset("""a an the and or of in on at for to from with by as is are be then also both each its it this
that these those what which how me my i you your their our his her some any all other another same more less most
least first second third fourth fifth last next previous different new old every one two three four can could would
will should may might must do does did please tell give show find get provide""".split())
_LIST_GAP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)(?:then\s+)?(?:(?:a|an|the)\s+)?"
MAX_ROUNDS = 3


def names_or_quotes(text: str) -> bool:
    """Whether the text states a quoted string or a proper name (a value a string argument may take)."""
    return bool(_QUOTED.search(text) or _PROPER.search(text))


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [] if value is None or isinstance(value, bool) else [value]


def _choices(functions: list[Any]) -> set[str]:
    """Values a parameter names as its options: its enum, or quoted words in its description."""
    out: set[str] = set()

    def walk(spec: Any) -> None:
        if not isinstance(spec, dict):
            return
        for option in spec.get("enum") or []:
            if isinstance(option, str):
                out.add(option)
        for m in _QUOTED.finditer(str(spec.get("description") or "")):
            out.add(m.group(1) or m.group(2))
        for sub in (spec.get("properties") or {}).values():
            walk(sub)
        walk(spec.get("items"))

    for fn in functions:
        walk(fn.parameters)
    return {c for c in out if c.strip()}


def _cased(functions: list[Any]) -> set[str]:
    """Options that differ only by case ("AA", "Aa", "aa"): compared with their case."""
    lowered = Counter(c.lower() for c in _choices(functions))
    return {c for c, n in lowered.items() if n > 1}


def _norm(text: str) -> str:
    """A text value as compared: underscores as spaces ("neuron_cell"), no possessive or quote
    marks, punctuation runs as one space ("Washington D.C." = "washington d c")."""
    text = re.sub(r"'s\b", "", text.replace("_", " "))
    return " ".join(re.findall(r"[^\W_]+", text))


def _text_key(value: str, cased: set[str]) -> tuple[str, Any]:
    value = _norm(value)
    return ("text", value if value.lower() in cased else value.lower())


def _tool_text(functions: list[Any]) -> str:
    return " ".join(f"{fn.name} {fn.description}" for fn in functions).lower()


def _numbers(text: str) -> list[tuple[float, bool]]:
    """The numbers a text states, each with whether it is a percentage ("5%": a call may send 0.05)."""
    out = []
    for m in _NUMBER.finditer(text):
        value = _number(m.group().removesuffix(m.group(1) or ""))
        if value is not None:
            out.append((value, bool(m.group(1))))
    return out


def _names(request: str, quoted: list[re.Match[str]]) -> list[str]:
    """Proper names outside quotes; a name qualified by the next one ("Rome, Italy", "Boston,
    MA") is one name unless a list of names goes on after it ("Paris, London and Berlin")."""
    spans = [[m.start(), m.end()] for m in _PROPER.finditer(request)
             if not any(q.start() <= m.start() < q.end() for q in quoted)]
    merged: list[list[int]] = []
    for span in spans:
        if merged and request[merged[-1][1]:span[0]] == ", " and (len(merged) < 2 or not re.fullmatch(
                r",\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+", request[merged[-2][1]:merged[-1][0]])) \
                and not re.match(r"\s*,\s*(?:(?:and|or)\s+)?[A-Z]|\s+(?:and|or)\s+[A-Z]", request[span[1]:]):
            merged[-1][1] = span[1]
        else:
            merged.append(span)
    # "Hand of 8": "Hand"
    return [re.sub(r"(?: (?:of|de|la|del))+$", "", request[a:b]) for a, b in merged]


def _flags(functions: list[Any]) -> dict[str, str]:
    """The tools' yes-or-no parameters, each with the words a request names it by
    ("is_isothermal": "isothermal", "specific_function": "specific function")."""
    out: dict[str, str] = {}
    for fn in functions:
        for name, spec in ((fn.parameters or {}).get("properties") or {}).items():
            if isinstance(spec, dict) and spec.get("type") == "boolean":
                words = [w.lower() for w in re.split(r"[\W_]+|(?<=[a-z])(?=[A-Z])", name) if w]
                while words and words[0] in ("is", "use", "include", "has", "with", "show", "get"):
                    words = words[1:]
                if words:
                    out[name] = " ".join(words)
    return out


# a word that turns the next one (or the one after it) around: "not isothermal", "less detailed"
_NEGATED = re.compile(r"(?:\b(?:not|no|non|without|less|never)|n't)\W*(?:\w+\s+)?$")


def _flag_mentions(request: str, functions: list[Any]) -> Counter[tuple[str, Any]]:
    """A yes-or-no option the request states, each time as yes or as no: "the process is
    isothermal ... what if it is not isothermal" states both, which are two calls."""
    found: Counter[tuple[str, Any]] = Counter()
    lowered = request.lower()
    for name, phrase in _flags(functions).items():
        pattern = r"(?<![\w-])" + r"[\s_-]+".join(map(re.escape, phrase.split())) + r"(?![\w-])"
        for m in re.finditer(pattern, lowered):
            negated = _NEGATED.search(lowered[max(0, m.start() - 30):m.start()]) is not None
            found["flag", f"{name}={not negated}"] += 1
    return found


def mentions(request: str, functions: list[Any]) -> Counter[tuple[str, Any]]:
    """The values a request states that a call may take, with how often each is stated; names
    the tools' own descriptions use ("Hardy Weinberg Principle") are not the request's values."""
    found: Counter[tuple[str, Any]] = Counter()
    cased, tools = _cased(functions), _tool_text(functions)
    for value, percent in _numbers(request):
        found["percent" if percent else "number", value] += 1
    quoted = list(_QUOTE_SPAN.finditer(request))
    texts = [m.group(1) or m.group(2) for m in quoted]
    for name in _names(request, quoted):
        if name.lower() not in tools and _norm(name).lower() not in _CALENDAR:
            texts.append(name)
    for text in texts:
        if _norm(text):
            found[_text_key(text, cased)] += 1
    lowered = request.lower()
    for choice in _choices(functions):
        # an option a request states as another form of the word ("vaporizing" for
        # "vaporization") is matched on its first six letters
        stem = choice[:6] if choice.isalpha() and len(choice) > 6 else None
        pattern = r"(?<!\w)" + (re.escape(stem) + r"\w*" if stem else re.escape(choice) + r"(?!\w)")
        hits = len(re.findall(pattern, request if choice.lower() in cased else lowered, 0 if choice.lower() in cased
                              else re.IGNORECASE))
        key = _text_key(choice, cased)
        if hits and key[1]:
            found[key] = max(found[key], hits)
    return found + _flag_mentions(request, functions)


def used(calls: list[dict[str, Any]], functions: list[Any]) -> Counter[tuple[str, Any]]:
    """The values the calls' arguments use, in the same terms as ``mentions``."""
    out: Counter[tuple[str, Any]] = Counter()
    cased, flags = _cased(functions), _flags(functions)
    for call in calls:
        arguments = call.get("arguments")
        for name in flags:
            if isinstance(arguments, dict) and isinstance(arguments.get(name), bool):
                out["flag", f"{name}={arguments[name]}"] += 1
        for value in _scalars(arguments):
            if isinstance(value, (int, float)):
                out["number", float(value)] += 1
            elif isinstance(value, str):
                if _norm(value):
                    out[_text_key(value, cased)] += 1
                for number, _ in _numbers(value):  # "3:15", "x^3 from 2 to 5"
                    out["number", number] += 1
    return out


def _within(part: str, whole: str) -> bool:
    return len(part) >= 2 and re.search(r"(?<!\w)" + re.escape(part) + r"(?!\w)", whole) is not None


def _matches(stated: tuple[str, Any], taken: tuple[str, Any]) -> bool:
    """Whether a value a call uses is one the request states: the same number (a percentage also
    as a fraction, "5%" = 0.05), or the same text or one within the other ("New York" in "New
    York, NY", "muscle" in "muscle cell")."""
    (kind, value), (taken_kind, taken_value) = stated, taken
    if kind == "percent":
        return taken_kind == "number" and (taken_value == value or math.isclose(taken_value * 100, value))
    if kind != taken_kind:
        return False
    if kind in ("number", "flag"):
        return bool(value == taken_value)
    return bool(value == taken_value or _within(value, taken_value) or _within(taken_value, value))


def _field_words(functions: list[Any]) -> set[str]:
    """Words of the tools' names and descriptions and of their parameters' names and
    descriptions: what a request names as a field ("height", "ratings"), not as a value."""
    words: set[str] = set()

    def walk(spec: Any) -> None:
        if isinstance(spec, dict):
            words.update(re.findall(r"[a-z]+", str(spec.get("description") or "").lower()))
            for name, sub in (spec.get("properties") or {}).items():
                words.update(re.findall(r"[a-z]+", name.lower().replace("_", " ")))
                walk(sub)
            walk(spec.get("items"))

    for fn in functions:
        words.update(re.findall(r"[a-z]+", f"{fn.name} {fn.description}".lower().replace("_", " ")))
        walk(fn.parameters)
    return words


def _list_items(request: str, value: str, fields: set[str]) -> set[str]:
    """Other items of a list the request names ``value`` in, as many words long ("navy, purple
    and maroon"; "rock and jazz concerts": a list has an "and" or "or"), and for a value of several
    words the same last word after another one ("a neuron cell ... a muscle cell"). Words the
    tools use for their fields are not items."""
    words = value.lower().split()
    if not 1 <= len(words) <= 3 or not all(w.isalpha() for w in words) or set(words) <= _NOT_ITEMS:
        return set()
    lowered = request.lower()
    item = r"[a-z][a-z-]*" + r"\s+[a-z][a-z-]*" * (len(words) - 1)
    out: set[str] = set()
    for m in re.finditer(r"(?<![\w-])" + r"[\s_-]+".join(map(re.escape, words)) + r"(?![\w-])", lowered):
        # a list ends at the item after its "and": "nucleus, mitochondria, and cytoplasm, and can you"
        found: list[str] = []
        joined, at, before = False, m.end(), lowered[:m.start()]
        while (left := re.search(r"(?<![\w-])(" + item + ")" + _LIST_GAP + "$", before)) is not None:
            if re.search(r"\b(?:and|or)\b", left.group()[left.end(1) - left.start():]):
                if joined or found:  # only the gap next to the last item has the "and"
                    break
                joined = True
            found.append(left.group(1))
            before = before[:left.start()]
        while not joined and (right := re.match(_LIST_GAP + "(" + item + r")(?![\w-])", lowered[at:])) is not None:
            found.append(right.group(1))
            joined = bool(re.search(r"\b(?:and|or)\b", right.group()[:right.start(1)]))
            at += right.end()
        if joined:
            out.update(o for o in found if not set(o.split()) & fields)
    if len(words) > 1:  # the last word may well be a field's ("cell" of "cell_type"); the one before it not
        head = re.escape(words[-1])
        out |= {f"{m.group(1)} {words[-1]}" for m in re.finditer(r"(?<![\w-])([a-z][a-z-]+)\s+" + head + r"(?![\w-])",
                                                                 lowered) if m.group(1) not in fields | {words[-2]}}
    return {o for o in out if not set(o.split()) & _NOT_ITEMS and o != " ".join(words)}


def _stated(request: str, functions: list[Any], calls: list[dict[str, Any]]) -> Counter[tuple[str, Any]]:
    """``mentions``, plus the words the calls take from the request and the other items of the
    lists those words stand in (values of any kind, not only names and numbers)."""
    found, fields = mentions(request, functions), _field_words(functions)
    for kind, value in used(calls, functions):
        if kind != "text":
            continue
        items = _list_items(request, value, fields)
        if items and not any(_matches(key, (kind, value)) for key in found):
            found[kind, value] = 1
        for other in items:
            found[kind, other] = max(found[kind, other], 1)
    return found


def _consume(stated: Counter[tuple[str, Any]], taken: Counter[tuple[str, Any]]
             ) -> tuple[Counter[tuple[str, Any]], int]:
    """The stated values no taken value matches, and how many stated values were matched. A
    taken value uses one of each stated value it matches ("San Jose, CA": "san jose" and "ca")."""
    rest, matched = Counter(stated), 0
    for value, n in taken.items():
        for _ in range(n):
            for key in [k for k, left in rest.items() if left > 0 and _matches(k, value)]:
                rest[key] -= 1
                matched += 1
    return +rest, matched


def left_over(request: str, functions: list[Any], calls: list[dict[str, Any]]) -> Counter[tuple[str, Any]]:
    """Stated values no call uses yet, of the kinds (number, text) the calls take from the request."""
    return _left_over(request, functions, calls)[0]


def _left_over(request: str, functions: list[Any], calls: list[dict[str, Any]]
               ) -> tuple[Counter[tuple[str, Any]], int]:
    """``left_over``, and how many stated values the calls use."""
    stated = _stated(request, functions, calls)
    rest, matched = _consume(stated, used(calls, functions))
    kinds = {"number" if kind == "percent" else kind for kind, _ in stated - rest}
    return Counter({key: n for key, n in rest.items()
                    if ("number" if key[0] == "percent" else key[0]) in kinds}), matched


def calls_wanted(request: str, functions: list[Any], calls: list[dict[str, Any]], limit: int) -> int:
    """How many calls to ask the grammar for: as many as now, plus enough for the values left
    over at the rate the calls so far used stated values; 0 when nothing is left over."""
    if not calls or len(calls) >= limit:
        return 0
    spare, matched = _left_over(request, functions, calls)
    rest = sum(spare.values())
    if not rest:
        return 0
    per_call = matched / len(calls)
    return min(limit, len(calls) + max(1, math.ceil(rest / max(per_call, 1.0))))


def kept(before: list[dict[str, Any]], after: list[dict[str, Any]], request: str,
         functions: list[Any]) -> list[dict[str, Any]]:
    """``after`` (a reply generated asking for more calls) cut to the calls worth adding: each new
    call must use a value that was left over and must not repeat an earlier call."""
    out = list(before)
    seen = {json.dumps(c, sort_keys=True) for c in before}
    for call in after:  # the earlier calls come back first and are skipped as repeats
        key = json.dumps(call, sort_keys=True)
        spare = left_over(request, functions, out)
        if key in seen or not any(_matches(s, t) for s in spare for t in used([call], functions)):
            continue
        seen.add(key)
        out.append(call)
    return out


def complete_calls(text: str) -> list[dict[str, Any]] | None:
    """The calls a reply cut short by its token budget completed before the cut
    (``{"tool_calls": [{...}, {...}, {"na``): a round that asked for more calls keeps what it
    finished. None when the text is no list of calls."""
    m = re.match(r'\s*\{\s*"tool_calls"\s*:\s*\[', text)
    if m is None:
        return None
    decoder, at = json.JSONDecoder(), m.end()
    out: list[dict[str, Any]] = []
    while True:
        at = len(text) - len(text[at:].lstrip(" \n\t,"))
        try:
            call, at = decoder.raw_decode(text, at)
        except ValueError:
            return out
        if not isinstance(call, dict):
            return out
        out.append(call)
