"""Whether a tool call's arguments come from the conversation or were made up.

Under ``tool_choice: "auto"`` a small model asked a general question on a tool's topic ("How
fast do high-speed trains go?" with a train-times tool) calls the tool anyway and invents the
arguments (``origin: "London"``). A call that is due takes its arguments from what the user
said: a city, a name, an order number, a topic. So after a call is generated, each required
argument is checked against the conversation's words — not counting words that only repeat
the tool's own name and descriptions, or words too common to tell anything — and a call whose
checkable arguments are mostly not found there is dropped; with no call left, the reply is an
answer. Values the check cannot judge (booleans, enums, a value made only of common or tool
words) do not count either way. Normalised values pass on their parts: ``"10:00"`` for "10am",
``"EUR"`` for "euros", ``"Lisboa"`` for "Lisbon", ``2`` for "two"; a value the model derived
with no word in common ("USD" for "US dollars") counts against, so a call needs half its
checkable arguments. A date or time written out in full ("2026-11-24", "19:00") passes when the
conversation names a time ("tomorrow", "Friday", "tonight"). In scripts written without spaces
(Chinese, Japanese, Thai) a value is looked for as a run of characters. Measured with
bench/tool_choice.py on the labeled sets in chat/tool_cases.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W_]+")
_PIECE = re.compile(r"\d+|\D+")
# words that say nothing about where a value came from
_COMMON = frozenset("""
a an the and or but if of to in on at for from by with without about into onto over under as per via
is are was were be been being am do does did have has had can could will would shall should may might must
i me my mine you your yours we us our ours they them their it its he him his she her this that these those
there here what when where who whom which why how all any some no not yes ok okay please thanks thank
get got make set new one two now today tomorrow yesterday just also very more most much many
pm am etc e g ie eg vs mr mrs ms dr st th nd rd
""".split())


_NUMBERS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBERS.update({w: str(20 + 10 * n) for n, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}, single="1", couple="2", pair="2", dozen="12",
    hundred="100", thousand="1000")


# a date or time the model wrote out from a relative one ("tomorrow" -> "2026-11-24")
_DATE_OR_TIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?\S*)?|\d{1,2}:\d{2}(?::\d{2})?"
                           r"\s*(?:[ap]\.?m\.?)?", re.IGNORECASE)
_WHEN = frozenset("""
today tomorrow tonight yesterday morning afternoon evening night noon midnight now soon later weekend week weeks
month months year years day days hour hours minute minutes monday tuesday wednesday thursday friday saturday
sunday january february march april may june july august september october november december next last this
coming o clock oclock
""".split())


def _words(text: str) -> list[str]:
    """Lower-cased words, letters and digits apart ("10am" -> "10", "am"), numbers without
    leading zeros."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        for piece in _PIECE.findall(word):
            if piece.isdigit():
                piece = piece.lstrip("0")
            if piece:
                out.append(piece)
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (str, int, float)):
        yield str(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _found(word: str, seen: set[str], prefixes: set[str]) -> bool:
    if word in seen:
        return True
    if word.isdigit():
        return False
    if len(word) >= 3 and any(s.startswith(word) for s in seen):  # "eur" in "euros"
        return True
    return len(word) >= 5 and word[:5] in prefixes  # "lisboa" / "lisbon"


def _unspaced(value: str) -> bool:
    """Whether a value is in a script written without spaces between words (Chinese, Japanese,
    Thai...), where it is looked for as a run of characters instead of as words."""
    return any(c.isalpha() and any(low <= ord(c) <= high for low, high in _UNSPACED) for c in value)


# Thai, Lao, Myanmar, Khmer, then CJK, kana, Hangul and what follows
_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x10FFFF))


@dataclass
class Check:
    """One call's arguments against the conversation."""

    name: str
    grounded: list[str]  # argument names whose values were found
    invented: list[str]  # argument names whose values were not

    @property
    def kept(self) -> bool:
        return 2 * len(self.grounded) >= len(self.invented) + len(self.grounded)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "grounded": self.grounded, "invented": self.invented, "kept": self.kept}


def check_calls(calls: list[dict[str, Any]], functions: list[Any], conversation: str) -> list[Check]:
    """Check each call (``{"name", "arguments"}``, as the reply grammar writes them) of
    ``functions`` (chat.tools.Function) against the conversation's text."""
    seen = set(_words(conversation))
    folded = conversation.casefold()
    when = bool(seen & _WHEN) or bool(_DATE_OR_TIME.search(conversation))  # the conversation names a time
    seen |= {_NUMBERS[w] for w in seen if w in _NUMBERS}  # "for two people" grounds "people": 2
    prefixes = {w[:5] for w in seen if len(w) >= 5 and not w.isdigit()}
    by_name = {f.name: f for f in functions}
    checks = []
    for call in calls:
        fn = by_name.get(call.get("name"))
        args: dict[str, Any] = given if isinstance(given := call.get("arguments"), dict) else {}
        params = (fn.parameters if fn is not None else {}) or {}
        props: dict[str, Any] = declared if isinstance(declared := params.get("properties"), dict) else {}
        required = [k for k in params.get("required") or [] if k in args] or list(args)
        tool_words = set(_words(f"{call.get('name')} {fn.description if fn else ''} "
                                f"{json.dumps(params, ensure_ascii=False)}"))
        grounded: list[str] = []
        invented: list[str] = []
        for key in required:
            spec: dict[str, Any] = prop if isinstance(prop := props.get(key), dict) else {}
            if "enum" in spec or "const" in spec:
                continue
            values = list(_strings(args[key]))
            words = {w for v in values for w in _words(v)} - _COMMON - tool_words
            if not words:
                continue
            found = any(_found(w, seen, prefixes) for w in words) or any(
                _unspaced(v) and v.strip().casefold() in folded for v in values) or (
                when and all(_DATE_OR_TIME.fullmatch(v.strip()) for v in values))
            (grounded if found else invented).append(key)
        checks.append(Check(str(call.get("name")), grounded, invented))
    return checks


def conversation_text(messages: list[dict[str, Any]], leave_out: str = "") -> str:
    """Everything the model was shown, as text, without ``leave_out`` (the tool listing)."""
    parts: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
        if isinstance(content, str):
            parts.append(content.replace(leave_out, " ") if leave_out else content)
    return "\n".join(parts)
