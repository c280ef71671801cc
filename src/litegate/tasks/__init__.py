"""Automation tasks: classify, extract, route, summarize, translate, rank, answer.

Each task is declared once (``TaskSpec``: request model, the function per tier capability,
how answers compare, what evals score); the HTTP routes, the CLI, evals and the Python API
all run them through ``TaskRunner.run(name, request)``. A new task is one module plus one
line in ``tasks.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litegate.tasks.base import TaskContext, TaskOutput, TaskRequest, TaskSpec
from litegate.tasks.registry import TASKS

if TYPE_CHECKING:
    from litegate.tasks.runner import TaskRunner


def __getattr__(name: str) -> Any:
    # the runner (and the tiers it reaches) loads on first use: the CLI builds its commands from
    # TASKS alone, and every ``litegate`` call would pay for the tiers' imports otherwise
    if name != "TaskRunner":
        raise AttributeError(f"module 'litegate.tasks' has no attribute {name!r}")
    from litegate.tasks.runner import TaskRunner

    return TaskRunner


__all__ = ["TASKS", "TaskContext", "TaskOutput", "TaskRequest", "TaskRunner", "TaskSpec"]
