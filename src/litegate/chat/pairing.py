"""Values a request pairs with "respectively" go to the calls they belong to.

"Stock prices for Apple, Microsoft, Amazon and Tesla over 1 week, 2 weeks, 3 weeks and 1 month
respectively" asks for four calls, each with one company and its own duration. A small model
writes the four calls with the right durations but sends the whole list of companies to each, or
pairs the i-th value of one list with another list's j-th. The request's own order says which
goes with which: the i-th value of each list, as the request writes them, belongs together. So
when the request says "respectively" and several calls of one tool carry an argument that varies
from call to call (the anchor), every other argument that varies is reassigned by the order its
values stand in the request, and a list sent whole to every call, with one item per call, is
split the same way. Calls whose values the request does not locate are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

_RESPECTIVELY = re.compile(r"\brespectively\b", re.IGNORECASE)
_Scalar = str | int | float


def _position(value: Any, request: str) -> int | None:
    """Where the request first states ``value`` (None: not found, or not a plain value)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        m = re.search(r"(?<!\w)" + re.escape(text) + r"(?!\w)", request, re.IGNORECASE)
        return m.start() if m else None
    forms = {str(value)}
    if float(value).is_integer():
        forms.add(str(int(value)))
    for form in sorted(forms, key=len, reverse=True):
        m = re.search(r"(?<![\w.])" + re.escape(form) + r"(?![\d])", request)
        if m:
            return m.start()
    return None


def _located(values: list[Any], request: str) -> list[int] | None:
    """The positions of ``values``, when every one is stated and each at its own place."""
    where = [_position(v, request) for v in values]
    if any(p is None for p in where) or len(set(where)) != len(where):
        return None
    return [p for p in where if p is not None]


def _pair_group(calls: list[dict[str, Any]], request: str) -> list[dict[str, Any]]:
    """Calls of one tool (two or more), with their values paired by the request's order."""
    k = len(calls)
    args: list[dict[str, Any]] = [a for c in calls if isinstance(a := c.get("arguments"), dict)]
    if len(args) != k:
        return calls
    shared = [key for key in args[0] if all(key in a for a in args)]
    varying: dict[str, list[int]] = {}
    whole: dict[str, list[Any]] = {}
    for key in shared:
        column = [a[key] for a in args]
        first = column[0]
        if isinstance(first, list) and len(first) == k and all(c == first for c in column) \
                and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in first):
            whole[key] = first
        elif len({repr(v) for v in column}) == k and (where := _located(column, request)) is not None:
            varying[key] = where
    if not varying or (len(varying) < 2 and not whole):
        return calls
    anchor = next(iter(varying))
    order = sorted(range(k), key=lambda i: varying[anchor][i])  # the calls in the anchor's order
    fixed = [dict(a) for a in args]
    for key, where in varying.items():
        if key == anchor:
            continue
        values = [args[i][key] for i in sorted(range(k), key=lambda i: where[i])]
        for rank, i in enumerate(order):
            fixed[i][key] = values[rank]
    for key, items in whole.items():
        spots = _located(items, request)
        ranked = items if spots is None else [items[j] for j in sorted(range(k), key=lambda j: spots[j])]
        for rank, i in enumerate(order):
            fixed[i][key] = [ranked[rank]]
    return [{**c, "arguments": a} for c, a in zip(calls, fixed)]


def pair_respectively(calls: list[dict[str, Any]], request: str) -> list[dict[str, Any]]:
    """``calls`` (``{"name", "arguments"}``) with the values a "respectively" request pairs put in
    the calls they belong to; unchanged when the request does not pair values."""
    if len(calls) < 2 or not _RESPECTIVELY.search(request):
        return calls
    out = list(calls)
    groups: dict[str, list[int]] = {}
    for i, call in enumerate(calls):
        groups.setdefault(str(call.get("name")), []).append(i)
    for members in groups.values():
        if len(members) >= 2:
            for i, call in zip(members, _pair_group([calls[i] for i in members], request)):
                out[i] = call
    return out
