"""Request-body schemas for the routes that read their JSON themselves (Gemini, Ollama,
Responses), so ``/openapi.json`` describes every body: for readers of the docs and for
fuzzers. The routes still check what they read; these describe, they do not replace."""

from __future__ import annotations

from typing import Any


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body has ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_STR = {"type": "string"}
_OBJ = {"type": "object"}
PART = {"type": "object", "properties": {
    "text": _STR,
    "inlineData": {"type": "object", "properties": {"mimeType": _STR, "data": {"type": "string",
                                                                               "format": "byte"}},
                   "required": ["mimeType", "data"]},
    "fileData": {"type": "object", "properties": {"mimeType": _STR, "fileUri": _STR}, "required": ["fileUri"]},
    "functionCall": {"type": "object", "properties": {"name": _STR, "args": _OBJ}},
    "functionResponse": {"type": "object", "properties": {"name": _STR, "response": _OBJ}}}}
CONTENT = {"type": "object", "properties": {"role": {"type": "string", "enum": ["user", "model"]},
                                            "parts": {"type": "array", "items": PART, "minItems": 1}},
           "required": ["parts"]}
GENERATION_CONFIG = {"type": "object", "properties": {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "topP": {"type": "number", "minimum": 0, "maximum": 1},
    "topK": {"type": "integer", "minimum": 1},
    "maxOutputTokens": {"type": "integer", "minimum": 1},
    "stopSequences": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 5},
    "candidateCount": {"type": "integer", "minimum": 1, "maximum": 1},
    "responseMimeType": {"type": "string", "enum": ["text/plain", "application/json", "text/x.enum"]},
    "responseSchema": _OBJ, "responseJsonSchema": _OBJ,
    "seed": {"type": "integer"},
    "presencePenalty": {"type": "number"}, "frequencyPenalty": {"type": "number"},
    "responseLogprobs": {"type": "boolean"}, "logprobs": {"type": "integer", "minimum": 0, "maximum": 20}}}
TOOLS = {"type": "array", "items": {"type": "object", "properties": {"functionDeclarations": {
    "type": "array", "items": {"type": "object", "properties": {"name": _STR, "description": _STR,
                                                                "parameters": _OBJ},
                               "required": ["name"]}}}}}
GENERATE = {"type": "object", "properties": {
    "contents": {"type": "array", "items": CONTENT, "minItems": 1},
    "systemInstruction": CONTENT, "generationConfig": GENERATION_CONFIG, "tools": TOOLS,
    "toolConfig": _OBJ, "cachedContent": _STR}, "required": ["contents"]}
COUNT_TOKENS = {"type": "object", "properties": {"contents": {"type": "array", "items": CONTENT},
                                                 "generateContentRequest": GENERATE}}
EMBED = {"type": "object", "properties": {"content": CONTENT, "outputDimensionality": {"type": "integer",
                                                                                      "minimum": 1},
                                          "taskType": _STR, "title": _STR}, "required": ["content"]}
BATCH_EMBED = {"type": "object", "properties": {"requests": {"type": "array", "items": EMBED, "minItems": 1}},
               "required": ["requests"]}
CACHE = {"type": "object", "properties": {
    "model": _STR, "contents": {"type": "array", "items": CONTENT}, "systemInstruction": CONTENT,
    "tools": TOOLS, "toolConfig": _OBJ, "ttl": {"type": "string", "pattern": r"^\d+(\.\d+)?s$"},
    "expireTime": {"type": "string", "format": "date-time"}, "displayName": _STR}, "required": ["model"]}
CACHE_UPDATE = {"type": "object", "properties": {"ttl": CACHE["properties"]["ttl"],  # type: ignore[index]
                                                 "expireTime": {"type": "string", "format": "date-time"}}}
BATCH_GENERATE = {"type": "object", "properties": {"batch": {"type": "object", "properties": {
    "displayName": _STR,
    "inputConfig": {"type": "object", "properties": {
        "fileName": _STR,
        "requests": {"type": "object", "properties": {"requests": {"type": "array", "minItems": 1, "items": {
            "type": "object", "properties": {"request": GENERATE, "metadata": _OBJ}, "required": ["request"]}}}}}}},
    "required": ["inputConfig"]}}, "required": ["batch"]}

_OPTIONS = {"type": "object", "properties": {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2}, "top_p": {"type": "number", "minimum": 0,
                                                                            "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1}, "num_predict": {"type": "integer"}, "seed": {"type": "integer"},
    "stop": {"type": "array", "items": _STR}, "repeat_penalty": {"type": "number"}}}
_FORMAT = {"oneOf": [{"type": "string", "enum": ["json"]}, _OBJ]}
OLLAMA_CHAT = {"type": "object", "properties": {
    "model": _STR, "messages": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant", "tool"]}, "content": _STR,
        "images": {"type": "array", "items": {"type": "string", "format": "byte"}},
        "tool_calls": {"type": "array", "items": _OBJ}}, "required": ["role"]}},
    "stream": {"type": "boolean"}, "format": _FORMAT, "options": _OPTIONS, "tools": {"type": "array", "items": _OBJ},
    "keep_alive": {"oneOf": [_STR, {"type": "number"}]}}, "required": ["model", "messages"]}
OLLAMA_GENERATE = {"type": "object", "properties": {
    "model": _STR, "prompt": _STR, "system": _STR, "stream": {"type": "boolean"}, "format": _FORMAT,
    "options": _OPTIONS, "raw": {"type": "boolean"}}, "required": ["model"]}
OLLAMA_EMBED = {"type": "object", "properties": {"model": _STR, "input": {"oneOf": [
    _STR, {"type": "array", "items": _STR}]}}, "required": ["model", "input"]}
OLLAMA_EMBEDDINGS = {"type": "object", "properties": {"model": _STR, "prompt": _STR}, "required": ["model", "prompt"]}
OLLAMA_SHOW = {"type": "object", "properties": {"model": _STR, "name": _STR}}
RESPONSES = {"type": "object", "properties": {
    "model": _STR, "input": {"oneOf": [_STR, {"type": "array", "items": _OBJ}]}, "instructions": _STR,
    "max_output_tokens": {"type": "integer", "minimum": 1}, "temperature": {"type": "number", "minimum": 0,
                                                                             "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1}, "text": _OBJ, "tools": {"type": "array", "items": _OBJ},
    "tool_choice": {"oneOf": [_STR, _OBJ]}, "stream": {"type": "boolean"}}, "required": ["input"]}
