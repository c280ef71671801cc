"""pydantic-ai against a real server: structured output and an agent that uses a tool."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider


class City(BaseModel):
    name: str
    country: str


@pytest.fixture()
def model(server: str) -> OpenAIChatModel:
    return OpenAIChatModel("lite", provider=OpenAIProvider(base_url=server + "/v1", api_key="x"))


def test_structured_output(model: OpenAIChatModel) -> None:
    agent = Agent(model, output_type=City)
    result = agent.run_sync("Lima is the capital of Peru. Extract the city and its country.",
                            model_settings={"max_tokens": 80})
    assert result.output == City(name="Lima", country="Peru")


def test_agent_calls_its_tool_and_answers(model: OpenAIChatModel) -> None:
    agent = Agent(model, instructions="Use the tools when they help.")
    asked: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        asked.append(city)
        return f"sunny and 21 C in {city}"

    result = agent.run_sync("What's the weather in Paris right now?", model_settings={"max_tokens": 80})
    assert asked == ["Paris"]
    kinds = [type(p).__name__ for m in result.all_messages() for p in m.parts]
    assert "ToolCallPart" in kinds and "ToolReturnPart" in kinds and kinds[-1] == "TextPart"
    assert "21" in result.output or "sunny" in result.output.lower()


def test_streamed_text(model: OpenAIChatModel) -> None:
    import asyncio

    agent = Agent(model)

    async def run() -> list[str]:
        async with agent.run_stream("Count from 1 to 3, separated by commas.",
                                    model_settings={"max_tokens": 20}) as stream:
            return [text async for text in stream.stream_text(delta=True)]

    pieces = asyncio.run(run())
    assert len(pieces) > 1 and all(d in "".join(pieces) for d in "123")
