"""File-to-file batches: ``litegate batch run IN.jsonl -o OUT.jsonl``.

Input lines are OpenAI batch request lines (``{"custom_id", "method", "url", "body"}``, any
endpoint a batch can call), or, with ``--task``, ``{"text", ...}`` lines made into task
requests. Each answered line is appended to OUT at once (OpenAI's output-line shape), so OUT
is the checkpoint: a second run skips the custom_ids already in it. When every line is
answered, OUT is rewritten in input order.

Lines are answered through an app built in this process (``LineApp``), the same routes and
the same in-process dispatch a server's batch jobs use. Executors: ``local`` (this process)
and ``ray`` (``litegate.deploy.ray_executor``: actors on a Ray cluster, each with its own LineApp).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from litegate.errors import InvalidRequest
from litegate.jobs.batches import Line, answer_lines, error_line, openai_lines, result_line, task_prefetch
from litegate.jobs.jsonl import MAX_BYTES_PER_CHAR, RawLine, certainly_longer, read_lines, string_spans
from litegate.server.app import create_app
from litegate.server.internal import AppDispatch
from litegate.tasks.base import MAX_TEXT_CHARS

GOLD_FIELDS = ("label", "labels", "data", "id", "custom_id")  # what a {"text"} line may carry besides inputs


@dataclass
class Owner:
    """Whom a batch's calls are billed to: its feature tag (and no key, locally)."""

    id: str
    feature: str | None = None
    api_key: str | None = None


def task_lines(data: bytes, task: str, options: dict[str, Any], max_line_bytes: int) -> list[Line]:
    """``read_task_lines`` of bytes already in memory."""
    return read_task_lines(io.BytesIO(data), task, options, max_line_bytes)


def read_task_lines(source: BinaryIO, task: str, options: dict[str, Any], max_line_bytes: int) -> list[Line]:
    """``{"text", ...}`` lines as requests to ``/v1/tasks/{task}`` with ``options`` (a
    classifier, labels, a tier...), read a line at a time. A line's ``id``/``custom_id`` names
    it, else ``line-N``; gold answers (``label``, ``data``) are left out of the request. A line
    over the size limit, or whose text is over the task's limit by its bytes alone, fails
    without being decoded."""
    lines: list[Line] = []
    seen: set[str] = set()
    for raw in read_lines(source, max_line_bytes):
        n, index = raw.line_no, len(lines)
        obj = _task_object(raw)
        cid = str(obj.get("custom_id") or obj.get("id") or f"line-{n}") if isinstance(obj, dict) else f"line-{n}"
        if cid in seen:
            raise InvalidRequest(f"line {n}: id {cid[:100]!r} appears twice; each line needs its own")
        seen.add(cid)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            lines.append(Line(index, cid, None, None, {"code": "invalid_line", "message": f"line {n} must be a JSON "
                                                       "object with a 'text' string (within the size limit)"}))
            continue
        body = {k: v for k, v in obj.items() if k not in GOLD_FIELDS}
        lines.append(Line(index, cid, f"/v1/tasks/{task}", {**body, **options}))
    if not lines:
        raise InvalidRequest("the input has no lines")
    return lines


def _task_object(raw: RawLine) -> Any:
    """A line's JSON value, or None when it is over a limit (never decoded) or unreadable."""
    if raw.data is None:
        return None
    if raw.size > MAX_TEXT_CHARS * MAX_BYTES_PER_CHAR:
        text = (string_spans(raw.data, ("text",)) or {}).get(("text",))
        if text is not None and certainly_longer(text, MAX_TEXT_CHARS):
            return None
    try:
        s = raw.data.decode("utf-8")
        raw.data = None
        return json.loads(s)
    except ValueError:  # not UTF-8, not JSON
        return None


def answered_ids(out: Path) -> set[str]:
    """custom_ids already in OUT (a line cut short by a crash is ignored, and rewritten)."""
    if not out.exists():
        return set()
    ids = set()
    for s in out.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(s)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
            ids.add(obj["custom_id"])
    return ids


def rewrite_in_order(out: Path, lines: list[Line]) -> None:
    """OUT again, one line per input line in input order (the latest answer of each)."""
    by_id: dict[str, str] = {}
    for s in out.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(s)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
            by_id[obj["custom_id"]] = s
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            if line.custom_id in by_id:
                f.write(by_id[line.custom_id] + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


class LineApp:
    """A litegate app in this process that answers request lines (no socket)."""

    def __init__(self, runtime: Any, owner: Owner):

        self.runtime = runtime
        self.owner = owner
        self.app = create_app(runtime, close_runtime=False, with_pipelines=False)
        self.dispatch = AppDispatch(self.app)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def call(self, line: Line) -> tuple[int, Any]:
        return await self.dispatch(line.url or "", line.body or {}, self.owner)  # type: ignore[arg-type]

    async def answer(self, lines: list[Line], concurrency: int,
                     on_result: Callable[[dict[str, Any]], None]) -> None:
        async def done(line: Line, status: int, body: Any) -> None:
            on_result(result_line("openai", line, status, body))

        await answer_lines(lines, self.call, done, concurrency, prefetch=task_prefetch(self.runtime))

    def answer_block(self, lines: list[Line], concurrency: int) -> list[dict[str, Any]]:
        """A block of lines, answered synchronously (a Ray actor's call)."""
        results: list[dict[str, Any]] = []
        if self._loop is None:
            self._loop = asyncio.new_event_loop()  # one loop for the actor's life: engines keep no loop, but tiers may
        self._loop.run_until_complete(self.answer(lines, concurrency, results.append))
        return results


def write_errors(lines: Iterable[Line], sink: Callable[[dict[str, Any]], None]) -> int:
    n = 0
    for line in lines:
        sink(error_line("openai", line, line.error or {}))
        n += 1
    return n


def read_input(path: Path, task: str | None, options: dict[str, Any], max_line_bytes: int,
               tasks: list[str]) -> list[Line]:
    if task is not None and task not in tasks:
        raise InvalidRequest(f"unknown task {task!r}; tasks: {', '.join(tasks)}")
    try:
        with open(path, "rb") as source:
            if task is not None:
                return read_task_lines(source, task, options, max_line_bytes)
            return list(openai_lines(source, None, max_line_bytes, tasks))
    except OSError as e:
        raise InvalidRequest(f"cannot read {path}: {e.strerror or e}") from None
