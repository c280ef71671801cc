"""The one request shape every task takes (HTTP body, CLI flags and Python kwargs alike)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from litegate.errors import InvalidRequest

MAX_TEXT_CHARS = 100_000


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    label: str | None = None
    output: dict[str, Any] | None = None


class Passage(BaseModel):
    id: str
    text: str


class TaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    labels: list[str] | dict[str, str] | None = None
    multi_label: bool = False
    examples: list[Example] | None = None
    classifier: str | None = None
    fields: dict[str, str] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    routes: list[str] | dict[str, str] | None = None
    query: str | None = None
    candidates: list[str] | None = None
    top_k: int | None = Field(default=None, ge=1)
    context: list[str | Passage] | None = None
    max_bullets: int = Field(default=5, ge=1, le=50)
    max_words: int = Field(default=120, ge=5, le=2000)
    target_language: str | None = None
    tier: str = Field(default="auto", min_length=1, max_length=64,
                      description="auto (the cascade), or a tier by name: nano, lite, pro or one from the config")
    feature: str | None = Field(default=None, max_length=200)

    @field_validator("text", "query")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and len(v) > MAX_TEXT_CHARS:
            raise ValueError(f"is {len(v):,} characters; the limit is {MAX_TEXT_CHARS:,}")
        return v

    def require_text(self) -> str:
        if self.text is None or not self.text.strip():
            raise InvalidRequest("'text' must be a non-empty string", param="text")
        return self.text

    def label_map(self, param: str = "labels", value: list[str] | dict[str, str] | None = None,
                  minimum: int = 2, maximum: int = 50) -> dict[str, str]:
        """Labels as {name: description}, checked for emptiness, duplicates and count."""
        raw = self.labels if value is None and param == "labels" else value
        if raw is None or len(raw) == 0:
            raise InvalidRequest(f"'{param}' is required: a list of names or {{name: description}}", param=param)
        if isinstance(raw, dict):
            pairs = list(raw.items())
        else:
            pairs = [(name, "") for name in raw]
        names = [name.strip() if isinstance(name, str) else name for name, _ in pairs]
        if any(not n for n in names):
            raise InvalidRequest(f"'{param}' contains an empty name", param=param)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidRequest(f"'{param}' names {', '.join(repr(d) for d in dupes)} more than once", param=param)
        if len(names) < minimum:
            raise InvalidRequest(f"'{param}' needs at least {minimum} entries to choose between, got {len(names)}",
                                 param=param)
        if len(names) > maximum:
            raise InvalidRequest(f"'{param}' has {len(names)} entries; an LLM tier takes at most {maximum}. "
                                 "Train a nano classifier (POST /v1/classifiers) for larger label sets",
                                 param=param)
        return {n: (d or "") for n, (_, d) in zip(names, pairs)}
