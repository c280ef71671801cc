"""Builds the FastAPI application around a ModelRegistry that the caller owns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from litegate import __version__
from litegate.accounting import Accountant
from litegate.engine import ModelRegistry
from litegate.ledger import Ledger
from litegate.nano import ClassifierStore
from litegate.server import dashboard, gemini, openai, tasks
from litegate.tasks import TaskRunner
from litegate.server.errors import install_error_handlers


def create_app(registry: ModelRegistry, default_model: str = "lite", *, close_registry: bool = True,
               store: ClassifierStore | None = None, accountant: Accountant | None = None,
               remotes: list[Any] | None = None, api_keys: list[Any] | None = None,
               tiers: list[Any] | None = None) -> FastAPI:
    """An app serving ``registry``; ``default_model`` answers requests that name no model
    and runs the LLM tiers of tasks."""
    if store is None:
        from litegate.embed import MiniLMEncoder

        store = ClassifierStore(registry.settings.home, MiniLMEncoder)

    from litegate.remote import RemoteModel

    remote_models = {cfg.name: RemoteModel(cfg) for cfg in (remotes or [])}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for remote in remote_models.values():
            await remote.aclose()
        if close_registry:
            registry.close()

    app = FastAPI(title="litegate", version=__version__, lifespan=lifespan)
    app.state.registry = registry
    app.state.default_model = default_model
    app.state.started = int(time.time())
    if accountant is None:
        accountant = Accountant(Ledger(registry.settings.ledger_database_url()))
    for name, remote in remote_models.items():
        accountant.prices.per_million_in[name] = remote.config.price_in_per_million
        accountant.prices.per_million_out[name] = remote.config.price_out_per_million
    app.state.remotes = remote_models
    app.state.accountant = accountant
    from litegate.cascade import PolicyStore

    app.state.tasks = TaskRunner(registry, store, lite_model=default_model, accountant=accountant,
                                 policies=PolicyStore(registry.settings.home), tiers=tiers)
    from litegate.keys import KeyGuard

    app.state.keys = KeyGuard(api_keys or [], accountant.ledger)

    async def require_key(request: Request) -> None:
        request.app.state.keys.check(request)

    guarded = [Depends(require_key)]
    install_error_handlers(app)
    app.include_router(openai.router, dependencies=guarded)
    app.include_router(tasks.router, dependencies=guarded)
    app.include_router(dashboard.router, dependencies=guarded)
    app.state.gemini = gemini.GeminiState()
    app.include_router(gemini.router, prefix="/v1beta", dependencies=guarded)
    app.include_router(gemini.router, prefix="/v1", dependencies=guarded)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.accountant.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        reg: ModelRegistry = request.app.state.registry
        loaded = reg.loaded()
        return {
            "status": "ok",
            "version": __version__,
            "default_model": request.app.state.default_model,
            "models": {
                name: {"loaded": name in loaded,
                       "active_requests": loaded[name].active_requests if name in loaded else 0}
                for name in reg.names()
            },
            "active_requests": sum(e.active_requests for e in loaded.values()),
            "remotes": {name: {"circuit": r.breaker.state, "base_url": r.config.base_url}
                        for name, r in request.app.state.remotes.items()},
            "tiers": request.app.state.tasks.describe_tiers(),
        }

    return app
