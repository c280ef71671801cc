"""Pipeline files: where they are, how they are read, and every check a file must pass before
a run starts.

One pipeline per TOML file. ``LITEGATE_PIPELINES`` (``litegate serve --pipelines``) names a
file or a folder of ``*.toml`` files; without it, ``$LITEGATE_HOME/pipelines/*.toml``. A
pipeline's name is its ``name`` key or the file's stem.

Every problem is one line naming the file, the step and the key, e.g.
``intake.toml: step 'summary': when: names steps.store, which is not an earlier step``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litegate.config import load_toml
from litegate.errors import ConfigError
from litegate.pipelines.expr import ExprError, Expression, template_paths

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


@dataclass
class Pipeline:
    name: str
    source: str
    steps: list[StepConfig]
    description: str = ""
    feature: str = ""
    sync_wait_s: float = 30.0  # POST .../runs waits this long for the run, then answers 202
    # a finished run keeps what its steps found, not the document's text (its length and sha256
    # stay); keep_texts = true keeps it (a pipeline whose runs are read back for labelling)
    keep_texts: bool = False

    def step(self, name: str) -> StepConfig:
        for s in self.steps:
            if s.name == name:
                return s
        raise ConfigError(f"pipeline {self.name!r} has no step {name!r}")

    def describe(self) -> dict[str, Any]:
        return {"object": "pipeline", "name": self.name, "description": self.description, "source": self.source,
                "feature": self.feature, "steps": [s.describe() for s in self.steps]}


def default_location(home: Path) -> Path:
    return home / "pipelines"


def pipeline_files(location: Path) -> list[Path]:
    """The TOML files at ``location``: itself, or the ``*.toml`` in it; none when it is
    missing (a home without pipelines)."""
    location = Path(location).expanduser()
    if location.is_dir():
        return sorted(p for p in location.glob("*.toml") if not p.name.startswith("."))
    if location.exists():
        return [location]
    return []


def load_pipelines(location: Path | None, home: Path, explicit: bool = False) -> dict[str, Pipeline]:
    """Every pipeline at ``location`` (default: the home's folder), checked. ``explicit``: the
    user named the location, so a missing one is an error, not an empty set."""
    where = Path(location) if location is not None else default_location(home)
    if explicit and not where.expanduser().exists():
        raise ConfigError(f"pipelines: {where} does not exist (a pipeline .toml file or a folder of them)")
    out: dict[str, Pipeline] = {}
    for path in pipeline_files(where):
        p = load_pipeline(path)
        if p.name in out:
            raise ConfigError(f"{path.name}: pipeline name {p.name!r} is also used by {out[p.name].source}")
        out[p.name] = p
    return out


def load_pipeline(path: Path | str) -> Pipeline:
    path = Path(path)
    data = load_toml(path, "pipeline file")
    return parse_pipeline(data, path.name, default_name=path.stem, source=str(path))


def parse_pipeline(data: dict[str, Any], label: str, default_name: str = "pipeline",
                   source: str | None = None) -> Pipeline:
    """A checked Pipeline from a file's tables; ``label`` starts every message."""
    from litegate.pipelines.steps import STEP_KINDS

    unknown = sorted(set(data) - PIPELINE_KEYS)
    if unknown:
        raise ConfigError(f"{label}: unknown key {unknown[0]!r}; a pipeline has {', '.join(sorted(PIPELINE_KEYS))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{label}: name: {name!r} must be a letter then letters, digits, _ or - (at most 64)")
    feature = data.get("feature", name)
    if not isinstance(feature, str) or not feature or len(feature) > 150:
        raise ConfigError(f"{label}: feature: must be a non-empty string of at most 150 characters")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{label}: description: must be a string")
    wait = data.get("sync_wait_s", 30.0)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 600:
        raise ConfigError(f"{label}: sync_wait_s: must be a number of seconds from 0 to 600")
    keep_texts = data.get("keep_texts", False)
    if not isinstance(keep_texts, bool):
        raise ConfigError(f"{label}: keep_texts: must be true or false")
    tables = data.get("step")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{label}: needs at least one [[step]] table")
    steps: list[StepConfig] = []
    seen = Refs(all=[t.get("name") for t in tables])
    for i, table in enumerate(tables):
        sname = table.get("name")
        where = f"{label}: step #{i + 1}"
        if not isinstance(sname, str) or not NAME.match(sname):
            raise ConfigError(f"{where}: name: each step needs a name (a letter then letters, digits, _ or -)")
        where = f"{label}: step {sname!r}"
        if sname in seen:
            raise ConfigError(f"{where}: name: another step is already called {sname!r}")
        kind = table.get("kind")
        if kind not in STEP_KINDS:
            raise ConfigError(f"{where}: kind: unknown step kind {kind!r}; kinds: {', '.join(STEP_KINDS)}")
        spec = STEP_KINDS[kind]
        allowed = COMMON_KEYS | spec.keys | ({"tier", "review_below"} if spec.task else set())
        extra = sorted(set(table) - allowed)
        if extra:
            raise ConfigError(f"{where}: {extra[0]}: not a key of a {kind} step; it takes "
                              f"{', '.join(sorted(allowed - {'name', 'kind'}))}")
        step_feature = table.get("feature", f"{feature}.{sname}")
        if not isinstance(step_feature, str) or not step_feature or len(step_feature) > 200:
            raise ConfigError(f"{where}: feature: must be a non-empty string of at most 200 characters")
        step = StepConfig(name=sname, kind=kind, index=i, where=where, feature=step_feature,
                          options={k: v for k, v in table.items() if k not in allowed - spec.keys})
        seen.current = sname
        if "when" in table:
            step.when = expression(table["when"], where, "when", seen)
        if spec.task:
            tier = table.get("tier", "auto")
            if not isinstance(tier, str) or not tier:
                raise ConfigError(f"{where}: tier: must be a tier name (lite, pro, nano, ...) or auto")
            step.tier = tier
            if "review_below" in table:
                rb = table["review_below"]
                if isinstance(rb, bool) or not isinstance(rb, (int, float)) or not 0 <= rb <= 1:
                    raise ConfigError(f"{where}: review_below: must be a confidence between 0 and 1")
                step.review_below = float(rb)
        step.prepared = spec.check(step, steps, seen)
        steps.append(step)
        seen.add(sname)
    return Pipeline(name=name, source=source or label, steps=steps, description=description, feature=feature,
                    sync_wait_s=float(wait), keep_texts=keep_texts)


class Refs(set):
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
