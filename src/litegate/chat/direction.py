"""Arguments put in the parameters the request names them for.

Asked for "a gauge pressure of 2.5 atm where the atmospheric pressure is 1 atm", a small model
may send ``atm_pressure: 2.5, gauge_pressure: 1``: both numbers are the user's, so the argument
check (chat/grounding.py) passes them, but in each other's place. The words just before a number
the request states say what it is. When two numeric arguments of one call each stand after the
words of the other's parameter name and not of their own, their values are exchanged; a call
whose values stand where the request puts them is left as it is.
"""

from __future__ import annotations

import os
import re
from typing import Any

# how far back from a number its naming words are looked for, within its clause
_WINDOW = 6
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_CLAUSE_END = re.compile(r"[.;:!?]\s|,\s*(?:and|but|while|whereas)\b|\band\b")
# name parts that say nothing of which quantity a parameter holds
_VAGUE = frozenset("the of in a an value number amount num val is to for".split())


def _name_words(name: str) -> set[str]:
    """A parameter name's words: "gauge_pressure" = {gauge, pressure}, "atmPressure" = {atm, pressure}."""
    words = re.split(r"[\W_]+|(?<=[a-z])(?=[A-Z])", name)
    return {w.lower() for w in words if w and not w.isdigit()} - _VAGUE


def _same_word(said: str, word: str) -> bool:
    """A word of the request naming a word of a parameter: equal, or one the start of the other
    ("atm" of "atmospheric", "temp" of "temperature") or another form of it ("accelerating")."""
    if said == word or (min(len(said), len(word)) >= 3 and (said.startswith(word) or word.startswith(said))):
        return True
    common = len(os.path.commonprefix([said, word]))  # "accelerating" for "acceleration"
    return common >= 5 and common >= min(len(said), len(word)) - 3


def _before(request: str, value: float) -> list[str]:
    """The words before each place the request states ``value``, back to its clause's start."""
    out: list[str] = []
    for m in _NUMBER.finditer(request):
        try:
            stated = float(m.group().replace(",", ""))
        except ValueError:
            continue
        if stated != value:
            continue
        start = request[:m.start()]
        ends = list(_CLAUSE_END.finditer(start))
        clause = start[ends[-1].end():] if ends else start
        out += re.findall(r"[a-z]+", clause.lower())[-_WINDOW:]
    return out


def _names(words: list[str], name: set[str]) -> int:
    return sum(any(_same_word(said, w) for said in words) for w in name)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def put_right(call: dict[str, Any], request: str) -> dict[str, Any]:
    """``call`` with the values of two numeric arguments exchanged where the request states each
    after the words of the other's parameter name (and neither after its own)."""
    arguments = call.get("arguments")
    if not isinstance(arguments, dict):
        return call
    numeric = [k for k, v in arguments.items() if _numeric(v)]
    fixed = dict(arguments)
    for i, p in enumerate(numeric):
        for q in numeric[i + 1:]:
            if fixed[p] == fixed[q]:
                continue
            only_p, only_q = _name_words(p) - _name_words(q), _name_words(q) - _name_words(p)
            if not only_p or not only_q:
                continue
            at_p, at_q = _before(request, float(fixed[p])), _before(request, float(fixed[q]))
            if _names(at_p, only_q) > _names(at_p, only_p) and _names(at_q, only_p) > _names(at_q, only_q):
                fixed[p], fixed[q] = fixed[q], fixed[p]
    return call if fixed == arguments else dict(call, arguments=fixed)
