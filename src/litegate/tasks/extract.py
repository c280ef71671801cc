"""extract: fields from text as JSON, with a confidence and a character span per field.

Three ways to run it:

- **nano** (``"extractor": NAME``): a trained extractor (``litegate.nano.extractor``) tags the
  words; each field's confidence is a calibrated P(correct).
- **local LLM, grounded** (``fields`` with worked examples: given, or retrieved from a named
  extractor): the reply lists only the fields the text states, and the grammar lets every
  value be nothing but a run of words copied from the text, so output tokens scale with what
  is there and nothing is invented. Each field's confidence is the probability the model gave
  its value's tokens; a field it left out gets the probability of the reply as a whole. A value
  the model gave less than ``VALUE_FLOOR`` probability is dropped as not stated: the 0.5B
  model, asked for fields a text does not have, fills one with whatever words it can find
  ("declined" as a date), and those are exactly the values it is least sure of.
- **schema** (``schema``, or a remote tier): the reply follows an object schema with every
  top-level field nullable and required; string values from ``fields`` that do not occur in
  the text are replaced by null (confidence 0), never passed on.

With an extractor named, LLM tiers also learn from its training examples: the most similar
ones (by the nano encoder) are given as worked examples, its fields and descriptions are
used when the request names none, and each field's description carries the values it took
most often in training (what a date or an amount looks like in this data).

Why one module (over 400 lines): the task's three tiers (nano, LLM, prebuilt) share one
request, one schema and one confidence rule.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import Field, field_validator

from litegate.chat.structured import MAX_COUNT, compile_schema
from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage
from litegate.tasks import choose
from litegate.tasks.base import Example, TaskContext, TaskOutput, TaskSpec, TextRequest

# the document layer (its settings, OCR and speech) loads in the functions that read documents:
# reading TASKS, as the CLI does to make its commands, should not pay for it

RETRIEVED = 4  # training examples shown to an LLM tier when an extractor is named
VALUES_SHOWN = 3  # a named extractor's most common training values per field, shown in its description
# grounded extraction on local tiers: a stated value given less probability than this is dropped
# (on a fold of NLU++ banking kept out of the bench's test sample, slot F1 of lite with retrieved
# examples went 0.35 -> 0.46 with the training values in the descriptions, and to 0.55 with this floor)
VALUE_FLOOR = 0.1


class ExtractRequest(TextRequest):
    cli = {"schema_": {"json_file": True}}

    fields: dict[str, str] | None = Field(default=None, description="{field: description}, or a list of names "
                                          "(a named extractor's own descriptions); values come from the text")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description="an object JSON Schema")
    examples: list[Example] | None = Field(default=None, description="examples with 'text' and 'output'")
    extractor: str | None = Field(default=None, description="a trained nano extractor (also teaches LLM tiers), "
                                  "or a prebuilt one: receipt, invoice")
    types: dict[str, str] | None = Field(default=None, description="{field: type}: date, time, money, number, "
                                         "address, phone, email, id or string; values come back normalized "
                                         "(ISO 8601 dates, amounts with an ISO currency) beside the text as printed")
    choose_below: float | None = Field(default=None, ge=0.0, le=1.0,
                                       description="a prebuilt extractor on an LLM tier: the fields whose confidence "
                                       "is below this are chosen by the LLM among their candidates (default: none, "
                                       "the extractor's own answers)")

    @field_validator("fields", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """A list of names: the fields without descriptions (a named extractor has its own)."""
        if not isinstance(value, list):
            return value
        if not all(isinstance(n, str) for n in value):
            raise ValueError("'fields' as a list holds field names (strings)")
        if len(set(value)) != len(value):
            raise ValueError("'fields' names a field twice")
        return {n: "" for n in value}


class Grammar:
    """A raw llguidance grammar for local tiers (what ``chat(schema=...)`` reads)."""

    def __init__(self, grammar: str):
        self.grammar = grammar
        self.schema = None


def build_schema(fields: dict[str, str] | None, schema: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """(schema, grounded) where grounded means string values must come from the text."""
    if fields is not None and schema is not None:
        raise InvalidRequest("send either 'fields' or 'schema', not both", param="schema")
    if fields is not None:
        if not fields or any(not name.strip() for name in fields):
            raise InvalidRequest("'fields' must name at least one field, and no field name may be empty",
                                 param="fields")
        props: dict[str, Any] = {name: {"type": ["string", "null"], **({"description": d} if d else {})}
                 for name, d in fields.items()}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}, True
    if schema is None:
        raise InvalidRequest("'fields' ({name: description}), 'schema' (a JSON Schema object) or 'extractor' "
                             "is required", param="fields")
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
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
        gap = ws.match(text, i)  # always a match: the pattern accepts the empty string
        i = gap.end() if gap else i
        if i >= len(text) or text[i] == "}":
            return spans
        key, i = decoder.raw_decode(text, i)
        colon = re.compile(r"\s*:\s*").match(text, i)
        if colon is None:
            raise json.JSONDecodeError("expected ':' after a key", text, i)
        i = colon.end()
        _, end = decoder.raw_decode(text, i)
        spans[key] = (i, end)
        i = end


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


def grounded_grammar(fields: list[str], text: str) -> str:
    """A JSON object that lists any subset of ``fields`` in their order, each value a run of
    whole words copied from ``text`` (llguidance's substring constraint over the text as it
    appears inside a JSON string)."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    lines = ["%llguidance {}", 'start: "{" (' + " | ".join(f"p{i} r{i}" for i in range(len(fields))) + ')? "}"',
             'value: "\\"" %regex ' + json.dumps({"substring_words": inner}, ensure_ascii=False) + ' "\\""']
    for i, name in enumerate(fields):
        key = json.dumps(json.dumps(name, ensure_ascii=False) + ":", ensure_ascii=False)
        lines.append(f"p{i}: {key} value")
        later = [f'"," p{j} r{j}' for j in range(i + 1, len(fields))]
        lines.append(f"r{i}: ({' | '.join(later)})?" if later else f'r{i}: ""')
    return "\n".join(lines)


def _token_offsets(choice: dict[str, Any]) -> list[tuple[int, int, float]]:
    offsets, pos = [], 0
    for tok in (choice.get("logprobs") or {}).get("content") or []:
        piece = bytes(tok.get("bytes") or []).decode("utf-8", errors="ignore") or tok.get("token", "")
        offsets.append((pos, pos + len(piece), tok.get("logprob", 0.0)))
        pos += len(piece)
    return offsets


def _examples_for(ctx: TaskContext, req: ExtractRequest, text: str) -> tuple[dict[str, str] | None, list[Example]]:
    """The request's fields (or the extractor's) and its worked examples (or the extractor's
    training examples most like the text)."""
    from litegate.documents import prebuilt

    fields = req.fields
    examples = list(req.examples or [])
    if req.extractor is not None and is_prebuilt(ctx, req.extractor):
        described = prebuilt.describe(prebuilt_of(ctx, req.extractor)[0])["fields"]
        _check_fields(req, list(described))
        if fields is None and req.schema_ is None:
            fields = described
        return fields, examples
    if req.extractor:
        ext = ctx.extractors.get(req.extractor)
        known = ext.info.fields
        if fields is not None:
            unknown = [f for f in fields if f not in known]
            if unknown:
                raise InvalidRequest(f"'fields' names {unknown[0]!r}, which extractor {req.extractor!r} does not "
                                     f"extract ({', '.join(known)})", param=f"fields.{unknown[0]}")
        elif req.schema_ is None:
            fields = dict(known)
        if fields is not None:
            fields = _with_values(fields, ext.common_values)
        if not examples:
            for ex in ext.nearest(text, RETRIEVED, ctx.extractors.encoder_for(ext)):
                data = {k: v for k, v in ex["data"].items() if fields is None or k in fields}
                examples.append(Example(text=ex["text"], output=data))
    return fields, examples


def _with_values(fields: dict[str, str], common: dict[str, list[str]]) -> dict[str, str]:
    """Each field's description followed by the values it took most often in training."""
    out = {}
    for name, description in fields.items():
        values = ", ".join(json.dumps(v, ensure_ascii=False) for v in common.get(name, [])[:VALUES_SHOWN])
        out[name] = f"{description} (e.g. {values})".strip() if values else description
    return out


def extract_llm(ctx: TaskContext, llm: Any, req: ExtractRequest) -> TaskOutput:
    from litegate.documents import prebuilt

    check_types(req)
    types = dict(req.types or {})
    if req.extractor is not None and is_prebuilt(ctx, req.extractor) and req.schema_ is None:
        threshold = choose.UNSURE if req.choose_below is None else req.choose_below
        return apply_types(choose_prebuilt(ctx, llm, req, threshold), req.types)
    if req.extractor is not None and is_prebuilt(ctx, req.extractor):
        kind = prebuilt_of(ctx, req.extractor)[0]
        types = {n: s.type for n, s in prebuilt.SPECS[kind].items() if s.type != "string"} | types
    return apply_types(_extract_llm(ctx, llm, req), types)


def _extract_llm(ctx: TaskContext, llm: Any, req: ExtractRequest) -> TaskOutput:
    text = req.require_text()
    fields, examples = _examples_for(ctx, req, text)
    schema, grounded = build_schema(fields, req.schema_)
    for i, ex in enumerate(examples):
        if ex.output is None:
            raise InvalidRequest("extract examples need 'text' and 'output'", param=f"examples.{i}")
    if grounded and examples and "grammar" in llm.capabilities:
        # compact and grounded once worked examples show the model what to pull out; without
        # them the 0.5B model answered {} to nearly everything (bench/extract.py), so zero-shot
        # requests keep the full schema (a nullable key per field, values checked against the text)
        return _grounded(llm, text, schema, examples)
    bounded = schema
    if grounded:  # a value copied from the text is no longer than the text: a model that loops stops there
        bounded = dict(schema, properties={name: dict(p, maxLength=min(len(text), MAX_COUNT))
                                           for name, p in schema["properties"].items()})
    compiled = compile_schema(bounded, param="schema" if req.schema_ is not None else "fields")
    system = ("Extract information from the text into JSON following this schema:\n"
              + json.dumps(schema, separators=(",", ":"))
              + "\nUse null for anything the text does not state. Copy values exactly as they are written "
                "in the text; never guess. Reply with only the JSON object.")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for ex in examples:
        full = {name: (ex.output or {}).get(name) for name in schema["properties"]}
        messages += [{"role": "user", "content": f"Text: {ex.text}"},
                     {"role": "assistant", "content": json.dumps(full, ensure_ascii=False)}]
    messages.append({"role": "user", "content": f"Text: {text}"})
    per_field = min(48 + len(text) // 2, 160) if grounded else 48
    body = {"messages": messages, "temperature": 0.0, "max_tokens": 64 + per_field * len(schema["properties"]),
            "logprobs": True, "top_logprobs": 1}
    result = llm.chat(body, schema=compiled)
    choice = _complete(result)
    content = choice["message"]["content"]
    data = json.loads(content)
    offsets = _token_offsets(choice)
    spans_in_output = value_spans(content)
    confidences: dict[str, float] = {}
    spans: dict[str, list[int] | None] = {}
    for name in schema["properties"]:
        start, end = spans_in_output.get(name, (0, 0))
        confidences[name] = math.exp(sum(lp for s, e, lp in offsets if s < end and e > start))
        value = data.get(name)
        span = find_span(text, value) if isinstance(value, str) else None
        if grounded and isinstance(value, str) and span is None:
            data[name] = None  # not in the text: an invention, not an extraction
            confidences[name] = 0.0
        spans[name] = list(span) if span else None
    return _output(data, confidences, spans, llm, result)


def _complete(result: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = result["choices"][0]
    if choice.get("finish_reason") == "length":
        raise InvalidRequest("the extraction did not fit its token budget; extract fewer fields per call",
                             param="fields", code="output_truncated")
    return choice


def _grounded(llm: Any, text: str, schema: dict[str, Any], examples: list[Example]) -> TaskOutput:
    """Only the stated fields, each value copied from the text (see the module doc)."""
    names = list(schema["properties"])
    listing = "\n".join(f"- {n}" + (f": {p['description']}" if p.get("description") else "")
                        for n, p in schema["properties"].items())
    system = ("Extract these fields from the text:\n" + listing + "\nReply with one JSON object that holds only "
              "the fields the text states, each value copied exactly as it is written in the text. Leave out "
              "every field the text does not state; reply {} when it states none.")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for ex in examples:
        shown = {n: v for n in names if isinstance(v := (ex.output or {}).get(n), str) and v}
        messages += [{"role": "user", "content": f"Text: {ex.text}"},
                     {"role": "assistant", "content": json.dumps(shown, ensure_ascii=False,
                                                                 separators=(",", ":"))}]
    messages.append({"role": "user", "content": f"Text: {text}"})
    body = {"messages": messages, "temperature": 0.0, "logprobs": True, "top_logprobs": 1,
            "max_tokens": 16 + 24 * len(names) + len(text) // 2}
    result = llm.chat(body, schema=Grammar(grounded_grammar(names, text)))
    choice = _complete(result)
    content = choice["message"]["content"]
    stated = json.loads(content)
    offsets = _token_offsets(choice)
    overall = math.exp(sum(lp for _, _, lp in offsets) / max(len(offsets), 1))
    positions = value_spans(content)
    data: dict[str, Any] = {}
    confidences: dict[str, float] = {}
    spans: dict[str, list[int] | None] = {}
    for name in names:
        value = stated.get(name)
        span = find_span(text, value) if isinstance(value, str) and value.strip() else None
        if span is None:
            data[name], spans[name], confidences[name] = None, None, overall
            continue
        start, end = positions[name]
        p = math.exp(sum(lp for s, e, lp in offsets if s < end and e > start))
        if p < VALUE_FLOOR:
            data[name], spans[name], confidences[name] = None, None, overall
            continue
        data[name] = text[span[0]:span[1]]
        spans[name] = list(span)
        confidences[name] = p
    return _output(data, confidences, spans, llm, result)


def _output(data: dict[str, Any], confidences: dict[str, float], spans: dict[str, Any], llm: Any,
            result: dict[str, Any]) -> TaskOutput:
    usage = Usage()
    usage.add(result)
    return TaskOutput(result={"data": data, "field_confidence": {k: round(v, 6) for k, v in confidences.items()},
                              "spans": spans},
                      confidence=min(confidences.values()) if confidences else 0.0, tier=llm.name,
                      model=llm.model, usage=usage)


def is_prebuilt(ctx: TaskContext, name: str | None) -> bool:
    """A prebuilt extractor's name, shipped or extended by the user (``--base``), that no
    trained extractor of the user's shadows."""
    from litegate.documents import prebuilt

    if not name:
        return False
    shipped = name in prebuilt.names()
    extended = not shipped and ctx.prebuilts is not None and name in ctx.prebuilts.names()
    if not (shipped or extended):
        return False
    return ctx.extractors is None or name not in ctx.extractors.names()


def prebuilt_of(ctx: TaskContext, name: str) -> tuple[str, dict[str, Any] | None]:
    """(the prebuilt kind, the extended weights or None for the shipped ones) of an extractor name."""
    from litegate.documents import prebuilt

    if name in prebuilt.names():
        return name, None
    ext = ctx.prebuilts.get(name)
    return ext.info.base, ext.scorers


def _check_fields(req: ExtractRequest, known: list[str]) -> None:
    unknown = [f for f in req.fields or {} if f not in known]
    if unknown:
        raise InvalidRequest(f"'fields' names {unknown[0]!r}, which extractor {req.extractor!r} does not "
                             f"extract ({', '.join(known)})", param=f"fields.{unknown[0]}")


def check_types(req: ExtractRequest) -> None:
    from litegate.documents import fieldtypes

    for name, kind in (req.types or {}).items():
        if kind not in fieldtypes.TYPES:
            raise InvalidRequest(f"'types.{name}' is {kind!r}; a field's type is one of {', '.join(fieldtypes.TYPES)}",
                                 param=f"types.{name}")


def apply_types(out: TaskOutput, types: dict[str, str] | None) -> TaskOutput:
    """Typed fields normalized in place: ``data`` gets the normalized value, ``typed`` the value,
    the text as printed and its type; a value that is no value of its type becomes null."""
    from litegate.documents import fieldtypes

    if not types:
        return out
    data, confidences = out.result["data"], out.result["field_confidence"]
    typed: dict[str, Any] = out.result.setdefault("typed", {})
    for name, kind in types.items():
        value = data.get(name)
        if name not in data or value is None or name in typed:
            continue
        parsed = fieldtypes.normalize(kind, str(value))
        if parsed is None:
            data[name], confidences[name] = None, 0.0
            typed[name] = {"value": None, "text": str(value), "type": kind,
                           "note": f"{str(value)[:40]!r} is not a {kind}"}
            continue
        data[name] = parsed.value
        typed[name] = parsed.as_json()
    out.confidence = min(confidences.values(), default=out.confidence)
    return out


def _prebuilt_source(req: ExtractRequest) -> Any:
    """The first file's lines with their boxes; without files, the lines of the text."""
    docs = [d for d in (req._documents or []) if d.segments]
    return docs[0] if docs else req.require_text()


def _prebuilt_result(req: ExtractRequest, kind: str, found: dict[str, Any]) -> dict[str, Any]:
    from litegate.documents import prebuilt

    spec = prebuilt.SPECS[kind]
    text = req.text or ""
    spans = {}
    for name, f in found["fields"].items():
        f.pop("candidates", None)
        span = None
        if f.get("text"):  # the value inside its own line, not an equal number further up
            line_at = text.find(f.pop("line_text", "") or "\0")
            first = f["text"].splitlines()[0]
            inside = text.find(first, line_at) if line_at >= 0 else -1
            span = (inside, inside + len(f["text"])) if inside >= 0 and text.startswith(f["text"], inside) \
                else find_span(text, f["text"])
        f.pop("line_text", None)
        f.pop("lines", None)
        spans[name] = list(span) if span else None
    result = {"data": found["data"], "field_confidence": {n: f["confidence"] for n, f in found["fields"].items()},
              "spans": spans,
              "typed": {n: {k: v for k, v in f.items() if k != "confidence"} | {"type": spec[n].type}
                        for n, f in found["fields"].items() if f["value"] is not None}}
    if found["notes"]:
        result["notes"] = found["notes"]
    return result


def extract_prebuilt(ctx: TaskContext, tier: Any, req: ExtractRequest) -> TaskOutput:
    """A prebuilt extractor over the files' lines (with their boxes) or the text's lines."""
    from litegate.documents import prebuilt

    name = req.extractor
    if name is None:
        raise InvalidRequest("the prebuilt extractors need 'extractor' (receipt or invoice)", param="extractor")
    kind, scorers = prebuilt_of(ctx, name)
    _check_fields(req, list(prebuilt.SPECS[kind]))
    found = prebuilt.extract(kind, _prebuilt_source(req), list(req.fields) if req.fields is not None else None,
                             scorers=scorers)
    result = _prebuilt_result(req, kind, found)
    return TaskOutput(result=result, confidence=min(result["field_confidence"].values(), default=0.0),
                      tier=tier.name, model=f"prebuilt:{req.extractor}")


def choose_prebuilt(ctx: TaskContext, llm: Any, req: ExtractRequest, threshold: float = choose.UNSURE) -> TaskOutput:
    """A prebuilt extractor whose uncertain fields an LLM tier chooses among their candidates
    (``tasks.choose``): the fields the scorer is sure of are kept, the others are one of the
    values printed on the document or null."""
    from litegate.documents import prebuilt

    kind, scorers = prebuilt_of(ctx, req.extractor or "")
    _check_fields(req, list(prebuilt.SPECS[kind]))
    source = _prebuilt_source(req)
    found = prebuilt.extract(kind, source, list(req.fields) if req.fields is not None else None,
                             alternatives=choose.OPTIONS, scorers=scorers)
    asked = choose.unsure_fields(found, threshold)
    usage = Usage()
    if asked:
        options = choose.options_for(found, asked)
        lines = [line.text for line in prebuilt.page_of(source).lines]
        body = {"messages": choose.messages_for(kind, found, options, lines), "temperature": 0.0,
                "logprobs": True, "top_logprobs": 1, "max_tokens": choose.max_tokens(options)}
        result = llm.chat(body, schema=compile_schema(choose.schema_for(options)))
        usage.add(result)
        reply = _complete(result)
        content = reply["message"].get("content") or "{}"
        offsets = _token_offsets(reply)
        probabilities = {k: math.exp(sum(lp for s, e, lp in offsets if s < end and e > start))
                         for k, (start, end) in value_spans(content).items()} if offsets else {}
        for field_name, (cand, p) in choose.picked(options, json.loads(content), probabilities).items():
            chosen: dict[str, Any] = dict(cand) if cand is not None else {"value": None, "text": None}
            chosen["confidence"] = round(p, 4)
            chosen["chosen_by"] = llm.name
            found["fields"][field_name] = chosen
            found["data"][field_name] = chosen["value"]
    out = _prebuilt_result(req, kind, found)
    return TaskOutput(result=out, confidence=min(out["field_confidence"].values(), default=0.0), tier=llm.name,
                      model=llm.model if asked else f"prebuilt:{req.extractor}", usage=usage)


def extract_nano(ctx: TaskContext, tier: Any, req: ExtractRequest) -> TaskOutput:
    check_types(req)
    if is_prebuilt(ctx, req.extractor):
        if req.schema_ is not None:
            raise InvalidRequest("a prebuilt extractor has its own fields; it takes 'fields', not 'schema'",
                                 param="schema")
        return apply_types(extract_prebuilt(ctx, tier, req), req.types)
    text = req.require_text()
    if req.schema_ is not None:
        raise InvalidRequest("a nano extractor copies values from the text; it takes 'fields', not 'schema'",
                             param="schema")
    if not req.extractor:
        raise InvalidRequest(f"the {tier.name} tier needs 'extractor': the name of a trained extractor",
                             param="extractor")
    # the request's view of the store (when run by the task runner): the extractor is read once
    # and the text encoded once, for this step, an escalation and the learner after it
    store = ctx.extractors if ctx.extractors is not None else tier.extractors
    ext = store.get(req.extractor)
    if req.fields is not None:
        unknown = [f for f in req.fields if f not in ext.info.fields]
        if unknown:
            raise InvalidRequest(f"'fields' names {unknown[0]!r}, which extractor {ext.info.name!r} does not "
                                 f"extract ({', '.join(ext.info.fields)})", param=f"fields.{unknown[0]}")
    [answer] = ext.predict([text], store.encoder_for(ext))
    keep = list(req.fields) if req.fields is not None else ext.fields
    result = {"data": {k: answer["data"][k] for k in keep},
              "field_confidence": {k: answer["field_confidence"][k] for k in keep},
              "spans": {k: answer["spans"][k] for k in keep}}
    return apply_types(TaskOutput(result=result, confidence=min(result["field_confidence"].values(), default=1.0),
                                  tier=tier.name, model=f"{ext.info.name}@v{ext.info.version}"), req.types)


EXTRACT = TaskSpec(
    name="extract", request=ExtractRequest,
    summary="Extract fields (null when not stated) with per-field confidence and spans.",
    runs={"extractor": extract_nano, "chat": extract_llm}, answer_keys=("data",), metric="extraction",
    gold=("data", "slots"),
    accepts=lambda tier, req: "extractor" not in tier.capabilities or bool(req.extractor))
