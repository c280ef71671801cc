"""langchain-openai against a real server: invoke, stream, batch, structured output, tools,
embeddings."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny and 21 C in {city}"


@pytest.fixture()
def chat(server: str) -> ChatOpenAI:
    return ChatOpenAI(base_url=server + "/v1", api_key="x", model="lite", max_tokens=30, temperature=0,
                      max_retries=0)


def test_invoke_stream_and_batch(chat: ChatOpenAI) -> None:
    reply = chat.invoke("What is the capital of France? One word.")
    assert "paris" in reply.content.lower()
    assert reply.usage_metadata["output_tokens"] >= 1
    chunks = list(chat.stream("Count from 1 to 3, separated by commas."))
    assert len(chunks) > 2 and all(d in "".join(c.content for c in chunks) for d in "123")
    answers = chat.batch(["Say the letter A.", "Say the letter B."])
    assert [a.content.strip(" .").upper()[-1] for a in answers] == ["A", "B"]


def test_structured_output(chat: ChatOpenAI) -> None:
    for method in ("json_schema", "function_calling"):
        city = chat.with_structured_output(City, method=method).invoke(
            "Oslo is the capital of Norway. Extract the city and its country.")
        assert (city.name, city.country) == ("Oslo", "Norway"), method


def test_bind_tools_calls_the_tool_then_answers(chat: ChatOpenAI) -> None:
    bound = chat.bind_tools([get_weather])
    question = HumanMessage("What's the weather in Paris right now?")
    first = bound.invoke([question])
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    assert first.tool_calls[0]["args"]["city"] == "Paris"
    result = ToolMessage(get_weather.invoke(first.tool_calls[0]["args"]), tool_call_id=first.tool_calls[0]["id"])
    final = chat.bind_tools([get_weather]).invoke([question, first, result])
    assert not final.tool_calls and "21" in final.content
    # a named tool is always called
    forced = chat.bind_tools([get_weather], tool_choice="get_weather").invoke("Hello there!")
    assert [c["name"] for c in forced.tool_calls] == ["get_weather"]


def test_embeddings(server: str) -> None:
    emb = OpenAIEmbeddings(base_url=server + "/v1", api_key="x", model="all-minilm-l6-v2",
                           check_embedding_ctx_length=False)
    one = emb.embed_query("where is my parcel")
    many = emb.embed_documents(["where is my parcel", "track my package", "bake a cake"])
    assert len(one) == 384 and len(many) == 3
    near = sum(a * b for a, b in zip(many[0], many[1]))
    far = sum(a * b for a, b in zip(many[0], many[2]))
    assert near > far
