"""Ollama-compatible routes under /api, with Ollama's error shape (``{"error": "..."}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litegate.server.front import ErrorShape, FrontEnd, Problem, routers
from litegate.server.ollama import routes


def _owns(path: str, headers: Mapping[str, str]) -> bool:
    return path.startswith("/api/")


def _body(p: Problem) -> dict[str, Any]:
    return {"error": p.message}


def _no_route(method: str, path: str, status: int) -> Problem:
    return Problem(status, f"no route {method} {path}")


FRONT = FrontEnd("ollama", routers(routes.router), ErrorShape(owns=_owns, body=_body, no_route=_no_route))
