"""The models one litegate process serves, by name, loaded on first use."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path

from litegate.compute import ComputeBudget
from litegate.config import Settings
from litegate.engine.catalog import CATALOG, ModelCache, ProgressFactory, no_progress, resolve_model
from litegate.engine.llama import EngineOptions, LlamaEngine
from litegate.errors import ModelNotFound


@dataclass
class ServedModel:
    name: str  # primary id: "lite", "pro", or the GGUF file name
    spec: str  # what resolve_model takes
    aliases: tuple[str, ...] = ()
    engine: LlamaEngine | None = None
    path: Path | None = None
    mmproj: Path | None = None  # a multimodal projector: images go to the model itself
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelRegistry:
    """Maps model names to engines. Embedded models that are installed are listed even
    before they are loaded; each loads once, on first use, unless preloaded."""

    def __init__(self, settings: Settings, extra_specs: list[str] | None = None,
                 progress: ProgressFactory = no_progress):
        self.settings = settings
        self.cache = ModelCache(settings.home, settings.models_dir)
        self._progress = progress
        self._models: dict[str, ServedModel] = {}
        self._by_alias: dict[str, ServedModel] = {}
        for model in CATALOG.values():
            if model.installed():
                self._add(ServedModel(model.name, model.name, aliases=(model.file_name,)))
        for spec in extra_specs or []:
            self.add(spec)

    def add(self, spec: str) -> str:
        """Serve an embedded model name or a GGUF path too; returns its served name."""
        if spec in self._by_alias:
            return self._by_alias[spec].name
        if spec in CATALOG:
            self._add(ServedModel(spec, spec, aliases=(CATALOG[spec].file_name,)))
            return spec
        path = Path(spec).expanduser()
        self._add(ServedModel(path.name, spec, aliases=(path.stem,)))
        return path.name

    def _add(self, served: ServedModel) -> None:
        if served.name in self._models:
            return
        self._models[served.name] = served
        for key in (served.name, *served.aliases):
            self._by_alias.setdefault(key, served)

    def names(self) -> list[str]:
        return list(self._models)

    def served(self) -> list[ServedModel]:
        return list(self._models.values())

    def lookup(self, name: str) -> ServedModel:
        served = self._by_alias.get(name)
        if served is None:
            raise ModelNotFound(
                f"the model {name!r} does not exist on this server; available: {', '.join(self._models)}"
            )
        return served

    def engine(self, name: str) -> LlamaEngine:
        """The loaded engine for ``name``, loading (and joining) it on first use."""
        served = self.lookup(name)
        if served.engine is not None:
            return served.engine
        with served.lock:
            if served.engine is None:
                _, path = resolve_model(served.spec, self.cache, self._progress)
                spec, draft = "none", None
                if served.name == "pro" and self.settings.speculative != "none":
                    spec = self.settings.speculative
                    if spec == "draft":
                        _, draft = resolve_model("lite", self.cache, self._progress)
                budget = ComputeBudget.from_settings(self.settings)
                options = EngineOptions(
                    threads=budget.llama_threads,
                    poll=budget.llama_poll,
                    ctx=self.settings.ctx,
                    parallel=self.settings.parallel,
                    queue=self.settings.queue,
                    deadline_s=self.settings.decode_deadline_s,
                    prompt_cache_mb=self.settings.prompt_cache_mb,
                    verbosity=self.settings.log_level,
                    speculative=spec,
                    draft=draft,
                    mmproj=served.mmproj,
                )
                served.path = path
                served.engine = LlamaEngine(path, options)
                threading.Thread(target=served.engine.warm_up, daemon=True,
                                 name=f"warm-up-{served.name}").start()
        return served.engine

    async def aengine(self, name: str) -> tuple[str, LlamaEngine]:
        """(served name, engine) without blocking the event loop on a first load."""
        served = self.lookup(name)
        if served.engine is not None:
            return served.name, served.engine
        return served.name, await asyncio.to_thread(self.engine, served.name)

    def loaded(self) -> dict[str, LlamaEngine]:
        return {m.name: m.engine for m in self._models.values() if m.engine is not None}

    def close(self) -> None:
        for served in self._models.values():
            if served.engine is not None:
                served.engine.close()
                served.engine = None
