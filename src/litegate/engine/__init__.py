"""Local inference: llama.cpp engines and the registry of served models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litegate.engine.llama import EngineOptions, LlamaEngine
    from litegate.engine.registry import ModelRegistry


def __getattr__(name: str) -> Any:
    # the engine (httpx, asyncio) loads on first use: ``litegate models`` reads only the catalog
    if name in ("EngineOptions", "LlamaEngine"):
        from litegate.engine.llama import EngineOptions, LlamaEngine

        return EngineOptions if name == "EngineOptions" else LlamaEngine
    if name == "ModelRegistry":
        from litegate.engine.registry import ModelRegistry

        return ModelRegistry
    raise AttributeError(f"module 'litegate.engine' has no attribute {name!r}")


__all__ = ["EngineOptions", "LlamaEngine", "ModelRegistry"]
