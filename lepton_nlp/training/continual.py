"""Continual learning: learn classification tasks one after another without forgetting.

Two families of methods, over one sequence of tasks (each a name and its data):

- ``adapters``: one LoRA adapter (and head) per task on the same frozen base; nothing a
  later task trains touches an earlier task's weights, so there is no forgetting by
  construction. :class:`AdapterRouter` serves them on one copy of the base model
  (:class:`lepton_nlp.inference.multi.MultiAdapterPredictor`) and picks the adapter by
  task name.
- one shared model (one adapter, one head over the union of the tasks' labels) trained on
  the tasks in order: ``sequential`` (plain fine-tuning, the baseline that forgets),
  ``replay`` (rehearsal: a :class:`ReplayBuffer` of earlier tasks' examples is mixed into
  each new task's training set) and ``ewc`` (Elastic Weight Consolidation: a penalty
  ``lambda/2 * sum_i F_i (theta_i - theta*_i)^2`` with ``F`` the Fisher diagonal estimated
  on the earlier tasks, added to the loss by a Trainer hook, :func:`ewc_trainer`).

After each step every task learnt so far is scored on its test (and validation) split; the
result is the forgetting matrix ``R[i][j]`` (accuracy on task ``j`` after training on task
``i``), with the average final accuracy and the average forgetting
(:func:`forgetting_summary`). A shared model is scored on each task over that task's own
labels (the task name is known at test time, as the adapter router needs it too).

Label sets: in a shared model the same label name in two tasks would be one output class.
That is refused (:class:`LabelCollisionError`) unless the sequence sets
``merge_labels: true``, which states that equal names mean the same class. Names equal but
for case (``Positive`` / ``positive``) are refused always.

    lepton-nlp continual configs/continual_banking.yaml continual.method=replay
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.config import (
    DataConfig,
    RunConfig,
    apply_overrides,
    build_dataclass,
    read_yaml_file,
)
from lepton_nlp.errors import ConfigError, DataError

__all__ = [
    "EWC",
    "METHODS",
    "AdapterRouter",
    "ContinualConfig",
    "ContinualSettings",
    "ContinualTask",
    "EWCSettings",
    "LabelCollisionError",
    "ReplayBuffer",
    "ReplaySettings",
    "TaskData",
    "check_label_sets",
    "ewc_trainer",
    "forgetting_summary",
    "load_continual_config",
    "load_task_data",
    "run_sequence",
]

log = logging.getLogger(__name__)

#: ``continual.method``: plain sequential fine-tuning, rehearsal, EWC, one adapter per task.
METHODS = ("sequential", "replay", "ewc", "adapters")
#: The adapter name of the task classifier that routes requests without a task name.
ROUTER = "_router"
SAMPLINGS = ("reservoir", "balanced")


class LabelCollisionError(ConfigError):
    """Two tasks of a shared-model sequence use the same label name (or names equal but for case)."""


# --- configuration ---------------------------------------------------------------------------


@dataclass
class ReplaySettings:
    """Rehearsal (``continual.method=replay``)."""

    buffer_size: int = 200
    """Most examples kept from earlier tasks."""
    proportion: float = 0.3
    """Share of each later step's training set drawn from the buffer (0 <= p < 1)."""
    sampling: str = "balanced"
    """How the buffer keeps examples: reservoir (uniform over all examples seen) or
    balanced (an equal share for every (task, label) class seen)."""
    seed: int = 0
    """Seed of the buffer's choices and draws."""

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ConfigError(
                f"continual.replay.sampling={self.sampling!r}; choose one of {', '.join(SAMPLINGS)}."
            )
        if not 0.0 <= self.proportion < 1.0:
            raise ConfigError(
                f"continual.replay.proportion={self.proportion} must be in [0, 1): the share of "
                "a step's training examples replayed from earlier tasks."
            )
        if self.buffer_size < 1:
            raise ConfigError(f"continual.replay.buffer_size={self.buffer_size} must be >= 1.")


@dataclass
class EWCSettings:
    """Elastic Weight Consolidation (``continual.method=ewc``)."""

    strength: float = 1000.0
    """lambda: weight of the penalty ``lambda/2 * sum F (theta - theta*)^2``."""
    fisher_samples: int = 200
    """Training examples of the finished task on which the Fisher diagonal is estimated."""

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ConfigError(f"continual.ewc.strength={self.strength} must be >= 0.")
        if self.fisher_samples < 1:
            raise ConfigError(f"continual.ewc.fisher_samples={self.fisher_samples} must be >= 1.")


@dataclass
class ContinualSettings:
    """The ``continual:`` section of a sequence file."""

    method: str = "sequential"
    """sequential | replay | ewc | adapters."""
    merge_labels: bool = False
    """Shared model: a label name used by several tasks is one class (an explicit merge);
    false refuses such sequences."""
    max_eval_samples: int | None = None
    """Score each task on at most this many validation / test records (seeded sample)."""
    route_classifier: bool = False
    """adapters: also train a task classifier (one more adapter on the same base, whose
    labels are the task names), so a request without a task name is routed by its text."""
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    ewc: EWCSettings = field(default_factory=EWCSettings)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"continual.method={self.method!r}; choose one of {', '.join(METHODS)}."
            )


@dataclass
class ContinualTask:
    """One task of the sequence: a name and its data."""

    name: str
    data: DataConfig = field(default_factory=DataConfig)
    labels: list[str] | None = None
    """Keep only records with these labels (a subset of a dataset's classes)."""
    max_train_samples: int | None = None
    """Train on about this many records (a seeded sample keeping the label proportions,
    every label at least twice; taken after ``labels``)."""


@dataclass
class ContinualConfig:
    """A sequence file: the run settings shared by every step, the tasks, the method."""

    run: RunConfig
    tasks: list[ContinualTask]
    continual: ContinualSettings = field(default_factory=ContinualSettings)


_TOP_KEYS = ("run", "tasks", "continual")


def load_continual_config(
    source: str | Path | dict, overrides: list[str] | None = None
) -> ContinualConfig:
    """Read a sequence file (YAML) or mapping, with ``key.sub=value`` overrides.

    ``run`` is a run config (its ``data`` is unused: each task brings its own);
    ``tasks`` a list of ``{name, data, labels}``; ``continual`` the method's settings.

    Raises:
        ConfigError: a misspelt key (naming the nearest valid one), a wrong type, fewer
            than two tasks, repeated task names, a task type other than classification.
    """
    # A deep copy: overrides must not change the caller's mapping.
    tree = (
        copy.deepcopy(source)
        if isinstance(source, dict)
        else read_yaml_file(source, "Sequence file")
    )
    tree = apply_overrides(tree, list(overrides or []))
    unknown = [k for k in tree if k not in _TOP_KEYS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), _TOP_KEYS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"Unknown sequence key {unknown[0]!r}.{hint} Valid keys: {', '.join(_TOP_KEYS)}."
        )
    run = build_dataclass(RunConfig, tree.get("run") or {}, "run")
    if run.augment.methods:
        raise ConfigError(
            f"run.augment.methods={run.augment.methods}: continual learning trains each task's "
            "records as given and does not augment them; remove the augment section."
        )
    if run.task != "classification" or run.data.multi_label:
        raise ConfigError(
            f"run.task={run.task}: continual learning here is for single-label classification."
        )
    items = tree.get("tasks")
    if not isinstance(items, list) or len(items) < 2:
        raise ConfigError("tasks must be a list of at least two {name, data} entries.")
    tasks = [build_dataclass(ContinualTask, item, f"tasks[{i}]") for i, item in enumerate(items)]
    names = [t.name for t in tasks]
    if ROUTER in names:
        raise ConfigError(f"The task name {ROUTER!r} is reserved for the task classifier.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"Task names must be unique; repeated: {repeated}.")
    settings = build_dataclass(ContinualSettings, tree.get("continual") or {}, "continual")
    return ContinualConfig(run=run, tasks=tasks, continual=settings)


# --- label sets ------------------------------------------------------------------------------


def check_label_sets(task_labels: Mapping[str, Sequence[str]], merge: bool = False) -> list[str]:
    """The shared head's labels: the union of the tasks' label sets, in task order.

    Args:
        task_labels: ``{task name: its labels}`` in sequence order.
        merge: a label name shared by tasks is one class (the caller says so explicitly).

    Raises:
        LabelCollisionError: a label name in several tasks and ``merge`` is false; or two
            names equal but for case (never merged: it is most likely a typo).
    """
    owners: dict[str, list[str]] = defaultdict(list)
    folded: dict[str, set[str]] = defaultdict(set)
    union: list[str] = []
    for task, labels in task_labels.items():
        for label in dict.fromkeys(labels):
            owners[label].append(task)
            folded[label.casefold()].add(label)
            if label not in union:
                union.append(label)
    case = {k: sorted(v) for k, v in folded.items() if len(v) > 1}
    if case:
        raise LabelCollisionError(
            f"Labels that differ only by case: {list(case.values())}. Rename them so each "
            "class has one spelling (or so different classes differ by more than case)."
        )
    shared = {label: tasks for label, tasks in owners.items() if len(tasks) > 1}
    if shared and not merge:
        detail = "; ".join(f"{label!r} in {tasks}" for label, tasks in shared.items())
        raise LabelCollisionError(
            f"Label names used by more than one task: {detail}. In a shared model they would "
            "silently become one class. Rename them per task (e.g. 'sentiment:positive'), or "
            "set continual.merge_labels=true if they really are the same class."
        )
    return union


# --- data ------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """One task's records: ``{"text", "label"}`` dicts per split."""

    name: str
    train: list[dict]
    validation: list[dict]
    test: list[dict]

    @property
    def labels(self) -> list[str]:
        return sorted({r["label"] for r in self.train})


def _subsample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or len(records) <= n:
        return records
    chosen = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in chosen]


def _stratified(records: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded sample of ``n`` records keeping the label proportions, each label at least twice."""
    if n is None or len(records) <= n:
        return records
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_label[record["label"]].append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_label):
        indices = by_label[label]
        take = min(len(indices), max(2, round(n * len(indices) / len(records))))
        chosen.extend(rng.sample(indices, take))
    return [records[i] for i in sorted(chosen)]


def load_task_data(task: ContinualTask, max_eval_samples: int | None = None) -> TaskData:
    """Read a task's splits (as ``lepton-nlp train`` would), keep its ``labels``, cap eval sets."""
    from lepton_nlp.data import load_splits

    splits = load_splits(task.data, "text")
    if task.labels is not None:
        keep = set(task.labels)
        missing = keep - {r["label"] for r in splits["train"]}
        if missing:
            raise DataError(
                f"Task {task.name!r}: labels {sorted(missing)} have no training records; "
                "check tasks[].labels against the data's label column."
            )
        splits = {k: [r for r in v if r["label"] in keep] for k, v in splits.items()}
    seed = task.data.split_seed
    # A text repeated across splits (FAQ lists repeat questions) would score memory, not
    # learning: validation and test keep only texts absent from training.
    seen = {r["text"] for r in splits["train"]}
    held = {k: [r for r in splits[k] if r["text"] not in seen] for k in ("validation", "test")}
    data = TaskData(
        task.name,
        _stratified(splits["train"], task.max_train_samples, seed),
        _subsample(held["validation"], max_eval_samples, seed),
        _subsample(held["test"], max_eval_samples, seed),
    )
    for split in ("validation", "test"):
        unseen = {r["label"] for r in getattr(data, split)} - set(data.labels)
        if unseen:
            raise DataError(
                f"Task {task.name!r}: {split} labels never seen in training: {sorted(unseen)}."
            )
    return data


# --- rehearsal -------------------------------------------------------------------------------


class ReplayBuffer:
    """A bounded, seeded store of earlier tasks' examples for rehearsal.

    ``reservoir``: every example offered so far has the same chance to be kept (Vitter's
    algorithm R), so tasks are kept in proportion to their sizes. ``balanced``: every
    (task, label) class seen gets an equal share of the capacity, filled with a seeded
    random choice of its examples; a small class keeps all it has.
    """

    def __init__(self, capacity: int, sampling: str = "balanced", seed: int = 0):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling={sampling!r}; choose one of {', '.join(SAMPLINGS)}.")
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1.")
        self.capacity = capacity
        self.sampling = sampling
        self._rng = random.Random(seed)
        self._reservoir: list[tuple[str, dict]] = []
        self._seen = 0
        self._classes: OrderedDict[tuple[str, str], list[dict]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.items())

    def add(self, task: str, records: Iterable[dict]) -> None:
        """Offer a finished task's training examples to the buffer."""
        records = list(records)
        if self.sampling == "reservoir":
            for record in records:
                self._seen += 1
                if len(self._reservoir) < self.capacity:
                    self._reservoir.append((task, record))
                else:
                    j = self._rng.randrange(self._seen)
                    if j < self.capacity:
                        self._reservoir[j] = (task, record)
            return
        by_label: dict[str, list[dict]] = defaultdict(list)
        for record in records:
            by_label[record["label"]].append(record)
        for label in sorted(by_label):
            pool = list(by_label[label])
            self._rng.shuffle(pool)
            self._classes[(task, label)] = pool
        quota, extra = divmod(self.capacity, len(self._classes))
        for i, key in enumerate(self._classes):
            # Shrinking a class keeps a prefix of its shuffled pool: a seeded random subset.
            self._classes[key] = self._classes[key][: quota + (1 if i < extra else 0)]

    def items(self) -> list[tuple[str, dict]]:
        """``(task, record)`` pairs held now."""
        if self.sampling == "reservoir":
            return list(self._reservoir)
        return [(task, r) for (task, _), records in self._classes.items() for r in records]

    def sample(self, n: int) -> list[dict]:
        """``n`` records drawn from the buffer (without replacement while it has enough).

        ``balanced`` draws round-robin over the (task, label) classes, so each is replayed
        equally often; ``reservoir`` draws uniformly from what it holds.
        """
        if n <= 0 or not self.items():
            return []
        if self.sampling == "reservoir":
            pool = [r for _, r in self._reservoir]
            return self._draw(pool, n)
        pools = [list(records) for records in self._classes.values() if records]
        for pool in pools:
            self._rng.shuffle(pool)
        out: list[dict] = []
        position = 0
        while len(out) < n:
            for pool in pools:
                if len(out) == n:
                    break
                out.append(pool[position % len(pool)])
            position += 1
        self._rng.shuffle(out)
        return out

    def _draw(self, pool: list[dict], n: int) -> list[dict]:
        out = []
        while len(out) < n:
            take = min(n - len(out), len(pool))
            out.extend(self._rng.sample(pool, take))
        return out

    def mix(self, records: list[dict], proportion: float) -> list[dict]:
        """``records`` plus replayed ones making up ``proportion`` of the result."""
        if not self.items() or proportion <= 0:
            return list(records)
        n = round(proportion / (1.0 - proportion) * len(records))
        mixed = list(records) + self.sample(n)
        self._rng.shuffle(mixed)
        return mixed


# --- EWC -------------------------------------------------------------------------------------


class EWC:
    """Elastic Weight Consolidation over a model's trainable parameters.

    ``consolidate(model, batches)`` estimates the Fisher diagonal (the mean squared
    gradient of the log-likelihood of the true labels, one example at a time) on a
    finished task and anchors the current weights; Fishers of successive tasks add up
    (online EWC), the anchor is the latest weights. ``penalty()`` is
    ``strength/2 * sum F (theta - theta*)^2``.
    """

    def __init__(self, model: torch.nn.Module, strength: float):
        self.strength = float(strength)
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    @property
    def active(self) -> bool:
        return bool(self.anchor) and self.strength > 0

    def consolidate(self, model: torch.nn.Module, examples: Iterable[dict]) -> None:
        """Add the Fisher diagonal of ``examples`` (single-example model inputs with
        ``labels``) and anchor the current weights."""
        fisher = {n: torch.zeros_like(p) for n, p in self.params.items()}
        was_training = model.training
        model.eval()
        count = 0
        for inputs in examples:
            model.zero_grad(set_to_none=True)
            output = model(**inputs)
            output.loss.backward()
            for n, p in self.params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2
            count += 1
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        if count == 0:
            raise ValueError("EWC needs at least one example to estimate the Fisher diagonal.")
        for n in fisher:
            fisher[n] /= count
            self.fisher[n] = self.fisher[n] + fisher[n] if n in self.fisher else fisher[n]
            self.anchor[n] = self.params[n].detach().clone()

    def penalty(self) -> torch.Tensor:
        if not self.active:
            return torch.zeros(())
        total = sum(
            (self.fisher[n] * (p - self.anchor[n]) ** 2).sum() for n, p in self.params.items()
        )
        return 0.5 * self.strength * total


def ewc_trainer(base: type, ewc: EWC) -> type:
    """A subclass of the Trainer class ``base`` whose training loss adds ``ewc.penalty()``.

    Only the training loss changes: evaluation losses (best checkpoint, early stopping)
    stay those of the task.
    """

    class EWCTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not (model.training and ewc.active):
                return result
            if return_outputs:
                loss, outputs = result
                return loss + ewc.penalty().to(loss.device), outputs
            return result + ewc.penalty().to(result.device)

    EWCTrainer.__name__ = f"EWC{base.__name__}"
    return EWCTrainer


# --- the forgetting matrix -------------------------------------------------------------------


def forgetting_summary(matrix: Sequence[Sequence[float | None]]) -> dict[str, float | None]:
    """Figures of a forgetting matrix ``R[i][j]`` (score on task ``j`` after step ``i``, j <= i).

    Returns:
        ``average_accuracy``: mean of the last row. ``average_forgetting``: over tasks
        ``j`` before the last, the best score task ``j`` had at any earlier step minus its
        final score, averaged (Chaudhry et al. 2018). ``backward_transfer``: mean of
        ``R[T-1][j] - R[j][j]`` over the same tasks (negative: forgetting).
    """
    steps = len(matrix)
    if steps == 0 or any(len(row) != steps for row in matrix):
        raise ValueError("The forgetting matrix must be square: one row and column per task.")
    final = [matrix[-1][j] for j in range(steps)]
    if any(v is None for v in final):
        raise ValueError("The last row must score every task.")
    forgetting, transfer = [], []
    for j in range(steps - 1):
        earlier = [matrix[i][j] for i in range(j, steps - 1) if matrix[i][j] is not None]
        forgetting.append(max(earlier) - final[j])
        transfer.append(final[j] - matrix[j][j])
    mean = lambda values: round(sum(values) / len(values), 6) if values else None  # noqa: E731
    return {
        "average_accuracy": mean(final),
        "average_forgetting": mean(forgetting),
        "backward_transfer": mean(transfer),
    }


# --- the per-task adapter router -------------------------------------------------------------


class AdapterRouter:
    """One adapter per task on one shared base model; a request names its task.

    A thin layer over :class:`~lepton_nlp.inference.multi.MultiAdapterPredictor` (which
    holds the one base model and switches adapters per batch).
    """

    def __init__(self, multi: Any):
        self.multi = multi

    @classmethod
    def from_artifacts(
        cls,
        artifacts: Mapping[str, str | Path],
        classifier: str | Path | None = None,
        **kwargs: Any,
    ) -> AdapterRouter:
        """``{task: artifact}``; ``classifier``: an artifact whose labels are task names
        (trained with ``continual.route_classifier``), loaded on the same base."""
        from lepton_nlp.inference.multi import MultiAdapterPredictor

        folders = dict(artifacts)
        if classifier is not None:
            folders[ROUTER] = classifier
        return cls(MultiAdapterPredictor.from_artifacts(folders, **kwargs))

    @property
    def tasks(self) -> list[str]:
        return [name for name in self.multi.names if name != ROUTER]

    def route(self, inputs: Iterable[Any]) -> list[str]:
        """The task the classifier assigns to each input.

        Raises:
            MultiAdapterError: no task classifier was loaded.
        """
        from lepton_nlp.errors import MultiAdapterError

        if ROUTER not in self.multi.names:
            raise MultiAdapterError(
                "No task classifier loaded: pass classifier= to AdapterRouter.from_artifacts "
                "(continual.route_classifier=true trains one), or name the task."
            )
        return [p["label"] for p in self.multi.predict(ROUTER, inputs)]

    def predict_routed(self, inputs: Iterable[Any]) -> list[dict]:
        """Route each input by the task classifier, then predict it with that task's adapter;
        each prediction gains ``task``."""
        inputs = list(inputs)
        tasks = self.route(inputs)
        out: list[dict | None] = [None] * len(inputs)
        for task in dict.fromkeys(tasks):
            positions = [i for i, t in enumerate(tasks) if t == task]
            predictions = self.predict(task, [inputs[i] for i in positions])
            for i, prediction in zip(positions, predictions, strict=True):
                out[i] = {**prediction, "task": task}
        return out  # type: ignore[return-value]

    def predict(self, task: str, inputs: Iterable[Any]) -> list[dict]:
        """Predictions of ``task``'s own adapter and head for ``inputs``.

        Raises:
            MultiAdapterError: ``task`` has no adapter (the message lists those loaded).
        """
        return self.multi.predict(task, inputs)


# --- running a sequence ----------------------------------------------------------------------


def _step_config(config: RunConfig, output_dir: Path, data: DataConfig | None = None) -> RunConfig:
    training = dataclasses.replace(config.training, output_dir=str(output_dir), overwrite=True)
    changes: dict[str, Any] = {"training": training, "name": output_dir.name}
    if data is not None:
        changes["data"] = data
    return dataclasses.replace(config, **changes)


def _accuracy(model, tokenizer, task, spec, records, labels, batch_size: int) -> float:
    """Accuracy on ``records`` with the prediction restricted to the task's ``labels``."""
    index = [spec.labels.index(label) for label in labels]
    features = task.encode(records, tokenizer, spec)
    collate = task.collator(tokenizer)
    was_training = model.training
    model.eval()
    correct = 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collate(features[start : start + batch_size])
            gold = batch.pop("labels")
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            chosen = torch.tensor(index)[logits[:, index].argmax(-1).cpu()]
            correct += int((chosen == gold).sum())
    model.train(was_training)
    return round(correct / max(1, len(features)), 6)


def _router_accuracy(router: AdapterRouter, name: str, records: list[dict]) -> float:
    predictions = router.predict(name, [r["text"] for r in records])
    correct = sum(p["label"] == r["label"] for p, r in zip(predictions, records, strict=True))
    return round(correct / max(1, len(records)), 6)


def _empty_matrix(n: int) -> list[list[float | None]]:
    return [[None] * n for _ in range(n)]


def run_sequence(
    run: RunConfig,
    tasks: Sequence[TaskData],
    settings: ContinualSettings,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``tasks`` in order with ``settings.method``; score every task after each step.

    Returns:
        ``{"method", "tasks", "labels", "test": {"matrix", ...summary}, "validation":
        {...}, "steps": [per-step training figures], "artifacts": {...}}`` (artifacts for
        ``adapters`` and the final shared model).

    Raises:
        LabelCollisionError: shared-model methods, label names shared by tasks, no merge.
    """
    out = Path(output_dir or run.training.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if settings.method == "adapters":
        result = _run_adapters(run, tasks, out, settings.route_classifier)
    else:
        result = _run_shared(run, tasks, settings, out)
    result["seconds"] = round(time.perf_counter() - started, 1)
    (out / "continual.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _summaries(matrices: dict[str, list[list[float | None]]]) -> dict[str, dict]:
    return {
        split: {"matrix": matrix, **forgetting_summary(matrix)}
        for split, matrix in matrices.items()
    }


def _run_shared(
    run: RunConfig, tasks: Sequence[TaskData], settings: ContinualSettings, out: Path
) -> dict[str, Any]:
    from lepton_nlp.tasks import TaskSpec, get_task
    from lepton_nlp.training.trainer import build_model, build_trainer, encode_splits, fit

    task = get_task(run.task)
    labels = check_label_sets({t.name: t.labels for t in tasks}, settings.merge_labels)
    spec = TaskSpec(
        labels=labels,
        multi_label=False,
        max_length=run.model.max_length,
        threshold=run.evaluation.threshold,
        extra=(
            {"options": dataclasses.asdict(run.task_options)}
            if run.task_options is not None
            else {}
        ),
    )
    from lepton_nlp.peft_methods import default_learning_rate

    learning_rate = run.training.learning_rate or default_learning_rate(run.peft.method)
    run = dataclasses.replace(
        run, training=dataclasses.replace(run.training, learning_rate=learning_rate)
    )
    model, tokenizer, parameters = build_model(run, task, spec, {"train": tasks[0].train})
    buffer = (
        ReplayBuffer(settings.replay.buffer_size, settings.replay.sampling, settings.replay.seed)
        if settings.method == "replay"
        else None
    )
    ewc = EWC(model, settings.ewc.strength) if settings.method == "ewc" else None
    n = len(tasks)
    matrices = {"test": _empty_matrix(n), "validation": _empty_matrix(n)}
    steps = []
    for i, current in enumerate(tasks):
        train_records = current.train
        if buffer is not None:
            train_records = buffer.mix(current.train, settings.replay.proportion)
        datasets = encode_splits(
            task,
            tokenizer,
            spec,
            {"train": train_records, "validation": current.validation},
        )
        step_config = _step_config(run, out / f"step-{i + 1}-{current.name}")
        wrap = (lambda base: ewc_trainer(base, ewc)) if ewc is not None else None
        trainer = build_trainer(step_config, task, spec, model, tokenizer, datasets, wrap=wrap)
        figures = fit(trainer, step_config)
        model = trainer.model
        figures["train_examples"] = len(train_records)
        figures["replayed_examples"] = len(train_records) - len(current.train)
        for j in range(i + 1):
            for split in ("test", "validation"):
                records = getattr(tasks[j], split)
                if records:
                    matrices[split][i][j] = _accuracy(
                        model,
                        tokenizer,
                        task,
                        spec,
                        records,
                        tasks[j].labels,
                        run.evaluation.batch_size,
                    )
        steps.append({"task": current.name, **figures})
        log.info("step %d (%s): test row %s", i + 1, current.name, matrices["test"][i])
        if buffer is not None:
            buffer.add(current.name, current.train)
        if ewc is not None and i < n - 1:
            sample = _subsample(current.train, settings.ewc.fisher_samples, run.training.seed)
            collate = task.collator(tokenizer)
            device = next(model.parameters()).device
            examples = (
                {k: v.to(device) for k, v in collate([f]).items()}
                for f in task.encode(sample, tokenizer, spec)
            )
            ewc.consolidate(model, examples)
        # The step's checkpoints are not needed once its weights are in the model.
        import shutil

        from lepton_nlp.training.trainer import work_dir

        shutil.rmtree(work_dir(step_config), ignore_errors=True)
    present = {k: v for k, v in matrices.items() if all(r is not None for r in v[-1])}
    return {
        "method": settings.method,
        "tasks": [t.name for t in tasks],
        "labels": labels,
        "parameters": parameters,
        "settings": dataclasses.asdict(settings),
        **_summaries(present),
        "steps": steps,
    }


def _write_split(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps({"text": record["text"], "label": record["label"]}) + "\n")


def _train_jsonl(run: RunConfig, name: str, splits: dict[str, list[dict]], out: Path):
    """Train one adapter with the ordinary run driver on records written as JSONL."""
    from lepton_nlp.training.trainer import train

    folder = out / "data" / name
    files = {}
    for split, records in splits.items():
        if records:
            files[split] = str(folder / f"{split}.jsonl")
            _write_split(folder / f"{split}.jsonl", records)
    config = _step_config(run, out / "adapters" / name, DataConfig(format="jsonl", **files))
    return train(config)


def _run_adapters(
    run: RunConfig, tasks: Sequence[TaskData], out: Path, route_classifier: bool = False
) -> dict[str, Any]:
    """One adapter per task, trained by the ordinary run driver; routed by task name."""
    from lepton_nlp.inference.multi import SHAREABLE

    if run.peft.method not in SHAREABLE:
        raise ConfigError(
            f"continual.method=adapters needs an adapter that can share the base model; "
            f"peft.method={run.peft.method} cannot. Choose one of {', '.join(SHAREABLE)}."
        )
    n = len(tasks)
    matrices = {"test": _empty_matrix(n), "validation": _empty_matrix(n)}
    artifacts: dict[str, str] = {}
    steps = []
    run = dataclasses.replace(
        run, evaluation=dataclasses.replace(run.evaluation, backend_check=False)
    )
    for i, current in enumerate(tasks):
        splits = {s: getattr(current, s) for s in ("train", "validation", "test")}
        result = _train_jsonl(run, current.name, splits, out)
        artifacts[current.name] = str(result.artifact)
        steps.append({"task": current.name, **result.metrics["train"]})
        router = AdapterRouter.from_artifacts(artifacts, batch_size=run.evaluation.batch_size)
        for j in range(i + 1):
            for split in ("test", "validation"):
                records = getattr(tasks[j], split)
                if records:
                    matrices[split][i][j] = _router_accuracy(router, tasks[j].name, records)
        log.info("step %d (%s): test row %s", i + 1, current.name, matrices["test"][i])
    present = {k: v for k, v in matrices.items() if all(r is not None for r in v[-1])}
    result = {
        "method": "adapters",
        "tasks": [t.name for t in tasks],
        "labels": {t.name: t.labels for t in tasks},
        **_summaries(present),
        "steps": steps,
        "artifacts": artifacts,
    }
    if route_classifier:
        result["routing"] = _train_router(run, tasks, out, artifacts)
    return result


def _train_router(
    run: RunConfig, tasks: Sequence[TaskData], out: Path, artifacts: dict[str, str]
) -> dict[str, Any]:
    """The task classifier (labels: task names) and how well routing by it does on test."""
    splits = {
        split: [{"text": r["text"], "label": t.name} for t in tasks for r in getattr(t, split)]
        for split in ("train", "validation", "test")
    }
    trained = _train_jsonl(run, ROUTER, splits, out)
    router = AdapterRouter.from_artifacts(
        artifacts, classifier=trained.artifact, batch_size=run.evaluation.batch_size
    )
    figures: dict[str, Any] = {"classifier": str(trained.artifact), "test": {}}
    for t in tasks:
        if not t.test:
            continue
        texts = [r["text"] for r in t.test]
        routed = router.predict_routed(texts)
        figures["test"][t.name] = {
            "routing_accuracy": round(sum(p["task"] == t.name for p in routed) / len(texts), 6),
            "accuracy_routed": round(
                sum(p["label"] == r["label"] for p, r in zip(routed, t.test, strict=True))
                / len(texts),
                6,
            ),
        }
    return figures


def run_config(config: ContinualConfig) -> dict[str, Any]:
    """Load each task's data and run the sequence a :class:`ContinualConfig` describes."""
    data = [load_task_data(t, config.continual.max_eval_samples) for t in config.tasks]
    return run_sequence(config.run, data, config.continual)
