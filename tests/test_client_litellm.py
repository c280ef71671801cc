"""litellm against a real server, as a user routes `openai/<model>` to a self-hosted base."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network here: use its bundled price map

import litellm  # noqa: E402
import pytest  # noqa: E402
from pydantic import BaseModel  # noqa: E402


class City(BaseModel):
    name: str
    country: str


@pytest.fixture()
def kw(server: str) -> dict:
    return {"api_base": server + "/v1", "api_key": "x", "num_retries": 0}


def test_completion_and_stream(kw: dict) -> None:
    r = litellm.completion(model="openai/lite", max_tokens=10, temperature=0,
                           messages=[{"role": "user", "content": "What is the capital of France? One word."}], **kw)
    assert "paris" in r.choices[0].message.content.lower()
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    chunks = list(litellm.completion(model="openai/lite", max_tokens=20, stream=True, temperature=0,
                                     messages=[{"role": "user", "content": "Count from 1 to 3."}], **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert all(d in text for d in "123"), text


def test_structured_output_and_tools(kw: dict) -> None:
    r = litellm.completion(model="openai/lite", max_tokens=40, response_format=City,
                           messages=[{"role": "user", "content": "Oslo is the capital of Norway. Extract the city."}],
                           **kw)
    assert City.model_validate_json(r.choices[0].message.content) == City(name="Oslo", country="Norway")
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                               "parameters": {"type": "object", "required": ["city"],
                                                              "properties": {"city": {"type": "string"}}}}}]
    r = litellm.completion(model="openai/lite", max_tokens=60, tools=tools, tool_choice="auto",
                           messages=[{"role": "user", "content": "What's the weather in Berlin right now?"}], **kw)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "Berlin" in call.function.arguments


def test_embedding(kw: dict) -> None:
    r = litellm.embedding(model="openai/all-minilm-l6-v2", input=["hello", "world"], **kw)
    assert len(r.data) == 2 and len(r.data[0]["embedding"]) == 384
