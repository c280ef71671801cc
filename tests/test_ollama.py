"""The official ollama Python client against our /api routes: only the host changes."""

from __future__ import annotations

import json

import ollama
import pytest
from pydantic import BaseModel


@pytest.fixture()
def client(server: str) -> ollama.Client:
    return ollama.Client(host=server)


def test_chat_and_stream(client: ollama.Client) -> None:
    r = client.chat(model="lite", messages=[{"role": "user", "content": "What is the capital of France? One word."}],
                    options={"temperature": 0, "num_predict": 8}, stream=False)
    assert "paris" in r.message.content.lower() and r.done and r.eval_count <= 8 and r.prompt_eval_count > 5
    parts = list(client.chat(model="lite", messages=[{"role": "user", "content": "Count from 1 to 5."}],
                             options={"temperature": 0, "num_predict": 30}, stream=True))
    text = "".join(p.message.content for p in parts)
    assert all(d in text for d in "12345") and parts[-1].done and not parts[0].done


class City(BaseModel):
    name: str
    country: str


def test_structured_output_with_a_schema(client: ollama.Client) -> None:
    r = client.chat(model="lite", messages=[{"role": "user", "content": "Name the capital of Italy as JSON."}],
                    format=City.model_json_schema(), options={"temperature": 0, "num_predict": 40}, stream=False)
    city = City.model_validate_json(r.message.content)
    assert city.name.lower() == "rome"


def test_tools_round_trip(client: ollama.Client) -> None:
    from litegate.chat.tool_cases import WEATHER

    r = client.chat(model="lite", messages=[{"role": "user", "content": "What's the weather like in Paris now?"}],
                    tools=[WEATHER], options={"temperature": 0, "num_predict": 60}, stream=False)
    call = r.message.tool_calls[0]
    assert call.function.name == "get_weather" and "paris" in json.dumps(call.function.arguments).lower()


def test_generate_embed_and_model_routes(client: ollama.Client) -> None:
    g = client.generate(model="lite", prompt="Say hello.", options={"temperature": 0, "num_predict": 8}, stream=False)
    assert g.response and g.done
    e = client.embed(model="all-minilm-l6-v2", input=["the cat sat", "a cat was sitting", "tax forms"])
    v = e.embeddings
    assert len(v) == 3 and len(v[0]) == 384
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert dot(v[0], v[1]) > dot(v[0], v[2])
    names = [m.model for m in client.list().models]
    assert "lite" in names
    shown = client.show("lite")
    assert shown.details.format == "gguf" and "tools" in (shown.capabilities or [])
    assert "lite" in [m.model for m in client.ps().models]
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}], stream=False)
    assert err.value.status_code == 404 and "nope" in str(err.value)
