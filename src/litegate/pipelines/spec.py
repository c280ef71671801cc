"""What a pipeline file's steps are made of, and the checks every step kind shares: the step's
config, references to earlier steps in expressions and templates, environment values. Step
kinds (``pipelines.steps``) and the file reader (``pipelines.config``) both build on it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litegate.errors import ConfigError
from litegate.pipelines.expr import ExprError, Expression, render, template_paths

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
PIPELINE_KEYS = {"name", "description", "feature", "step", "sync_wait_s", "keep_texts"}
COMMON_KEYS = {"name", "kind", "when", "feature", "description"}


@dataclass
class StepConfig:
    """One ``[[step]]``: what every kind shares, plus the kind's own options (checked and
    prepared by the kind)."""

    name: str
    kind: str
    index: int
    where: str  # "intake.toml: step 'extract'", the prefix of every message about it
    feature: str
    when: Expression | None = None
    tier: str | None = None  # task kinds
    review_below: float | None = None  # task kinds: a confidence under this sends the run to review
    options: dict[str, Any] = field(default_factory=dict)
    prepared: Any = None  # what the kind's check made of the options

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "feature": self.feature}
        if self.tier is not None:
            out["tier"] = self.tier
        if self.when is not None:
            out["when"] = self.when.source
        if self.review_below is not None:
            out["review_below"] = self.review_below
        return out


class Refs(set[str]):
    """The names of the steps before the one being checked (a set), plus every name in the
    file and the current one, so a bad reference says whether it is later, itself or missing."""

    def __init__(self, all: list[Any]):
        super().__init__()
        self.all = all
        self.current = ""

    def problem(self, name: str) -> str | None:
        if name in self:
            return None
        if name == self.current:
            return f"names steps.{name}, its own output (a cycle): a step reads only the steps before it"
        if name in self.all:
            return (f"names steps.{name}, which comes later (step #{self.all.index(name) + 1}): a step reads only "
                    "the steps before it, so the order cannot loop")
        known = ", ".join(sorted(self)) or "none yet"
        return f"names steps.{name}, but there is no such step (earlier steps: {known})"


def expression(value: Any, where: str, key: str, earlier: set[str]) -> Expression:
    """An expression option, parsed and its step references checked against the earlier steps."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: must be a string expression")
    try:
        expr = Expression(value)
    except ExprError as e:
        raise ConfigError(f"{where}: {key}: does not parse: {e.message}") from None
    check_refs(expr, where, key, earlier)
    return expr


def check_refs(expr: Expression, where: str, key: str, earlier: set[str]) -> None:
    for path in expr.paths():
        if path[0] == "steps":
            if len(path) < 2:
                raise ConfigError(f"{where}: {key}: 'steps' needs a step name (steps.NAME...)")
            problem = earlier.problem(path[1]) if isinstance(earlier, Refs) else (
                None if path[1] in earlier else f"names steps.{path[1]}, which is not an earlier step")
            if problem:
                raise ConfigError(f"{where}: {key}: {problem}")


def template(value: Any, where: str, key: str, earlier: set[str]) -> str:
    """A template string option: its ``{{ ... }}`` holes parse and reach earlier steps."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: must be a string")
    try:
        holes = template_paths(value)
    except ExprError as e:
        raise ConfigError(f"{where}: {key}: a {{{{ }}}} hole does not parse: {e.message}") from None
    for h in holes:
        check_refs(h, where, key, earlier)
    return value


def env_value(table: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    """``key`` given literally, or ``key_env`` naming an environment variable that holds it."""
    literal, env = table.get(key), table.get(f"{key}_env")
    if literal is not None and env is not None:
        raise ConfigError(f"{where}: {key}: give {key} or {key}_env, not both")
    if env is not None:
        if not isinstance(env, str) or not env:
            raise ConfigError(f"{where}: {key}_env: must name an environment variable")
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}: {key}_env: the environment variable {env} is not set")
        return value
    if literal is None:
        if required:
            raise ConfigError(f"{where}: {key}: is required (or {key}_env naming an environment variable)")
        return None
    if not isinstance(literal, str) or not literal:
        raise ConfigError(f"{where}: {key}: must be a non-empty string")
    return literal


@dataclass
class StepResult:
    output: Any
    tier: str | None = None
    confidence: float | None = None
    cost_usd: float = 0.0
    outcome: str | None = None
    escalated: bool = False
    call_id: str | None = None
    review: str | None = None  # why the run should wait for a person (None: go on)


@dataclass
class StepContext:
    """What a step sees: the runtime, its pipeline and config, the run so far (``scope``:
    input, run, steps) and the services (sinks, outbox)."""

    runtime: Any
    pipeline: Any
    step: StepConfig
    scope: dict[str, Any]
    run: dict[str, Any]
    service: Any
    api_key: str | None = None


@dataclass(frozen=True)
class StepKind:
    keys: frozenset[str]
    check: Callable[[StepConfig, list[StepConfig], Any], Any]
    run: Callable[[StepContext], StepResult]
    task: bool = False


def fill(value: Any, scope: dict[str, Any]) -> Any:
    """Options with their ``{{ ... }}`` holes filled (strings, and strings inside lists and tables)."""
    if isinstance(value, str):
        return render(value, scope) if "{{" in value else value
    if isinstance(value, list):
        return [fill(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, scope) for k, v in value.items()}
    return value
