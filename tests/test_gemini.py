"""The real google-genai client against our /v1beta routes: only the base URL changes."""

from __future__ import annotations

import time

import httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel


@pytest.fixture()
def client(server: str) -> genai.Client:
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=server))


def test_generate_content(client: genai.Client) -> None:
    r = client.models.generate_content(
        model="lite", contents="What is the capital of France? Answer with one word.",
        config=types.GenerateContentConfig(temperature=0, max_output_tokens=10,
                                           system_instruction="You answer briefly."))
    assert "paris" in r.text.lower()
    assert r.candidates[0].finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS)
    u = r.usage_metadata
    assert u.prompt_token_count > 5 and 1 <= u.candidates_token_count <= 10
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert u.thoughts_token_count == 0  # this model does not think, whatever thinkingConfig says
    assert r.model_version == "lite"


def test_generate_content_stream(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(
        model="lite", contents="Count from 1 to 5, separated by commas.",
        config=types.GenerateContentConfig(temperature=0, max_output_tokens=30)))
    text = "".join(c.text or "" for c in chunks)
    assert all(d in text for d in "12345"), text
    assert chunks[-1].usage_metadata.candidates_token_count >= 5


def test_streamed_call_is_a_ledger_row_with_its_feature(server: str, home) -> None:
    from test_ledger import ledger_row

    client = genai.Client(api_key="unused", http_options=types.HttpOptions(
        base_url=server, headers={"X-Litegate-Feature": "gemini-stream"}))
    chunks = list(client.models.generate_content_stream(
        model="lite", contents="Say hello.", config=types.GenerateContentConfig(temperature=0, max_output_tokens=8)))
    assert chunks[0].response_id and chunks[-1].response_id == chunks[0].response_id
    row = ledger_row(home, chunks[0].response_id)
    assert row is not None, "a streamed Gemini call must be ledgered"
    assert (row["task"], row["feature"], row["tier"]) == ("gemini", "gemini-stream", "lite")
    assert row["tokens_out"] == chunks[-1].usage_metadata.candidates_token_count and row["cost_usd"] > 0


def test_over_long_prompt_is_invalid_argument_with_token_counts(client: genai.Client) -> None:
    from conftest import TEST_CTX

    long = "alpha beta gamma delta " * 700  # ~2,800 tokens against a 2,048-token test context
    for call in (client.models.generate_content, client.models.generate_content_stream):
        with pytest.raises(errors.ClientError) as e:
            result = call(model="lite", contents=long)
            list(result) if not hasattr(result, "text") else None
        assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT"
        assert f"holds {TEST_CTX}" in e.value.message and "the prompt is" in e.value.message


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert "models/lite" in names and "models/all-minilm-l6-v2" in names
    lite = client.models.get(model="lite")
    assert lite.name == "models/lite" and lite.input_token_limit > 0
    assert "generateContent" in lite.supported_actions


def test_embed_output_dimensionality_it_cannot_give_is_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as e:
        client.models.embed_content(model="all-minilm-l6-v2", contents="hi",
                                    config=types.EmbedContentConfig(output_dimensionality=128))
    assert e.value.code == 400 and "cannot be shortened" in e.value.message


def test_count_tokens(client: genai.Client) -> None:
    short = client.models.count_tokens(model="lite", contents="hello").total_tokens
    longer = client.models.count_tokens(model="lite", contents="hello " * 50).total_tokens
    assert 0 < short < longer and longer - short >= 45


class City(BaseModel):
    name: str
    country: str
    population_millions: float


def test_pydantic_response_schema_parses(client: genai.Client) -> None:
    r = client.models.generate_content(
        model="lite", contents="Give facts about Tokyo as JSON.",
        config=types.GenerateContentConfig(temperature=0, response_mime_type="application/json",
                                           response_schema=City, max_output_tokens=80))
    assert isinstance(r.parsed, City)
    assert "tokyo" in r.parsed.name.lower()


def test_logprobs(client: genai.Client) -> None:
    r = client.models.generate_content(
        model="lite", contents="Say yes.",
        config=types.GenerateContentConfig(temperature=0, max_output_tokens=3, response_logprobs=True, logprobs=2))
    cand = r.candidates[0]
    assert cand.avg_logprobs is not None and cand.avg_logprobs <= 0
    assert len(cand.logprobs_result.chosen_candidates) == r.usage_metadata.candidates_token_count


WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Get the current weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                            required=["city"]))


def test_function_calling_round_trip(client: genai.Client) -> None:
    tools = [types.Tool(function_declarations=[WEATHER])]
    config = types.GenerateContentConfig(
        temperature=0, tools=tools, max_output_tokens=60,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")))
    question = types.Content(role="user", parts=[types.Part(text="What's the weather in Madrid?")])
    r = client.models.generate_content(model="lite", contents=[question], config=config)
    call = r.function_calls[0]
    assert call.name == "get_weather" and "madrid" in call.args["city"].lower()
    follow = client.models.generate_content(
        model="lite",
        contents=[question, r.candidates[0].content,
                  types.Content(role="user", parts=[types.Part.from_function_response(
                      name="get_weather", response={"weather": "31 degrees and sunny"})])],
        config=types.GenerateContentConfig(
            temperature=0, tools=tools, max_output_tokens=60,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))))
    assert "31" in follow.text or "sunny" in follow.text.lower()


def test_context_cache_lifecycle(client: genai.Client) -> None:
    document = " ".join(f"Fact {i}: the code word for day {i} is {'alpha beta gamma delta'.split()[i % 4]}."
                        for i in range(60))
    cache = client.caches.create(model="lite", config=types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part(text=document)])],
        system_instruction="Answer questions about the document.", ttl="300s", display_name="facts"))
    assert cache.name.startswith("cachedContents/") and cache.usage_metadata.total_token_count > 500
    assert client.caches.get(name=cache.name).display_name == "facts"
    assert any(c.name == cache.name for c in client.caches.list())
    r = client.models.generate_content(
        model="lite", contents="What is the code word for day 5?",
        config=types.GenerateContentConfig(cached_content=cache.name, temperature=0, max_output_tokens=10))
    assert r.usage_metadata.cached_content_token_count >= cache.usage_metadata.total_token_count - 10
    assert r.usage_metadata.prompt_token_count > cache.usage_metadata.total_token_count
    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="600s"))
    assert updated.expire_time > cache.expire_time
    client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as e:
        client.caches.get(name=cache.name)
    assert e.value.code == 404


def test_expired_cache_is_gone(client: genai.Client) -> None:
    cache = client.caches.create(model="lite", config=types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part(text="A short note.")])], ttl="1s"))
    time.sleep(1.5)
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model="lite", contents="hi", config=types.GenerateContentConfig(
            cached_content=cache.name, max_output_tokens=2))
    assert e.value.code == 404


def test_embed_content(client: genai.Client) -> None:
    r = client.models.embed_content(model="all-minilm-l6-v2",
                                    contents=["I lost my card", "My card is missing", "Bake bread at 220 C"])
    v = [e.values for e in r.embeddings]
    assert len(v) == 3 and len(v[0]) == 384
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert dot(v[0], v[1]) > dot(v[0], v[2]) + 0.2


def test_batch_generate_inline(client: genai.Client) -> None:
    job = client.batches.create(model="lite", src=[
        {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}], "config": {"max_output_tokens": 5}},
        {"contents": [{"role": "user", "parts": [{"text": "Say goodbye."}]}], "config": {"max_output_tokens": 5}},
    ])
    deadline = time.monotonic() + 120
    while job.state.name not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.batches.get(name=job.name)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    responses = job.dest.inlined_responses
    assert len(responses) == 2 and all(r.response.text for r in responses)


def test_errors_are_google_shaped(server: str, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model="gemini-9-ultra", contents="hi")
    assert e.value.code == 404 and e.value.status == "NOT_FOUND"
    r = httpx.post(server + "/v1beta/models/lite:generateContent",
                   json={"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png",
                                                                                 "data": "AAAA"}}]}]})
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT" and "contents[0].parts[0]" in r.json()["error"]["message"]
    r = httpx.post(server + "/v1beta/models/lite:generateContent", json={"contents": []})
    assert r.status_code == 400 and set(r.json()["error"]) == {"code", "message", "status"}
    r = httpx.post(server + "/v1beta/models/lite:generateContent", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
