"""Chat requests, shared by the HTTP API and the Python API: validation, structured output
(``response_format``), function calling (``tools``), and checking what came back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from litegate.chat import tools as tooling  # noqa: I001
from litegate.chat.structured import ANY_OBJECT, CompiledSchema, compile_schema, schema_instruction
from litegate.chat.values import conform
from litegate.errors import EngineError, InvalidRequest


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def engine_message(self, index: int) -> dict[str, Any]:
        content: str | list[Any] | None = self.content
        if isinstance(content, list) and any(p.type == "image_url" for p in content) and \
                all(p.type in ("text", "image_url") for p in content):
            # images kept for a model with a multimodal projector (the service read every other file)
            content = [p.model_dump(exclude_none=True) for p in content]
        elif isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if part.type != "text" or part.text is None:
                    raise InvalidRequest(
                        f"'messages.{index}.content.{j}': content parts of type {part.type!r} are not "
                        "supported by this model; send text parts",
                        param=f"messages.{index}.content.{j}.type",
                    )
                texts.append(part.text)
            content = "".join(texts)
        role = "system" if self.role == "developer" else self.role
        msg: dict[str, Any] = {"role": role, "content": content if content is not None else ""}
        if self.name:
            msg["name"] = self.name
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            msg["tool_call_id"] = self.tool_call_id
        return msg


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and any(not s for s in v):
            raise ValueError("stop sequences must be non-empty strings")
        return v

    def check_single_choice(self) -> None:
        if self.n != 1:
            raise InvalidRequest("'n': only n=1 is supported; send several requests instead", param="n")

    def sampling(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
                    "frequency_penalty", "repeat_penalty"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.stop is not None:
            out["stop"] = [self.stop] if isinstance(self.stop, str) else self.stop
        return out


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int]
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None


@dataclass
class PreparedChat:
    """A validated chat request turned into an engine body, plus how to read the reply."""

    body: dict[str, Any]
    mode: Literal["text", "json", "tools"] = "text"
    compiled: CompiledSchema | None = None
    functions: list[tooling.Function] = field(default_factory=list)
    # tool_choice "auto": the two branches, so a first pass can decide between them
    # (ChatService._decide) before the reply is generated under the chosen one
    branches: dict[str, CompiledSchema] | None = None
    instruction: str = ""  # the tool listing and reply format added to the system message
    call_schema: dict[str, Any] | None = None  # a reply of tool calls, before compiling
    parallel: bool = False  # several calls in one reply allowed

    def at_least(self, calls: int, at_most: int | None = None) -> None:
        """Generate a reply of at least ``calls`` tool calls, and at most ``at_most`` (chat/fanout.py)."""
        assert self.call_schema is not None
        schema = json.loads(json.dumps(self.call_schema))
        schema["properties"]["tool_calls"]["minItems"] = calls
        if at_most is not None:
            schema["properties"]["tool_calls"]["maxItems"] = at_most
        self.compiled = compile_schema(schema, param="tools")
        self.body = dict(self.body, grammar=self.compiled.grammar)

    def choose(self, branch: str) -> None:
        """Generate under one branch of an ``auto`` reply: "call" or "answer"."""
        assert self.branches is not None
        self.compiled = self.branches[branch]
        self.body = dict(self.body, grammar=self.compiled.grammar)

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body["messages"]
        return messages

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        """Check a non-streamed engine response against the schema; build tool calls."""
        if self.mode == "text":
            return result
        for choice in result.get("choices", []):
            message = choice.get("message") or {}
            text = message.get("content") or ""
            if choice.get("finish_reason") == "length":
                value = self._complete_value(text)
                if value is None:  # truncated: reported as such, never parsed as if complete
                    if self.mode == "tools":  # the internal wrapper is never shown as text
                        choice["message"] = {"role": "assistant", "content": tooling.partial_content(text)}
                    continue
                choice["finish_reason"] = "stop"  # the grammar completed exactly at the budget
            else:
                value = self.check_text(text)
            if self.mode == "tools":
                new_message, reason = tooling.to_message(value)
                choice["message"] = new_message
                choice["finish_reason"] = reason
        return result

    def _complete_value(self, text: str) -> Any:
        """The reply's value when it is complete and valid despite a ``length`` stop, else None."""
        assert self.compiled is not None
        try:
            value = self._conformed(json.loads(text))
        except ValueError:
            return None
        return None if self.compiled.validate(value) else value

    def _conformed(self, value: Any) -> Any:
        """Tool call arguments as their schemas spell them (an enum entry in another case, a
        number as a string: what a tier without our grammar may send), before the check."""
        if self.mode != "tools" or not isinstance(value, dict) or not isinstance(value.get("tool_calls"), list):
            return value
        schemas = {f.name: f.parameters for f in self.functions}
        for call in value["tool_calls"]:
            if isinstance(call, dict) and call.get("name") in schemas:
                call["arguments"] = conform(call.get("arguments"), schemas[call["name"]])
        return value

    def check_text(self, text: str) -> Any:
        assert self.compiled is not None
        try:
            value = self._conformed(json.loads(text))
        except ValueError as e:
            raise EngineError(f"the constrained output is not JSON ({e}); please report this schema") from e
        problem = self.compiled.validate(value)
        if problem:
            raise EngineError(f"the constrained output broke the schema ({problem}); please report this schema")
        return value


def _with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Add ``text`` to the system message (creating one first if needed)."""
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0], content=(messages[0].get("content") or "") + "\n\n" + text)
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def prepare_chat(req: ChatCompletionRequest) -> PreparedChat:
    """Validate everything that does not need the model and build the engine body."""
    req.check_single_choice()
    if not req.messages:
        raise InvalidRequest("'messages' must contain at least one message", param="messages")
    messages = [m.engine_message(i) for i, m in enumerate(req.messages)]
    prepared = PreparedChat(body={})
    fmt = req.response_format or {}
    fmt_type = fmt.get("type", "text") if isinstance(fmt, dict) else None
    if fmt_type not in ("text", "json_object", "json_schema"):
        raise InvalidRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                             param="response_format.type")
    use_tools = bool(req.tools) and req.tool_choice != "none"
    if req.tools:
        functions = tooling.parse_tools(req.tools)
        mode, chosen = tooling.select_functions(functions, req.tool_choice)
    if use_tools:
        if fmt_type != "text":
            raise InvalidRequest("'response_format' cannot be combined with 'tools'; use one or the other",
                                 param="response_format")
        parallel = req.parallel_tool_calls is not False
        schema = tooling.reply_schema(mode, chosen, parallel)
        prepared.mode = "tools"
        prepared.functions = chosen
        prepared.compiled = compile_schema(schema, param="tools")
        prepared.call_schema = schema["anyOf"][0] if mode == "auto" else schema
        prepared.parallel = parallel
        if mode == "auto":
            call, answer = schema["anyOf"]
            prepared.branches = {"call": compile_schema(call, param="tools"), "answer": compile_schema(answer)}
        prepared.instruction = tooling.instruction(mode, chosen, parallel)
        messages = _with_system(tooling.render_history(messages), prepared.instruction)
    else:
        messages = tooling.render_history(messages, as_json=False)
        if fmt_type == "json_object":
            prepared.mode = "json"
            prepared.compiled = compile_schema(ANY_OBJECT)
            messages = _with_system(messages, "Reply with only a JSON object, no code fences and no commentary.")
        elif fmt_type == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or "schema" not in spec:
                raise InvalidRequest("'response_format.json_schema.schema' is required",
                                     param="response_format.json_schema.schema")
            prepared.mode = "json"
            prepared.compiled = compile_schema(spec["schema"], param="response_format.json_schema.schema")
            messages = _with_system(messages, schema_instruction(spec["schema"]))
    body: dict[str, Any] = {"messages": messages, **req.sampling()}
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if req.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = req.top_logprobs or 0
    if prepared.compiled is not None:
        body["grammar"] = prepared.compiled.grammar
    prepared.body = body
    return prepared
