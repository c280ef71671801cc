"""JSON Schema for constrained decoding: check, limit, compile, and verify.

llama.cpp (in xllamacpp) enforces a schema through llguidance while sampling, so the model
cannot emit a token that leaves the schema. But when llguidance fails to compile a schema,
llama.cpp silently generates *unconstrained* text. So every schema passes three gates:

1. it is a valid JSON Schema (the 2020-12 meta-schema), with errors naming the path;
2. every keyword is one we know is enforced, within size and depth limits; anything else
   is refused by name rather than silently ignored;
3. the llguidance compiler accepts it (patterns with look-arounds fail here).

The output is then validated again, so a gap in any gate becomes an error, never a
response that pretends to be valid.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from litegate.errors import SchemaError

MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 12
MAX_NODES = 2000
# Bounds on what makes the grammar engine slow per token, so one request cannot stall every
# other: a 60,000-character enum value cost ~10 s per token, counted repetitions such as
# ((a{1,100}){1,100}){1,100} and lengths of 1e9 cost seconds per token.
MAX_LITERAL_CHARS = 2000  # each enum / const string
MAX_COUNT = 10_000  # minLength, maxLength, minItems, maxItems
MAX_REPEAT = 1000  # one {n,m} bound in a pattern
MAX_REPEAT_PRODUCT = 10_000  # all the bounds of a pattern multiplied
_REPEAT = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")

# Keywords llguidance enforces while decoding (or that carry no constraint).
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                "deprecated", "readOnly", "writeOnly"}
_ENFORCED = {
    "type", "enum", "const", "anyOf", "oneOf", "$ref", "$defs", "definitions",
    "properties", "required", "additionalProperties",
    "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "items", "prefixItems", "minItems", "maxItems",
}
FORMATS = {"date", "date-time", "email", "uuid"}
_SUBSCHEMA_MAPS = {"properties", "$defs", "definitions"}
_SUBSCHEMA_LISTS = {"anyOf", "oneOf", "prefixItems"}
_SUBSCHEMA_SINGLE = {"items", "additionalProperties"}


def _pointer(parts: list[str | int]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class CompiledSchema:
    schema: dict[str, Any]
    grammar: str
    compile_ms: float

    def validate(self, value: Any) -> str | None:
        """None when ``value`` satisfies the schema, else the first problem."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(self.schema, format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        first = errors[0]
        return f"{first.message} at {_pointer(list(first.absolute_path))}"


def check_schema(schema: Any, param: str | None = None) -> None:
    """Raise SchemaError unless ``schema`` is valid and every keyword in it is enforced."""
    import jsonschema

    if not isinstance(schema, dict):
        raise SchemaError("a JSON Schema must be an object", "#", param)
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaError(f"the schema is {size:,} bytes; the limit is {MAX_SCHEMA_BYTES:,}", "#", param)
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    problems = sorted(meta.iter_errors(schema), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        raise SchemaError(f"invalid JSON Schema: {first.message}", _pointer(list(first.absolute_path)), param)
    counter = [0]
    _walk(schema, [], 0, counter, param, root=schema)


def _walk(node: Any, path: list[str | int], depth: int, counter: list[int], param: str | None,
          root: dict[str, Any]) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        raise SchemaError("a subschema must be an object or a boolean", _pointer(path), param)
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise SchemaError(f"the schema has more than {MAX_NODES} subschemas", _pointer(path), param)
    if depth > MAX_DEPTH:
        raise SchemaError(f"the schema nests deeper than {MAX_DEPTH} levels", _pointer(path), param)
    for key, value in node.items():
        here = path + [key]
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            raise SchemaError(f"the keyword {key!r} is not supported (it would not be enforced)",
                              _pointer(here), param)
        if key == "format" and value not in FORMATS:
            raise SchemaError(f"the format {value!r} is not supported; supported: {', '.join(sorted(FORMATS))}",
                              _pointer(here), param)
        if key == "$ref":
            if not isinstance(value, str) or not value.startswith("#"):
                raise SchemaError("only local references ('#/$defs/...') are supported", _pointer(here), param)
            if _resolve(root, value) is None:
                raise SchemaError(f"the reference {value!r} points nowhere", _pointer(here), param)
            if _ref_cycle(root, value):
                raise SchemaError(f"the reference {value!r} only refers back to itself", _pointer(here), param)
        if key == "type" and isinstance(value, list) and len(value) != len(set(value)):
            raise SchemaError("'type' lists a type twice", _pointer(here), param)
        _check_cost(key, value, here, param)
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, here + [name], depth + 1, counter, param, root)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                _walk(sub, here + [i], depth + 1, counter, param, root)
        elif key in _SUBSCHEMA_SINGLE and isinstance(value, (dict, bool)):
            _walk(value, here, depth + 1, counter, param, root)
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties", {})
        for name in node.get("required", []):
            if name not in props and node.get("additionalProperties") is False:
                raise SchemaError(f"'required' names {name!r}, which no property allows",
                                  _pointer(path + ["required"]), param)


def _check_cost(key: str, value: Any, here: list[str | int], param: str | None) -> None:
    """Refuse what would make constrained decoding crawl (see MAX_LITERAL_CHARS and friends)."""
    literals = value if key == "enum" and isinstance(value, list) else [value] if key == "const" else []
    for i, lit in enumerate(literals):
        text = lit if isinstance(lit, str) else json.dumps(lit)
        if len(text) > MAX_LITERAL_CHARS:
            where = here + [i] if key == "enum" else here
            raise SchemaError(f"an {key} value is {len(text):,} characters; the limit is {MAX_LITERAL_CHARS:,}",
                              _pointer(where), param)
    if key in ("minLength", "maxLength", "minItems", "maxItems") and isinstance(value, (int, float)) \
            and value > MAX_COUNT:
        raise SchemaError(f"'{key}' is {value:,}; the limit is {MAX_COUNT:,}", _pointer(here), param)
    if key == "pattern" and isinstance(value, str):
        product = 1
        for low, comma, high in ((m.group(1), m.group(0).count(","), m.group(2)) for m in _REPEAT.finditer(value)):
            bound = int(high) if high else int(low) if not comma else int(low)
            if max(int(low), bound) > MAX_REPEAT:
                raise SchemaError(f"the pattern repeats up to {max(int(low), bound):,} times; the limit is "
                                  f"{MAX_REPEAT:,}", _pointer(here), param)
            product *= max(bound, 1)
        if product > MAX_REPEAT_PRODUCT:
            raise SchemaError(f"the pattern's nested repetitions allow {product:,} repeats; the limit is "
                              f"{MAX_REPEAT_PRODUCT:,}", _pointer(here), param)


def _ref_cycle(root: dict[str, Any], ref: str) -> bool:
    """Whether ``ref`` leads, through references alone, back to itself (no value can satisfy it)."""
    seen: set[str] = set()
    at: str | None = ref
    while isinstance(at, str):
        if at in seen:
            return True
        seen.add(at)
        node = _resolve(root, at)
        at = node.get("$ref") if isinstance(node, dict) and set(node) - _ANNOTATIONS == {"$ref"} else None
    return False


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if part == "":
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def compile_schema(schema: Any, param: str | None = None) -> CompiledSchema:
    """Check ``schema`` and turn it into a grammar llama.cpp enforces."""
    check_schema(schema, param)
    started = time.perf_counter()
    from llguidance import LLMatcher

    grammar = LLMatcher.grammar_from_json_schema(json.dumps(schema))
    problem = LLMatcher.validate_grammar(grammar)
    if problem:
        raise SchemaError(f"the schema cannot be enforced: {problem.strip()}", "#", param)
    # llama.cpp reads this form: an llguidance grammar whose start rule is the JSON schema.
    # Whitespace is fixed to json.dumps' layout: with free whitespace a small model can
    # loop on newlines inside an object until max_tokens.
    engine_grammar = "%llguidance {}\nstart: %json " + json.dumps({**schema, "x-guidance": _LAYOUT})
    return CompiledSchema(schema=schema, grammar=engine_grammar,
                          compile_ms=(time.perf_counter() - started) * 1000)


ANY_OBJECT: dict[str, Any] = {"type": "object"}
_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def schema_instruction(schema: dict[str, Any]) -> str:
    """The system-prompt line that tells the model what shape to produce."""
    return ("Reply with only a JSON object, no code fences and no commentary, "
            "that follows this JSON Schema:\n" + json.dumps(schema, separators=(",", ":")))
