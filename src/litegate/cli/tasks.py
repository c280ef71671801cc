"""One command per declared task, made from its request model: each field is an option
(``--labels a,b``), the text is the argument; no text reads JSONL from stdin and writes JSONL.

Nothing here names a task: a new task's command appears with its declaration.
"""

from __future__ import annotations

import base64
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from litegate.cli.common import fail, item_progress, runtime, split_pairs, stdin_lines
from litegate.errors import InvalidRequest, LitegateError

COMMON = ("tier", "feature")


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _option(name: str, field: Any, settings: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(annotation for typer, default, how to turn the CLI value into the request value)."""
    flag = settings.get("flag") or "--" + (field.alias or name).replace("_", "-")
    help_text = field.description or ""
    kind = _strip_optional(field.annotation)
    if name == "files":  # --file PATH, repeatable: read by the document layer
        def files(paths: list[Path] | None) -> list[dict[str, Any]] | None:
            if not paths:
                return None
            out = []
            for p in paths:
                try:
                    data = p.read_bytes()
                except OSError as e:
                    raise InvalidRequest(f"cannot read {p}: {e.strerror}") from None
                out.append({"data": base64.b64encode(data).decode(), "filename": p.name})
            return out
        return Annotated[list[Path] | None, typer.Option("--file", help="a file to read (image, PDF, audio, "
                                                                          "video, text); repeat for more")], None, files
    if settings.get("lines_file"):
        def lines(p: Path | None) -> list[str] | None:
            return None if p is None else [ln for ln in _read(p).splitlines() if ln.strip()]
        return Annotated[Path | None, typer.Option(flag, help=f"{help_text} (a file, one per line)")], None, lines
    if settings.get("json_file"):
        def load(p: Path | None) -> Any:
            if p is None:
                return None
            try:
                return json.loads(_read(p))
            except ValueError as e:
                raise InvalidRequest(f"{p} is not JSON: {e}") from None
        return Annotated[Path | None, typer.Option(flag, help=f"{help_text} (a JSON file)")], None, load
    if kind is bool:
        return Annotated[bool, typer.Option(flag, help=help_text)], bool(field.default), lambda v: v
    if kind in (int, float, str):
        default = field.default if field.default is not None and not callable(field.default) else None
        return Annotated[kind | None, typer.Option(flag, help=help_text)], default, lambda v: v
    origin = typing.get_origin(kind)
    shape = "name:description,... or JSON" if origin is dict or "dict" in str(kind) else "a,b,c or JSON"

    def parse(v: str | None) -> Any:
        value = split_pairs(v)
        if isinstance(value, list) and origin is dict:  # names without descriptions
            twice = sorted({n for n in value if value.count(n) > 1})
            if twice:  # a dict would keep one silently; the request refuses a name given twice
                raise InvalidRequest(f"{flag} names {', '.join(map(repr, twice))} twice")
            return {n: "" for n in value}
        return value
    return Annotated[str | None, typer.Option(flag, help=f"{help_text} ({shape})")], None, parse


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidRequest(f"cannot read {path}: {e.strerror}") from None


def run_task_command(task: str, text: str | None, base: dict[str, Any], model: str, positional: str | None,
                     url: str | None = None, local: bool = False) -> None:
    """One text argument -> one JSON result; no text (or '-') -> JSONL in, JSONL out. Gold
    fields of labeled records (label, data, ...) are left out of the requests. The requests go
    to a running server when one is given or found, else to models loaded here."""
    from litegate.cli.client import ServerClient, find_server

    base = {k: v for k, v in base.items() if v is not None}
    one = positional is None or (text is not None and text != "-") or (text is None and bool(base.get("files")))
    if not one and sys.stdin.isatty():
        fail(f"give the {positional} as an argument, or pipe JSONL ({{\"{positional}\": ...}} per line) "
             f"into litegate {task}")
    server = find_server(url, local, model)
    if server is not None:
        with ServerClient(server) as client:
            _run_requests(task, text, base, positional, one, lambda request: client.post(f"/v1/tasks/{task}", request),
                          None)
        return
    rt = None
    try:
        rt = runtime(model)
        spec = rt.tasks.spec(task)
        _run_requests(task, text, base, positional, one, lambda request: rt.tasks.run(task, request), spec)
    except LitegateError as e:
        fail(e.message)
    finally:
        if rt is not None:
            rt.close()


def _run_requests(task: str, text: str | None, base: dict[str, Any], positional: str | None, one: bool,
                  call: Any, spec: Any) -> None:
    """The requests of one command through ``call`` (a server's route, or the runner here)."""
    from litegate.evals.datasets import parse_jsonl
    from litegate.tasks import TASKS

    if one:
        request = dict(base, **({positional: text} if positional and text is not None else {}))
        print(json.dumps(call(request), ensure_ascii=False))
        return
    spec = spec or TASKS[task]
    try:
        records = list(parse_jsonl(stdin_lines(), "stdin"))
    except LitegateError as e:
        fail(e.message)
    fields = set(spec.request.model_fields) | {f.alias for f in spec.request.model_fields.values() if f.alias}
    with item_progress(len(records), task) as progress:
        bar = progress.add_task(task, total=len(records))
        for rec in records:
            request = {**base, **{k: v for k, v in rec.items() if k in fields or k not in spec.gold}}
            result = call(request)
            try:
                sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (| head): stop quietly
                sys.stderr.close()
                return
            progress.advance(bar)


def make_command(spec: Any) -> Any:
    """A typer command for ``spec`` whose options are the request model's fields."""
    params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    converters: dict[str, tuple[str, Any]] = {}
    if spec.positional:
        annotations[spec.positional] = Annotated[str | None, typer.Argument(
            help=f"the {spec.positional}; omit or '-' to read JSONL from stdin")]
        params.append(inspect.Parameter(spec.positional, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
    for name, field in spec.request.model_fields.items():
        if name == spec.positional or name in COMMON:
            continue
        annotation, default, convert = _option(name, field, spec.request.cli.get(name, {}))
        annotations[name] = annotation
        converters[name] = (field.alias or name, convert)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    annotations["tier"] = Annotated[str, typer.Option(
        help="auto (the cascade), nano, lite, pro or a tier of the config file")]
    annotations["feature"] = Annotated[str | None, typer.Option(help="a tag for cost reporting")]
    annotations["model"] = Annotated[str, typer.Option("--model", "-m", help="the LLM behind the lite tier: lite, "
                                                                             "pro or a GGUF file (loads it here)")]
    annotations["url"] = Annotated[str | None, typer.Option(
        "--url", help="a running litegate server to send the request to (default: $LITEGATE_URL, else one answering "
                      "on port 8080, else the models load in this process)")]
    annotations["local"] = Annotated[bool, typer.Option("--local", help="load the models in this process even when "
                                                                        "a server answers")]
    params += [inspect.Parameter("tier", inspect.Parameter.KEYWORD_ONLY, default="auto"),
               inspect.Parameter("feature", inspect.Parameter.KEYWORD_ONLY, default=None),
               inspect.Parameter("model", inspect.Parameter.KEYWORD_ONLY, default="lite"),
               inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None),
               inspect.Parameter("local", inspect.Parameter.KEYWORD_ONLY, default=False)]

    def command(**kwargs: Any) -> None:
        try:
            base = {key: convert(kwargs[name]) for name, (key, convert) in converters.items()}
        except LitegateError as e:
            fail(e.message)
        base.update(tier=kwargs["tier"], feature=kwargs["feature"])
        text = kwargs.get(spec.positional) if spec.positional else None
        run_task_command(spec.name, text, base, kwargs["model"], spec.positional, kwargs["url"], kwargs["local"])

    params = [p.replace(annotation=annotations[p.name]) for p in params]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__name__ = spec.name
    command.__doc__ = spec.summary
    return command


def register(app: typer.Typer) -> None:
    from litegate.tasks import TASKS

    for spec in TASKS.values():
        app.command(name=spec.name, help=spec.summary)(make_command(spec))
