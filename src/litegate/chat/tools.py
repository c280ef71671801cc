"""Function calling on any local model, enforced by a JSON schema over the whole reply.

Rather than relying on each model's own tool-call dialect, the reply is constrained to one
JSON object: ``{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}`` or, when the
model may answer directly (``tool_choice: auto``), ``{"content": "..."}``. Every
function's ``parameters`` schema sits inside that grammar, so the arguments always
validate against it. Earlier tool calls and tool results in ``messages`` are rendered back
in the same format, so a conversation round-trips.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from litegate.chat.structured import check_schema
from litegate.errors import InvalidRequest

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PARALLEL_CALLS = 8


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict[str, Any]


def parse_tools(tools: list[dict[str, Any]]) -> list[Function]:
    functions: list[Function] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        param = f"tools.{i}"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise InvalidRequest(f"'{param}.type': only 'function' tools are supported", param=f"{param}.type")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise InvalidRequest(f"'{param}.function' is required", param=f"{param}.function")
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequest(f"'{param}.function.name' must be 1-64 letters, digits, '_' or '-'",
                                 param=f"{param}.function.name")
        if name in seen:
            raise InvalidRequest(f"'{param}.function.name': the function {name!r} is declared twice",
                                 param=f"{param}.function.name")
        seen.add(name)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        check_schema(params, param=f"{param}.function.parameters")
        functions.append(Function(name, str(fn.get("description") or ""), params))
    if not functions:
        raise InvalidRequest("'tools' must not be empty", param="tools")
    return functions


def select_functions(functions: list[Function], tool_choice: str | dict[str, Any] | None) -> tuple[str, list[Function]]:
    """Resolve ``tool_choice`` to a mode ("none", "auto", "required") and the callable set."""
    if tool_choice is None or tool_choice == "auto":
        return "auto", functions
    if tool_choice in ("none", "required"):
        return str(tool_choice), functions
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        chosen = [f for f in functions if f.name == name]
        if not chosen:
            raise InvalidRequest(f"'tool_choice' names the function {name!r}, which is not in 'tools'",
                                 param="tool_choice")
        return "required", chosen
    raise InvalidRequest("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', "
                         "'function': {'name': ...}}", param="tool_choice")


def closed(schema: Any) -> Any:
    """A parameters schema as the grammar should read it: an object that lists its properties
    and says nothing of others takes no others. A function declared with ``"properties": {}``
    then gets ``{}`` as arguments, not whatever the model invents (once: the schema itself)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: closed(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and "patternProperties" not in out:
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = closed(out["items"])
    return out


def reply_schema(mode: str, functions: list[Function], parallel: bool) -> dict[str, Any]:
    calls = [{"type": "object",
              "properties": {"name": {"const": f.name}, "arguments": closed(f.parameters)},
              "required": ["name", "arguments"], "additionalProperties": False} for f in functions]
    call_list = {"type": "array", "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                 "minItems": 1, "maxItems": MAX_PARALLEL_CALLS if parallel else 1}
    with_calls = {"type": "object", "properties": {"tool_calls": call_list}, "required": ["tool_calls"],
                  "additionalProperties": False}
    if mode == "required":
        return with_calls
    answer = {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"],
              "additionalProperties": False}
    return {"anyOf": [with_calls, answer]}


def instruction(mode: str, functions: list[Function], parallel: bool) -> str:
    # plain UTF-8: escaped, "³" reaches the model as "\\u00b3" and comes back garbled
    listing = json.dumps([{"name": f.name, "description": f.description, "parameters": f.parameters}
                          for f in functions], separators=(",", ":"), ensure_ascii=False)
    # the call format comes before the way out: described last, a small model takes the way
    # out far too often (bench/tool_choice.py)
    call = 'To call functions: {"tool_calls": [{"name": <function name>, "arguments": {...}}]}'
    if parallel:
        call += ", one entry per call when the request needs several (for example one per item asked about)"
    lines = [f"You can call these functions:\n{listing}", "Reply with only one JSON object.", call + "."]
    if mode == "auto":
        lines.append("When the user asks for something one of the functions does or looks up, call it. "
                     "Only when no function fits the request, or function results above already answer "
                     'it, answer directly: {"content": <your answer>}.')
    else:
        lines.append("You must call at least one function.")
    return "\n".join(lines)


CALL_PREFIX = '{"tool_calls"'
ANSWER_PREFIX = '{"content"'


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_content(text: str) -> str | None:
    """The text of a direct answer cut off by max_tokens (``{"content": "...`` unfinished); None
    for a cut-off tool call, whose arguments are unusable."""
    m = re.match(r'\s*\{\s*"content"\s*:\s*"', text)
    if not m:
        return None
    raw, out, i = text[m.end():], [], 0
    while i < len(raw) and raw[i] != '"':  # decode the JSON string as far as it goes
        if raw[i] != "\\":
            out.append(raw[i])
            i += 1
        elif raw[i + 1:i + 2] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
        elif raw[i + 1:i + 2] == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2:i + 6]):
            out.append(chr(int(raw[i + 2:i + 6], 16)))
            i += 6
        else:
            break  # an escape cut in half
    return "".join(out)


def render_history(messages: list[dict[str, Any]], as_json: bool = True) -> list[dict[str, Any]]:
    """Rewrite assistant tool calls and tool results into text the model reads: the JSON
    reply format when tools are active, plain sentences when it must answer in prose."""
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn = call.get("function") or {}
                args = fn.get("arguments")
                try:
                    args = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    pass
                names_by_id[str(call.get("id"))] = str(fn.get("name"))
                calls.append({"name": fn.get("name"), "arguments": args})
            if as_json:
                out.append({"role": "assistant", "content": json.dumps({"tool_calls": calls}, ensure_ascii=False)})
            else:
                said = "; ".join(f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False)})" for c in calls)
                out.append({"role": "assistant", "content": f"(I called {said}.)"})
        elif msg["role"] == "tool":
            call_id = str(msg.get("tool_call_id"))
            name = names_by_id.get(call_id, msg.get("name") or "the function")
            if as_json:
                text = f"Result of {name} (call {call_id}):\n{msg.get('content', '')}"
            else:
                text = f"The function {name} returned: {msg.get('content', '')}\nUse this result to answer."
            out.append({"role": "user", "content": text})
        else:
            out.append({k: v for k, v in msg.items() if k in ("role", "content")})
    return out


def to_message(reply: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Turn a schema-valid reply into an OpenAI assistant message and its finish reason."""
    if "tool_calls" in reply:
        calls = [{"id": "call_" + secrets.token_hex(12), "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                 for c in reply["tool_calls"]]
        return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
    return {"role": "assistant", "content": reply.get("content", "")}, "stop"
