"""Builds the FastAPI application around a Runtime that the caller owns (``runtime.build``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from litegate._version import __version__
from litegate.jobs.batches import BatchRunner, task_prefetch
from litegate.runtime import Runtime
from litegate.server.gemini import batches as gemini_batches
from litegate.server.gemini import routes as gemini
from litegate.server.native import learning, pipelines, tasks
from litegate.server.ollama import routes as ollama
from litegate.server.openai import batches
from litegate.server.openai import chat as openai
from litegate.server.pages import dashboard
from litegate.server.pages import learning as learning_page
from litegate.server.pages import pipelines as pipelines_page
from litegate.server.responses import routes as responses
from litegate.server.errors import install_error_handlers
from litegate.server.internal import AppDispatch

log = logging.getLogger("litegate.server")


def create_app(runtime: Runtime, *, close_runtime: bool = True, allowed_hosts: list[str] | None = None,
               with_pipelines: bool = True) -> FastAPI:
    """An app serving ``runtime``: its default model answers requests that name no model.
    ``allowed_hosts`` (``litegate serve`` always passes them) bounds the Host and Origin
    headers accepted; None checks neither (in-process use). ``with_pipelines``: load the
    pipeline files (batch line apps do without)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        resumed = runner.resume_all()  # jobs a previous process left unfinished
        if resumed:
            log.info("resuming %d unfinished batch job(s): %s", len(resumed), ", ".join(resumed))
        if pipeline_service is not None:
            pipeline_service.start()  # the webhook outbox
            runs = pipeline_service.resume_unfinished()
            if runs:
                log.info("resuming %d unfinished pipeline run(s)", len(runs))
        yield
        if pipeline_service is not None:
            pipeline_service.close()
        await runner.close()
        await runtime.aclose()
        if close_runtime:
            runtime.close()

    keys_on = bool(runtime.config.api_keys)
    # with API keys, the API's description is behind them too (routes added below)
    app = FastAPI(title="litegate", version=__version__, lifespan=lifespan,
                  **({"openapi_url": None, "docs_url": None, "redoc_url": None} if keys_on else {}))
    app.state.runtime = runtime
    app.state.started = int(time.time())
    from litegate.keys import KeyGuard

    app.state.keys = KeyGuard(runtime.config.api_keys, runtime.accountant.ledger if runtime.accountant else None)
    if runtime.accountant is not None and app.state.keys.enabled:
        runtime.accountant.spend_listeners.append(app.state.keys.spent)

    async def require_key(request: Request) -> None:
        request.app.state.keys.check(request)

    guarded = [Depends(require_key)]
    install_error_handlers(app)
    if keys_on:
        _guarded_docs(app, guarded)
    app.include_router(openai.router, dependencies=guarded)
    app.include_router(tasks.router, dependencies=guarded)
    app.include_router(learning.router, dependencies=guarded)
    app.include_router(dashboard.router, dependencies=guarded)
    app.include_router(learning_page.router, dependencies=guarded)
    app.include_router(ollama.router, dependencies=guarded)
    app.include_router(responses.router, dependencies=guarded)
    app.include_router(batches.router, dependencies=guarded)
    app.include_router(pipelines.router, dependencies=guarded)
    app.include_router(pipelines_page.router, dependencies=guarded)
    # pipeline files are checked here, so a bad one stops the server before it listens
    pipeline_service = pipelines_for(runtime) if with_pipelines else None
    app.state.pipelines = pipeline_service
    app.state.gemini = gemini.GeminiState()
    from litegate.server.limits import BodyLimit, HostGuard

    file_limit = int(runtime.settings.max_file_mb * (1 << 20))
    app.add_middleware(BodyLimit, max_bytes=int(runtime.settings.max_body_mb * (1 << 20)),
                       larger={"/v1/files": file_limit, "/upload/": file_limit})
    if allowed_hosts is not None:
        app.add_middleware(HostGuard, allowed=allowed_hosts)
    from fastapi.utils import generate_unique_id

    for prefix in ("/v1beta", "/v1"):  # google-genai asks under /v1 by default; the OpenAI routes come first
        ids = {} if prefix == "/v1beta" else {"generate_unique_id_function": lambda route: "gemini_" +
                                              generate_unique_id(route)}
        app.include_router(gemini.router, prefix=prefix, dependencies=guarded, **ids)
        app.include_router(gemini_batches.router, prefix=prefix, dependencies=guarded, **ids)
        app.include_router(gemini_batches.upload_router, prefix="/upload" + prefix, dependencies=guarded, **ids)
    runner = BatchRunner(runtime.batches, AppDispatch(app), concurrency=runtime.settings.batch_concurrency,
                         max_line_bytes=int(runtime.settings.max_body_mb * (1 << 20)),
                         cost_of=_ledger_cost(runtime), prefetch=task_prefetch(runtime))
    app.state.batch_runner = runner

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.runtime.accountant.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        rt: Runtime = request.app.state.runtime
        loaded = rt.registry.loaded()
        return {
            "status": "ok",
            "version": __version__,
            "default_model": rt.default_model,
            "models": {
                name: {"loaded": name in loaded,
                       "active_requests": loaded[name].active_requests if name in loaded else 0}
                for name in rt.registry.names()
            },
            "active_requests": sum(e.active_requests for e in loaded.values()),
            "documents": rt.documents.stats() if rt.documents is not None else None,
            # with API keys on, an unauthenticated probe learns no configuration (base URLs, tiers)
            **({} if keys_on else {
                "remotes": {name: {"circuit": rt.tiers[name].breaker.state,
                                   "base_url": rt.tiers[name].config.base_url}
                            for name in rt.chat.remote_names()},
                "tiers": rt.tasks.describe_tiers()}),
        }

    return app


def pipelines_for(runtime: Runtime) -> Any:
    """The pipelines of ``LITEGATE_PIPELINES`` (or the home's folder); None when there are none."""
    from litegate.pipelines import PipelineService, load_pipelines

    s = runtime.settings
    found = load_pipelines(s.pipelines, s.home, explicit=s.pipelines is not None)
    return PipelineService(runtime, found) if found else None


def _ledger_cost(runtime: Runtime) -> Any:
    if runtime.accountant is None:
        return None

    def cost_of(call_ids: list[str]) -> float:
        runtime.accountant.flush()  # the lines' calls are written in the background
        return runtime.accountant.ledger.cost_of(call_ids)
    return cost_of


def _guarded_docs(app: FastAPI, guarded: list[Any]) -> None:
    """/openapi.json, /docs and /redoc behind the API keys (``?key=`` works there)."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(app.openapi())  # built once, then cached by the app

    def spec_url(request: Request) -> str:
        key = request.query_params.get("key")
        return "/openapi.json" + (f"?key={key}" if key else "")

    @app.get("/docs", include_in_schema=False, dependencies=guarded)
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=spec_url(request), title="litegate API")

    @app.get("/redoc", include_in_schema=False, dependencies=guarded)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=spec_url(request), title="litegate API")
