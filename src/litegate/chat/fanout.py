"""Several calls in one turn when the request asks for several things.

A small model asked "the angle at 3:15, 8:20 and 11:50" writes the first call and closes the
list, however the instruction is worded (bench/bfcl.py, BFCL parallel: the count was wrong on
9 of 10). Its own probability of a second call is no help either (0.02-0.04 where one was due).
What tells is the request itself: values it states that no call has used yet, of the kinds the
calls do take — numbers, quoted strings, proper names, and the choices a parameter lists (its
``enum`` or the quoted options in its description). When such values are left over, the reply
is generated again with the grammar asking for more calls (``minItems``); the model repeats its
first calls word for word (greedy, same prefix) and goes on. A call added this way is kept only
when it uses a value that was left over and repeats no earlier call, so a request that merely
mentions a stray number keeps its single call.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])|(?<![\w.])-?(?:\d+)(?:\.\d+)?")
_QUOTED = re.compile(r"'([^'\n]{1,60})'|\"([^\"\n]{1,60})\"")
# a run of capitalised words not at a sentence's start: a proper name ("San Jose", "Florida")
_PROPER = re.compile(r"(?<=[a-z0-9,;:] )(?:[A-Z][\w'-]*)(?: (?:[A-Z][\w'-]*|of|de|la|del))*(?: [A-Z][\w'-]*)?")
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


def _text_key(value: str, cased: set[str]) -> tuple[str, Any]:
    value = value.strip()
    return ("text", value if value.lower() in cased else value.lower())


def _tool_text(functions: list[Any]) -> str:
    return " ".join(f"{fn.name} {fn.description}" for fn in functions).lower()


def mentions(request: str, functions: list[Any]) -> Counter[tuple[str, Any]]:
    """The values a request states that a call may take, with how often each is stated; names
    the tools' own descriptions use ("Hardy Weinberg Principle") are not the request's values."""
    found: Counter[tuple[str, Any]] = Counter()
    cased, tools = _cased(functions), _tool_text(functions)
    for m in _NUMBER.finditer(request):
        value = _number(m.group())
        if value is not None:
            found["number", value] += 1
    texts = [m.group(1) or m.group(2) for m in _QUOTED.finditer(request)]
    texts += [m.group() for m in _PROPER.finditer(request) if m.group().lower() not in tools]
    for text in texts:
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
        if hits:
            found[key] = max(found[key], hits)
    return found


def used(calls: list[dict[str, Any]], functions: list[Any]) -> Counter[tuple[str, Any]]:
    """The values the calls' arguments use, in the same terms as ``mentions``."""
    out: Counter[tuple[str, Any]] = Counter()
    cased = _cased(functions)
    for call in calls:
        for value in _scalars(call.get("arguments")):
            if isinstance(value, (int, float)):
                out["number", float(value)] += 1
            elif isinstance(value, str):
                out[_text_key(value, cased)] += 1
                for m in _NUMBER.finditer(value):  # "3:15", "x^3 from 2 to 5"
                    number = _number(m.group())
                    if number is not None:
                        out["number", number] += 1
    return out


def left_over(request: str, functions: list[Any], calls: list[dict[str, Any]]) -> Counter[tuple[str, Any]]:
    """Stated values no call uses yet, of the kinds (number, text) the calls take from the request."""
    stated, taken = mentions(request, functions), used(calls, functions)
    kinds = {kind for kind, value in taken if stated.get((kind, value))}
    return Counter({key: n - taken.get(key, 0) for key, n in stated.items()
                    if key[0] in kinds and n > taken.get(key, 0)})


def calls_wanted(request: str, functions: list[Any], calls: list[dict[str, Any]], limit: int) -> int:
    """How many calls to ask the grammar for: as many as now, plus enough for the values left
    over at the rate the calls so far used stated values; 0 when nothing is left over."""
    if not calls or len(calls) >= limit:
        return 0
    rest = sum(left_over(request, functions, calls).values())
    if not rest:
        return 0
    stated = mentions(request, functions)
    per_call = sum(min(n, stated.get(key, 0)) for key, n in used(calls, functions).items()) / len(calls)
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
        if key in seen or not any(spare.get(k) for k in used([call], functions)):
            continue
        seen.add(key)
        out.append(call)
    return out
