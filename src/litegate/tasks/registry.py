"""The declared tasks, by name: a new task is one module plus one line here."""

from __future__ import annotations

from litegate.tasks.base import TaskSpec
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
