"""What a task is, as data: its request model, the function that runs it on each kind of
tier (by capability), how two answers compare, and what an eval scores.

The runner, the cascade defaults, shadowing, ``eval``, ``calibrate``, the HTTP routes and the
CLI read these declarations; adding a task is one module with a ``TaskSpec`` plus one line in
``litegate.tasks.TASKS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage

MAX_TEXT_CHARS = 100_000


class TaskRequest(BaseModel):
    """Fields every task takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # CLI: per-field option settings ({"flag": "--to"}, {"lines_file": True}, {"json_file": True})
    cli: ClassVar[dict[str, dict[str, Any]]] = {}

    tier: str = Field(default="auto", min_length=1, max_length=64,
                      description="auto (the cascade), or a tier by name: nano, lite, pro or one from the config")
    feature: str | None = Field(default=None, max_length=200, description="a tag for cost reporting")


class TextRequest(TaskRequest):
    text: str | None = Field(default=None, description="the input text")
    files: list[dict[str, Any]] | None = Field(
        default=None, max_length=20,
        description="files read as text before the task runs (with or instead of text): {mime_type, data: base64} "
                    "or {file_id}; images and scans by OCR, PDFs by their text layer, audio and video by speech "
                    "recognition")
    document_text: bool = Field(default=False, description="with files: return the text each file became "
                                "(documents[].text) and its lines with their boxes (documents[].lines)")
    # the documents the files became, for tasks that read layout (the prebuilt extractors)
    _documents: list[Any] | None = PrivateAttr(default=None)

    @field_validator("text")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        return check_size(v)

    def require_text(self) -> str:
        if self.text is None or not self.text.strip():
            raise InvalidRequest("'text' must be a non-empty string", param="text")
        return self.text


def check_size(v: str | None) -> str | None:
    if v is not None and len(v) > MAX_TEXT_CHARS:
        raise ValueError(f"is {len(v):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    return v


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    label: str | None = None
    output: dict[str, Any] | None = None


def label_map(raw: list[str] | dict[str, str] | None, param: str = "labels", minimum: int = 2,
              maximum: int = 50) -> dict[str, str]:
    """Labels as {name: description}, checked for emptiness, duplicates and count."""
    if raw is None or len(raw) == 0:
        raise InvalidRequest(f"'{param}' is required: a list of names or {{name: description}}", param=param)
    if len(raw) > maximum:  # before any per-name work: a huge list is refused in O(1)
        raise InvalidRequest(f"'{param}' has {len(raw)} entries; an LLM tier takes at most {maximum}. "
                             "Train a nano classifier (POST /v1/classifiers) for larger label sets", param=param)
    pairs = list(raw.items()) if isinstance(raw, dict) else [(name, "") for name in raw]
    names = [name.strip() if isinstance(name, str) else name for name, _ in pairs]
    if any(not n for n in names):
        raise InvalidRequest(f"'{param}' contains an empty name", param=param)
    counts = Counter(names)
    dupes = sorted(n for n, c in counts.items() if c > 1)
    if dupes:
        raise InvalidRequest(f"'{param}' names {', '.join(repr(d) for d in dupes)} more than once", param=param)
    if len(names) < minimum:
        raise InvalidRequest(f"'{param}' needs at least {minimum} entries to choose between, got {len(names)}",
                             param=param)
    return {n: (d or "") for n, (_, d) in zip(names, pairs)}


@dataclass
class TaskOutput:
    """What a task function returns; the runner adds the envelope."""

    result: dict[str, Any]
    confidence: float
    tier: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    fallback_from: str | None = None
    fallback_reason: str | None = None

    @property
    def wants_stronger(self) -> bool:
        """The answer itself asks for a stronger tier (route: use_stronger_model)."""
        return self.result.get("route") == "use_stronger_model"


@dataclass
class TaskContext:
    """What task functions may read besides their tier: the trained classifiers and
    extractors (their labels, fields and training examples teach LLM tiers too)."""

    classifiers: Any = None
    extractors: Any = None
    attachments: Any = None  # litegate.documents.attachments.Attachments: a request's files -> text
    collections: Any = None  # litegate.collections.Collections: what answer retrieves from
    prebuilts: Any = None  # litegate.documents.prebuilt.extend.PrebuiltStore: prebuilt extractors users extended

    def for_request(self) -> TaskContext:
        """This context as one request sees it: each model read once, each text encoded once
        (its cascade steps, an escalation and the observers after share the work)."""
        from litegate.nano.encoders import RequestMemo  # numpy and the encoders: not for reading TASKS

        memo = RequestMemo()
        return TaskContext(classifiers=self.classifiers.for_request(memo) if self.classifiers is not None else None,
                           extractors=self.extractors.for_request(memo) if self.extractors is not None else None,
                           attachments=self.attachments, prebuilts=self.prebuilts)


TaskFn = Callable[[TaskContext, Any, Any], TaskOutput]  # (context, tier, request) -> output
PrepareFn = Callable[[TaskContext, Any, "str | None"], None]  # (context, request, the caller's key fingerprint)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    request: type[TaskRequest]
    runs: dict[str, TaskFn]  # tier capability -> the function that runs the task on such a tier
    summary: str  # one line: the CLI help and the API docs
    answer_keys: tuple[str, ...] = ()  # what must be equal for two answers to agree (shadowing)
    metric: str | None = None  # what eval scores: "classification", "extraction" or "answer"
    gold: tuple[str, ...] = ()  # fields of a labeled record that hold the right answer
    # whether a tier that has the capability can take this request (nano classify needs a classifier)
    accepts: Callable[[Any, Any], bool] | None = None
    positional: str | None = "text"  # the CLI argument
    # work done once per call before any tier runs, as the caller (answer retrieves from a collection)
    prepare: PrepareFn | None = None

    def function_for(self, tier: Any) -> TaskFn | None:
        for capability, fn in self.runs.items():
            if capability in tier.capabilities:
                return fn
        return None

    def can_run(self, tier: Any, request: Any) -> bool:
        return self.function_for(tier) is not None and (self.accepts is None or self.accepts(tier, request))

    def agree(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all(a.get(k) == b.get(k) for k in self.answer_keys if k in a or k in b)
