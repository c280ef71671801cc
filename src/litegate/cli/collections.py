"""litegate collection create | add | search | list | files | delete: the home's collections
(the ledger's database, ``LITEGATE_LEDGER_URL`` when set), worked on in this process as the
keyless owner; ``litegate answer --collection NAME`` answers from one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from litegate.cli.common import err, fail, item_progress, out
from litegate.cli.common import settings as cli_settings
from litegate.errors import LitegateError

collection_app = typer.Typer(help="Collections: your documents, chunked and indexed for search and grounded answers.",
                             no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(collection_app, name="collection")


def _collections() -> Any:
    from sqlalchemy import create_engine

    from litegate.collections import Collections
    from litegate.jobs.files import FileStore
    from litegate.nano.encoder import MiniLMEncoder

    s = cli_settings()
    engine = create_engine(s.ledger_database_url())
    encoder: list[Any] = []

    def shared() -> Any:  # loaded on first use: list and delete need no model
        if not encoder:
            encoder.append(MiniLMEncoder())
        return encoder[0]
    return Collections(engine, shared, files=FileStore(engine, s.home))


def _print(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def _attributes(pairs: list[str] | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--attr takes key=value, got {pair!r}")
        try:
            attrs[key] = json.loads(value)  # numbers and booleans stay typed for gt/lt filters
        except ValueError:
            attrs[key] = value
    return attrs


@collection_app.command("create")
def create(name: Annotated[str, typer.Argument(help="the collection's name")],
           description: Annotated[str | None, typer.Option(help="what it holds")] = None) -> None:
    """Create an empty collection."""
    try:
        _print(_collections().create(None, name, description=description))
    except LitegateError as e:
        fail(e.message)


def _paths(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            found.append(p)
        else:
            fail(f"{p}: no such file or folder")
    return found


@collection_app.command("add")
def add(name: Annotated[str, typer.Argument(help="the collection")],
        paths: Annotated[list[Path], typer.Argument(help="files or folders (every file under them)")],
        attr: Annotated[list[str] | None, typer.Option("--attr", help="key=value on every file added; "
                                                                      "repeat for more")] = None) -> None:
    """Add files (any type the document layer reads: PDF, images, text, audio, video); a file
    added again with other content replaces its chunks, unchanged files are skipped."""
    from litegate.collections.service import guess_type
    from litegate.documents.types import Part

    attributes = _attributes(attr)
    coll = _collections()
    try:
        coll.get(None, name)
    except LitegateError as e:
        fail(e.message)
    files = _paths(paths)
    failed = added = 0
    with item_progress(len(files), "indexing") as progress:
        bar = progress.add_task("indexing", total=len(files))
        for path in files:
            try:
                part = Part(guess_type(path.name, None), path.read_bytes(), str(path), filename=path.name)
                row = coll.add_file(None, name, part, source=str(path.resolve()), attributes=attributes)
                added += 0 if row.get("unchanged") else 1
            except (LitegateError, OSError) as e:
                failed += 1
                err.print(f"[red]{path}:[/red] {getattr(e, 'message', None) or e}", highlight=False)
            progress.advance(bar)
    summary = coll.get(None, name)
    _print({"added": added, "failed": failed, "unchanged": len(files) - added - failed, "files": summary["files"],
            "chunks": summary["chunks"]})
    if failed:
        raise typer.Exit(1)


@collection_app.command("search")
def search(name: Annotated[str, typer.Argument(help="the collection")],
           query: Annotated[str, typer.Argument(help="what to look for")],
           top_k: Annotated[int, typer.Option("--top-k", "-k", help="how many chunks")] = 5,
           filters: Annotated[str | None, typer.Option(help="JSON: {\"key\": value} or OpenAI's filter shape")
                              ] = None,
           mode: Annotated[str, typer.Option(help="hybrid, lexical or dense")] = "hybrid") -> None:
    """The best chunks for a query, with scores and where each came from."""
    try:
        rules = json.loads(filters) if filters else None
    except ValueError as e:
        fail(f"--filters is not JSON: {e}")
    try:
        hits = _collections().search(None, name, query, top_k=top_k, filters=rules, mode=mode)
    except LitegateError as e:
        fail(e.message)
    _print([{"score": h.score, "where": h.where(), "section": h.section, "text": h.text, "scores": h.scores,
             "chunk_id": h.chunk_id} for h in hits])


@collection_app.command("list")
def list_collections() -> None:
    """Every collection with its file and chunk counts."""
    _print(_collections().list(None))


@collection_app.command("files")
def files(name: Annotated[str, typer.Argument(help="the collection")]) -> None:
    """The files of a collection."""
    try:
        _print(_collections().files(None, name))
    except LitegateError as e:
        fail(e.message)


@collection_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="the collection")]) -> None:
    """Delete a collection and its index (the files it was read from stay where they are)."""
    try:
        _print(_collections().delete(None, name))
    except LitegateError as e:
        fail(e.message)


@collection_app.command("summarize")
def summarize(path: Annotated[Path, typer.Argument(help="a document of any length (PDF, text, scan, audio...)")],
              max_points: Annotated[int, typer.Option(help="most points in the summary")] = 8,
              tier: Annotated[str, typer.Option(help="the LLM tier that reads it: lite, pro or one of the config "
                                                     "file")] = "lite",
              model: Annotated[str, typer.Option("--model", "-m", help="the LLM behind the lite tier: lite, pro or a "
                                                                      "GGUF file")] = "lite",
              window_chars: Annotated[int | None, typer.Option(help="characters of the document per call "
                                                                    "(default 6,000): fewer for a model with a short "
                                                                    "context")] = None
              ) -> None:
    """Summarize a document longer than the model's context (map-reduce over its chunks, in this
    process), every point citing the pages and lines it came from; a bar shows the calls."""
    from litegate.cli.common import runtime
    from litegate.collections.longdoc import WINDOW_CHARS, LongSummary, readable_chunks
    from litegate.collections.service import MAX_FILE_BYTES, MAX_PAGES, guess_type
    from litegate.documents import Limits, Part
    from litegate.documents import read as read_document

    try:
        data = path.read_bytes()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e}")
    rt = None
    try:
        doc = read_document(Part(guess_type(path.name, None), data, str(path), filename=path.name),
                            Limits(max_pages=MAX_PAGES, max_bytes=MAX_FILE_BYTES))
        window = WINDOW_CHARS if window_chars is None else window_chars
        LongSummary(None, max_points=max_points, window_chars=window)  # bad options fail here, before any work
        readable_chunks(doc)  # a blank file fails here, before the model loads
        rt = runtime(model, record=False)
        with item_progress(None, "summarizing") as progress:
            bar = progress.add_task("summarizing", total=None)
            result = LongSummary(rt.tasks.tier(tier), max_points=max_points, window_chars=window,
                                 progress=lambda done, total: progress.update(bar, completed=done, total=total)
                                 ).run(doc)
    except LitegateError as e:
        fail(e.message)
    finally:
        if rt is not None:
            rt.close()
    _print(result)
