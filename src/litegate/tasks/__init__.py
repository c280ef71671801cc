"""Automation tasks: classify, extract, route, summarize, translate, rank, answer.

Each task is declared once (``TaskSpec``: request model, the function per tier capability,
how answers compare, what evals score); the HTTP routes, the CLI, evals and the Python API
all run them through ``TaskRunner.run(name, request)``. A new task is one module plus one
line here.
"""

from litegate.tasks.base import TaskContext, TaskOutput, TaskRequest, TaskSpec
from litegate.tasks.classify import CLASSIFY, ROUTE
from litegate.tasks.extract import EXTRACT
from litegate.tasks.text import ANSWER, RANK, SUMMARIZE, TRANSLATE

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    CLASSIFY,
    EXTRACT,
    ROUTE,
    SUMMARIZE,
    TRANSLATE,
    RANK,
    ANSWER,
)}

from litegate.tasks.runner import TaskRunner  # noqa: E402 - the runner reads TASKS

__all__ = ["TASKS", "TaskContext", "TaskOutput", "TaskRequest", "TaskRunner", "TaskSpec"]
