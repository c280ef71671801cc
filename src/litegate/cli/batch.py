"""litegate batch run | list | status | cancel.

``run`` answers a JSONL file in this process (or on a Ray cluster) and is resumable: OUT is
the checkpoint. ``list``, ``status`` and ``cancel`` speak to a running server's Batch API
(``--url``, default ``$LITEGATE_URL`` or http://127.0.0.1:8080; ``$LITEGATE_API_KEY`` when keys
are on).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from litegate.cli.common import err, fail, out, rich_progress, split_pairs
from litegate.cli.common import settings as cli_settings
from litegate.errors import LitegateError

batch_app = typer.Typer(help="Batch jobs: answer a JSONL file here or on Ray; list, inspect and cancel a server's "
                             "batches.", no_args_is_help=True, rich_markup_mode=None)
UrlOpt = Annotated[str, typer.Option("--url", envvar="LITEGATE_URL", help="the server")]
EXECUTORS = ("local", "ray")


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")


@batch_app.command("run")
def run(input_path: Annotated[Path, typer.Argument(metavar="IN.jsonl", help="request lines ({custom_id, method, url, "
                                                   "body}), or {text} lines with --task")],
        output: Annotated[Path, typer.Option("-o", "--output", metavar="OUT.jsonl",
                                             help="answers, one per line (OpenAI's batch output shape)")],
        task: Annotated[str | None, typer.Option(help="make {text} lines into requests to this task")] = None,
        classifier: Annotated[str | None, typer.Option(help="with --task classify: a trained classifier")] = None,
        extractor: Annotated[str | None, typer.Option(help="with --task extract: a trained extractor")] = None,
        labels: Annotated[str | None, typer.Option(help="with --task classify/route: 'a,b,c' or 'a:desc,...'")
                          ] = None,
        tier: Annotated[str | None, typer.Option(help="with --task: a tier name or auto")] = None,
        model: Annotated[str, typer.Option(help="the LLM behind the lite tier")] = "lite",
        feature: Annotated[str | None, typer.Option(help="the cost-report tag of every call (default: the "
                                                            "input file's name)")] = None,
        concurrency: Annotated[int, typer.Option(min=1, max=1024, help="lines in flight per worker")] = 32,
        executor: Annotated[str, typer.Option(help="local (this process) or ray")] = "local",
        address: Annotated[str | None, typer.Option(help="with --executor ray: the cluster (default: start a "
                                                            "local Ray, or RAY_ADDRESS)")] = None,
        workers: Annotated[int, typer.Option(min=1, max=1024, help="with --executor ray: actors, each loading the "
                                                                   "models once")] = 1,
        block: Annotated[int, typer.Option(min=1, max=100_000, help="with --executor ray: lines per task")] = 256,
        restart: Annotated[bool, typer.Option("--restart", help="answer every line again (default: skip the "
                                                                "custom_ids already in OUT)")] = False,
        ctx: Annotated[int | None, typer.Option(help="context tokens per model")] = None,
        ) -> None:
    """Answer a JSONL file of requests, resumably: lines already in OUT are skipped."""
    from litegate.deploy.batch_files import Owner, answered_ids, read_input, rewrite_in_order
    from litegate.tasks import TASKS

    if executor not in EXECUTORS:
        fail(f"--executor must be one of {', '.join(EXECUTORS)}")
    if task is None and (classifier or extractor or labels or tier):
        fail("--classifier, --extractor, --labels and --tier go with --task")
    options: dict[str, Any] = {k: v for k, v in (("classifier", classifier), ("extractor", extractor),
                                                 ("tier", tier)) if v}
    try:
        if labels:
            options["labels"] = split_pairs(labels)
        s = cli_settings(ctx=ctx)
        lines = read_input(input_path, task, options, int(s.max_body_mb * (1 << 20)), list(TASKS))
    except LitegateError as e:
        fail(e.message)
    if output.resolve() == input_path.resolve():
        fail("OUT must be another file than IN")
    if restart and output.exists():
        output.unlink()
    done = answered_ids(output)
    todo = [ln for ln in lines if ln.custom_id not in done]
    owner = Owner(id=f"cli-{int(time.time())}", feature=feature or input_path.name)
    err.print(f"{len(lines)} lines, {len(lines) - len(todo)} already in {output}, {len(todo)} to answer "
              f"({executor})", highlight=False)
    started = time.perf_counter()
    counts, answering, cost = _answer(todo, output, owner, model, s, concurrency, executor, address, workers, block)
    rewrite_in_order(output, lines)
    _summarize(len(lines), len(todo), counts, time.perf_counter() - started, answering, cost, output)


def _answer(todo: list[Any], output: Path, owner: Any, model: str, s: Any, concurrency: int, executor: str,
            address: str | None, workers: int, block: int) -> tuple[dict[str, int], float, float]:
    """Answer the lines, appending each answer to OUT as it comes: (counts, seconds answering, cost)."""
    from litegate.deploy.batch_files import write_errors

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        sink = open(output, "a", encoding="utf-8")
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def write(result: dict[str, Any]) -> None:
        ok = result.get("error") is None and 200 <= int((result.get("response") or {}).get("status_code", 0)) < 300
        with lock:
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
            sink.flush()
            counts["ok" if ok else "failed"] += 1
            advance(1)

    progress, advance, cost = _progress(len(todo))
    answering = [0.0]  # seconds spent answering, after the models were loaded
    try:
        with progress:
            bad = [ln for ln in todo if ln.error is not None]
            write_errors(bad, write)
            good = [ln for ln in todo if ln.error is None]
            if good:
                if executor == "local":
                    answering[0] = _run_local(good, owner, model, s, concurrency, write, cost)
                else:
                    from litegate.deploy.ray_executor import run_on_ray

                    answering[0] = run_on_ray(good, owner, model, s, concurrency, write, address=address,
                                              workers=workers, block=block,
                                              on_cost=lambda c: cost.__setitem__(0, c))["seconds"]
    except KeyboardInterrupt:
        fail(f"interrupted: {counts['ok'] + counts['failed']} lines written to {output}; run the same command "
             "again to answer the rest", code=130)
    except LitegateError as e:
        fail(e.message)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}; the lines written so far are kept")
    finally:
        sink.close()
    return counts, answering[0], cost[0]


def _summarize(total: int, todo: int, counts: dict[str, int], seconds: float, answering: float, cost: float,
               output: Path) -> None:
    """The run's summary: a line for people on stderr, JSON on stdout; exit 2 when a line failed."""
    summary = {"lines": total, "answered": counts["ok"], "failed": counts["failed"],
               "skipped": total - todo, "seconds": round(seconds, 2),
               "answer_seconds": round(answering, 2),
               "items_per_s": round(todo / answering, 1) if answering and todo else None,
               "cost_usd": round(cost, 9), "output": str(output)}
    rate = f" at {summary['items_per_s']}/s" if summary["items_per_s"] else ""
    err.print(f"{counts['ok']:,} lines answered{rate}, {counts['failed']:,} failed, {summary['skipped']:,} already "
              f"done; ${cost:.6f}; answers in {output}", highlight=False, soft_wrap=True)
    out.print_json(json.dumps(summary))
    if counts["failed"]:
        raise typer.Exit(2)


def _progress(total: int) -> tuple[Any, Any, list[float]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cost = [0.0]

    class Rate(TextColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} items/s" if speed else "- items/s")

    class Cost(TextColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text

            return Text(f"${cost[0]:.6f}")

    progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                        Rate(""), Cost(""), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=not err.is_terminal)
    task_id = progress.add_task("batch", total=total)
    return progress, lambda n: progress.advance(task_id, n), cost


def _run_local(lines: list[Any], owner: Any, model: str, s: Any, concurrency: int, write: Any,
               cost: list[float]) -> float:
    """Answer in this process; returns the seconds spent answering (the models loaded)."""
    import asyncio

    from litegate.deploy.batch_files import LineApp
    from litegate.runtime import build

    rt = build(s, None, model=model, progress=rich_progress)
    try:
        app = LineApp(rt, owner)

        def on_result(result: dict[str, Any]) -> None:
            write(result)
            if rt.accountant is not None:
                cost[0] = rt.accountant.metrics.total_cost_usd

        started = time.perf_counter()
        asyncio.run(app.answer(lines, concurrency, on_result))
        return time.perf_counter() - started
    finally:
        rt.close()
        if rt.accountant is not None:
            cost[0] = rt.accountant.metrics.total_cost_usd


# -- against a server -----------------------------------------------------------------------

def _client(url: str) -> Any:
    import httpx

    key = os.environ.get("LITEGATE_API_KEY")
    return httpx.Client(base_url=url.rstrip("/"), timeout=30,
                        headers={"Authorization": f"Bearer {key}"} if key else {})


def _get(url: str, method: str, path: str) -> Any:
    import httpx

    try:
        with _client(url) as c:
            r = c.request(method, path)
    except httpx.TransportError as e:
        fail(f"cannot reach {url}: {e} (start it with `litegate serve`, or pass --url)")
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        fail(f"{r.status_code}: {message}")
    return r.json()


@batch_app.command("list")
def list_batches(url: UrlOpt = "http://127.0.0.1:8080",
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The server's OpenAI-API batches, newest first."""
    data = _get(url, "GET", "/v1/batches?limit=100")["data"]
    if as_json:
        out.print_json(json.dumps(data))
        return
    from litegate.cli.report import plain_table

    # plain padded columns: ids are there to be copied, so no column is ever cut or folded
    rows = [(b["id"], b["status"], b["endpoint"], str(b["request_counts"]["completed"]),
             str(b["request_counts"]["failed"]), str(b["request_counts"]["total"]),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(b["created_at"])),
             f"{b['cost_usd']:.6f}" if b.get("cost_usd") is not None else "") for b in data]
    out.print(plain_table(("id", "status", "endpoint", "done", "failed", "total", "created", "cost $"), rows),
              highlight=False, soft_wrap=True)


@batch_app.command("status")
def status(batch_id: str, url: UrlOpt = "http://127.0.0.1:8080") -> None:
    """One batch, as JSON."""
    out.print_json(json.dumps(_get(url, "GET", f"/v1/batches/{batch_id}")))


@batch_app.command("cancel")
def cancel(batch_id: str, url: UrlOpt = "http://127.0.0.1:8080") -> None:
    """Stop a running batch (what finished is kept in its output file)."""
    out.print_json(json.dumps(_get(url, "POST", f"/v1/batches/{batch_id}/cancel")))
