"""Pipeline files: where they are, how they are read, and every check a file must pass before
a run starts.

One pipeline per TOML file. ``LITEGATE_PIPELINES`` (``litegate serve --pipelines``) names a
file or a folder of ``*.toml`` files; without it, ``$LITEGATE_HOME/pipelines/*.toml``. A
pipeline's name is its ``name`` key or the file's stem.

Every problem is one line naming the file, the step and the key, e.g.
``intake.toml: step 'summary': when: names steps.store, which is not an earlier step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litegate.config import load_toml
from litegate.errors import ConfigError
from litegate.pipelines.spec import COMMON_KEYS, NAME, PIPELINE_KEYS, Refs, StepConfig, expression
from litegate.pipelines.steps import STEP_KINDS


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
        step = _parse_step(table, i, label, feature, seen)
        step.prepared = STEP_KINDS[step.kind].check(step, steps, seen)
        steps.append(step)
        seen.add(step.name)
    return Pipeline(name=name, source=source or label, steps=steps, description=description, feature=feature,
                    sync_wait_s=float(wait), keep_texts=keep_texts)


def _parse_step(table: dict[str, Any], i: int, label: str, feature: str, seen: Refs) -> StepConfig:
    """One checked [[step]] table (its ``when`` may name only the steps before it)."""
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
    return step
