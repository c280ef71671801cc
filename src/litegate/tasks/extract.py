"""extract: fields from text as JSON, with a confidence and a character span per field.

Output is constrained to the schema, with every top-level field nullable and required, so
"not stated" has a way to be said. Each field's confidence is the probability the model
gave to the exact tokens of its value. String values from a ``fields`` mapping must occur
in the text: a value that does not is replaced by null (with confidence 0) rather than
passed on as an invention.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import Field

from litegate.chat.structured import compile_schema
from litegate.errors import InvalidRequest
from litegate.tasks.base import Example, TaskContext, TaskOutput, TaskSpec, TextRequest
from litegate.tiers.base import Usage


class ExtractRequest(TextRequest):
    cli = {"schema_": {"json_file": True}}

    fields: dict[str, str] | None = Field(default=None, description="{field: description}; values come from the text")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description="an object JSON Schema")
    examples: list[Example] | None = Field(default=None, description="examples with 'text' and 'output'")


def build_schema(req: ExtractRequest) -> tuple[dict[str, Any], bool]:
    """(schema, grounded) where grounded means string values must come from the text."""
    if req.fields is not None and req.schema_ is not None:
        raise InvalidRequest("send either 'fields' or 'schema', not both", param="schema")
    if req.fields is not None:
        if not req.fields or any(not name.strip() for name in req.fields):
            raise InvalidRequest("'fields' must name at least one field, and no field name may be empty",
                                 param="fields")
        props = {name: {"type": ["string", "null"], **({"description": d} if d else {})}
                 for name, d in req.fields.items()}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}, True
    if req.schema_ is None:
        raise InvalidRequest("'fields' ({name: description}) or 'schema' (a JSON Schema object) is required",
                             param="fields")
    schema = req.schema_
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or not props:
        raise InvalidRequest("'schema' must be an object schema with at least one property", param="schema")
    nullable = {name: {"anyOf": [sub, {"type": "null"}]} if sub.get("type") != "null" else sub
                for name, sub in props.items()}
    out = {k: v for k, v in schema.items() if k not in ("properties", "required", "additionalProperties")}
    out.update(type="object", properties=nullable, required=list(nullable), additionalProperties=False)
    return out, False


def value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Character range of each top-level value in a JSON object's text."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    i = text.index("{") + 1
    ws = re.compile(r"[\s,]*")
    while True:
        i = ws.match(text, i).end()
        if i >= len(text) or text[i] == "}":
            return spans
        key, i = decoder.raw_decode(text, i)
        i = re.compile(r"\s*:\s*").match(text, i).end()
        _, end = decoder.raw_decode(text, i)
        spans[key] = (i, end)
        i = end


def _normal(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def find_span(text: str, value: str) -> tuple[int, int] | None:
    if not value.strip():
        return None
    idx = text.lower().find(value.lower())
    if idx >= 0:
        return idx, idx + len(value)
    # tolerate whitespace differences
    pattern = r"\s+".join(re.escape(part) for part in value.split())
    m = re.search(pattern, text, flags=re.IGNORECASE)
    return (m.start(), m.end()) if m else None


def extract(ctx: TaskContext, llm: Any, req: ExtractRequest) -> TaskOutput:
    text = req.require_text()
    schema, grounded = build_schema(req)
    compiled = compile_schema(schema, param="schema" if req.schema_ is not None else "fields")
    system = ("Extract information from the text into JSON following this schema:\n"
              + json.dumps(schema, separators=(",", ":"))
              + "\nUse null for anything the text does not state. Copy values exactly as they are written "
                "in the text; never guess. Reply with only the JSON object.")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for ex in req.examples or []:
        if ex.output is None:
            raise InvalidRequest("extract examples need 'text' and 'output'", param="examples")
        messages += [{"role": "user", "content": f"Text: {ex.text}"},
                     {"role": "assistant", "content": json.dumps(ex.output)}]
    messages.append({"role": "user", "content": f"Text: {text}"})
    body = {"messages": messages, "temperature": 0.0, "max_tokens": 64 + 48 * len(schema["properties"]),
            "logprobs": True, "top_logprobs": 1}
    result = llm.chat(body, schema=compiled)
    usage = Usage()
    usage.add(result)
    choice = result["choices"][0]
    if choice.get("finish_reason") == "length":
        raise InvalidRequest("the extraction did not fit its token budget; extract fewer fields per call",
                             param="fields", code="output_truncated")
    content = choice["message"]["content"]
    data = json.loads(content)
    tokens = (choice.get("logprobs") or {}).get("content") or []
    offsets, pos = [], 0
    for tok in tokens:
        piece = bytes(tok.get("bytes") or []).decode("utf-8", errors="ignore") or tok.get("token", "")
        offsets.append((pos, pos + len(piece), tok.get("logprob", 0.0)))
        pos += len(piece)
    spans_in_output = value_spans(content)
    confidences: dict[str, float] = {}
    spans: dict[str, list[int] | None] = {}
    for name in schema["properties"]:
        start, end = spans_in_output.get(name, (0, 0))
        logprob = sum(lp for s, e, lp in offsets if s < end and e > start)
        confidences[name] = math.exp(logprob)
        value = data.get(name)
        span = find_span(text, value) if isinstance(value, str) else None
        if grounded and isinstance(value, str) and span is None:
            data[name] = None  # not in the text: an invention, not an extraction
            confidences[name] = 0.0
        spans[name] = list(span) if span else None
    confidence = min(confidences.values()) if confidences else 0.0
    return TaskOutput(result={"data": data, "field_confidence": {k: round(v, 6) for k, v in confidences.items()},
                              "spans": spans},
                      confidence=confidence, tier=llm.name, model=llm.model, usage=usage)


EXTRACT = TaskSpec(
    name="extract", request=ExtractRequest,
    summary="Extract fields (null when not stated) with per-field confidence and spans.",
    runs={"chat": extract}, answer_keys=("data",), metric="extraction", gold=("data", "slots"))
