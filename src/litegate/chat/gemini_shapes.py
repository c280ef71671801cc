"""Translation between the Gemini API's shapes and litegate's chat requests and replies.

Kept free of HTTP so the same conversion serves generateContent, streaming, countTokens
and batch jobs.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from pydantic import ValidationError

from litegate.chat import ChatCompletionRequest
from litegate.errors import InvalidRequest

BASE64 = re.compile(r"[A-Za-z0-9+/_\-\s]+={0,2}\s*")  # standard or URL-safe alphabet, padding optional
_TYPES = {"STRING": "string", "INTEGER": "integer", "NUMBER": "number", "BOOLEAN": "boolean",
          "ARRAY": "array", "OBJECT": "object", "NULL": "null"}
_KEEP = {"description", "title", "enum", "format", "minItems", "maxItems", "minimum", "maximum", "minLength",
         "maxLength", "pattern", "required", "default", "const"}
_DROP = {"propertyOrdering", "example", "nullable", "type", "properties", "items", "anyOf"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def openapi_to_json_schema(schema: Any, path: str = "responseSchema") -> dict[str, Any]:
    """Gemini's OpenAPI-subset ``Schema`` (``type: OBJECT``, ``nullable``) as JSON Schema.
    Keys may come in camelCase or snake_case (the SDK sends both)."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{path} must be an object")
    schema = {_camel(k): v for k, v in schema.items()}
    out: dict[str, Any] = {}
    t = schema.get("type")
    if t is not None:
        if not isinstance(t, str) or t.upper() not in _TYPES:
            raise InvalidRequest(f"{path}.type {t!r} is not one of {', '.join(_TYPES)}")
        out["type"] = _TYPES[t.upper()]
        if schema.get("nullable") and out["type"] != "null":
            out["type"] = [out["type"], "null"]
    elif schema.get("nullable"):
        out["type"] = ["null"]
    if "properties" in schema:
        out["properties"] = {k: openapi_to_json_schema(v, f"{path}.properties.{k}")
                             for k, v in (schema["properties"] or {}).items()}
        out.setdefault("additionalProperties", False)
    if "items" in schema:
        out["items"] = openapi_to_json_schema(schema["items"], f"{path}.items")
    if "anyOf" in schema:
        out["anyOf"] = [openapi_to_json_schema(s, f"{path}.anyOf.{i}") for i, s in enumerate(schema["anyOf"])]
    for key, value in schema.items():
        if key in _KEEP:
            out[key] = value
        elif key not in _DROP:
            raise InvalidRequest(f"{path}.{key} is not supported in a response schema")
    if out.get("format") in ("enum",):  # Gemini marks string enums with format: enum
        out.pop("format")
    return out


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be a list")
    return value


def _text_of(parts: list[dict[str, Any]], where: str, media: bool = False) -> str | list[dict[str, Any]]:
    """The parts' text; with ``media``, inlineData / fileData parts make it a list of OpenAI
    content parts (``file`` parts that the document layer reads)."""
    out: list[dict[str, Any]] = []
    for j, part in enumerate(parts or []):
        _obj(part, f"{where}.parts[{j}]")
        if "text" in part:
            out.append({"type": "text", "text": str(part["text"])})
        elif "inlineData" in part or "inline_data" in part:
            data = _obj(part.get("inlineData") or part.get("inline_data"), f"{where}.parts[{j}].inlineData")
            if not media:
                raise InvalidRequest(f"{where}.parts[{j}]: files are read in contents only")
            mime = data.get("mimeType") or data.get("mime_type")
            if not isinstance(mime, str) or not isinstance(data.get("data"), str):
                raise InvalidRequest(f"{where}.parts[{j}].inlineData needs mimeType and data (base64)")
            if not BASE64.fullmatch(data["data"]):
                raise InvalidRequest(f"{where}.parts[{j}].inlineData.data is not base64: send the file's bytes "
                                     "base64-encoded", param=f"{where}.parts[{j}].inlineData.data")
            out.append({"type": "file", "file": {"file_data": f"data:{mime};base64,{data['data']}",
                                                 "filename": data.get("displayName")},
                        "where": f"{where}.parts[{j}]"})
        elif "fileData" in part or "file_data" in part:
            ref = _obj(part.get("fileData") or part.get("file_data"), f"{where}.parts[{j}].fileData")
            uri = ref.get("fileUri") or ref.get("file_uri")
            if not media:
                raise InvalidRequest(f"{where}.parts[{j}]: files are read in contents only")
            if not isinstance(uri, str) or not uri:
                raise InvalidRequest(f"{where}.parts[{j}].fileData needs a fileUri (from files.upload)")
            out.append({"type": "file", "file": {"file_id": uri}, "where": f"{where}.parts[{j}]"})
        elif "thought" in part or "thoughtSignature" in part:
            continue
    if any(p["type"] != "text" for p in out):
        return out
    return "".join(p["text"] for p in out)


def contents_to_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``systemInstruction`` + ``contents[]`` as OpenAI-style chat messages."""
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        text = _text_of(_list(_obj(system, "systemInstruction").get("parts", []), "systemInstruction.parts"),
                        "systemInstruction")
        if text:
            messages.append({"role": "system", "content": text})
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("contents must be a non-empty list")
    call_ids: dict[str, list[str]] = {}
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise InvalidRequest(f"contents[{i}] must be an object")
        role = content.get("role", "user")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(f"contents[{i}].parts must be a non-empty list")
        text = _text_of(parts, f"contents[{i}]", media=role not in ("model",))
        calls = [_obj(p["functionCall"], f"contents[{i}].parts[{j}].functionCall")
                 for j, p in enumerate(parts) if "functionCall" in p]
        responses = [_obj(p["functionResponse"], f"contents[{i}].parts[{j}].functionResponse")
                     for j, p in enumerate(parts) if "functionResponse" in p]
        if role == "model":
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = []
                for call in calls:
                    call_id = call.get("id") or "call_" + secrets.token_hex(6)
                    call_ids.setdefault(call.get("name", ""), []).append(call_id)
                    msg["tool_calls"].append({"id": call_id, "type": "function", "function": {
                        "name": call.get("name"), "arguments": json.dumps(call.get("args") or {})}})
            messages.append(msg)
        elif role in ("user", "function", "tool"):
            for resp in responses:
                name = resp.get("name", "")
                ids = call_ids.get(name) or []
                call_id = resp.get("id") or (ids.pop(0) if ids else name)
                messages.append({"role": "tool", "tool_call_id": call_id, "name": name,
                                 "content": json.dumps(resp.get("response", {}))})
            if text:
                messages.append({"role": "user", "content": text})
        else:
            raise InvalidRequest(f"contents[{i}].role must be 'user' or 'model', got {role!r}")
    return messages


def to_chat_request(body: dict[str, Any]) -> tuple[ChatCompletionRequest, dict[str, Any]]:
    """A Gemini GenerateContentRequest as a chat request; also returns what the reply needs."""
    cfg = body.get("generationConfig") or {}
    if not isinstance(cfg, dict):
        raise InvalidRequest("generationConfig must be an object")
    if cfg.get("candidateCount", 1) != 1:
        raise InvalidRequest("generationConfig.candidateCount: only 1 candidate is supported")
    req: dict[str, Any] = {"messages": contents_to_messages(body), **_generation_config(cfg)}
    req.update(_tools(body))
    try:
        chat = ChatCompletionRequest.model_validate(req)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith(("function-", "list[", "dict[")))
        raise InvalidRequest(f"{_GEMINI_NAME.get(field, field)}: {first.get('msg', 'invalid value')}") from None
    return chat, {"logprobs": bool(cfg.get("responseLogprobs")), "thinking_requested": bool(cfg.get("thinkingConfig"))}


_CONFIG_FIELDS = {"temperature": "temperature", "topP": "top_p", "topK": "top_k", "maxOutputTokens": "max_tokens",
                  "seed": "seed", "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty"}


def _generation_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """generationConfig as chat request fields: sampling, stops, the reply's format, logprobs."""
    req = {dst: cfg[src] for src, dst in _CONFIG_FIELDS.items() if cfg.get(src) is not None}
    if cfg.get("stopSequences"):
        req["stop"] = cfg["stopSequences"]
    mime = cfg.get("responseMimeType", "text/plain")
    if mime not in ("text/plain", "application/json", "text/x.enum"):
        raise InvalidRequest(f"generationConfig.responseMimeType {mime!r} is not supported "
                             "(use text/plain or application/json)")
    schema = cfg.get("responseJsonSchema") or cfg.get("response_json_schema")
    if schema is None and cfg.get("responseSchema") is not None:
        schema = openapi_to_json_schema(cfg["responseSchema"], "generationConfig.responseSchema")
    if schema is not None:
        if mime != "application/json" and mime != "text/x.enum":
            raise InvalidRequest("generationConfig.responseSchema needs responseMimeType 'application/json'")
        req["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    elif mime == "application/json":
        req["response_format"] = {"type": "json_object"}
    if cfg.get("responseLogprobs"):
        req["logprobs"] = True
        req["top_logprobs"] = int(cfg.get("logprobs") or 0)
    return req


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    """tools[].functionDeclarations and toolConfig as chat ``tools`` and ``tool_choice`` ({} without tools)."""
    tools: list[dict[str, Any]] = []
    for t, tool in enumerate(_list(body.get("tools") or [], "tools")):
        for d, decl in enumerate(_list(_obj(tool, f"tools[{t}]").get("functionDeclarations") or [],
                                       f"tools[{t}].functionDeclarations")):
            _obj(decl, f"tools[{t}].functionDeclarations[{d}]")
            params = decl.get("parametersJsonSchema")
            if params is None and decl.get("parameters") is not None:
                params = openapi_to_json_schema(decl["parameters"], f"functionDeclarations.{decl.get('name')}")
            tools.append({"type": "function", "function": {"name": decl.get("name"),
                                                           "description": decl.get("description", ""),
                                                           "parameters": params or {"type": "object",
                                                                                    "properties": {}}}})
    if not tools:
        return {}
    fcc = _obj(_obj(body.get("toolConfig") or {}, "toolConfig").get("functionCallingConfig") or {},
               "toolConfig.functionCallingConfig")
    mode = str(fcc.get("mode", "AUTO")).upper()
    allowed = fcc.get("allowedFunctionNames") or []
    if allowed:
        known = {t["function"]["name"] for t in tools}
        unknown = [a for a in allowed if a not in known]
        if unknown:
            raise InvalidRequest(f"toolConfig.functionCallingConfig.allowedFunctionNames names undeclared "
                                 f"functions: {unknown}")
        tools = [t for t in tools if t["function"]["name"] in allowed]
    if mode == "NONE":
        choice: Any = "none"
    elif mode in ("ANY", "VALIDATED"):
        choice = ("required" if len(tools) > 1 else
                  {"type": "function", "function": {"name": tools[0]["function"]["name"]}})
    elif mode == "AUTO":
        choice = "auto"
    else:
        raise InvalidRequest(f"toolConfig.functionCallingConfig.mode {mode!r} is not AUTO, ANY or NONE")
    return {"tools": tools, "tool_choice": choice}


# chat request fields -> the Gemini fields they came from (for error messages)
_GEMINI_NAME = {"temperature": "generationConfig.temperature", "top_p": "generationConfig.topP",
                "top_k": "generationConfig.topK", "max_tokens": "generationConfig.maxOutputTokens",
                "seed": "generationConfig.seed", "presence_penalty": "generationConfig.presencePenalty",
                "frequency_penalty": "generationConfig.frequencyPenalty", "stop": "generationConfig.stopSequences",
                "top_logprobs": "generationConfig.logprobs"}


_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def to_gemini_response(result: dict[str, Any], model: str, wants: dict[str, Any],
                       cached_tokens: int = 0) -> dict[str, Any]:
    choice = result["choices"][0]
    message = choice.get("message") or {}
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"text": message["content"]})
    for call in message.get("tool_calls") or []:
        parts.append({"functionCall": {"id": call["id"], "name": call["function"]["name"],
                                       "args": json.loads(call["function"]["arguments"] or "{}")}})
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or [{"text": ""}]},
                                 "finishReason": _FINISH.get(choice.get("finish_reason"), "OTHER"), "index": 0}
    tokens = (choice.get("logprobs") or {}).get("content") or []
    if wants.get("logprobs") and tokens:
        candidate["avgLogprobs"] = sum(t["logprob"] for t in tokens) / len(tokens)
        candidate["logprobsResult"] = {
            "chosenCandidates": [{"token": t["token"], "tokenId": t.get("id"), "logProbability": t["logprob"]}
                                 for t in tokens],
            "topCandidates": [{"candidates": [{"token": c["token"], "tokenId": c.get("id"),
                                               "logProbability": c["logprob"]}
                                              for c in t.get("top_logprobs", [])]} for t in tokens],
        }
    usage = result.get("usage") or {}
    prompt = int(usage.get("prompt_tokens", 0))
    out_tokens = int(usage.get("completion_tokens", 0))
    usage_meta = {"promptTokenCount": prompt, "candidatesTokenCount": out_tokens,
                  "totalTokenCount": prompt + out_tokens, "thoughtsTokenCount": 0}
    if cached_tokens:
        usage_meta["cachedContentTokenCount"] = cached_tokens
    return {"candidates": [candidate], "usageMetadata": usage_meta, "modelVersion": model,
            "responseId": result.get("id") or secrets.token_hex(8)}
