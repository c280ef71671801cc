"""Automation tasks: classify, extract, route, summarize, translate, rank, answer.

Each is one function over a TaskRunner; the HTTP route, the CLI and the Python API all call
``TaskRunner.run(name, request)``.
"""

from litegate.tasks.classify import classify, route
from litegate.tasks.extract import extract
from litegate.tasks.request import TaskRequest
from litegate.tasks.runner import TaskRunner
from litegate.tasks.text import answer, rank, summarize, translate

TASKS = {
    "classify": classify,
    "extract": extract,
    "route": route,
    "summarize": summarize,
    "translate": translate,
    "rank": rank,
    "answer": answer,
}

__all__ = ["TASKS", "TaskRequest", "TaskRunner"]
