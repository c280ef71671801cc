"""What a front-end API is to the app: its routes (``mount``) and the JSON its errors take
(``ErrorShape``). Each API's folder declares one ``FrontEnd``; ``server.app`` mounts the
registered ones in order. Errors anywhere — a route, a body that fails validation, a limit
refused before any route — are worded in the shape of the API the request was for, and in
OpenAI's shape when no API claims the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Problem:
    """What went wrong, before an API words it."""

    status: int
    message: str
    error_type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def openai_body(p: Problem) -> dict[str, Any]:
    return {"error": {"message": p.message, "type": p.error_type, "param": p.param, "code": p.code, **p.extra}}


def openai_no_route(method: str, path: str, status: int) -> Problem:
    if status == 405:
        return Problem(405, f"{method} is not allowed on {path}")
    return Problem(404, f"this server has no route {method} {path}; see /docs for the routes it serves",
                   error_type="not_found_error", code="unknown_route")


@dataclass(frozen=True)
class ErrorShape:
    """``owns(path, headers)``: whether a request is this API's (headers with lower-case
    names); ``body``: the JSON of an error; ``no_route``: the problem of a path or method the
    API does not serve."""

    owns: Callable[[str, Mapping[str, str]], bool]
    body: Callable[[Problem], dict[str, Any]] = openai_body
    no_route: Callable[[str, str, int], Problem] = openai_no_route


OPENAI_SHAPE = ErrorShape(owns=lambda path, headers: True)

@dataclass(frozen=True)
class Guards:
    """The dependencies routes take: ``caller`` for every route (a valid key, when keys are
    on), ``operator`` for what only an admin key may do (retrain, review, promote)."""

    caller: Sequence[Any]
    operator: Sequence[Any]


Mount = Callable[[FastAPI, Guards], None]


@dataclass(frozen=True)
class OperatorOnly:
    """A router whose routes need an admin key."""

    router: Any


@dataclass(frozen=True)
class FrontEnd:
    name: str
    mount: Mount
    errors: ErrorShape | None = None  # None: OpenAI's shape


class ErrorShapes:
    """The registered shapes, asked in order; OpenAI's answers what none claims."""

    def __init__(self, fronts: Sequence[FrontEnd]):
        self.shapes = [f.errors for f in fronts if f.errors is not None]

    def for_request(self, path: str, headers: Mapping[str, str]) -> ErrorShape:
        return next((s for s in self.shapes if s.owns(path, headers)), OPENAI_SHAPE)

    def for_scope(self, scope: Mapping[str, Any]) -> ErrorShape:
        """The same from a raw ASGI scope (middleware that answers before any route)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        return self.for_request(scope.get("path", ""), headers)


def routers(*items: Any, **include: Any) -> Mount:
    """A ``mount`` that includes these routers behind the callers' guard (``OperatorOnly``
    ones behind the operator's)."""

    def mount(app: FastAPI, guards: Guards) -> None:
        for item in items:
            if isinstance(item, OperatorOnly):
                app.include_router(item.router, dependencies=list(guards.operator), **include)
            else:
                app.include_router(item, dependencies=list(guards.caller), **include)

    return mount
