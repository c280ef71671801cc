"""The ``litegate`` command: thin typer commands over the library, one module per area."""

from __future__ import annotations

import typer

from litegate.cli import batch, collections, doctor, documents, learning, pipeline, report, serving, tasks, training

app = typer.Typer(help="litegate: a self-hosted lite tier for LLM automation.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
serving.register(app)
tasks.register(app)
training.register(app)
report.register(app)
learning.register(app)
batch.register(app)
pipeline.register(app)
collections.register(app)
documents.register(app)
doctor.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
