"""Errors as HTTP answers: the handlers that word every error in its API's shape
(``server.front``), OpenAI's body helpers, and the JSON body reader of the routes that read
their bodies themselves."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from litegate.errors import ContextLengthExceeded, InvalidRequest, LitegateError
from litegate.server.front import ErrorShapes, Problem
from litegate.server.limits import ClientGone


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, for routes that read it themselves (Gemini, Ollama,
    Responses); anything else is a 400 in the route's own error shape."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def error_body(message: str, *, error_type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code, **extra}}


def error_response(status: int, message: str, **kwargs: Any) -> JSONResponse:
    return JSONResponse(error_body(message, **kwargs), status_code=status)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    # pydantic names union members ("str", "list[...]") and function validators in loc;
    # keep only the path a user wrote.
    parts = [p for p in parts if not (p.startswith(("function-", "list[", "dict[")) or p in {"str", "int"})]
    return ".".join(parts)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('ctx', {}).get('error', 'parse error')}", None
    path = _field_path(tuple(first.get("loc", ())))
    msg = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        msg = "is required"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if not path:
        return f"invalid request body: {msg}{more}", None
    return f"'{path}': {msg}{more}", path


def install_error_handlers(app: FastAPI, shapes: ErrorShapes) -> None:
    """Every error in the shape of the API its request was for (``server.front``)."""

    def answer(request: Request, problem: Problem) -> JSONResponse:
        shape = shapes.for_request(request.url.path, request.headers)
        return JSONResponse(shape.body(problem), status_code=problem.status)

    @app.exception_handler(LitegateError)
    async def _litegate(request: Request, exc: LitegateError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, ContextLengthExceeded):
            extra = {"prompt_tokens": exc.prompt_tokens, "n_ctx": exc.n_ctx}
        response = answer(request, Problem(exc.status_code, exc.message, exc.error_type, exc.param, exc.code, extra))
        if exc.status_code in (429, 503):  # every 429 and 503 says when to come back
            response.headers["Retry-After"] = str(max(1, math.ceil(getattr(exc, "retry_after", None) or 1.0)))
        return response

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> JSONResponse:
        # nobody reads it; the access log shows what happened
        return error_response(499, "the client closed the connection", error_type="client_closed")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        code = "invalid_value" if param else "invalid_json"
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if param is None and request.method in ("POST", "PUT", "PATCH") and "json" not in content_type \
                and not content_type.startswith("multipart/"):
            # FastAPI reads a body as JSON only when it says so (curl -d sends form encoding)
            message = (f"the request body must be JSON with the header Content-Type: application/json "
                       f"(this request said {content_type or 'no Content-Type'!s})")
            code = "invalid_content_type"
        return answer(request, Problem(400, message, param=param, code=code))

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        # a lone surrogate ("\ud800") is valid JSON but no valid text: it cannot reach a model
        return answer(request, Problem(400, "the request holds text that is not valid Unicode (an unpaired "
                                            "surrogate such as \\ud800); send valid UTF-8 text"))

    @app.exception_handler(RecursionError)
    async def _deep(request: Request, exc: RecursionError) -> JSONResponse:
        return answer(request, Problem(400, "the request body nests too deeply"))

    @app.exception_handler(ValidationError)
    async def _shape(request: Request, exc: ValidationError) -> JSONResponse:
        first: Mapping[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(request, Problem(400, f"'{where}': {first.get('msg', 'invalid value')}" if where
                                       else "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        shape = shapes.for_request(request.url.path, request.headers)
        if exc.status_code == 405 or (exc.status_code == 404 and exc.detail == "Not Found"):
            problem = shape.no_route(request.method, request.url.path, exc.status_code)
        else:
            problem = Problem(exc.status_code, str(exc.detail),
                              "not_found_error" if exc.status_code == 404 else "invalid_request_error")
        return JSONResponse(shape.body(problem), status_code=problem.status)
