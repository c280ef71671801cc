"""The ``litegate`` command: thin typer commands over the library, one module per area.

Every call imports all of them, so nothing heavy loads at module level here (numpy, the
settings, the document layer, the encoders, the engine, httpx): each command imports what it
uses (tests/unit/test_cli_startup.py)."""

from __future__ import annotations

from typing import Any

import typer

from litegate.cli import batch, collections, doctor, documents, learning, pipeline, report, serving, tasks, training


class LitegateGroup(typer.core.TyperGroup):
    """The litegate command, whose task commands are made from the task declarations (their
    request models: pydantic) only when they are asked for: when one is called, or when the
    commands are listed (``--help``, completion). Every other command starts without them."""

    tasks_at = 0  # how many commands come before the task commands in the listing
    _tasks_made = False

    def _with_tasks(self) -> None:
        if self._tasks_made:
            return
        made = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)  # as the litegate command's
        tasks.register(made)
        listed = list(self.commands.items())
        task_commands = typer.main.get_group(made).commands
        self.commands = dict(listed[:self.tasks_at]) | dict(task_commands) | dict(listed[self.tasks_at:])
        self._tasks_made = True

    def list_commands(self, ctx: Any) -> list[str]:
        self._with_tasks()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            self._with_tasks()
            found = super().get_command(ctx, cmd_name)
        return found


def _add(root: typer.Typer, module_app: typer.Typer) -> None:
    """A module's commands (and command groups) into the litegate command, in order."""
    root.registered_commands.extend(module_app.registered_commands)
    root.registered_groups.extend(module_app.registered_groups)


app = typer.Typer(help="litegate: a self-hosted lite tier for LLM automation.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None, cls=LitegateGroup)
_add(app, serving.app)
LitegateGroup.tasks_at = len(app.registered_commands)  # the task commands (made on demand) come next
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
