"""Automation tasks: classify, extract, route, summarize, translate, rank, answer.

Each task is declared once (``TaskSpec``: request model, the function per tier capability,
how answers compare, what evals score); the HTTP routes, the CLI, evals and the Python API
all run them through ``TaskRunner.run(name, request)``. A new task is one module plus one
line in ``tasks.registry``.
"""

from litegate.tasks.base import TaskContext, TaskOutput, TaskRequest, TaskSpec
from litegate.tasks.registry import TASKS
from litegate.tasks.runner import TaskRunner

__all__ = ["TASKS", "TaskContext", "TaskOutput", "TaskRequest", "TaskRunner", "TaskSpec"]
