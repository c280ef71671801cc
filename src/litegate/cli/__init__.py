"""The ``litegate`` command: thin typer commands over the library, one module per area."""

from __future__ import annotations

import typer

from litegate.cli import batch, collections, doctor, documents, learning, pipeline, report, serving, tasks, training


def _add(root: typer.Typer, module_app: typer.Typer) -> None:
    """A module's commands (and command groups) into the litegate command, in order."""
    root.registered_commands.extend(module_app.registered_commands)
    root.registered_groups.extend(module_app.registered_groups)


app = typer.Typer(help="litegate: a self-hosted lite tier for LLM automation.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
_add(app, serving.app)
tasks.register(app)
_add(app, training.app)
_add(app, report.app)
_add(app, learning.app)
batch.register(app)
pipeline.register(app)
collections.register(app)
_add(app, documents.app)
_add(app, doctor.app)


def main() -> None:
    app()


__all__ = ["app", "main"]
