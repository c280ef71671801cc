"""instructor against a real server: the modes its users pick first, and partial streaming."""

from __future__ import annotations

import instructor
import openai
import pytest
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


@pytest.mark.parametrize("mode", [instructor.Mode.JSON_SCHEMA, instructor.Mode.TOOLS, instructor.Mode.MD_JSON,
                                  instructor.Mode.JSON])
def test_structured_output_in_each_mode(server: str, mode: instructor.Mode) -> None:
    client = instructor.from_openai(openai.OpenAI(base_url=server + "/v1", api_key="x", max_retries=0), mode=mode)
    # greedy: in MD_JSON mode nothing constrains the reply, and a sampled 0.5B model sometimes
    # names the keys its own way ({"city": ...}); instructor then re-asks with the error
    city = client.chat.completions.create(
        model="lite", response_model=City, max_tokens=60, max_retries=2, temperature=0,
        messages=[{"role": "user", "content": "Rome is the capital of Italy. Extract the city and its country."}])
    assert (city.name, city.country) == ("Rome", "Italy")


def test_partial_objects_stream_in(server: str) -> None:
    client = instructor.from_openai(openai.OpenAI(base_url=server + "/v1", api_key="x", max_retries=0),
                                    mode=instructor.Mode.JSON_SCHEMA)
    parts = list(client.chat.completions.create_partial(
        model="lite", response_model=City, max_tokens=40,
        messages=[{"role": "user", "content": "Madrid is the capital of Spain. Extract the city and its country."}]))
    assert len(parts) > 3  # it arrives piece by piece
    assert (parts[-1].name, parts[-1].country) == ("Madrid", "Spain")
    assert parts[0].country is None or len(parts[0].country or "") <= len("Spain")


def test_async_client(server: str) -> None:
    import asyncio

    client = instructor.from_openai(openai.AsyncOpenAI(base_url=server + "/v1", api_key="x", max_retries=0))

    async def run() -> City:
        return await client.chat.completions.create(
            model="lite", response_model=City, max_tokens=60,
            messages=[{"role": "user", "content": "Lima is the capital of Peru. Extract the city and its country."}])

    assert asyncio.run(run()).country == "Peru"
