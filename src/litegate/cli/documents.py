"""read, extractors: what a file becomes for litegate, and which extractors can read it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from litegate.cli.common import fail, settings
from litegate.errors import LitegateError

app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def read(path: Annotated[Path, typer.Argument(help="an image, scan, PDF, audio or video file")],
         as_json: Annotated[bool, typer.Option("--json", help="the text and each line with its page and box "
                                                              "{x, y, w, h}, as JSON")] = False,
         ocr_engine: Annotated[str | None, typer.Option(help="rapidocr (the default), rapidocr-verbatim (no word "
                                                                         "mended) or tesseract")] = None
         ) -> None:
    """Print the text a file becomes, exactly as tasks and chats read it."""
    from litegate.documents import Limits, Part
    from litegate.documents import read as read_document
    from litegate.documents.types import as_json as document_json

    try:
        data = path.read_bytes()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e}")
    limits = Limits(max_bytes=int(settings().max_document_mb * (1 << 20)), ocr_engine=ocr_engine)
    try:
        doc = read_document(Part(None, data, str(path), filename=path.name), limits)
    except LitegateError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(document_json(doc), ensure_ascii=False, indent=1))
        return
    for note in doc.notes:
        print(f"note: {note}", file=sys.stderr)
    print(doc.text)

@app.command()
def extractors() -> None:
    """List the extractors, one a line, tab-separated: the prebuilt ones (receipt, invoice), those
    extended here with --base, then those trained here (name, version, fields)."""
    from litegate.documents import prebuilt
    from litegate.documents.prebuilt.extend import PrebuiltStore
    from litegate.nano.encoders import EncoderRegistry
    from litegate.nano.extractor import ExtractorStore

    store = ExtractorStore(settings().home, EncoderRegistry(settings().model_cache_dir()))
    trained = store.names()
    for name in prebuilt.names():
        if name not in trained:
            info = prebuilt.describe(name)
            print(f"{name}\tprebuilt\t{', '.join(info['fields'])}")
    extended = PrebuiltStore(settings().home)
    for name in extended.names():
        if name not in trained:
            info = extended.info(name, extended.active(name) or 1)
            print(f"{name}\tv{info.version} (extends {info.base})\t{', '.join(info.fields)}")
    for name in trained:
        active = store.active(name, store.versions(name))
        if active is None:
            continue
        info = store.info(name, active)
        print(f"{name}\tv{info.version}\t{', '.join(info.fields)}")
