"""The fakes of the fast layer keep the real classes' signatures, so a test through a fake
takes the path production takes (a fake that drifts fails here, not in a model-backed run)."""

from __future__ import annotations

import inspect

import pytest
from fakes import FakeEncoder, FakeEngine, FakeRegistry

from litegate.engine.llama import LlamaEngine
from litegate.engine.registry import ModelRegistry
from litegate.nano.encoder import MiniLMEncoder

PAIRS = [
    (FakeEngine, LlamaEngine, ["tokenize", "count_tokens", "count_chat_tokens", "run", "stream", "arun",
                               "astream_started", "acall", "close"]),
    (FakeRegistry, ModelRegistry, ["add", "names", "served", "lookup", "engine", "aengine", "loaded", "close"]),
    (FakeEncoder, MiniLMEncoder, ["encode", "encode_tokens", "features"]),
]


def _params(fn: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(("fake", "real", "methods"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_fake_methods_take_the_real_parameters(fake: type, real: type, methods: list[str]) -> None:
    for name in methods:
        assert hasattr(real, name), f"{real.__name__} has no {name}: drop it from the fake"
        assert _params(getattr(fake, name)) == _params(getattr(real, name)), f"{fake.__name__}.{name} drifted"
        assert inspect.iscoroutinefunction(getattr(fake, name)) == inspect.iscoroutinefunction(getattr(real, name))


def test_fake_registry_serves_the_real_served_model() -> None:
    served = FakeRegistry().lookup("lite")
    assert served.mmproj is None and served.name == "lite"  # the real ServedModel, projector field included
