"""Errors in Google's shape (``{"error": {"code", "message", "status"}}``) for the Gemini
routes, and for google-genai on the routes both APIs share (``GET /v1/models``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from litegate.server.front import ErrorShape, Problem

_GEMINI_PATH = re.compile(r"^/v1(beta)?/(models/[^/]+:|cachedContents)|^/v1beta/|^/upload/")


def google_status(code: int) -> str:
    return {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED"}.get(code, "INTERNAL")


def is_gemini_path(path: str) -> bool:
    return bool(_GEMINI_PATH.match(path))


def owns(path: str, headers: Mapping[str, str]) -> bool:
    return is_gemini_path(path) or "x-goog-api-client" in headers


def google_body(p: Problem) -> dict[str, Any]:
    return {"error": {"code": p.status, "message": p.message, "status": google_status(p.status)}}


def no_route(method: str, path: str, status: int) -> Problem:
    return Problem(404, f"this server has no route {method} {path}")  # Google answers a wrong method with 404


GEMINI_SHAPE = ErrorShape(owns=owns, body=google_body, no_route=no_route)
