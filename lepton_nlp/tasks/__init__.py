"""Task registry: one file per task, each ending in one ``register_task`` line."""

from __future__ import annotations

from lepton_nlp.tasks import classification, ner, qa, relation  # noqa: F401  (registers the tasks)
from lepton_nlp.tasks.base import TASKS, TaskAdapter, TaskSpec, get_task, register_task

__all__ = ["TASKS", "TaskAdapter", "TaskSpec", "get_task", "register_task"]
