"""litegate pipeline run | runs | show | check | dead-letters | redeliver.

``run`` sends every document of a folder (or every line of a JSONL file) through a pipeline
in this process, with a progress bar; it is resumable because runs are keyed by their
document (sha256 of the file, or a line's ``id``): a second run skips what finished and takes
up what failed. The other commands read the runs tables in the ledger's database
(``LITEGATE_LEDGER_URL`` or ``$LITEGATE_HOME/ledger.db``).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Annotated, Any

import typer

from litegate.cli.common import err, fail, out, plain_table
from litegate.errors import LitegateError

pipeline_app = typer.Typer(help="Document pipelines: run a folder or a JSONL file through one, list and inspect "
                                "runs, check pipeline files.", no_args_is_help=True, rich_markup_mode=None)
PipelinesOpt = Annotated[Path | None, typer.Option("--pipelines", help="a pipeline TOML file or a folder of them "
                                                      "(default: $LITEGATE_PIPELINES, else $LITEGATE_HOME/pipelines)")]


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")


def _load(pipelines: Path | None) -> tuple[Any, dict[str, Any]]:
    from litegate.cli.common import settings
    from litegate.pipelines import load_pipelines

    s = settings(pipelines=pipelines)
    try:
        return s, load_pipelines(s.pipelines, s.home, explicit=s.pipelines is not None)
    except LitegateError as e:
        fail(e.message)


def inputs(path: Path) -> list[tuple[Any, str | None]]:
    """(RunInput, idempotency key) per document: each file of a folder (key: the file's
    sha256), or each line of a JSONL file ({"text"} and/or {"path"}, "id", "metadata")."""
    from litegate.errors import InvalidRequest
    from litegate.pipelines import RunInput

    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not found:
            raise InvalidRequest(f"{path} has no files")
        return [(RunInput(files=[{"path": str(p), "filename": p.name}], ref=str(p)), None) for p in found]
    if not path.is_file():
        raise InvalidRequest(f"--input {path} is neither a folder nor a file")
    if path.suffix.lower() != ".jsonl":
        return [(RunInput(files=[{"path": str(path), "filename": path.name}], ref=str(path)), None)]
    out, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise InvalidRequest(f"{path.name} line {n}: not JSON") from None
        if not isinstance(obj, dict) or not (isinstance(obj.get("text"), str) or isinstance(obj.get("path"), str)):
            raise InvalidRequest(f"{path.name} line {n}: needs a 'text' string or a 'path' to a file")
        key = str(obj["id"]) if obj.get("id") is not None else None
        if key is not None:
            if key in seen:
                raise InvalidRequest(f"{path.name} line {n}: id {key!r} appears twice")
            seen.add(key)
        files = []
        if isinstance(obj.get("path"), str):
            p = Path(obj["path"]).expanduser()
            p = p if p.is_absolute() else path.parent / p
            files.append({"path": str(p), "filename": p.name})
        meta = given if isinstance(given := obj.get("metadata"), dict) else {}
        out.append((RunInput(text=obj.get("text"), files=files, metadata=meta, ref=key or obj.get("path") or
                             f"{path.name}:{n}"), key))
    if not out:
        raise InvalidRequest(f"{path} has no lines")
    return out


@pipeline_app.command("run")
def run(name: Annotated[str, typer.Argument(help="the pipeline")],
        input_path: Annotated[Path, typer.Option("--input", "-i", metavar="DIR|FILE.jsonl",
                                                 help="a folder of documents, one file, or JSONL lines "
                                                      "({text} or {path}, optional id and metadata)")],
        pipelines: PipelinesOpt = None,
        model: Annotated[str, typer.Option(help="the LLM behind the lite tier")] = "lite",
        concurrency: Annotated[int, typer.Option(min=1, max=64, help="documents in flight")] = 2,
        wait_webhooks: Annotated[float, typer.Option(help="seconds to wait for webhooks at the end (the rest stay "
                                                          "queued for the next run or a server)")] = 30.0,
        as_json: Annotated[bool, typer.Option("--json", help="print every run as a JSON line")] = False) -> None:
    """Run every document through a pipeline here, resumably (finished documents are skipped)."""
    from litegate.cli.common import rich_progress
    from litegate.pipelines import PipelineService
    from litegate.runtime import build

    s, found = _load(pipelines)
    if name not in found:
        fail(f"no pipeline {name!r}; pipelines: {', '.join(found) or 'none (use --pipelines FILE|DIR)'}")
    try:
        docs = inputs(input_path)
    except LitegateError as e:
        fail(e.message)
    rt = build(s, None, model=model, progress=rich_progress)
    try:
        svc = PipelineService(rt, {name: found[name]}, workers=1)
    except LitegateError as e:
        rt.close()
        fail(e.message)
    svc.start()
    counts: dict[str, int] = {}
    cost = [0.0]
    lock = threading.Lock()
    progress, advance = _progress(len(docs), cost, counts)
    started = time.perf_counter()
    try:
        with progress, ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(_one, svc, name, inp, key) for inp, key in docs]
            for f in as_completed(futures):
                result = f.result()
                with lock:
                    counts[result["status"]] = counts.get(result["status"], 0) + 1
                    cost[0] += result["cost_usd"] if not result.get("replayed") else 0.0
                    advance()
                if as_json:
                    out.print_json(json.dumps(result))
    except KeyboardInterrupt:
        fail("interrupted: finished documents are kept; run the same command again to do the rest", code=130)
    finally:
        left = svc.outbox.drain(wait_webhooks)
        svc.close()
        rt.close()
    seconds = time.perf_counter() - started
    summary = {"pipeline": name, "documents": len(docs), **counts, "seconds": round(seconds, 2),
               "documents_per_minute": round(len(docs) / seconds * 60, 1) if seconds else None,
               "cost_usd": round(cost[0], 9), "webhooks_pending": left}
    done = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do"
    err.print(f"{name}: {len(docs)} document{'s' if len(docs) != 1 else ''} ({done}) in {seconds:.0f} s, "
              f"${cost[0]:.6f}" + (f"; {left} webhooks still queued" if left else ""), highlight=False,
              soft_wrap=True)
    out.print_json(json.dumps(summary))
    if counts.get("failed"):
        raise typer.Exit(2)


def _one(svc: Any, name: str, inp: Any, key: str | None) -> dict[str, Any]:
    try:
        run, todo = svc.submit(name, inp, key)
        if todo:
            svc.execute(run["id"])
        body = svc.show(run["id"])
        body["replayed"] = not todo
        return body
    except LitegateError as e:
        return {"status": "failed", "input_ref": inp.default_ref(), "error": e.message, "cost_usd": 0.0}


def _progress(total: int, cost: list[float], counts: dict[str, int]) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Tally(TextColumn):
        def render(self, task: Any) -> Any:
            parts = [f"{k} {v}" for k, v in sorted(counts.items())]
            return Text(f"${cost[0]:.6f}  " + " ".join(parts))

    progress = Progress(TextColumn("[bold]pipeline"), BarColumn(), MofNCompleteColumn(), Tally(""),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=not err.is_terminal)
    task = progress.add_task("pipeline", total=total)
    return progress, lambda: progress.advance(task, 1)


def _store() -> Any:
    from litegate.cli.common import settings
    from litegate.ledger.calls import Ledger
    from litegate.pipelines.notify import Outbox
    from litegate.pipelines.store import RunStore

    ledger = Ledger(settings().ledger_database_url())
    return RunStore(ledger.engine), Outbox(ledger.engine, "cli")


@pipeline_app.command("runs")
def runs(name: Annotated[str | None, typer.Argument(help="a pipeline (default: all)")] = None,
         status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed, human_review, "
                                                            "rejected")] = None,
         limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Runs, newest first: status, document, cost, tiers, where it failed or waits."""
    from litegate.pipelines.store import public_run

    store, _ = _store()
    data = [public_run(r) for r in store.list(name, status, limit)]
    if as_json:
        out.print_json(json.dumps(data))
        return

    header = ("id", "pipeline", "status", "document", "cost $", "tiers", "step", "created")
    body = [(r["id"], r["pipeline"], r["status"], str(r["input_ref"] or "")[:60], f"{r['cost_usd']:.6f}",
             ",".join(r["tiers"]), r["failed_step"] or r["review_step"] or "",
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))) for r in data]
    out.print(plain_table(header, body), highlight=False, soft_wrap=True)


@pipeline_app.command("show")
def show(run_id: str) -> None:
    """One run with its steps (input, output, tier, confidence, cost, latency, outcome) as JSON."""
    from litegate.pipelines.store import public_run

    store, outbox = _store()
    try:
        run = public_run(store.get(run_id), store.steps(run_id))
    except LitegateError as e:
        fail(e.message)
    run["deliveries"] = outbox.list(run_id=run_id)
    out.print_json(json.dumps(run, default=str))


@pipeline_app.command("check")
def check(pipelines: PipelinesOpt = None) -> None:
    """Check pipeline files: one line per problem (the file, the step and the key), including
    tiers this installation does not have."""
    from litegate.pipelines.runner import check_tiers
    from litegate.runtime import build

    s, found = _load(pipelines)
    if not found:
        fail(f"no pipeline files at {s.pipelines or s.home / 'pipelines'}")
    rt = build(s, None)  # the tiers a run would have (config file, installed models); nothing loads
    try:
        check_tiers(found, rt.tasks.tiers)
    except LitegateError as e:
        fail(e.message)
    finally:
        rt.close()
    for p in found.values():
        err.print(f"{p.name}: {len(p.steps)} steps ok ({' -> '.join(st.name for st in p.steps)})", highlight=False)


@pipeline_app.command("dead-letters")
def dead_letters(name: Annotated[str | None, typer.Argument(help="a pipeline (default: all)")] = None,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Webhooks that failed every attempt (kept with their body and last error)."""
    _, outbox = _store()
    data = outbox.list(name, "dead")
    if as_json:
        out.print_json(json.dumps(data))
        return

    out.print(plain_table(("id", "pipeline", "run", "url", "attempts", "last error"),
                          [(d["id"], d["pipeline"], d["run_id"], d["url"], str(d["attempts"]),
                            (d["last_error"] or "")[:80]) for d in data]), highlight=False, soft_wrap=True)


@pipeline_app.command("redeliver")
def redeliver(delivery_id: str) -> None:
    """Queue a dead letter again (a running server, or the next pipeline run, sends it)."""
    _, outbox = _store()
    try:
        out.print_json(json.dumps(outbox.retry(delivery_id)))
    except LitegateError as e:
        fail(e.message)
