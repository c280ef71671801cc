"""Step kinds: what each ``[[step]]`` kind accepts and what it does.

``STEP_KINDS`` maps a kind to its ``StepKind``: the option keys it takes, ``check`` (at load
time: options valid, templates parse and reach earlier steps; returns what ``run`` needs) and
``run`` (one step of one run). Every task (classify, extract, route, summarize, translate,
rank, answer) is a kind through the same ``TaskRunner.run`` as ``POST /v1/tasks/{task}``, so
a step is ledgered, costed and cascaded like any call. Adding a kind is one function pair
and one line in ``STEP_KINDS``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from litegate.documents import Part, as_prompt
from litegate.errors import ConfigError, InvalidRequest, LitegateError
from litegate.pipelines.expr import Expression
from litegate.pipelines.index import check_index, run_index
from litegate.pipelines.spec import StepConfig, StepContext, StepKind, StepResult, env_value, expression, fill, template
from litegate.tasks import TASKS
from litegate.tasks.runner import validate

COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_COLUMNS = ("run_id", "pipeline", "input_ref", "written_at")
COLUMN_TYPES = ("text", "float", "integer", "boolean", "json")


def _check_templates(value: Any, where: str, key: str, earlier: Any) -> None:
    if isinstance(value, str) and "{{" in value:
        template(value, where, key, earlier)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(v, where, f"{key}[{i}]", earlier)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(v, where, f"{key}.{k}", earlier)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    return False


# -- tasks ----------------------------------------------------------------------------------

def task_kind(task: str) -> StepKind:

    spec = TASKS[task]
    fields = {f.alias or name for name, f in spec.request.model_fields.items()} - {"tier", "feature", "files"}

    def check(step: StepConfig, before: list[StepConfig], earlier: Any) -> dict[str, Any]:
        options = dict(step.options)
        for key, value in options.items():
            _check_templates(value, step.where, key, earlier)
        if "text" in fields and "text" not in options:
            ingest = _last_ingest(before)
            options["text"] = f"{{{{ steps.{ingest.name}.text }}}}" if ingest else "{{ input.text }}"
        sample = {k: v for k, v in options.items() if not _has_template(v)}
        if "text" in fields:
            sample["text"] = "sample"
        try:
            validate(spec, {**sample, "tier": step.tier or "auto"})
        except InvalidRequest as e:
            key = (e.param or "").split(".")[0] or "options"
            message = e.message.split(f"'{e.param}' ", 1)[-1] if e.param else e.message
            raise ConfigError(f"{step.where}: {key}: {message}") from None
        return options

    def run(ctx: StepContext) -> StepResult:
        body = fill(ctx.step.prepared, ctx.scope)
        if "text" in body and not isinstance(body["text"], str):
            body["text"] = "" if body["text"] is None else str(body["text"])
        body.update(tier=ctx.step.tier or "auto", feature=ctx.step.feature)
        req = validate(spec, body)
        documents = _ingested(ctx)
        if documents:
            req._documents = documents  # type: ignore[attr-defined]
        result = ctx.runtime.tasks.run(task, req, ctx.api_key)
        review = None
        if result.get("outcome") == "human_review":
            review = f"the {task} cascade sent it to human review"
        elif ctx.step.review_below is not None and result["confidence"] < ctx.step.review_below:
            review = f"confidence {result['confidence']:.2f} is under review_below {ctx.step.review_below:g}"
        return StepResult(output=result, tier=result.get("tier"), confidence=result.get("confidence"),
                          cost_usd=float(result.get("cost_usd") or 0.0), outcome=result.get("outcome"),
                          escalated=bool(result.get("escalated")), call_id=result.get("id"), review=review)

    return StepKind(frozenset(fields), check, run, task=True)


def _last_ingest(before: list[StepConfig]) -> StepConfig | None:
    """The last ingest step among ``before``: a task step with no text of its own reads its text
    (and its documents)."""
    return next((s for s in reversed(before) if s.kind == "ingest"), None)


DOCUMENTS = "documents"  # the scope's key for what ingest steps read (not a root expressions reach)


def _ingested(ctx: StepContext) -> list[Any] | None:
    """The documents the ingest step before a task step read, with their lines' boxes (what
    the prebuilt extractors place fields by), when the step's text is that ingest's text. They
    live in the run's memory, not its record: a run taken up again after a stop reads the
    input's files once more (the same bytes, the same reading) rather than lose the boxes; if
    they are gone by then, the text's lines stand in."""
    if "text" in ctx.step.options:
        return None
    ingest = _last_ingest(ctx.pipeline.steps[:ctx.step.index])
    if ingest is None:
        return None
    read: dict[str, list[Any] | None] = ctx.scope.setdefault(DOCUMENTS, {})
    if ingest.name not in read and (ctx.scope["steps"].get(ingest.name) or {}).get("files"):
        try:
            again = _read_input(ctx)
        except LitegateError:  # a file deleted since: the ingest's text (its lines) is what is left
            again = None
        read[ingest.name] = again.documents if again is not None else None
    return read.get(ingest.name)


def _read_input(ctx: StepContext) -> Any:
    """The run's files read by the document layer (None when it has none)."""
    from pathlib import Path

    att = ctx.runtime.tasks.context.attachments
    parts = []
    for i, f in enumerate(ctx.scope["input"].get("files") or []):
        where = f"files.{i}"
        if f.get("path"):  # local runs (litegate pipeline run --input DIR) name files by path
            try:
                data = Path(f["path"]).read_bytes()
            except OSError as e:
                raise InvalidRequest(f"{where}: cannot read {f['path']}: {e.strerror or e}") from None
            parts.append(Part(f.get("mime_type"), data, where, f.get("filename")))
        else:
            parts.append(att.task_part({"file_id": f["file_id"], "filename": f.get("filename")}, where))
    return att.read(parts) if parts else None


# -- ingest ---------------------------------------------------------------------------------

def check_ingest(step: StepConfig, before: list[StepConfig], earlier: Any) -> None:
    if step.options:
        raise ConfigError(f"{step.where}: {next(iter(step.options))}: an ingest step takes no options")


def run_ingest(ctx: StepContext) -> StepResult:
    """The run's files as text (the document layer), after the input's own text."""
    text = ctx.scope["input"].get("text") or ""
    if not ctx.scope["input"].get("files") and not text.strip():
        raise InvalidRequest("the input has no files and no text to ingest")
    started = time.perf_counter()
    read = _read_input(ctx)
    docs_text = as_prompt(read.documents) if read else ""
    full = "\n\n".join(t for t in (text.strip(), docs_text) if t)
    summary = read.summary() if read else []
    cost = read.cost_usd if read else 0.0
    call_id = None
    if ctx.runtime.accountant is not None and read is not None:
        import secrets

        call_id = "ingest_" + secrets.token_hex(12)
        ctx.runtime.accountant.task({"id": call_id, "task": "ingest", "tier": "documents", "model": None,
                                     "feature": ctx.step.feature, "usage": {},
                                     "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                                     "cost_usd": round(cost, 9), "confidence": None, "documents": summary},
                                    api_key=ctx.api_key)
    if read is not None:
        ctx.scope.setdefault(DOCUMENTS, {})[ctx.step.name] = read.documents
    output = {"text": full, "chars": len(full), "files": len(summary),
              "pages": sum(d["pages"] for d in summary), "documents": summary}
    return StepResult(output=output, tier="documents" if read else None, cost_usd=cost, call_id=call_id)


# -- review ---------------------------------------------------------------------------------

def check_review(step: StepConfig, before: list[StepConfig], earlier: Any) -> str:
    reason = step.options.get("reason", "held for review")
    return template(reason, step.where, "reason", earlier)


def run_review(ctx: StepContext) -> StepResult:
    """Hold the run for a person (put a ``when`` on it: large totals, unknown vendors...)."""
    reason = fill(ctx.step.prepared, ctx.scope)
    return StepResult(output={"reason": str(reason)}, review=str(reason))


# -- write ----------------------------------------------------------------------------------

@dataclass
class Column:
    name: str
    value: Expression
    type: str


@dataclass
class WriteSpec:
    table: str | None
    jsonl: str | None
    url: str | None  # None: the ledger's database
    columns: list[Column]


def _default_columns(before: list[StepConfig]) -> dict[str, Any]:
    """No ``columns``: every extracted field, every label and route, every summary,
    translation and answer of the steps before, under the field's or the step's name."""
    cols: dict[str, Any] = {}
    for s in before:
        if s.kind == "extract":
            for f in (s.options.get("fields") or {}):
                cols[f] = f"steps.{s.name}.data.{f}"
            cols[f"{s.name}_confidence"] = {"value": f"steps.{s.name}.confidence", "type": "float"}
        elif s.kind == "classify":
            cols[s.name] = f"steps.{s.name}.label"
            cols[f"{s.name}_confidence"] = {"value": f"steps.{s.name}.confidence", "type": "float"}
        elif s.kind == "route":
            cols[s.name] = f"steps.{s.name}.route"
        elif s.kind == "summarize":
            cols[s.name] = f"steps.{s.name}.summary"
        elif s.kind == "translate":
            cols[s.name] = f"steps.{s.name}.translation"
        elif s.kind == "answer":
            cols[s.name] = f"steps.{s.name}.answer"
    return {k: v for k, v in cols.items() if COLUMN.match(k) and k not in RESERVED_COLUMNS}


def check_write(step: StepConfig, before: list[StepConfig], earlier: Any) -> WriteSpec:
    o, where = step.options, step.where
    table, jsonl = o.get("table"), o.get("jsonl")
    if (table is None) == (jsonl is None):
        raise ConfigError(f"{where}: table: give either table (a SQL table) or jsonl (a file path)")
    if table is not None and (not isinstance(table, str) or not COLUMN.match(table)):
        raise ConfigError(f"{where}: table: {table!r} must be letters, digits and _ (at most 63)")
    if jsonl is not None and (not isinstance(jsonl, str) or not jsonl):
        raise ConfigError(f"{where}: jsonl: must be a file path")
    if jsonl is not None and ("url" in o or "url_env" in o):
        raise ConfigError(f"{where}: url: goes with table, not jsonl")
    url = env_value(o, "url", where, required=False) if table is not None else None
    raw = o.get("columns")
    if raw is None:
        raw = _default_columns(before)
        if not raw:
            raise ConfigError(f"{where}: columns: no earlier step gives a value to write; name the columns")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: columns: must be a table of column = expression")
    columns = []
    for name, spec in raw.items():
        key = f"columns.{name}"
        if not COLUMN.match(name) or name.lower() in RESERVED_COLUMNS:
            raise ConfigError(f"{where}: {key}: a column name is letters, digits and _, and not one of "
                              f"{', '.join(RESERVED_COLUMNS)} (litegate writes those)")
        kind = None
        if isinstance(spec, dict):
            extra = sorted(set(spec) - {"value", "type"})
            if extra:
                raise ConfigError(f"{where}: {key}.{extra[0]}: a column takes value and type")
            kind, spec = spec.get("type"), spec.get("value")
        expr = expression(spec, where, key, earlier)
        if kind is None:
            last = expr.paths()[-1][-1] if expr.paths() else ""
            kind = "float" if last in ("confidence", "cost_usd") else "text"
        if kind not in COLUMN_TYPES:
            raise ConfigError(f"{where}: {key}.type: {kind!r} is not one of {', '.join(COLUMN_TYPES)}")
        columns.append(Column(name, expr, kind))
    return WriteSpec(table, jsonl, url, columns)


def run_write(ctx: StepContext) -> StepResult:
    spec: WriteSpec = ctx.step.prepared
    values = {c.name: c.value(ctx.scope) for c in spec.columns}
    if spec.table is not None:
        written = ctx.service.sinks.write_table(spec.url, spec.table, spec.columns, ctx.run, values, ctx.step.where)
        return StepResult(output={"table": spec.table, "written": written, "values": values})
    from pathlib import Path

    assert spec.jsonl is not None  # the config gives a table or a jsonl path, never neither
    path = Path(spec.jsonl).expanduser()
    if not path.is_absolute():
        path = Path(ctx.pipeline.source).expanduser().resolve().parent / path
    written = ctx.service.sinks.write_jsonl(path, spec.columns, ctx.run, values, ctx.step.where)
    return StepResult(output={"jsonl": str(path), "written": written, "values": values})


# -- notify ---------------------------------------------------------------------------------

@dataclass
class NotifySpec:
    url: str
    secret_env: str | None
    max_attempts: int
    backoff_s: float
    timeout_s: float
    payload: dict[str, Expression] | None


def check_notify(step: StepConfig, before: list[StepConfig], earlier: Any) -> NotifySpec:
    import os

    o, where = step.options, step.where
    url = env_value(o, "url", where)
    if not re.match(r"^https?://[^\s/]+", url or ""):
        raise ConfigError(f"{where}: url: {url!r} must be an http:// or https:// URL")
    secret_env = o.get("secret_env")
    if secret_env is not None:
        if not isinstance(secret_env, str) or not secret_env:
            raise ConfigError(f"{where}: secret_env: must name an environment variable holding the signing secret")
        if not os.environ.get(secret_env):
            raise ConfigError(f"{where}: secret_env: the environment variable {secret_env} is not set")

    def number(key: str, default: float, lo: float, hi: float, integer: bool = False) -> float:
        v = o.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (integer and v != int(v)):
            raise ConfigError(f"{where}: {key}: must be a {'whole ' if integer else ''}number from {lo:g} to {hi:g}")
        return v

    payload = o.get("payload")
    exprs = None
    if payload is not None:
        if not isinstance(payload, dict) or not payload:
            raise ConfigError(f"{where}: payload: must be a table of name = expression")
        exprs = {k: expression(v, where, f"payload.{k}", earlier) for k, v in payload.items()}
    return NotifySpec(url=url or "", secret_env=secret_env, max_attempts=int(number("max_attempts", 5, 1, 100, True)),
                      backoff_s=float(number("backoff_s", 2.0, 0.01, 3600)),
                      timeout_s=float(number("timeout_s", 10.0, 0.1, 120)), payload=exprs)


def run_summary(ctx: StepContext) -> dict[str, Any]:
    """The run so far, compact: what each step answered, without texts and token counts."""
    steps: dict[str, Any] = {}
    for s in ctx.pipeline.steps:
        if s.name not in ctx.scope["steps"] or s.index >= ctx.step.index:
            continue
        out = ctx.scope["steps"][s.name]
        if out is None:
            steps[s.name] = None
        elif s.kind == "ingest":
            steps[s.name] = {k: out.get(k) for k in ("chars", "files", "pages")}
        elif isinstance(out, dict):
            steps[s.name] = {k: v for k, v in out.items()
                             if k not in ("usage", "spans", "documents", "values", "task", "model", "feature")}
        else:
            steps[s.name] = out
    return {"event": "pipeline.run", "pipeline": ctx.pipeline.name, "run_id": ctx.run["id"],
            "input_ref": ctx.run.get("input_ref"), "input": {"metadata": ctx.scope["input"].get("metadata")},
            "steps": steps}


def run_notify(ctx: StepContext) -> StepResult:
    """Queue the webhook in the outbox (delivered in the background, retried, dead-lettered):
    the run does not wait on, or fail because of, a receiver that is down."""
    spec: NotifySpec = ctx.step.prepared
    body = ({k: e(ctx.scope) for k, e in spec.payload.items()} if spec.payload is not None else run_summary(ctx))
    delivery = ctx.service.outbox.enqueue(run_id=ctx.run["id"], pipeline=ctx.pipeline.name, step=ctx.step.name,
                                          url=spec.url, body=body, secret_env=spec.secret_env,
                                          max_attempts=spec.max_attempts, backoff_s=spec.backoff_s,
                                          timeout_s=spec.timeout_s)
    return StepResult(output={"delivery_id": delivery, "url": spec.url, "status": "queued"})


def _kinds() -> dict[str, StepKind]:

    kinds = {
        "ingest": StepKind(frozenset(), check_ingest, run_ingest),
        "write": StepKind(frozenset({"table", "jsonl", "url", "url_env", "columns"}), check_write, run_write),
        "notify": StepKind(frozenset({"url", "url_env", "secret_env", "max_attempts", "backoff_s", "timeout_s",
                                      "payload"}), check_notify, run_notify),
        "review": StepKind(frozenset({"reason"}), check_review, run_review),
        "index": StepKind(frozenset({"collection", "attributes"}), check_index, run_index),
    }
    for task in TASKS:
        kinds[task] = task_kind(task)
    return kinds


STEP_KINDS: dict[str, StepKind] = _kinds()


def run_step(ctx: StepContext) -> StepResult:
    return STEP_KINDS[ctx.step.kind].run(ctx)


__all__ = ["STEP_KINDS", "StepContext", "StepKind", "StepResult", "LitegateError", "run_step"]
