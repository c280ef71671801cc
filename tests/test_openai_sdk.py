"""The official openai SDK against our server, as a user would point it at us."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture()
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="not-needed", max_retries=0)


def test_chat_completion(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="lite",
        messages=[{"role": "system", "content": "Answer with one word."},
                  {"role": "user", "content": "What is the capital of France?"}],
        max_tokens=10, temperature=0,
    )
    assert r.model == "lite"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert "paris" in r.choices[0].message.content.lower()
    assert r.usage.prompt_tokens > 5
    assert 1 <= r.usage.completion_tokens <= 10
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    extra = r.model_extra
    assert extra["timings"]["predicted_n"] == r.usage.completion_tokens
    assert extra["litegate"]["latency_ms"] > 0


def test_streamed_chat_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="lite", messages=[{"role": "user", "content": "Count from 1 to 5, separated by commas."}],
        max_tokens=30, temperature=0, stream=True, stream_options={"include_usage": True},
    )
    text, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    joined = "".join(text)
    assert all(d in joined for d in "12345"), joined
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens >= 5


def test_stream_without_include_usage_still_reports_usage_on_last_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="lite", messages=[{"role": "user", "content": "Say hi"}], max_tokens=5, stream=True))
    last = chunks[-1]
    assert last.choices[0].finish_reason is not None
    assert last.usage is not None and last.usage.completion_tokens <= 5


def test_greedy_decoding_is_repeatable(client: openai.OpenAI) -> None:
    def once() -> str:
        return client.chat.completions.create(
            model="lite", messages=[{"role": "user", "content": "Name three colours."}],
            max_tokens=16, temperature=0).choices[0].message.content
    assert once() == once()


def test_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="lite", messages=[{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
        max_tokens=3, temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for item in content:
        assert item.logprob <= 0
        assert 1 <= len(item.top_logprobs) <= 3
        # the chosen token at temperature 0 is the most likely one
        assert item.top_logprobs[0].logprob == pytest.approx(item.logprob, abs=1e-4)


def test_text_completion_with_stop_and_legacy_logprobs(client: openai.OpenAI) -> None:
    r = client.completions.create(model="lite", prompt="1, 2, 3, 4,", max_tokens=20, temperature=0,
                                  stop=["8"], logprobs=2)
    text = r.choices[0].text
    assert "5" in text and "8" not in text
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs)
    assert "".join(lp.tokens).startswith(text[: len("".join(lp.tokens))][:3])


def test_streamed_text_completion(client: openai.OpenAI) -> None:
    pieces = [c.choices[0].text for c in client.completions.create(
        model="lite", prompt="def add(a, b):", max_tokens=16, temperature=0, stream=True) if c.choices]
    assert "return" in "".join(pieces)


def test_models_list_and_file_name_alias(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert "lite" in ids
    r = client.chat.completions.create(model="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                                       messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert r.usage.completion_tokens <= 2


def test_embeddings_through_the_sdk(client: openai.OpenAI) -> None:
    import numpy as np

    r = client.embeddings.create(model="all-minilm-l6-v2", input=["the cat sat", "a cat was sitting", "tax forms"])
    v = np.array([d.embedding for d in r.data])
    assert v.shape == (3, 384) and r.usage.prompt_tokens > 6
    assert v[0] @ v[1] > v[0] @ v[2]  # similar sentences are closer
    # the SDK asks for base64 by default when numpy is around; both shapes decode the same
    b = client.embeddings.create(model="all-minilm-l6-v2", input="the cat sat", encoding_format="base64")
    assert np.allclose(np.array(b.data[0].embedding, dtype=np.float32) if isinstance(b.data[0].embedding, list)
                       else np.frombuffer(__import__("base64").b64decode(b.data[0].embedding), dtype="<f4"),
                       v[0], atol=1e-5)
    with pytest.raises(openai.BadRequestError, match="cannot be shortened"):
        client.embeddings.create(model="all-minilm-l6-v2", input="x", dimensions=128)


def test_unknown_route_is_a_clear_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="no route POST /v1/assistants"):
        client.post("/assistants", cast_to=dict, body={})


def test_responses_api_text_stream_schema_and_tools(client: openai.OpenAI) -> None:
    import json as _json

    from pydantic import BaseModel

    r = client.responses.create(model="lite", instructions="Answer in one word.",
                                input="What is the capital of France?", max_output_tokens=8, temperature=0)
    assert "paris" in r.output_text.lower() and r.usage.output_tokens <= 8 and r.status == "completed"
    events = list(client.responses.create(model="lite", input="Count from 1 to 5.", max_output_tokens=30,
                                          temperature=0, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert all(d in text for d in "12345") and events[-1].response.output_text == text

    class City(BaseModel):
        name: str
        country: str

    parsed = client.responses.parse(model="lite", input="The capital of Italy, as JSON.", text_format=City,
                                    max_output_tokens=40, temperature=0)
    assert parsed.output_parsed.name.lower() == "rome"
    tool = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    r = client.responses.create(model="lite", input="What's the weather like in Paris now?", tools=[tool],
                                max_output_tokens=60, temperature=0)
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert "paris" in _json.loads(call.arguments)["city"].lower()
    r = client.responses.create(model="lite", tools=[tool], max_output_tokens=40, temperature=0, input=[
        {"role": "user", "content": "What's the weather like in Paris now?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18°C and sunny"}])
    assert r.output[0].type == "message" and r.output_text


def test_tool_choice_auto_calls_when_a_tool_fits_and_answers_when_none_does(client: openai.OpenAI) -> None:
    import json as _json

    from litegate.chat.tool_cases import STOCK, WEATHER

    r = client.chat.completions.create(model="lite", tools=[WEATHER, STOCK], tool_choice="auto", max_tokens=60,
                                       temperature=0,
                                       messages=[{"role": "user", "content": "What's the weather like in Paris now?"}])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert "paris" in _json.loads(call.function.arguments)["city"].lower()
    assert r.model_extra["litegate"]["tool_decision"]["call"] is True
    r = client.chat.completions.create(model="lite", tools=[WEATHER, STOCK], tool_choice="auto", max_tokens=40,
                                       temperature=0,
                                       messages=[{"role": "user", "content": "Tell me a joke about cats."}])
    assert not r.choices[0].message.tool_calls and r.choices[0].message.content
    assert not r.choices[0].message.content.lstrip().startswith("{")  # the wrapper never shows


def test_tool_choice_auto_answers_a_question_on_the_tools_topic_that_names_nothing_to_look_up(
        client: openai.OpenAI) -> None:
    from litegate.chat.tool_cases import TRAINS

    # close to the tool's description, so the model starts a call; its arguments are made up
    # ("London" to "Paris"), so the call is dropped and the question answered
    r = client.chat.completions.create(model="lite", tools=[TRAINS], tool_choice="auto", max_tokens=40,
                                       temperature=0,
                                       messages=[{"role": "user", "content": "How fast do high-speed trains go?"}])
    assert not r.choices[0].message.tool_calls and r.choices[0].message.content
    decision = r.model_extra["litegate"]["tool_decision"]
    assert decision["call"] is False and decision["grounding"][0]["invented"]
    assert r.usage.completion_tokens > 5


def test_tool_reply_cut_by_max_tokens_is_not_shown_as_text(client: openai.OpenAI) -> None:
    from litegate.chat.tool_cases import WEATHER

    r = client.chat.completions.create(model="lite", tools=[WEATHER], tool_choice="required", max_tokens=5,
                                       messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content is None and not r.choices[0].message.tool_calls


def test_a_function_without_parameters_is_called_with_empty_arguments(client: openai.OpenAI) -> None:
    """Declared with "properties": {} (as the llm CLI's tools are), the arguments must be {}:
    an open object once let the model copy the schema into them."""
    tools = [{"type": "function", "function": {"name": "app_version", "description": "The installed app version",
                                               "parameters": {"type": "object", "properties": {}}}}]
    for _ in range(3):
        r = client.chat.completions.create(
            model="lite", tools=tools, tool_choice="required", max_tokens=40, temperature=1.0,
            messages=[{"role": "user", "content": "Which version of the app is installed? Use the tool."}])
        assert r.choices[0].message.tool_calls[0].function.arguments == "{}"
