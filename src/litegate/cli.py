"""The ``litegate`` command. Commands stay thin: the work lives in the library."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.markup import escape
from rich.table import Table

from litegate.config import Settings
from litegate.errors import LitegateError

app = typer.Typer(help="litegate: a self-hosted lite tier for LLM automation.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
err = Console(stderr=True)
out = Console()


@contextlib.contextmanager
def rich_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="lite, pro, or a path to a GGUF file")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    model: ModelOpt = "lite",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads per model (default: all cores)")] = None,
    ctx: Annotated[Optional[int], typer.Option(help="context tokens per model")] = None,
    parallel: Annotated[Optional[int], typer.Option(help="concurrent sequences per model")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file declaring [[tier]]s, [[remote]] models and "
                                                        "[[api_key]]s (default: $LITEGATE_CONFIG)")] = None,
) -> None:
    """Serve the OpenAI-compatible API (chat, completions, models) on the given model."""
    import uvicorn

    from litegate.engine import ModelRegistry
    from litegate.server import create_app

    import os

    from litegate.remote import load_config

    settings = _settings(threads=threads, ctx=ctx, parallel=parallel)
    try:
        config_path = config or (Path(os.environ["LITEGATE_CONFIG"]) if os.environ.get("LITEGATE_CONFIG") else None)
        remotes = load_config(config_path) if config_path else []
        from litegate.tiers import load_tiers

        tiers = load_tiers(config_path) if config_path else []
        from litegate.keys import load_keys

        api_keys = load_keys(config_path) if config_path else []
        registry = ModelRegistry(settings, extra_specs=[model], progress=rich_progress)
        default = registry.lookup(_served_name(model)).name
        engine = registry.engine(default)
    except LitegateError as e:
        _fail(e.message)
    err.print(f"litegate: serving [bold]{default}[/bold] ({engine.path.name}, ctx {engine.n_ctx}, "
              f"{settings.threads} threads, {settings.parallel} slots) on http://{host}:{port}/v1", highlight=False)
    others = [n for n in registry.names() if n != default]
    if others:
        err.print(f"litegate: also available on first use: {', '.join(others)}", highlight=False)
    if remotes:
        err.print(f"litegate: remote models: {', '.join(r.name + ' -> ' + r.base_url for r in remotes)}",
                  highlight=False)
    if tiers:
        err.print(f"litegate: tiers: {' -> '.join(t.name + ' (' + t.kind + ')' for t in tiers)}", highlight=False)
    if api_keys:
        err.print(f"litegate: API keys required ({len(api_keys)} configured)", highlight=False)
    elif host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"litegate: warning: listening on {host} without API keys; declare [[api_key]] in --config",
                  highlight=False)
    uvicorn.run(create_app(registry, default, remotes=remotes, api_keys=api_keys, tiers=tiers or None),
                host=host, port=port,
                log_level="warning")


def _served_name(spec: str) -> str:
    from litegate.models import CATALOG

    return spec if spec in CATALOG else Path(spec).expanduser().name


def _settings(**overrides: object) -> Settings:
    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=updates) if updates else settings


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="the user message; '-' reads it from stdin")],
    model: ModelOpt = "lite",
    system: Annotated[Optional[str], typer.Option(help="a system message")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="most tokens to generate")] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    seed: Annotated[Optional[int], typer.Option()] = None,
    raw: Annotated[bool, typer.Option(help="plain text completion, no chat template")] = False,
) -> None:
    """Generate a reply on a local model and stream it to the terminal."""
    from litegate.engine import ModelRegistry

    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        _fail("the prompt is empty")
    settings = _settings(parallel=1)
    registry = ModelRegistry(settings, extra_specs=[model], progress=rich_progress)
    try:
        engine = registry.engine(_served_name(model))
        body: dict[str, object] = {"max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            body["seed"] = seed
        if raw:
            body["prompt"] = prompt
            kind = "completion"
        else:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            body["messages"] = messages
            kind = "chat"
        usage: dict[str, object] = {}

        def on_chunk(chunk: dict) -> bool:
            for choice in chunk.get("choices", []):
                text = choice.get("text") if raw else (choice.get("delta") or {}).get("content")
                if text:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            if chunk.get("usage"):
                usage.update(chunk["usage"], timings=chunk.get("timings") or {})
            return False

        engine.stream(kind, body, on_chunk)  # type: ignore[arg-type]
        sys.stdout.write("\n")
        timings = usage.get("timings") or {}
        if usage:
            err.print(f"[dim]{usage.get('prompt_tokens')} prompt + {usage.get('completion_tokens')} generated tokens, "
                      f"{timings.get('predicted_per_second', 0):.1f} tok/s[/dim]", highlight=False)
    except LitegateError as e:
        _fail(e.message)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        registry.close()


@app.command()
def models(
    verify: Annotated[bool, typer.Option("--verify", help="re-hash cached files in full")] = False,
    join: Annotated[bool, typer.Option("--join/--no-join", help="join installed models into the cache")] = True,
) -> None:
    """List the embedded models; join and verify the installed ones."""
    from litegate.models import CATALOG, ModelCache

    settings = Settings()
    cache = ModelCache(settings.home)
    table = Table(title=f"embedded models (cache: {cache.dir})")
    for col in ("name", "model", "installed", "cache", "size", "path"):
        table.add_column(col)
    failed = False
    for model in CATALOG.values():
        installed = model.installed()
        state = cache.status(model)
        if installed and join:
            try:
                if verify and state != "missing":
                    if not cache.verify(model, rich_progress):
                        err.print(f"{model.file_name}: checksum mismatch, re-joining", highlight=False)
                        cache.path_for(model).unlink(missing_ok=True)
                cache.ensure(model, rich_progress)
            except LitegateError as e:
                err.print(f"[red]error:[/red] {escape(e.message)}", highlight=False)
                failed = True
            state = cache.status(model)
        hint = "" if installed else f" ({escape(model.install_hint)})"
        table.add_row(model.name, model.title, "yes" if installed else "no" + hint, state,
                      f"{model.size / 1e6:,.0f} MB", str(cache.path_for(model)) if state == "ready" else "")
    out.print(table)
    if failed:
        raise typer.Exit(1)


def main() -> None:
    from litegate.cli_tasks import register

    register(app)
    app()


if __name__ == "__main__":
    main()
