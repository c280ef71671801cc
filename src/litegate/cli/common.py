"""What every command shares: the consoles, one-line errors, progress bars, settings, and
building the Runtime."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from litegate.config import Settings

err = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def rich_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Bytes (joining model files)."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


class RateColumn(ProgressColumn):
    """Items per second (or per minute when slower than one a second)."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("", style="progress.data.speed")
        shown = f"{speed:.1f}/s" if speed >= 1 else f"{speed * 60:.1f}/min"
        return Text(shown, style="progress.data.speed")


def item_progress(total: int | None, description: str) -> Progress:
    """Items (records of a JSONL file): a bar, the count, the rate and the time left."""
    return Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                    console=err, transient=False, disable=not err.is_terminal and total is None)


@contextlib.contextmanager
def work_progress(description: str) -> Iterator[Callable[[int], None]]:
    """Work whose total is not known ahead (training): a spinner, the texts encoded so far,
    their rate and the time elapsed, on stderr."""
    with Progress(SpinnerColumn(), TextColumn(f"[bold]{description}"), TextColumn("{task.completed:,.0f} texts "
                  "encoded"), RateColumn(), TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=None)
        yield lambda n: progress.advance(task, n)


def settings(**overrides: object) -> Settings:
    from litegate.config import Settings  # pydantic-settings: only for the commands that read the settings

    base = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=updates) if updates else base


def runtime(model: str = "lite", record: bool = True, config: Path | None = None, **overrides: object) -> Any:
    """The Runtime a command works on: the config file's tiers, the ledger unless ``record``
    is off (evals do not bill features)."""
    from litegate.runtime import build

    return build(settings(**overrides), config, model=model, record=record, progress=rich_progress)


def stdin_lines() -> list[str]:
    from litegate.errors import InvalidRequest

    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"standard input is not UTF-8 text (byte {e.start})") from None


def sample(records: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``--limit N``: a fixed random sample of N records (files are often sorted by label, so
    the first N would be one label), in file order."""
    if not limit or limit >= len(records):
        return records
    import random

    keep = sorted(random.Random(0).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def split_pairs(value: str | None) -> list[str] | dict[str, str] | None:
    """'a,b,c' -> list; 'a:desc,b:desc' -> dict; a JSON list/object passes through."""
    import json

    from litegate.errors import InvalidRequest

    if value is None:
        return None
    value = value.strip()
    if value.startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError as e:
            raise InvalidRequest(f"not valid JSON: {e}") from None
    items = [v.strip() for v in value.split(",")]
    if any(":" in v for v in items):
        return {k.strip(): d.strip() for k, _, d in (v.partition(":") for v in items)}
    return items


def plain_table(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell, never cut: for pipes and narrow terminals."""
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *body]]
    return "\n".join(lines)
