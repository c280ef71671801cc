"""Error bodies shaped like OpenAI's: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from litegate.errors import ContextLengthExceeded, LitegateError


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, for routes that read it themselves (Gemini, Ollama,
    Responses); anything else is a 400 in the route's own error shape."""
    import json

    from litegate.errors import InvalidRequest

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


def litegate_error_response(exc: LitegateError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, ContextLengthExceeded):
        extra = {"prompt_tokens": exc.prompt_tokens, "n_ctx": exc.n_ctx}
    return error_response(exc.status_code, exc.message, error_type=exc.error_type, param=exc.param,
                          code=exc.code, **extra)


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


def _is_gemini(request: Request) -> bool:
    """Gemini routes, and google-genai on the routes both APIs share (GET /v1/models)."""
    from litegate.server.gemini.routes import is_gemini_path

    return is_gemini_path(request.url.path) or "x-goog-api-client" in request.headers


def _is_ollama(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def ollama_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """OpenAI-shaped errors everywhere, except Google-shaped ones on the Gemini routes."""
    from litegate.server.gemini.routes import google_error

    @app.exception_handler(LitegateError)
    async def _litegate(request: Request, exc: LitegateError) -> JSONResponse:
        if _is_gemini(request):
            response = google_error(exc.status_code, exc.message)
        elif _is_ollama(request):
            response = ollama_error(exc.status_code, exc.message)
        else:
            response = litegate_error_response(exc)
        if exc.status_code in (429, 503):  # every 429 and 503 says when to come back
            response.headers["Retry-After"] = str(max(1, math.ceil(getattr(exc, "retry_after", None) or 1.0)))
        return response

    from litegate.server.limits import ClientGone

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> JSONResponse:
        # nobody reads it; the access log shows what happened
        return error_response(499, "the client closed the connection", error_type="client_closed")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if param is None and request.method in ("POST", "PUT", "PATCH") and "json" not in content_type \
                and not content_type.startswith("multipart/"):
            # FastAPI reads a body as JSON only when it says so (curl -d sends form encoding)
            message = (f"the request body must be JSON with the header Content-Type: application/json "
                       f"(this request said {content_type or 'no Content-Type'!s})")
            if not _is_gemini(request) and not _is_ollama(request):
                return error_response(400, message, code="invalid_content_type")
        if _is_gemini(request):
            return google_error(400, message)
        if _is_ollama(request):
            return ollama_error(400, message)
        return error_response(400, message, param=param, code="invalid_value" if param else "invalid_json")

    def _bad(request: Request, message: str) -> JSONResponse:
        if _is_gemini(request):
            return google_error(400, message)
        if _is_ollama(request):
            return ollama_error(400, message)
        return error_response(400, message)

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        # a lone surrogate ("\ud800") is valid JSON but no valid text: it cannot reach a model
        return _bad(request, "the request holds text that is not valid Unicode (an unpaired surrogate such as "
                             "\\ud800); send valid UTF-8 text")

    @app.exception_handler(RecursionError)
    async def _deep(request: Request, exc: RecursionError) -> JSONResponse:
        return _bad(request, "the request body nests too deeply")

    @app.exception_handler(ValidationError)
    async def _shape(request: Request, exc: ValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _bad(request, f"'{where}': {first.get('msg', 'invalid value')}" if where else "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if _is_gemini(request):
            detail = str(exc.detail)
            if exc.status_code in (404, 405):  # Google answers an unknown method with 404
                return google_error(404, f"this server has no route {request.method} {request.url.path}")
            return google_error(exc.status_code, detail)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = str(exc.detail)
        if _is_ollama(request):
            return ollama_error(exc.status_code, f"no route {request.method} {request.url.path}"
                                if exc.status_code in (404, 405) else message)
        if exc.status_code == 404 and message == "Not Found":
            message = (f"this server has no route {request.method} {request.url.path}; see /docs for the routes "
                       "it serves")
            return error_response(404, message, error_type=kind, code="unknown_route")
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, error_type=kind)
