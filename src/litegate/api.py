"""The Python API: the same chat service and task runner as the HTTP server, in-process
(every call is ledgered like an HTTP one).

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

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.config import Settings
from litegate.configfile import Config
from litegate.engine import LlamaEngine
from litegate.errors import OutputTruncated
from litegate.runtime import Runtime, build

T = TypeVar("T", bound=BaseModel)


def _messages(prompt: str | list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system:
        messages = [{"role": "system", "content": system}, *messages]
    return messages


class Litegate:
    """Owns a Runtime (or uses the ``runtime`` given, which the caller closes); ``model`` is
    the default for every call, ``feature`` tags the ledger rows."""

    def __init__(self, model: str = "lite", settings: Settings | None = None,
                 config: Config | Path | str | None = None, feature: str | None = None,
                 runtime: Runtime | None = None):
        self._owns = runtime is None
        self.runtime: Runtime = runtime if runtime is not None else build(settings, config, model=model)
        self.settings = self.runtime.settings
        self.registry = self.runtime.registry
        self.model = self.runtime.default_model if self._owns or model == "lite" else model
        self.feature = feature

    def engine(self, model: str | None = None) -> LlamaEngine:
        return self.registry.engine(model or self.model)

    def chat(self, prompt: str | list[dict[str, Any]], *, system: str | None = None, model: str | None = None,
             **params: Any) -> dict[str, Any]:
        """An OpenAI-shaped chat completion (``params`` as in the HTTP API)."""
        req = ChatCompletionRequest(messages=_messages(prompt, system), model=model or self.model, **params)
        return self.runtime.chat.run_sync(ChatCall(req, api="python", feature=self.feature))

    def task(self, name: str, **request: Any) -> dict[str, Any]:
        """Run a task (classify, extract, ...) as ``POST /v1/tasks/{name}`` would."""
        if self.feature and "feature" not in request:
            request["feature"] = self.feature
        return self.runtime.tasks.run(name, request)

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
        if self._owns:
            self.runtime.close()

    def __enter__(self) -> Litegate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
