"""The Python API: the same chat path as the HTTP server, in-process.

    from pydantic import BaseModel
    from litegate import Litegate

    class Person(BaseModel):
        name: str
        age: int

    with Litegate() as lg:
        person = lg.parse(Person, "Extract the person: Ada Lovelace, 36 years old.")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from litegate.chat import ChatCompletionRequest, prepare_chat
from litegate.config import Settings
from litegate.engine import LlamaEngine, ModelRegistry
from litegate.errors import InvalidRequest, OutputTruncated
from litegate.models import CATALOG

T = TypeVar("T", bound=BaseModel)


def _messages(prompt: str | list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system:
        messages = [{"role": "system", "content": system}, *messages]
    return messages


class Litegate:
    """Owns a model registry; ``model`` is the default for every call."""

    def __init__(self, model: str = "lite", settings: Settings | None = None):
        self.settings = settings or Settings()
        self.registry = ModelRegistry(self.settings, extra_specs=[model])
        served = model if model in CATALOG else Path(model).expanduser().name
        self.model = self.registry.lookup(served).name

    def engine(self, model: str | None = None) -> LlamaEngine:
        return self.registry.engine(model or self.model)

    def chat(self, prompt: str | list[dict[str, Any]], *, system: str | None = None, model: str | None = None,
             **params: Any) -> dict[str, Any]:
        """An OpenAI-shaped chat completion (``params`` as in the HTTP API)."""
        req = ChatCompletionRequest(messages=_messages(prompt, system), **params)
        prepared = prepare_chat(req)
        engine = self.engine(model)
        if prepared.body.get("max_tokens", 0) >= engine.n_ctx:
            raise InvalidRequest(f"max_tokens must be below the context size {engine.n_ctx}", param="max_tokens")
        return prepared.finish(engine.run("chat", prepared.body))

    def parse(self, output_type: type[T], prompt: str | list[dict[str, Any]], *, system: str | None = None,
              model: str | None = None, **params: Any) -> T:
        """Generate under ``output_type``'s JSON schema and return an instance of it."""
        schema = output_type.model_json_schema()
        fmt = {"type": "json_schema", "json_schema": {"name": output_type.__name__, "schema": schema, "strict": True}}
        params.setdefault("temperature", 0.0)
        result = self.chat(prompt, system=system, model=model, response_format=fmt, **params)
        choice = result["choices"][0]
        if choice.get("finish_reason") == "length":
            raise OutputTruncated(
                f"the {output_type.__name__} output was cut off at max_tokens "
                f"({result['usage']['completion_tokens']} tokens); allow more tokens"
            )
        return output_type.model_validate_json(choice["message"]["content"])

    def close(self) -> None:
        self.registry.close()

    def __enter__(self) -> Litegate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
