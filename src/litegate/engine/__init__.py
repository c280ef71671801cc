"""Local inference: llama.cpp engines and the registry of served models."""

from litegate.engine.llama import EngineOptions, LlamaEngine
from litegate.engine.registry import ModelRegistry

__all__ = ["EngineOptions", "LlamaEngine", "ModelRegistry"]
