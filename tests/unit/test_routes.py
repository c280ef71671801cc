"""Routes clients call first: embeddings (OpenAI and Gemini shapes), Gemini's model list,
unknown routes answered in the API's error shape."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from fakes import runtime
from fastapi.testclient import TestClient


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path)
    yield r
    r.close()


def test_openai_embeddings_float_and_base64(client: TestClient, rt) -> None:
    r = client.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": ["hello world", "goodbye"]},
                    headers={"X-Litegate-Feature": "search"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1]
    first = np.array(body["data"][0]["embedding"])
    assert first.shape == (64,) and abs(np.linalg.norm(first) - 1) < 1e-5
    assert body["usage"]["prompt_tokens"] == 3 == body["usage"]["total_tokens"]
    packed = client.post("/v1/embeddings", json={"input": "hello world", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, first, atol=1e-6)
    rt.accountant.flush()
    rows = rt.accountant.ledger.rows()
    assert {(x["task"], x["tier"], x["feature"]) for x in rows} >= {("embeddings", "nano", "search")}


@pytest.mark.parametrize("body, status, needle", [
    ({"input": "x", "dimensions": 16}, 400, "cannot be shortened"),
    ({"input": "x", "model": "text-embedding-3-large"}, 404, "does not exist"),
    ({"input": []}, 400, "at least one text"),
    ({"input": [""]}, 400, "non-empty string"),
    ({"input": [[1, 2, 3]]}, 400, "token arrays"),
])
def test_bad_embedding_requests(client: TestClient, body: dict, status: int, needle: str) -> None:
    r = client.post("/v1/embeddings", json=body)
    assert r.status_code == status and needle in r.json()["error"]["message"]


def test_gemini_embeddings_refuse_a_dimension_they_cannot_give(client: TestClient) -> None:
    r = client.post("/v1beta/models/all-minilm-l6-v2:embedContent",
                    json={"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 128})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    ok = client.post("/v1beta/models/all-minilm-l6-v2:batchEmbedContents",
                     json={"requests": [{"content": {"parts": [{"text": "a"}]}},
                                        {"content": {"parts": [{"text": "b"}]}}]})
    assert ok.status_code == 200 and len(ok.json()["embeddings"]) == 2


def test_gemini_model_routes(client: TestClient) -> None:
    listed = client.get("/v1beta/models").json()["models"]
    names = [m["name"] for m in listed]
    assert "models/lite" in names and "models/all-minilm-l6-v2" in names
    lite = client.get("/v1beta/models/lite").json()
    assert lite["name"] == "models/lite" and "generateContent" in lite["supportedGenerationMethods"]
    # google-genai asks /v1/models too, with its own header: it gets Gemini's shape there
    via_v1 = client.get("/v1/models", headers={"x-goog-api-client": "google-genai-sdk/1.0"}).json()
    assert [m["name"] for m in via_v1["models"]] == names
    assert client.get("/v1/models/lite", headers={"x-goog-api-client": "x"}).json()["name"] == "models/lite"
    assert client.get("/v1/models").json()["object"] == "list"  # everyone else: OpenAI's shape
    missing = client.get("/v1beta/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_unknown_routes_answer_in_the_api_shape(client: TestClient) -> None:
    r = client.post("/v1/assistants", json={})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_route" and "POST /v1/assistants" in r.json()["error"]["message"]
    g = client.post("/v1beta/models/lite:frobnicate", json={})
    assert g.status_code == 404 and g.json()["error"]["status"] == "NOT_FOUND"
    m = client.delete("/v1/chat/completions")
    assert m.status_code == 405 and "DELETE is not allowed" in m.json()["error"]["message"]


GENERATE = "/v1beta/models/lite:generateContent"
USER = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("path, body, needle", [
    ("/v1/chat/completions", '{"messages":[{"role":"user","content":"hi \\ud800"}]}', "unpaired surrogate"),
    (GENERATE, '{"contents":[{"role":"user","parts":[{"text":"hi \\ud800"}]}]}', "unpaired surrogate"),
    (GENERATE, {**USER, "generationConfig": {"temperature": 5}}, "generationConfig.temperature"),
    (GENERATE, {**USER, "generationConfig": {"maxOutputTokens": 0}}, "generationConfig.maxOutputTokens"),
    ("/v1beta/models/lite:streamGenerateContent", {**USER, "generationConfig": {"topP": 7}}, "generationConfig.topP"),
    (GENERATE, {**USER, "generationConfig": {"stopSequences": [""]}}, "stopSequences"),
    (GENERATE, {**USER, "tools": ["x"]}, "tools[0] must be an object"),
    (GENERATE, {"contents": [{"role": "model", "parts": [{"functionCall": "x"}]}, USER["contents"][0]]},
     "functionCall must be an object"),
    (GENERATE, {**USER, "systemInstruction": {"parts": [5]}}, "systemInstruction.parts[0] must be an object"),
    ("/v1beta/models/lite:batchGenerateContent", {"batch": "x"}, "inputConfig"),
    ("/v1beta/cachedContents", {"model": "models/lite", **USER, "expireTime": 12345}, "RFC 3339"),
    ("/v1beta/cachedContents", {"model": "models/lite", **USER, "ttl": "1" + "0" * 400 + "s"}, "duration"),
    (GENERATE, '{"contents":' + "[" * 100000 + "]" * 100000 + "}", "nests too deeply"),
    ("/v1/chat/completions", '{"messages":[{"role":"user","content":"hi"}],"repeat_penalty":Infinity}',
     "repeat_penalty"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [
        {"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": "f"}},
     "tool_choice"),
])
def test_malformed_input_is_a_400_never_a_500(client: TestClient, path: str, body, needle: str) -> None:
    import json as _json

    raw = body if isinstance(body, str) else _json.dumps(body)
    r = client.post(path, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert needle in error["message"]
    if "v1beta" in path:
        assert error["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("schema, needle", [
    ({"type": "object", "properties": {"a": {"enum": ["x" * 60_000]}}}, "enum value is 60,000 characters"),
    ({"type": "string", "pattern": "((a{1,100}){1,100}){1,100}"}, "nested repetitions"),
    ({"type": "string", "pattern": "[\\s\\S]{1000000}"}, "repeats up to 1,000,000"),
    ({"type": "string", "minLength": 1_000_000_000}, "'minLength' is 1,000,000,000"),
    ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "only refers back to itself"),
])
def test_schemas_that_would_stall_decoding_are_refused(client: TestClient, schema: dict, needle: str) -> None:
    r = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text
    assert r.json()["error"]["code"] == "invalid_schema"


def test_ollama_routes_stream_ndjson_by_default_and_answer_errors_in_its_shape(client: TestClient, rt) -> None:
    import json as _json

    with client.stream("POST", "/api/chat", json={"model": "lite",
                                                 "messages": [{"role": "user", "content": "hi"}]}) as r:
        lines = [_json.loads(line) for line in r.iter_lines() if line]
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert lines[-1]["done"] and not lines[0]["done"]
    assert "".join(x["message"]["content"] for x in lines) == "hello there"
    one = client.post("/api/generate", json={"model": "lite", "prompt": "hi", "stream": False}).json()
    assert one["response"] == "hello there" and one["done"] and one["eval_count"] == 2
    bad = client.post("/api/chat", json={"model": "lite", "messages": []})
    assert bad.status_code == 400 and bad.json() == {"error": "messages must be a non-empty list"}
    missing = client.post("/api/chat", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert client.get("/api/version").json()["version"]
    assert [m["name"] for m in client.get("/api/tags").json()["models"]] == ["lite"]
    rt.accountant.flush()
    assert {row["task"] for row in rt.accountant.ledger.rows()} == {"ollama"}


def test_responses_api_shapes(client: TestClient, rt) -> None:
    r = client.post("/v1/responses", json={"model": "lite", "input": "hi", "instructions": "be brief"})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "response" and body["status"] == "completed"
    assert body["output"][0]["content"][0] == {"type": "output_text", "text": "hello there", "annotations": []}
    assert body["usage"]["output_tokens"] == 2
    sent = rt.registry.engines["lite"].bodies[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"} and sent[-1]["content"] == "hi"
    with client.stream("POST", "/v1/responses", json={"model": "lite", "input": "hi", "stream": True}) as s:
        kinds = [line[7:] for line in s.iter_lines() if line.startswith("event: ")]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 2
    bad = client.post("/v1/responses", json={"model": "lite", "input": [{"type": "input_image"}]})
    assert bad.status_code == 400 and "input_image" in bad.json()["error"]["message"]
    prev = client.post("/v1/responses", json={"model": "lite", "input": "x", "previous_response_id": "resp_1"})
    assert prev.status_code == 400 and prev.json()["error"]["param"] == "previous_response_id"
