"""LLM tiers choose rather than invent: a prebuilt extractor's uncertain fields go to an LLM as
the candidates its detectors and layout scorer proposed, and the reply may only name one of
them or null (an enum per field, enforced by the grammar on local tiers and by the schema check
on remote ones), so a value is always one printed on the document.

Fields the scorer is already sure of (confidence at or above the threshold) keep its answer and
are not sent: a cascade that escalates a document pays the LLM only for its uncertain fields.
A chosen field's confidence is the probability the model gave its choice's tokens.
"""

from __future__ import annotations

import json
from typing import Any

# A field whose (calibrated) confidence is below this is asked of the LLM, unless the request
# sets its own ``choose_below``. Off by default: on the dev splits of two real receipt sets with
# the calibrated confidences (bench/receipts.py --choose lite --threshold 0.5), the embedded lite
# model fixed no field in 50 receipts and broke an address; at 0.9 (chosen on raw confidences)
# it lowered the held-out softmatic figures (bench/README.md, "Receipt fields, fourth round").
UNSURE = 0.0
OPTIONS = 6  # candidates shown per field
CONTEXT_CHARS = 80  # of the line a candidate is printed on (and the one above it)


def unsure_fields(found: dict[str, Any], threshold: float = UNSURE) -> list[str]:
    """The fields worth asking: below ``threshold`` and with at least two values to choose
    between (a lone candidate is the scorer's answer or nothing; the scorer already weighed that)."""
    return [f for f, v in found["fields"].items()
            if len(v.get("candidates") or []) >= 2 and v["confidence"] < threshold]


def _option(c: dict[str, Any]) -> str:
    """What the model writes to choose a candidate: its value as printed, on one line."""
    return " ".join(str(c["text"]).split())[:200]


def options_for(found: dict[str, Any], fields: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{field: {option text: candidate}}, options unique within a field."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for f in fields:
        opts: dict[str, dict[str, Any]] = {}
        for c in found["fields"][f]["candidates"][:OPTIONS]:
            key = _option(c)
            if key in opts:
                key = f"{key} (line {c['line'] + 1})"
            opts[key] = c
        out[f] = opts
    return out


def _where(c: dict[str, Any], lines: list[str]) -> str:
    line = c["line"]
    here = " | ".join(s[:CONTEXT_CHARS] for s in c["line_text"].splitlines())
    above = f'; line above: "{lines[line - 1][:CONTEXT_CHARS]}"' if line > 0 and line - 1 < len(lines) else ""
    return f'line {line + 1} of {c["lines"]}: "{here}"{above}'


def messages_for(kind: str, found: dict[str, Any], options: dict[str, dict[str, dict[str, Any]]],
                 lines: list[str]) -> list[dict[str, Any]]:
    from litegate.documents import prebuilt  # the document layer: not for reading TASKS (the CLI's commands)

    spec = prebuilt.SPECS[kind]
    blocks = []
    for f, opts in options.items():
        listed = "\n".join(f"  {json.dumps(o, ensure_ascii=False)} ({_where(c, lines)})" for o, c in opts.items())
        blocks.append(f"{f}: {spec[f].description}. Options:\n{listed}")
    head = "\n".join(lines[:6])
    system = (f"You check fields read from a {kind} by OCR, which misreads some characters and reads logos as "
              "stray letters. For each field choose the option that is its value, or null when none is. "
              "Reply with only a JSON object.")
    user = f"The {kind} begins:\n{head}\n\n" + "\n\n".join(blocks)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def schema_for(options: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(options),
            "properties": {f: {"enum": [*opts, None]} for f, opts in options.items()}}


def picked(options: dict[str, dict[str, dict[str, Any]]], reply: dict[str, Any],
           probabilities: dict[str, float]) -> dict[str, tuple[dict[str, Any] | None, float]]:
    """{field: (the chosen candidate or None, the probability the model gave its choice)}."""
    out: dict[str, tuple[dict[str, Any] | None, float]] = {}
    for f, opts in options.items():
        name = reply.get(f)
        out[f] = (opts.get(name) if isinstance(name, str) else None, probabilities.get(f, 0.5))
    return out


def max_tokens(options: dict[str, dict[str, dict[str, Any]]]) -> int:
    return 16 + sum(8 + len(f) + max(len(o) for o in opts) for f, opts in options.items())
