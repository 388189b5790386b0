"""Task registry: one file per task, each ending in one ``register_task`` line."""

from __future__ import annotations

from lepton_nlp.tasks import (  # noqa: F401  (registers the tasks)
    classification,
    generation,
    ner,
    qa,
    relation,
)
from lepton_nlp.tasks.base import TASKS, TaskAdapter, TaskSpec, get_task, register_task

__all__ = ["TASKS", "TaskAdapter", "TaskSpec", "get_task", "register_task"]
