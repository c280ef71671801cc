"""Whether a tool call's arguments come from the conversation or were made up.

Under ``tool_choice: "auto"`` a small model asked a general question on a tool's topic ("How fast do
high-speed trains go?" with a train-times tool) calls the tool anyway and invents the arguments
(``origin: "London"``). A call that is due takes its arguments from what the user said: a city, a
name, an order number, a topic. So after a call is generated, each required argument is checked
against the conversation's words — not counting words that only repeat the tool's own name and
descriptions, or words too common to tell anything — and a call whose checkable arguments are mostly
not found there is dropped; with no call left, the reply is an answer. An optional argument whose
value the conversation does not support is left out of the call rather than sent: a value the model
copied from the tool's own listing (an example in a description, a number of its range) or an option
of an enum the conversation never names. The schema's default (``default``, or "Default is 0.2" in
the description) is never held against a call; an optional one the conversation does not state is
dropped (``Check.defaults``: the call means the same without it, and "all teams" sent for a team the
user never named reads as a choice). Values the check cannot judge (booleans, a required enum, a
value made only of common words or of tool words the conversation also uses) do not count either
way. How many values a call had to make up (``Check.made_up``) is also a relevance signal: a due
call rarely needs a value the user never gave, while a call on a question the tool cannot answer
often does. Numbers, currencies, units and dates are read in any notation (chat/values.py):
``2000000`` for "$2,000,000", ``"USD"`` for "US dollars", ``"km"`` for "kilometres",
``"2026-12-04"`` for "Friday"; a percentage takes its parameter's form (``0.03`` for "3%" in a rate,
a return, a yield or a probability, unless described as a percentage); other normalised values pass
on their parts: ``"10:00"`` for "10am", ``"Lisboa"`` for "Lisbon". A value the model derived with no
word in common counts against, so a call needs half its checkable arguments. A date or time written
out in full passes when the conversation names a time ("tomorrow", "tonight"). A unit the
conversation does not state, where it states exactly one, becomes that one ("a radius of 5cm" sent
with ``unit: "m"`` is sent with ``"cm"``); a list of enum options keeps only the ones the
conversation names when it names some ("a seafood restaurant" sent with ``["Seafood", "Italian"]``
is sent with ``["Seafood"]``).
In scripts written without spaces (Chinese, Japanese, Thai) a value is looked for as a run of
characters. Measured with bench/tool_choice.py on the labeled sets in chat/tool_cases.py and
bench/bfcl.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from litegate.chat import values

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
    left_out: list[str] = field(default_factory=list)  # optional arguments with made-up values, dropped
    corrected: dict[str, Any] = field(default_factory=dict)  # arguments given the value the conversation states
    defaults: list[str] = field(default_factory=list)  # optional arguments sent with their own default, dropped

    @property
    def kept(self) -> bool:
        return 2 * len(self.grounded) >= len(self.invented) + len(self.grounded)

    @property
    def made_up(self) -> int:
        """How many values the call made up: required ones not found, optional ones left out."""
        return len(self.invented) + len(self.left_out)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "grounded": self.grounded, "invented": self.invented, "kept": self.kept,
                **({"left_out": self.left_out} if self.left_out else {}),
                **({"corrected": self.corrected} if self.corrected else {}),
                **({"defaults": self.defaults} if self.defaults else {})}


@dataclass
class _Conversation:
    """What a conversation states, read once for all the calls checked against it."""

    text: str
    seen: set[str] = field(init=False)
    prefixes: set[str] = field(init=False)
    when: bool = field(init=False)

    def __post_init__(self) -> None:
        self.seen = set(_words(self.text))
        self.when = bool(self.seen & _WHEN) or bool(_DATE_OR_TIME.search(self.text))  # the conversation names a time
        self.seen |= {_NUMBERS[w] for w in self.seen if w in _NUMBERS}  # "for two people" grounds "people": 2
        self.prefixes = {w[:5] for w in self.seen if len(w) >= 5 and not w.isdigit()}
        self.folded = self.text.casefold()

    @cached_property
    def numbers(self) -> set[float]:
        return values.numbers(self.text)

    @cached_property
    def percents(self) -> set[float]:
        return values.percents(self.text)

    @cached_property
    def currencies(self) -> set[str]:
        return values.currencies(self.text)

    @cached_property
    def units(self) -> set[str]:
        return values.units(self.text)

    @cached_property
    def dates(self) -> set[Any]:
        return values.dates(self.text)


def _typed_verdict(value: Any, said: _Conversation, tool_numbers: set[float]) -> bool | None:
    """Whether a number, currency, unit or date is one the conversation states (None: not one of these)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) or (
            isinstance(value, str) and values.as_number(value) is not None):
        number = values.as_number(value)
        if number is None or values.number_stated(number, tool_numbers):
            return None  # the tool's own default or example: proves nothing
        return values.number_stated(number, said.numbers)
    if not isinstance(value, str):
        return None
    code = values.currency_code(value)
    if code is not None and (value.strip() in values.CURRENCIES or code in said.currencies):  # "USD", not "won"
        return code in said.currencies
    unit = values.unit_symbol(value)
    if unit is not None and len(value.strip()) <= 12 and unit in said.units:
        return True
    day = values.as_date(value)
    if day is not None and day in said.dates:
        return True
    return None


def _stated_unit(value: Any, spec: dict[str, Any], said: _Conversation) -> str | None:
    """The one unit the conversation states, for a unit argument it does not state (None: leave
    the value as it is). Small models keep a unit's default spelling ("m") over the request's ("5cm")."""
    if not isinstance(value, str) or len(value.strip()) > 12 or len(said.units) != 1:
        return None
    unit = values.unit_symbol(value)
    stated = next(iter(said.units))
    if unit is None or unit == stated:
        return None
    allowed = spec.get("enum")
    if isinstance(allowed, list):  # an enum: only an entry that names the stated unit
        return next((a for a in allowed if isinstance(a, str) and values.unit_symbol(a) == stated), None)
    return stated


# a number parameter taken as a fraction (0.05 for "5%") or as a percentage (5), by its name and description
_AS_DECIMAL = re.compile(r"decimal|fraction|between 0(?:\.0)? and 1|0(?:\.0)? (?:to|and) 1\b", re.IGNORECASE)
_AS_PERCENT = re.compile(r"percent|percentage", re.IGNORECASE)
_RATIO = re.compile(r"rate|return|yield|probab|ratio", re.IGNORECASE)


def _percent_form(value: Any, key: str, spec: dict[str, Any], said: _Conversation) -> float | None:
    """The form a percentage the conversation states takes in a number parameter (None: leave the
    value as it is). A rate, yield, return or probability is a fraction unless its description says
    percent ("an annual interest rate of 3%" is sent as 0.03); one described as a percentage takes
    the number as said (5 for "5%"). Small models copy the number as written either way."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or spec.get("type") not in ("number", "float"):
        return None
    stated = said.percents
    if not stated:
        return None
    described = f"{key.replace('_', ' ')} {spec.get('description') or ''}"
    as_decimal = bool(_AS_DECIMAL.search(described)) or (
        bool(_RATIO.search(described)) and not _AS_PERCENT.search(described))
    if as_decimal and abs(value) > 1 and values.number_stated(float(value), stated):
        return round(value / 100, 10)
    if not as_decimal and _AS_PERCENT.search(described) and 0 < abs(value) < 1 \
            and values.number_stated(value * 100, stated):
        return round(value * 100, 10)
    return None


_DEFAULT = re.compile(r"\bdefaults?\b(?:\s+(?:value|values|setting))?(?:\s+(?:is|are|to|of|will\s+be))?\s*[:=]?"
                      r"\s*((?:[^.;\n]|\.(?=\d)){1,60})", re.IGNORECASE)


def _is_default(value: Any, spec: dict[str, Any]) -> bool:
    """Whether ``value`` is the parameter's default: its schema ``default``, or the one its
    description states ("Default is 0.2", "default: 'USA'", "If not provided, default is true")."""
    if value is None or isinstance(value, (dict, list)):
        return False
    if "default" in spec and _same_value(value, spec["default"]):
        return True
    for m in _DEFAULT.finditer(str(spec.get("description") or "")):
        stated = m.group(1).strip().strip("'\"“”‘’` ")
        if isinstance(value, bool):
            if str(value).lower() in _words(stated)[:2]:
                return True
            continue
        number = values.as_number(value)
        if number is not None:
            if values.number_stated(number, values.numbers(stated)):
                return True
            continue
        text = str(value).strip().casefold()
        if text and (stated.casefold() == text or stated.casefold().startswith(text + " ")
                     or _words(stated)[:len(_words(text))] == _words(text)):
            return True
    return False


def _said(value: Any, said: _Conversation) -> bool:
    """Whether the conversation states ``value`` itself: the number, or every word of the text."""
    number = values.as_number(value)
    if number is not None:
        return values.number_stated(number, said.numbers)
    words = set(_words(str(value))) - _COMMON if isinstance(value, str) else set()
    return bool(words) and all(_found(w, said.seen, said.prefixes) for w in words)


def _same_value(value: Any, default: Any) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):
        return str(value).lower() == str(default).lower()
    number, other = values.as_number(value), values.as_number(default)
    if number is not None and other is not None:
        return values.number_stated(number, {other})
    return str(value).strip().casefold() == str(default).strip().casefold()


def _from_listing(value: Any, said: _Conversation, tool_words: set[str], tool_numbers: set[float]) -> bool:
    """Whether ``value`` was copied from the tool's own listing (its words or numbers) with nothing
    of it in the conversation: an example or a range the description gives, not the user's value."""
    if isinstance(value, list):
        return bool(value) and all(_from_listing(v, said, tool_words, tool_numbers) for v in value)
    if isinstance(value, bool) or isinstance(value, dict) or value is None:
        return False
    number = values.as_number(value)
    if number is not None:
        return values.number_stated(number, tool_numbers) and not values.number_stated(number, said.numbers)
    words = set(_words(str(value))) - _COMMON
    return bool(words) and words <= tool_words and not any(_found(w, said.seen, said.prefixes) for w in words)


def _option_named(value: Any, said: _Conversation, every_word: bool = False) -> bool | None:
    """Whether the conversation names an enum option by one of its words (``every_word``: by all
    of them), in any number ("two_sided" for "two sided", "Goals Scored" for "goal", "Backstage
    Pass" for "backstage")."""
    words = set(_words(str(value))) - _COMMON if isinstance(value, str) else set()
    if not words:
        return None
    found = [_found(w, said.seen, said.prefixes) or any(len(s) >= 4 and w.startswith(s) for s in said.seen)
             for w in words]
    return (all(found) if every_word else any(found)) or values.unit_symbol(value) in said.units \
        or values.currency_code(value) in said.currencies


def _named_options(value: Any, spec: dict[str, Any], said: _Conversation) -> list[Any] | None:
    """The options of a list of enum options that the conversation names, when it names some of
    them and not others (a small model sends the whole list of options with the one asked for:
    ["Seafood", "Italian"] for "a seafood restaurant"); None otherwise (the list is judged whole)."""
    items = spec.get("items")
    if not isinstance(value, list) or len(value) < 2 or not isinstance(items, dict) or "enum" not in items:
        return None
    # every word of an option: "Children Section" is not asked for by "a fiction section"; an
    # option the check cannot judge (one letter, "G") stays
    named = [v for v in value if _option_named(v, said, every_word=True) is not False]
    return named if named and len(named) < len(value) else None


def _value_found(value: Any, said: _Conversation, tool_words: set[str], tool_numbers: set[float]) -> bool | None:
    """True when ``value`` comes from the conversation, False when it was made up, None when it
    cannot tell (a boolean, or only common or tool words)."""
    if isinstance(value, dict) and value or (
            isinstance(value, list) and value and all(not isinstance(v, (dict, list)) for v in value)):
        # each part on its own: {"min": 300000, "max": 400000} for "$300,000 to $400,000"
        verdicts = [_value_found(v, said, tool_words, tool_numbers)
                    for v in (value.values() if isinstance(value, dict) else value)]
        judged = [v for v in verdicts if v is not None]
        return None if not judged else any(judged)
    typed = _typed_verdict(value, said, tool_numbers)
    if typed is not None:
        return typed
    strings = list(_strings(value))
    words = {w for v in strings for w in _words(v)} - _COMMON - tool_words
    if not words:
        return None
    return any(_found(w, said.seen, said.prefixes) for w in words) or any(
        _unspaced(v) and v.strip().casefold() in said.folded for v in strings) or (
        said.when and all(_DATE_OR_TIME.fullmatch(v.strip()) for v in strings))


def check_calls(calls: list[dict[str, Any]], functions: list[Any], conversation: str) -> list[Check]:
    """Check each call (``{"name", "arguments"}``, as the reply grammar writes them) of
    ``functions`` (chat.tools.Function) against the conversation's text."""
    said = _Conversation(conversation)
    by_name = {f.name: f for f in functions}
    checks = []
    for call in calls:
        fn = by_name.get(call.get("name"))
        args: dict[str, Any] = given if isinstance(given := call.get("arguments"), dict) else {}
        params = (fn.parameters if fn is not None else {}) or {}
        props: dict[str, Any] = declared if isinstance(declared := params.get("properties"), dict) else {}
        required = [k for k in params.get("required") or [] if k in args] or list(args)
        listing = f"{call.get('name')} {fn.description if fn else ''} {json.dumps(params, ensure_ascii=False)}"
        tool_words, tool_numbers = set(_words(listing)), values.numbers(listing)
        grounded: list[str] = []
        invented: list[str] = []
        left_out: list[str] = []
        corrected: dict[str, Any] = {}
        defaults: list[str] = []
        for key in args:
            spec: dict[str, Any] = given_spec if isinstance(given_spec := props.get(key), dict) else {}
            if key not in required and _is_default(args[key], spec) and not _said(args[key], said):
                defaults.append(key)  # the tool's own default, not asked for: the call means the same without it
                continue
            unit = _stated_unit(args[key], spec, said)
            if unit is not None:
                corrected[key] = unit
                continue
            fraction = _percent_form(args[key], key, spec, said)
            if fraction is not None:  # a number the conversation states, in the parameter's form
                corrected[key] = fraction
                if key in required:
                    grounded.append(key)
                continue
            named = _named_options(args[key], spec, said)
            if named is not None:  # a list of options: the ones the conversation names
                corrected[key] = named
                continue
            found = _verdict(args[key], spec, key in required, said, tool_words, tool_numbers)
            if found is None:
                continue
            if key in required:
                (grounded if found else invented).append(key)
            elif not found:
                left_out.append(key)
        checks.append(Check(str(call.get("name")), grounded, invented, left_out, corrected, defaults))
    return checks


def _verdict(value: Any, spec: dict[str, Any], required: bool, said: _Conversation, tool_words: set[str],
             tool_numbers: set[float]) -> bool | None:
    """One argument's verdict: True from the conversation, False made up, None not judged."""
    if _is_default(value, spec):
        return None  # the schema's own default: sending it or not changes nothing
    items: dict[str, Any] = given if isinstance(given := spec.get("items"), dict) else {}
    if "enum" in spec or "const" in spec or ("enum" in items and isinstance(value, list)):
        # a required option had to be chosen; an optional one is sent only when the conversation names it
        if required:
            return None
        named = [_option_named(v, said) for v in (value if isinstance(value, list) else [value])]
        judged = [n for n in named if n is not None]
        return all(judged) if judged else None
    if _copies_description(value, spec):
        return False  # the parameter's own description sent as its value
    found = _value_found(value, said, tool_words, tool_numbers)
    if found is None and _from_listing(value, said, tool_words, tool_numbers):
        return False
    return found


def _copies_description(value: Any, spec: dict[str, Any]) -> bool:
    """Whether a string value is its parameter's description, or the description's opening words
    ("The name of the holy book." for ``book``): what the model read, not what the user said."""
    if not isinstance(value, str):
        return False
    said, described = _words(value), _words(str(spec.get("description") or ""))
    return len(said) >= 3 and described[:len(said)] == said


def kept_calls(calls: list[dict[str, Any]], checks: list[Check]) -> list[dict[str, Any]]:
    """The calls worth making, without the optional arguments the conversation does not support
    and with the units it states."""
    out = []
    for call, check in zip(calls, checks):
        if check.kept:
            args = call.get("arguments")
            if (check.left_out or check.corrected or check.defaults) and isinstance(args, dict):
                call = {**call, "arguments": {k: check.corrected.get(k, v) for k, v in args.items()
                                              if k not in check.left_out and k not in check.defaults}}
            out.append(call)
    return out


def ask_for_missing(calls: list[dict[str, Any]], checks: list[Check], functions: list[Any]) -> str | None:
    """When the one call made was meant (some of its arguments come from the conversation) but
    required values were not given and the model made them up: a question asking for those
    values, as the tool's schema describes them, instead of a call with invented ones."""
    if len(calls) != 1 or not checks[0].grounded or not checks[0].invented:
        return None
    fn = next((f for f in functions if f.name == checks[0].name), None)
    if fn is None:
        return None
    props = (fn.parameters or {}).get("properties") or {}
    wanted = []
    for key in checks[0].invented:
        spec = found if isinstance(found := props.get(key), dict) else {}
        said = str(spec.get("description") or "").strip().rstrip(".")
        wanted.append(f"{key.replace('_', ' ')} ({said[0].lower() + said[1:]})" if said else key.replace("_", " "))
    needed = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " and " + wanted[-1]
    return f"To use {fn.name} I need the {needed}. Could you tell me?"


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
