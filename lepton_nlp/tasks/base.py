"""The task interface and its registry: adding a task is one file plus one registration line."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["TASKS", "TaskAdapter", "TaskSpec", "get_task", "register_task"]


@dataclass
class TaskSpec:
    """What a trained model needs to know about its labels and inputs (saved in the artifact)."""

    labels: list[str]
    multi_label: bool = False
    max_length: int = 128
    threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TaskAdapter(Protocol):
    """A task: the model class it needs, record -> inputs, outputs -> predictions, and metrics."""

    name: str
    version: str
    record_kind: str
    """``text`` (``{"text", "label"}`` records) or ``tokens`` (``{"tokens", "tags"}`` records)."""
    peft_task_type: str
    """peft ``TaskType`` name (``SEQ_CLS``, ``TOKEN_CLS``...)."""
    default_metric: str
    """Validation metric that picks the best checkpoint unless the config names another."""

    def metric_names(self, multi_label: bool) -> list[str]: ...

    def label_space(self, records: list[dict]) -> list[str]: ...

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None: ...

    def load_model(self, model_path: str, spec: TaskSpec) -> Any: ...

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]: ...

    def collator(self, tokenizer: Any) -> Callable: ...

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]: ...

    def prepare_input(self, item: Any) -> dict: ...

    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]: ...

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]: ...


TASKS: dict[str, TaskAdapter] = {}


def register_task(task: TaskAdapter) -> TaskAdapter:
    """Register a task under its ``name`` (and its versioned ``version`` name)."""
    for key in {task.name, task.version}:
        if key in TASKS and TASKS[key] is not task:
            raise ValueError(f"Task name {key!r} is already registered.")
        TASKS[key] = task
    return task


def get_task(name: str) -> TaskAdapter:
    """The registered task, or an error naming the nearest registered one."""
    if name in TASKS:
        return TASKS[name]
    from lepton_nlp.config import ConfigError

    names = sorted(TASKS)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"Unknown task {name!r}.{hint} Registered tasks: {', '.join(names)}.")
