"""Structured output and function calling: outputs always validate, unsupported schemas are
refused by name, truncation is reported as such."""

from __future__ import annotations

import datetime
import json
import uuid

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from litegate import Litegate, OutputTruncated
from schema_corpus import corpus

CHAT = "/v1/chat/completions"


@pytest.fixture()
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}


def test_schema_corpus_outputs_all_validate(client: openai.OpenAI) -> None:
    failures = []
    cases = corpus(nlupp_items=2)  # the slot schema's outputs are the longest: two utterances show it holds
    assert len(cases) >= 15
    for name, prompt, schema in cases:
        r = client.chat.completions.create(model="lite", messages=[{"role": "user", "content": prompt}],
                                           response_format=schema_format(schema), temperature=0, max_tokens=400)
        choice = r.choices[0]
        if choice.finish_reason != "stop":
            failures.append((name, "finish_reason " + choice.finish_reason))
            continue
        value = json.loads(choice.message.content)
        errors = list(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
                      .iter_errors(value))
        if errors:
            failures.append((name, errors[0].message))
    assert not failures, failures


def test_bounds_hold_even_against_the_text(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"price": {"type": "number", "minimum": 1, "maximum": 500}},
              "required": ["price"], "additionalProperties": False}
    r = client.chat.completions.create(model="lite", messages=[{"role": "user", "content":
                                       "The laptop costs 1999 dollars. What is its price?"}],
                                       response_format=schema_format(schema), temperature=0, max_tokens=40)
    assert 1 <= json.loads(r.choices[0].message.content)["price"] <= 500


def test_json_object_mode(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="lite", messages=[{"role": "user", "content":
                                       "Give the name and capital of France."}],
                                       response_format={"type": "json_object"}, temperature=0, max_tokens=80)
    reply = json.loads(r.choices[0].message.content)  # constrained: always parses, always an object
    assert isinstance(reply, dict) and reply and r.choices[0].finish_reason == "stop"
    assert "paris" in json.dumps(reply).lower()  # and it answers the question


def test_streamed_structured_output_validates(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="lite", messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
        response_format=schema_format(schema), temperature=0, max_tokens=60, stream=True) if c.choices)
    jsonschema.validate(json.loads(text), schema)


def test_logprobs_cover_every_structured_token(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}},
              "required": ["sentiment"], "additionalProperties": False}
    r = client.chat.completions.create(model="lite", messages=[{"role": "user", "content": "I love it!"}],
                                       response_format=schema_format(schema), temperature=0, max_tokens=30,
                                       logprobs=True, top_logprobs=2)
    tokens = r.choices[0].logprobs.content
    assert len(tokens) == r.usage.completion_tokens
    assert "".join(t.token for t in tokens).strip() == r.choices[0].message.content.strip()


def test_max_tokens_too_small_reports_length(http: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"story": {"type": "string", "minLength": 200}},
              "required": ["story"], "additionalProperties": False}
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "Tell a story."}],
                              "response_format": schema_format(schema), "max_tokens": 8})
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    with pytest.raises(ValueError):
        json.loads(choice["message"]["content"])


@pytest.mark.parametrize("schema, needle, path", [
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, "invalid JSON Schema", "#/properties/a/type"),
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "'uniqueItems'", "#/uniqueItems"),
    ({"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}}, "'multipleOf'",
     "#/properties/n/multipleOf"),
    ({"type": "string", "format": "uri"}, "'uri'", "#/format"),
    ({"type": "string", "format": "time"}, "'time'", "#/format"),
    ({"not": {"type": "string"}}, "'not'", "#/not"),
    ({"$ref": "https://example.com/schema.json"}, "local references", "#/$ref"),
    ({"$ref": "#/$defs/missing"}, "points nowhere", "#/$ref"),
    ({"type": "string", "pattern": "^(?=a)b$"}, "cannot be enforced", "#"),
    ("not a schema", "must be an object", "#"),
])
def test_unenforceable_schemas_are_400_naming_the_path(http: httpx.Client, schema: object, needle: str,
                                                       path: str) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "hi"}],
                              "response_format": schema_format(schema)})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["message"].endswith(path), err
    assert err["param"] == "response_format.json_schema.schema"


def test_too_deep_and_too_large_schemas_name_the_limit(http: httpx.Client) -> None:
    deep: dict = {"type": "string"}
    for _ in range(20):
        deep = {"type": "object", "properties": {"x": deep}}
    r = http.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}], "response_format": schema_format(deep)})
    assert r.status_code == 400 and "deeper than 12" in r.json()["error"]["message"]
    wide = {"type": "object", "properties": {f"field_{i}": {"type": "string", "description": "x" * 40}
                                             for i in range(2000)}}
    r = http.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}], "response_format": schema_format(wide)})
    assert r.status_code == 400 and "limit is 65,536" in r.json()["error"]["message"]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "minLength": 1},
                                                    "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
EMAIL = {"type": "function", "function": {
    "name": "send_email", "description": "Send an email",
    "parameters": {"type": "object", "properties": {"to": {"type": "string", "format": "email"},
                                                    "subject": {"type": "string", "maxLength": 80}},
                   "required": ["to", "subject"], "additionalProperties": False}}}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, EMAIL)}


def assert_valid_calls(message) -> None:
    assert message.tool_calls
    for call in message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name],
                            format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "send_email"}}])
def test_tool_calls_validate_against_parameters(client: openai.OpenAI, tool_choice: object) -> None:
    r = client.chat.completions.create(
        model="lite", messages=[{"role": "user", "content": "Email ops@example.com that the build is green."}],
        tools=[WEATHER, EMAIL], tool_choice=tool_choice, temperature=0, max_tokens=120)
    assert r.choices[0].finish_reason == "tool_calls"
    assert_valid_calls(r.choices[0].message)
    if isinstance(tool_choice, dict):
        assert {c.function.name for c in r.choices[0].message.tool_calls} == {"send_email"}


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "What's the weather in Oslo?"}]
    first = client.chat.completions.create(model="lite", messages=messages, tools=[WEATHER],
                                           tool_choice="required", temperature=0, max_tokens=80)
    call = first.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments)["city"].lower().startswith("oslo")
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "-3 degrees celsius, snowing"}]
    second = client.chat.completions.create(model="lite", messages=messages, tools=[WEATHER],
                                            tool_choice="auto", temperature=0, max_tokens=80)
    message = second.choices[0].message
    assert message.content and ("-3" in message.content or "snow" in message.content.lower()), message


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="lite", messages=[{"role": "user", "content": "Say hello."}],
                                       tools=[WEATHER], tool_choice="none", max_tokens=10)
    assert r.choices[0].message.tool_calls is None and r.choices[0].message.content


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    calls, finish = [], None
    for chunk in client.chat.completions.create(
            model="lite", messages=[{"role": "user", "content": "Weather in Lima, in celsius?"}], tools=[WEATHER],
            tool_choice="required", temperature=0, max_tokens=80, stream=True):
        if chunk.choices:
            calls += chunk.choices[0].delta.tool_calls or []
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and calls
    jsonschema.validate(json.loads(calls[0].function.arguments), SCHEMAS["get_weather"])


@pytest.mark.parametrize("body, param", [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [WEATHER, WEATHER]}, "tools.1.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "format": "uri"}}}}}]}, "tools.0.function.parameters"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
])
def test_bad_tools_are_400(http: httpx.Client, body: dict, param: str) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "hi"}], **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


class Address(BaseModel):
    city: str
    country: str


class Customer(BaseModel):
    name: str = Field(min_length=1)
    age: int = Field(ge=0, le=130)
    member_since: datetime.date | None
    customer_id: uuid.UUID
    address: Address


def test_python_api_returns_a_pydantic_instance(home) -> None:
    import sqlite3

    with Litegate(feature="python-parse") as lg:
        customer = lg.parse(Customer, "Customer Maria Rossi, 41, member since 2019-03-02, lives in Rome, Italy.",
                            max_tokens=200)
        assert isinstance(customer, Customer)
        assert customer.address.city == "Rome" and 0 <= customer.age <= 130
        with pytest.raises(OutputTruncated):
            lg.parse(Customer, "Customer Maria Rossi.", max_tokens=5)
        reply = lg.chat("Say hi", max_tokens=4)
    # the Python API's calls are ledgered like HTTP ones (the runtime flushes on close)
    con = sqlite3.connect(home / "ledger.db")
    rows = con.execute("select id, task, tier, tokens_out from calls where feature = 'python-parse'").fetchall()
    con.close()
    assert len(rows) == 3 and {r[1] for r in rows} == {"python"} and {r[2] for r in rows} == {"lite"}
    assert (reply["id"], "python", "lite", reply["usage"]["completion_tokens"]) in rows
