"""Schemas for structured-output tests: built from the shared NLU++ and CLINC150 data, plus
hand-written nested cases that use every supported keyword."""

from __future__ import annotations

import json
from typing import Any

from litegate.evals.datasets import shared_data_dir

DATA = shared_data_dir()  # the public sets shipped in the package


def nlupp_cases(n: int = 5) -> list[tuple[str, str, dict[str, Any]]]:
    ontology = json.loads((DATA / "nlupp_banking" / "ontology.json").read_text())
    slots = {name: {"type": ["string", "null"], "description": s["description"]}
             for name, s in ontology["slots"].items()}
    schema = {"type": "object", "properties": slots, "required": list(slots), "additionalProperties": False}
    fold = json.loads((DATA / "nlupp_banking" / "fold0.json").read_text())
    texts = [item["text"] for item in fold if item.get("slots")][:n]
    return [(f"nlupp-{i}", f"Extract the slots from: {t}", schema) for i, t in enumerate(texts)]


def clinc_cases(n_domains: int = 4) -> list[tuple[str, str, dict[str, Any]]]:
    domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
    test = json.loads((DATA / "clinc150" / "data_full.json").read_text())["test"]
    cases = []
    for name in list(domains)[:n_domains]:
        intents = domains[name]
        text = next(t for t, label in test if label in intents)
        schema = {"type": "object", "properties": {"intent": {"enum": intents}}, "required": ["intent"],
                  "additionalProperties": False}
        cases.append((f"clinc-{name}", f"Which intent is this request? {text}", schema))
    return cases


HAND_WRITTEN: list[tuple[str, str, dict[str, Any]]] = [
    ("bounds-and-formats", "Make up a customer record for Ana, 34, born 1990-05-01, ana@example.com.", {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string", "minLength": 2, "maxLength": 40},
            "age": {"type": "integer", "minimum": 18, "maximum": 120},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "email": {"type": "string", "format": "email"},
            "born": {"type": "string", "format": "date"},
            "created": {"type": "string", "format": "date-time"},
            "tier": {"const": "gold"},
        },
        "required": ["id", "name", "age", "score", "email", "born", "created", "tier"],
        "additionalProperties": False,
    }),
    ("price-bound-contradicts-text", "The laptop costs 1999 dollars. Give its price.", {
        "type": "object", "properties": {"price": {"type": "number", "exclusiveMinimum": 0, "maximum": 500}},
        "required": ["price"], "additionalProperties": False,
    }),
    ("pattern", "Give a flight code for Lufthansa flight 123.", {
        "type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3,4}$"}},
        "required": ["code"], "additionalProperties": False,
    }),
    ("nested-arrays", "List two orders of Bob: 2 apples at 0.5 and 1 bread at 2.", {
        "type": "object",
        "properties": {
            "customer": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
                         "additionalProperties": False},
            "orders": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
                "type": "object",
                "properties": {"item": {"type": "string"}, "qty": {"type": "integer", "minimum": 1},
                               "unit_price": {"type": "number", "minimum": 0}},
                "required": ["item", "qty", "unit_price"], "additionalProperties": False}},
        },
        "required": ["customer", "orders"], "additionalProperties": False,
    }),
    ("refs-and-defs", "Describe a family: parents Tom and Mia, child Leo.", {
        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"},
                                                              "role": {"enum": ["parent", "child"]}},
                             "required": ["name", "role"], "additionalProperties": False}},
        "type": "object", "properties": {"members": {"type": "array", "items": {"$ref": "#/$defs/person"},
                                                     "minItems": 2, "maxItems": 5}},
        "required": ["members"], "additionalProperties": False,
    }),
    ("any-of", "Payment was by card ending 4242.", {
        "type": "object", "properties": {"payment": {"anyOf": [
            {"type": "object", "properties": {"card_last4": {"type": "string", "pattern": "^[0-9]{4}$"}},
             "required": ["card_last4"], "additionalProperties": False},
            {"type": "object", "properties": {"iban": {"type": "string"}}, "required": ["iban"],
             "additionalProperties": False}]}},
        "required": ["payment"], "additionalProperties": False,
    }),
    ("one-of", "The answer is forty-two.", {
        "type": "object", "properties": {"answer": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]}},
        "required": ["answer"], "additionalProperties": False,
    }),
    ("nullable-missing", "My name is Kim. (No phone number given.)", {
        "type": "object", "properties": {"name": {"type": ["string", "null"]},
                                         "phone": {"type": ["string", "null"], "maxLength": 20}},
        "required": ["name", "phone"], "additionalProperties": False,
    }),
    ("time-and-enum-array", "Meetings at 09:30 and 14:00, both on Monday.", {
        "type": "object", "properties": {
            "times": {"type": "array", "items": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                      "minItems": 1, "maxItems": 4},
            "days": {"type": "array", "items": {"enum": ["mon", "tue", "wed", "thu", "fri"]}, "maxItems": 5}},
        "required": ["times", "days"], "additionalProperties": False,
    }),
    ("top-level-array", "Three primary colours.", {
        "type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 3, "maxItems": 3,
    }),
]


def corpus(nlupp_items: int = 5) -> list[tuple[str, str, dict[str, Any]]]:
    """Every schema once or more: ``nlupp_items`` utterances share the one 14-slot schema."""
    return nlupp_cases(nlupp_items) + clinc_cases() + HAND_WRITTEN
