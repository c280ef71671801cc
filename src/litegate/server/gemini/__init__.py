"""Gemini-compatible routes under /v1beta (and /v1, google-genai's default): generate, stream,
count tokens, embeddings, caches, Gemini's Files API, batch mode and File Search stores; errors in
Google's shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id

from litegate.server.front import FrontEnd, Guards
from litegate.server.gemini import batches, file_search, routes
from litegate.server.gemini.shape import GEMINI_SHAPE


def _v1_id(route: APIRoute) -> str:
    return "gemini_" + generate_unique_id(route)  # the same routes under /v1 need their own operation ids


def mount(app: FastAPI, guards: Guards) -> None:
    """Under /v1beta and /v1, after the OpenAI routes (which keep /v1/models, /v1/files)."""
    app.state.gemini = routes.GeminiState()
    for prefix in ("/v1beta", "/v1"):
        ids: dict[str, Any] = {} if prefix == "/v1beta" else {"generate_unique_id_function": _v1_id}
        deps = list(guards.caller)
        app.include_router(routes.router, prefix=prefix, dependencies=deps, **ids)
        app.include_router(batches.router, prefix=prefix, dependencies=deps, **ids)
        app.include_router(batches.upload_router, prefix="/upload" + prefix, dependencies=deps, **ids)
        app.include_router(file_search.router, prefix=prefix, dependencies=deps, **ids)
        app.include_router(file_search.upload_router, prefix="/upload" + prefix, dependencies=deps, **ids)


FRONT = FrontEnd("gemini", mount, GEMINI_SHAPE)
