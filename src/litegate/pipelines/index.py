"""The ``index`` step: a run's files (or its text) go into a collection, so later questions
can be answered from them (``answer`` with ``collection``). Options: ``collection`` (a name;
created on first use) and ``attributes`` (a table of values, ``{{ }}`` templates allowed,
put on every file for filters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litegate.collections.service import guess_type
from litegate.documents.types import Part
from litegate.errors import ConfigError, InvalidRequest, NotFound
from litegate.pipelines.spec import StepConfig, StepResult, fill, template


def check_index(step: StepConfig, before: list[StepConfig], earlier: Any) -> dict[str, Any]:
    name = step.options.get("collection")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{step.where}: collection: is required (the collection's name)")
    attributes = step.options.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ConfigError(f"{step.where}: attributes: must be a table of key = value")
    for key, value in attributes.items():
        if isinstance(value, str):
            template(value, step.where, f"attributes.{key}", earlier)
        elif not isinstance(value, (int, float, bool)):
            raise ConfigError(f"{step.where}: attributes.{key}: must be a string, number or boolean")
    return {"collection": name, "attributes": attributes}


def _parts(ctx: Any) -> list[tuple[Part, str]]:
    """(part, source) for each input file; the input's text when it has no files."""
    files = ctx.scope["input"].get("files") or []
    out = []
    for i, f in enumerate(files):
        where = f"files.{i}"
        if f.get("path"):
            try:
                data = Path(f["path"]).read_bytes()
            except OSError as e:
                raise InvalidRequest(f"{where}: cannot read {f['path']}: {e.strerror or e}") from None
            name = f.get("filename") or Path(f["path"]).name
            out.append((Part(guess_type(name, f.get("mime_type")), data, where, name), str(Path(f["path"]).resolve())))
        else:
            stored = ctx.runtime.files.get(f["file_id"])
            out.append((Part(guess_type(stored.filename, stored.mime_type), ctx.runtime.files.content(f["file_id"]),
                             where, stored.filename), f["file_id"]))
    text = ctx.scope["input"].get("text") or ""
    if not out and text.strip():
        name = f"{ctx.run.get('id', 'run')}.txt"
        out.append((Part("text/plain", text.encode("utf-8"), "text", name), name))
    if not out:
        raise InvalidRequest("the input has no files and no text to index")
    return out


def run_index(ctx: Any) -> Any:

    prepared = ctx.step.prepared
    collections = ctx.runtime.collections
    try:
        collections.get(ctx.api_key, prepared["collection"])
    except NotFound:
        collections.create(ctx.api_key, prepared["collection"])
    attributes = {k: fill(v, ctx.scope) if isinstance(v, str) else v for k, v in prepared["attributes"].items()}
    added = []
    for part, source in _parts(ctx):
        row = collections.add_file(ctx.api_key, prepared["collection"], part, source=source,
                                   file_id=source if source.startswith("file-") else None, attributes=attributes)
        added.append({"id": row["id"], "filename": row["filename"], "chunks": row["chunks"],
                      "unchanged": bool(row.get("unchanged")), "replaced": bool(row.get("replaced"))})
    return StepResult(output={"collection": prepared["collection"], "files": added,
                              "chunks": sum(a["chunks"] for a in added)}, tier="documents")
