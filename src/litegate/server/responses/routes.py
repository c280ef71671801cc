"""A minimal OpenAI Responses API (``POST /v1/responses``), which new OpenAI clients and agent
SDKs default to: text or message input, ``instructions``, ``text.format`` json_schema, function
tools and their outputs, streaming events. A thin adapter over the chat service."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.errors import InvalidRequest, LitegateError
from litegate.keys import request_feature, request_fingerprint
from litegate.server.bodies import RESPONSES, body
from litegate.server.errors import json_body
from litegate.server.limits import while_connected
from litegate.server.responses.file_search import file_search_response, file_search_tool

router = APIRouter()


def _content_text(content: Any, where: str) -> str | list[dict[str, Any]]:
    """Text parts as one string; with input_image / input_file parts, a list of chat content
    parts (the document layer reads the files)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of content parts", param=where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind in ("input_image", "input_file", "input_audio"):
            parts.append({**part, "where": f"{where}[{j}]"})
        else:
            raise InvalidRequest(f"{where}[{j}]: content of type {kind!r} is not supported; send input_text, "
                                 "input_image, input_file or input_audio", param=f"{where}[{j}]")
    if any(p["type"] != "text" for p in parts):
        return parts
    return "".join(p["text"] for p in parts)


def to_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``instructions`` + ``input`` (a string, or message / function_call / function_call_output
    items) as chat messages."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    raw = body.get("input")
    if isinstance(raw, str):
        return messages + [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty list of items", param="input")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"'input[{i}]' must be an object", param=f"input[{i}]")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"'input[{i}].role' must be user, assistant, system or developer",
                                     param=f"input[{i}].role")
            messages.append({"role": "system" if role == "developer" else role,
                             "content": _content_text(item.get("content"), f"input[{i}].content")})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": item.get("call_id") or item.get("id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": output if isinstance(output, str) else json.dumps(output)})
        else:
            raise InvalidRequest(f"'input[{i}].type' {kind!r} is not supported (message, function_call, "
                                 "function_call_output)", param=f"input[{i}].type")
    return messages


def to_chat_request(body: dict[str, Any]) -> ChatCompletionRequest:
    params: dict[str, Any] = {"model": body.get("model"), "messages": to_messages(body)}
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens")):
        if body.get(src) is not None:
            params[dst] = body[src]
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": fmt.get("name") or "response", "schema": fmt.get("schema")}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        params["response_format"] = {"type": "json_object"}
    tools = []
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidRequest(f"'tools[{i}]': only function tools are supported", param=f"tools[{i}]")
        tools.append({"type": "function", "function": {"name": tool.get("name"),
                                                       "description": tool.get("description") or "",
                                                       "parameters": tool.get("parameters")}})
    if tools:
        params["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice.get("name")}}
        if choice is not None:
            params["tool_choice"] = choice
        if body.get("parallel_tool_calls") is not None:
            params["parallel_tool_calls"] = body["parallel_tool_calls"]
    return ChatCompletionRequest.model_validate(params)


def _response(rid: str, model: str, created: int, output: list[dict[str, Any]], usage: dict[str, Any] | None,
              body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    u = usage or {}
    return {"id": rid, "object": "response", "created_at": created, "status": status, "model": model,
            "output": output, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "temperature": body.get("temperature"),
            "top_p": body.get("top_p"), "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice", "auto"),
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "text": body.get("text") or
            {"format": {"type": "text"}}, "error": None, "incomplete_details": None, "metadata": {},
            "usage": {"input_tokens": u.get("prompt_tokens", 0), "output_tokens": u.get("completion_tokens", 0),
                      "total_tokens": u.get("prompt_tokens", 0) + u.get("completion_tokens", 0),
                      "input_tokens_details": {"cached_tokens": (u.get("prompt_tokens_details") or {})
                                               .get("cached_tokens", 0)},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def _message_item(text: str) -> dict[str, Any]:
    return {"type": "message", "id": "msg_" + secrets.token_hex(12), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _output(result: dict[str, Any]) -> list[dict[str, Any]]:
    message = result["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if calls:
        return [{"type": "function_call", "id": "fc_" + secrets.token_hex(12), "call_id": c["id"],
                 "name": c["function"]["name"], "arguments": c["function"]["arguments"], "status": "completed"}
                for c in calls]
    return [_message_item(message.get("content") or "")]


def _whole(response: dict[str, Any], stream: bool) -> Any:
    """A finished response, as JSON or as the events of a stream that arrives whole."""
    if not stream:
        return JSONResponse(response)

    async def events() -> AsyncIterator[bytes]:
        seq = 0
        yield _event("response.created", seq, response=dict(response, status="in_progress", output=[],
                                                             usage=None))
        for i, item in enumerate(response["output"]):
            for kind in ("response.output_item.added", "response.output_item.done"):
                seq += 1
                yield _event(kind, seq, output_index=i, item=item)
        yield _event("response.completed", seq + 1, response=response)
    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _event(kind: str, seq: int, **data: Any) -> bytes:
    payload = json.dumps({"type": kind, "sequence_number": seq, **data}, separators=(",", ":"))
    return f"event: {kind}\ndata: {payload}\n\n".encode()


@router.post("/v1/responses", response_model=None, openapi_extra=body(RESPONSES))
async def create_response(request: Request) -> Any:
    body = await json_body(request)
    if body.get("previous_response_id"):
        raise InvalidRequest("'previous_response_id' is not supported: this server keeps no responses; send "
                             "the conversation in 'input'", param="previous_response_id")
    tool = file_search_tool(body)
    if tool is not None:  # retrieval, then a grounded answer with file citations
        output, usage, model = await file_search_response(request, body, tool, to_messages(body))
        return _whole(_response("resp_" + secrets.token_hex(12), model, int(time.time()), output, usage, body),
                      bool(body.get("stream")))
    req = to_chat_request(body)
    call = ChatCall(req, api="responses", feature=request_feature(request),
                    api_key=request_fingerprint(request))
    stream = bool(body.get("stream"))
    run = await while_connected(request, request.app.state.runtime.chat.run(call, stream=stream))
    rid, created = "resp_" + secrets.token_hex(12), int(time.time())
    if not stream or run.chunks is None:  # tool calls and remote tiers stream the whole reply at once
        result = run.result
        return _whole(_response(rid, run.model, created, _output(result), result.get("usage"), body), stream)
    return StreamingResponse(_text_events(run.chunks, rid, run.model, created, body),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _text_events(chunks: Any, rid: str, model: str, created: int, body: dict[str, Any]
                       ) -> AsyncIterator[bytes]:
    """A reply streamed token by token, as the Responses API's events."""
    seq = 0
    yield _event("response.created", seq, response=dict(_response(rid, model, created, [], None, body, "in_progress"),
                                                        usage=None))
    item = _message_item("")
    item["status"] = "in_progress"
    seq += 1
    yield _event("response.output_item.added", seq, output_index=0, item=item)
    seq += 1
    yield _event("response.content_part.added", seq, item_id=item["id"], output_index=0, content_index=0,
                 part={"type": "output_text", "text": "", "annotations": []})
    text, usage = [], None
    try:
        async for chunk in chunks:
            for c in chunk.get("choices", []):
                delta = (c.get("delta") or {}).get("content")
                if delta:
                    text.append(delta)
                    seq += 1
                    yield _event("response.output_text.delta", seq, item_id=item["id"], output_index=0,
                                 content_index=0, delta=delta)
            if not chunk.get("choices") and "usage" in chunk:
                usage = chunk["usage"]
    except LitegateError as e:
        seq += 1
        yield _event("error", seq, code=e.code or e.error_type, message=e.message, param=e.param)
        return
    finally:
        await chunks.aclose()
    full = "".join(text)
    done = _message_item(full)
    done["id"] = item["id"]
    for kind, extra in (("response.output_text.done", {"text": full}),
                        ("response.content_part.done", {"part": done["content"][0]})):
        seq += 1
        yield _event(kind, seq, item_id=item["id"], output_index=0, content_index=0, **extra)
    seq += 1
    yield _event("response.output_item.done", seq, output_index=0, item=done)
    seq += 1
    yield _event("response.completed", seq, response=_response(rid, model, created, [done], usage, body))
