"""The task interface and its registry: adding a task is one file plus one registration line."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from lepton_nlp.errors import ConfigError

__all__ = [
    "TASKS",
    "TaskAdapter",
    "TaskSpec",
    "get_task",
    "register_task",
    "run_settings",
    "truncated_at",
]


@dataclass
class TaskSpec:
    """What a trained model needs to know about its labels and inputs (saved in the artifact)."""

    labels: list[str]
    multi_label: bool = False
    max_length: int = 128
    threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)
    """Task-specific facts saved with the model; ``extra["options"]`` holds the run's
    ``task_options`` as plain data."""

    @property
    def options(self) -> dict[str, Any]:
        """The run's ``task_options`` as a mapping (empty for tasks without options)."""
        return dict(self.extra.get("options") or {})


@runtime_checkable
class TaskAdapter(Protocol):
    """A task: the model class it needs, record -> inputs, outputs -> predictions, and metrics.

    Optional attributes a task may define (the trainer and Predictor look for them):

    ``options_class``
        A dataclass of the task's own options; a config's ``task_options`` mapping is
        checked against it (misspelt keys rejected) and saved in ``spec.extra["options"]``.
    ``read_records(data, path) -> list[dict]``
        Reader for a ``record_kind`` other than ``text``/``tokens``; ``data`` is the
        :class:`~lepton_nlp.config.DataConfig`.
    ``evaluate_by_prediction = True``
        Validation and test metrics come from ``predict_batch`` over the raw records and
        ``evaluate_predictions`` (QA post-processing, generation) instead of
        ``compute_metrics`` over logits; the loss is still computed on the features.
    ``prepare_tokenizer(tokenizer, spec) -> tokenizer``
        Adjust the tokenizer (pad token, padding side) before encoding and prediction.
    ``input_length(item) -> int``
        Size of a prepared input, used to sort prediction batches (default: ``len(item["text"])``).
    ``prepare_spec(spec, splits, tokenizer) -> None``
        Record more facts in ``spec.extra`` from the training data before the model loads.
    ``label_names``
        Names of the target fields in a feature when they are not ``labels`` (QA:
        ``start_positions``, ``end_positions``), so evaluation computes the loss too.
    ``configure_encoder(encoder, spec) -> None``
        Set up the model's encoder attribute from the run's options (classification's
        pooling, a forward hook). ``load_model`` calls it; a base model shared by several
        adapters calls it on each task's own view of the encoder.
    ``chars_read(tokenizer, item, spec) -> int | None``
        How many characters of a prepared input's ``text`` the model reads (it reads
        ``spec.max_length`` tokens), None when it reads all; the Predictor's
        ``bound_input`` reports truncation with it.
    ``virtual_token_collator(collator, virtual_tokens) -> collator``
        For prompt-learning adapters (virtual tokens put first): move targets that are
        positions past them. Without it, ``tokens`` tasks get ignored labels prepended.

    Optional members the applications read (the suite's Data, Train and Evaluate pages), so
    a new task needs nothing added there:

    ``data_formats``
        ``{data.format: what such a file looks like, in plain words}``, the usual format
        first (offered in this order; the words go with a file that does not read).
    ``headline_metrics``
        The metrics a report of the task leads with, in order.
    ``base_models``
        Packaged base models that suit the task (:mod:`lepton_nlp.hub` names), the default
        first; any local model folder also works.
    ``training_defaults(base_model) -> dict``
        Starting settings of a run on ``base_model``: ``method`` (PEFT), ``epochs``,
        ``batch_size``, ``learning_rate`` and ``max_length``.
    ``default_options(max_length, base_model) -> dict``
        ``task_options`` that fit the run's max tokens and base model (a run's own
        ``task_options`` win over them).
    ``entities_from_tags(tokens, tags) -> list[dict]``
        Tasks with ``tokens`` records: the entities the tags mark, ``{"label", "text"}`` each.
    """

    name: str
    version: str
    record_kind: str
    """``text`` (``{"text", "label"}`` records), ``tokens`` (``{"tokens", "tags"}`` records), or
    a kind of the task's own, read by its ``read_records``."""
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


def truncated_at(tokenizer: Any, text: str, max_length: int) -> int | None:
    """Where a text stops being read when tokenized to ``max_length`` tokens (special tokens
    included): the character offset after the last token kept, or None when all of it fits."""
    encoded = tokenizer(
        text, truncation=True, max_length=max_length + 1, return_offsets_mapping=True
    )
    if len(encoded["input_ids"]) <= max_length:
        return None
    special = set(tokenizer.all_special_ids)
    kept = [
        end
        for token, (_, end) in zip(
            encoded["input_ids"][:max_length], encoded["offset_mapping"][:max_length], strict=True
        )
        if token not in special
    ]
    # The last token kept is dropped when the model's own truncation makes room for [SEP].
    return kept[-2] if len(kept) > 1 else 0


def run_settings(
    epochs: float, batch_size: int, learning_rate: float, max_length: int, method: str = "lora"
) -> dict[str, Any]:
    """Starting settings of a run, as a task's ``training_defaults`` gives them."""
    return {
        "method": method,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_length": max_length,
    }


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
    names = sorted(TASKS)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"Unknown task {name!r}.{hint} Registered tasks: {', '.join(names)}.")
