"""Metadata filters on a collection's files: ``{"key": value}`` (equality; a list means any
of), or OpenAI's shape ``{"type": "eq", "key", "value"}`` with ``and`` / ``or`` of them."""

from __future__ import annotations

from typing import Any

from litegate.errors import InvalidRequest

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
MAX_DEPTH = 8


def check(filters: Any, param: str = "filters", depth: int = 0) -> dict[str, Any] | None:
    """The filter as given, or InvalidRequest naming what is wrong, before any search runs."""
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise InvalidRequest(f"'{param}' must be an object: {{\"key\": value}} or {{\"type\": \"eq\", \"key\": ..., "
                             "\"value\": ...}}", param=param)
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"'{param}' nests deeper than {MAX_DEPTH} levels", param=param)
    kind = filters.get("type")
    if kind in ("and", "or"):
        inner = filters.get("filters")
        if not isinstance(inner, list) or not inner:
            raise InvalidRequest(f"'{param}': an '{kind}' filter needs a non-empty 'filters' list", param=param)
        for i, f in enumerate(inner):
            check(f, f"{param}.filters.{i}", depth + 1)
    elif kind is not None:
        if kind not in COMPARISONS:
            raise InvalidRequest(f"'{param}.type' must be and, or, or one of {', '.join(COMPARISONS)}", param=param)
        if not isinstance(filters.get("key"), str) or "value" not in filters:
            raise InvalidRequest(f"'{param}' needs 'key' (a string) and 'value'", param=param)
        if kind in ("in", "nin") and not isinstance(filters["value"], list):
            raise InvalidRequest(f"'{param}.value' must be a list for '{kind}'", param=param)
    elif not filters:
        raise InvalidRequest(f"'{param}' is empty; leave it out to search everything", param=param)
    return filters


def _compare(kind: str, have: Any, want: Any) -> bool:
    if kind == "eq":
        return have == want
    if kind == "ne":
        return have != want
    if kind == "in":
        return have in want
    if kind == "nin":
        return have not in want
    if have is None or isinstance(have, bool) != isinstance(want, bool):
        return False
    try:
        return {"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[kind]
    except TypeError:  # a number against a string: no match, not an error
        return False


def matches(attributes: dict[str, Any], filters: dict[str, Any] | None) -> bool:
    if filters is None:
        return True
    kind = filters.get("type")
    if kind == "and":
        return all(matches(attributes, f) for f in filters["filters"])
    if kind == "or":
        return any(matches(attributes, f) for f in filters["filters"])
    if kind is not None:
        return _compare(kind, attributes.get(filters["key"]), filters["value"])
    return all(attributes.get(k) in v if isinstance(v, list) else attributes.get(k) == v for k, v in filters.items())


def check_attributes(attrs: Any, param: str = "metadata") -> dict[str, Any]:
    """A file's attributes as given (what filters match), or InvalidRequest."""
    if attrs is None:
        return {}
    if not isinstance(attrs, dict) or len(attrs) > 32:
        raise InvalidRequest(f"'{param}' must be an object of at most 32 keys", param=param)
    for k, v in attrs.items():
        if not isinstance(k, str) or len(k) > 64 or not isinstance(v, (str, int, float, bool)):
            raise InvalidRequest(f"'{param}': keys are strings up to 64 characters and values strings, numbers or "
                                 f"booleans ({str(k)[:40]!r} is not)", param=param)
    return attrs
