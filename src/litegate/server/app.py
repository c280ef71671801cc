"""Builds the FastAPI application around a Runtime that the caller owns (``runtime.build``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from litegate._version import __version__
from litegate.jobs.batches import BatchRunner, task_prefetch
from litegate.keys import KeyGuard, request_fingerprint, require_operator
from litegate.pipelines import PipelineService, load_pipelines
from litegate.runtime import Runtime
from litegate.server import gemini, native, ollama, openai, pages, responses
from litegate.server.errors import install_error_handlers
from litegate.server.front import ErrorShapes, FrontEnd, Guards
from litegate.server.internal import AppDispatch
from litegate.server.limits import BodyLimit, HostGuard
from litegate.tenancy import Tenant, set_current

log = logging.getLogger("litegate.server")

# The front-end APIs, in the order their routes are matched (OpenAI's /v1/models and /v1/files
# before Gemini's routes under /v1). A new API is a folder with a FRONT and a line here.
FRONT_ENDS: tuple[FrontEnd, ...] = (openai.FRONT, native.FRONT, pages.FRONT, ollama.FRONT, responses.FRONT,
                                    gemini.FRONT)


def create_app(runtime: Runtime, *, close_runtime: bool = True, allowed_hosts: list[str] | None = None,
               with_pipelines: bool = True, fronts: tuple[FrontEnd, ...] = FRONT_ENDS) -> FastAPI:
    """An app serving ``runtime``: its default model answers requests that name no model.
    ``allowed_hosts`` (``litegate serve`` always passes them) bounds the Host and Origin
    headers accepted; None checks neither (in-process use). ``with_pipelines``: load the
    pipeline files (batch line apps do without). ``fronts``: the APIs served."""
    keys_on = bool(runtime.config.api_keys)
    # with API keys, the API's description is behind them too (routes added below)
    hidden: dict[str, Any] = {"openapi_url": None, "docs_url": None, "redoc_url": None} if keys_on else {}
    app = FastAPI(title="litegate", version=__version__, lifespan=_lifespan(close_runtime), **hidden)
    app.state.runtime = runtime
    app.state.started = int(time.time())
    guards = _keys(app, runtime)
    shapes = ErrorShapes(fronts)
    install_error_handlers(app, shapes)
    if keys_on:
        _guarded_docs(app, list(guards.caller))
    for front in fronts:
        front.mount(app, guards)
    # pipeline files are checked here, so a bad one stops the server before it listens
    app.state.pipelines = pipelines_for(runtime) if with_pipelines else None
    file_limit = int(runtime.settings.max_file_mb * (1 << 20))
    app.add_middleware(BodyLimit, max_bytes=int(runtime.settings.max_body_mb * (1 << 20)),
                       larger={"/v1/files": file_limit, "/upload/": file_limit}, shapes=shapes)
    if allowed_hosts is not None:
        app.add_middleware(HostGuard, allowed=allowed_hosts, shapes=shapes)
    app.state.batch_runner = BatchRunner(runtime.batches, AppDispatch(app),
                                         concurrency=runtime.settings.batch_concurrency,
                                         max_line_bytes=int(runtime.settings.max_body_mb * (1 << 20)),
                                         cost_of=_ledger_cost(runtime), prefetch=task_prefetch(runtime))
    _probes(app, keys_on)
    return app


def _lifespan(close_runtime: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        runner: BatchRunner = app.state.batch_runner
        pipeline_service = app.state.pipelines
        resumed = runner.resume_all()  # jobs a previous process left unfinished
        runtime.collections.jobs.resume()
        runtime.training.resume()
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
        runtime.collections.jobs.close()
        runtime.training.close()
        await runtime.aclose()
        if close_runtime:
            runtime.close()

    return lifespan


def _keys(app: FastAPI, runtime: Runtime) -> Guards:
    """The API keys' guard, as the dependencies routes take: every caller's, the operator's."""
    app.state.keys = KeyGuard(runtime.config.api_keys, runtime.accountant.ledger if runtime.accountant else None)
    if runtime.accountant is not None and app.state.keys.enabled:
        runtime.accountant.spend_listeners.append(app.state.keys.spent)

    async def require_key(request: Request) -> AsyncIterator[None]:
        guard = request.app.state.keys
        key = guard.check(request)
        # without keys everyone is the one anonymous owner and sees all, whatever token a client sends
        owner = request_fingerprint(request) if guard.enabled else None
        request.state.tenant = Tenant(owner, admin=bool(key and key.admin) or not guard.enabled)
        set_current(request.state.tenant)  # for shared code that reaches stored files (attachments)
        reservation = await guard.reserve_for(request, key)  # a budget's share, until the response is sent
        try:
            yield
        finally:
            guard.release(reservation)

    caller = [Depends(require_key)]
    return Guards(caller=caller, operator=caller + [Depends(require_operator)])


def _probes(app: FastAPI, keys_on: bool) -> None:
    """/metrics and /healthz: open, for monitors."""

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
                "remotes": {name: {"circuit": rt.tiers[name].breaker.state,  # type: ignore[attr-defined]
                                   "base_url": rt.tiers[name].config.base_url}
                            for name in rt.chat.remote_names()},
                "tiers": rt.tasks.describe_tiers()}),
        }


def pipelines_for(runtime: Runtime) -> Any:
    """The pipelines of ``LITEGATE_PIPELINES`` (or the home's folder); None when there are none."""

    s = runtime.settings
    found = load_pipelines(s.pipelines, s.home, explicit=s.pipelines is not None)
    return PipelineService(runtime, found) if found else None


def _ledger_cost(runtime: Runtime) -> Any:
    accountant = runtime.accountant
    if accountant is None:
        return None

    def cost_of(call_ids: list[str]) -> float:
        accountant.flush()  # the lines' calls are written in the background
        return accountant.ledger.cost_of(call_ids)
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
