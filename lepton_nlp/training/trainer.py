"""The run driver: config -> records -> model + PEFT -> HF Trainer -> metrics -> artifact."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.artifacts import check_output_dir, read_artifact, write_artifact
from lepton_nlp.config import RunConfig, config_to_dict
from lepton_nlp.data import load_splits
from lepton_nlp.hub import resolve_model
from lepton_nlp.inference.int8_check import run_backend_check
from lepton_nlp.inference.predictor import Predictor, predict_items
from lepton_nlp.inference.spelling import SpellingCorrector
from lepton_nlp.peft_methods import apply_peft, count_parameters, default_learning_rate
from lepton_nlp.tasks import TaskAdapter, TaskSpec, get_task
from lepton_nlp.training.adversarial import AdversarialSettings, adversarial_trainer

__all__ = [
    "TrainResult",
    "augment_train",
    "build_model",
    "build_trainer",
    "check_backends",
    "encode_splits",
    "evaluate_splits",
    "fit",
    "greater_is_better",
    "load_data",
    "save_artifact",
    "train",
    "work_dir",
]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the artifact went and what the run measured."""

    artifact: Path | None
    """The artifact folder (None on ranks other than 0 of a distributed run)."""
    metrics: dict[str, Any]
    predictor: Any = None
    """A Predictor over the trained model still in memory (rank 0 only)."""


class _Records(torch.utils.data.Dataset):
    def __init__(self, features: list[dict], records: list[dict] | None = None):
        self.features = features
        self.records = records
        """The raw records the features came from (tasks scored by prediction use them)."""

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


class _PrefixLabels:
    """Prompt-learning adapters prepend virtual tokens: give them ignored (-100) labels."""

    def __init__(self, collator, virtual_tokens: int):
        self.collator = collator
        self.virtual_tokens = virtual_tokens

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        labels = batch["labels"]
        pad = torch.full((labels.shape[0], self.virtual_tokens), -100, dtype=labels.dtype)
        batch["labels"] = torch.cat([pad, labels], dim=1)
        return batch


def work_dir(config: RunConfig) -> Path:
    """Checkpoints and logs live beside the artifact, in ``<output_dir>.work``."""
    out = Path(config.training.output_dir)
    return out.with_name(out.name + ".work")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better (every metric here but losses)."""
    return "loss" not in metric


def _total_steps(n_train: int, t) -> int:
    if t.max_steps > 0:
        return t.max_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batches = math.ceil(n_train / (t.batch_size * world))
    updates = max(1, batches // t.gradient_accumulation_steps)
    return max(1, math.ceil(updates * t.epochs))


def _complete(state: Path) -> bool:
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _latest_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in ``folder``; incomplete ones are removed.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without it was cut short
    (the process was killed while saving) and cannot be resumed from: it goes, and the one
    before it is taken.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

    if not folder.is_dir():
        return None
    for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        if checkpoint.is_dir() and not _complete(checkpoint / "trainer_state.json"):
            log.warning("Removing %s: it was not saved completely (a crash?).", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return get_last_checkpoint(str(folder))


def _keeps_best(config: RunConfig) -> bool:
    # AdaLoRA's saved rank pattern belongs to the final step, so reloading an earlier
    # checkpoint's weights would not fit it: AdaLoRA keeps its last state.
    return config.peft.method != "adalora"


def _training_arguments(config: RunConfig, checkpoints: Path, learning_rate: float, has_eval: bool):
    from transformers import TrainingArguments

    t = config.training
    evaluate = t.eval_strategy if has_eval else "no"
    report = [r for r in t.report_to if r not in ("tensorboard", "none")]
    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        learning_rate=learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.scheduler,
        label_smoothing_factor=t.label_smoothing,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        eval_strategy=evaluate,
        save_strategy=evaluate if evaluate != "no" else "steps",
        save_steps=t.eval_steps or 500,
        eval_steps=t.eval_steps,
        logging_steps=t.logging_steps,
        load_best_model_at_end=evaluate != "no" and _keeps_best(config),
        metric_for_best_model=t.metric_for_best if evaluate != "no" else None,
        greater_is_better=greater_is_better(t.metric_for_best or ""),
        save_total_limit=t.save_total_limit,
        report_to=report or "none",
        disable_tqdm=not t.progress,
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        label_names=["labels"],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def train(config: RunConfig, callbacks: list | None = None) -> TrainResult:
    """Fine-tune, evaluate and write the artifact that ``config`` describes.

    Args:
        config: the run config.
        callbacks: extra ``transformers.TrainerCallback`` objects.

    Raises:
        ArtifactError: the output folder already holds an artifact and overwrite is off.
        DataError: the data cannot be read, is empty, has one class, or has unseen labels.
    """
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    task = get_task(config.task)
    check_output_dir(Path(config.training.output_dir), config.training.overwrite)
    splits, spec = load_data(config, task)
    train_texts = [r.get("text") or "" for r in splits["train"]]  # before augmentation
    augmentation = augment_train(config, task, splits)
    learning_rate = config.training.learning_rate or default_learning_rate(config.peft.method)
    config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, learning_rate=learning_rate)
    )
    model, tokenizer, parameters = build_model(config, task, spec, splits)
    spelling, corrected = correct_spelling(config, tokenizer, train_texts, splits)
    datasets = encode_splits(task, tokenizer, spec, splits)
    trainer = build_trainer(config, task, spec, model, tokenizer, datasets, callbacks)
    metrics = {"train": {**parameters, **fit(trainer, config)}}
    if augmentation is not None:
        metrics["augmentation"] = augmentation
    if spelling is not None:
        metrics["spelling"] = {**spelling.settings(), **corrected}
    scored = (
        datasets
        if config.evaluation.score_test
        else {name: data for name, data in datasets.items() if name != "test"}
    )
    metrics.update(evaluate_splits(trainer, scored, splits))
    metrics["history"] = [
        entry for entry in trainer.state.log_history if "eval_loss" in entry or "loss" in entry
    ]
    if not trainer.is_world_process_zero():
        return TrainResult(artifact=None, metrics=metrics)
    artifact = save_artifact(config, trainer, tokenizer, task, spec, metrics, splits, spelling)
    if config.evaluation.backend_check:
        check = check_backends(artifact, splits, config)
        if check is not None:
            metrics["backends"] = check
    predictor = Predictor.from_model(
        trainer.model, tokenizer, read_artifact(artifact), config.evaluation.batch_size
    )
    predictor.spelling = spelling
    return TrainResult(artifact=artifact, metrics=metrics, predictor=predictor)


def correct_spelling(
    config: RunConfig, tokenizer: Any, train_texts: list[str], splits: dict[str, list[dict]]
) -> tuple[SpellingCorrector | None, dict[str, int]]:
    """With ``spelling.enabled``: the corrector built from the training texts (and the
    model's whole words), and the validation and test records corrected in place, as the
    artifact's Predictor will read them; counts of the words corrected per split."""
    settings = config.spelling
    if not settings.enabled:
        return None, {}
    spelling = SpellingCorrector.from_texts(
        train_texts,
        max_distance=settings.max_distance,
        min_length=settings.min_length,
        known_words=SpellingCorrector.model_words(tokenizer) if settings.model_vocabulary else (),
        min_count=settings.min_count,
    )
    counts = {}
    for name in ("validation", "test"):
        changed = 0
        for record in splits.get(name) or []:
            fixes = spelling.corrections(record["text"])
            if fixes:
                changed += len(fixes)
                record["text"] = spelling.correct(record["text"])
        counts[f"{name}_words_corrected"] = changed
    log.info("Spelling correction: %s", counts)
    return spelling, counts


def augment_train(
    config: RunConfig, task: TaskAdapter, splits: dict[str, list[dict]]
) -> dict[str, Any] | None:
    """Add the augmented copies ``config.augment`` asks for to the training split (only).

    Returns:
        The augmentation report as plain data (None when augmentation is off); the run
        records it in its metrics.
    """
    if not config.augment.methods:
        return None
    from lepton_nlp.training.augment import augment_records

    splits["train"], report = augment_records(
        splits["train"], task.record_kind, config.augment, config.model.name, config.task
    )
    log.info("Augmentation: %s", report.as_dict())
    return report.as_dict()


def load_data(config: RunConfig, task: TaskAdapter) -> tuple[dict[str, list[dict]], TaskSpec]:
    """The run's splits (train, validation, test) and the task spec their labels give.

    Raises:
        DataError: unreadable or empty data, or validation/test labels never seen in training.
    """
    splits = load_splits(config.data, task.record_kind, getattr(task, "read_records", None))
    spec = TaskSpec(
        labels=task.label_space(splits["train"]),
        multi_label=config.data.multi_label,
        max_length=config.model.max_length,
        threshold=config.evaluation.threshold,
        extra=(
            {"options": dataclasses.asdict(config.task_options)}
            if config.task_options is not None
            else {}
        ),
    )
    for split in ("validation", "test"):
        task.check_records(splits[split], spec, split)
    return splits, spec


def build_model(
    config: RunConfig, task: TaskAdapter, spec: TaskSpec, splits: dict[str, list[dict]]
) -> tuple[Any, Any, dict[str, int | float]]:
    """The tokenizer, and the task's model wrapped with the PEFT method, seeded.

    Returns:
        ``(model, tokenizer, parameters)``: ``parameters`` counts the trainable and total ones.
    """
    from transformers import AutoTokenizer, set_seed

    if config.model.init_from:
        from lepton_nlp.training.transfer import prepare_init

        # Another run's weights (model.init_from): written to a folder loaded as the base.
        model_path = str(prepare_init(config, task, spec).path)
    else:
        model_path = resolve_model(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if hasattr(task, "prepare_tokenizer"):
        tokenizer = task.prepare_tokenizer(tokenizer, spec)
    if hasattr(task, "prepare_spec"):
        task.prepare_spec(spec, splits, tokenizer)
    set_seed(config.training.seed)
    model = task.load_model(model_path, spec)
    steps = _total_steps(len(splits["train"]), config.training)
    # A task whose model family is chosen per run (generation: causal or seq2seq) records
    # the PEFT task type of that family in the spec.
    peft_task_type = spec.extra.get("peft_task_type", task.peft_task_type)
    model = apply_peft(model, config.peft, peft_task_type, steps)
    return model, tokenizer, count_parameters(model)


def encode_splits(
    task: TaskAdapter, tokenizer: Any, spec: TaskSpec, splits: dict[str, list[dict]]
) -> dict[str, _Records]:
    """The task's model inputs of every non-empty split, beside the records they came from."""
    return {
        name: _Records(task.encode(records, tokenizer, spec), records)
        for name, records in splits.items()
        if records
    }


def build_trainer(
    config: RunConfig,
    task: TaskAdapter,
    spec: TaskSpec,
    model: Any,
    tokenizer: Any,
    datasets: dict[str, Any],
    callbacks: list | None = None,
    wrap: Any = None,
) -> Any:
    """The Hugging Face Trainer of the run: arguments, callbacks, collator, evaluation.

    The work folder (checkpoints, logs) starts empty unless the run resumes. ``wrap``:
    ``wrap(trainer_class) -> subclass``, a hook on the training step or loss (continual
    learning's EWC penalty, :mod:`lepton_nlp.training.continual`).
    """
    from transformers import EarlyStoppingCallback, Trainer
    from transformers.integrations import TensorBoardCallback

    t = config.training
    has_eval = "validation" in datasets and t.eval_strategy != "no"
    work = work_dir(config)
    if not t.resume and int(os.environ.get("RANK", "0")) == 0:
        # Checkpoints and logs of an earlier run must not leak into this one.
        shutil.rmtree(work, ignore_errors=True)
    args = _training_arguments(config, work / "checkpoints", t.learning_rate, has_eval)
    # A task whose targets are not one `labels` tensor (QA: start and end positions) names
    # them, so evaluation computes its loss too.
    args.label_names = list(getattr(task, "label_names", args.label_names))
    by_prediction = bool(getattr(task, "evaluate_by_prediction", False))
    if by_prediction:
        # Metrics come from predictions over the raw records; gathering logits (for a
        # generator, batch x length x vocabulary) would only cost memory.
        args.prediction_loss_only = True
    trainer_callbacks = list(callbacks or [])
    if "tensorboard" in t.report_to and int(os.environ.get("RANK", "0")) == 0:
        from torch.utils.tensorboard import SummaryWriter

        trainer_callbacks.append(TensorBoardCallback(SummaryWriter(log_dir=str(work / "logs"))))
    if has_eval and t.early_stopping_patience and _keeps_best(config):
        trainer_callbacks.append(
            EarlyStoppingCallback(t.early_stopping_patience, t.early_stopping_threshold)
        )
    if config.peft.method == "adalora":
        from lepton_nlp.training.callbacks import AdaLoraBudgetCallback

        trainer_callbacks.append(AdaLoraBudgetCallback(model))

    trainer_class = (
        _prediction_trainer(Trainer, task, spec, config.evaluation.batch_size)
        if by_prediction
        else Trainer
    )
    if t.adversarial != "none":
        trainer_class = adversarial_trainer(trainer_class, AdversarialSettings.from_training(t))
    if wrap is not None:
        trainer_class = wrap(trainer_class)
    return trainer_class(
        model=model,
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("validation") if has_eval else None,
        data_collator=_collator(task, model, tokenizer),
        processing_class=tokenizer,
        compute_metrics=None
        if by_prediction
        else lambda p: task.compute_metrics(_logits(p.predictions), p.label_ids, spec),
        callbacks=trainer_callbacks,
    )


def _collator(task: TaskAdapter, model: Any, tokenizer: Any) -> Any:
    collator = task.collator(tokenizer)
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is not None and peft_config.is_prompt_learning:
        # Virtual tokens come first: targets that point at positions must move past them.
        shift = getattr(task, "virtual_token_collator", None)
        if shift is not None:
            collator = shift(collator, peft_config.num_virtual_tokens)
        elif task.record_kind == "tokens":
            collator = _PrefixLabels(collator, peft_config.num_virtual_tokens)
    return collator


def fit(trainer: Any, config: RunConfig) -> dict[str, Any]:
    """Train (resuming from a checkpoint where the config says) and return the figures."""
    t = config.training
    checkpoints = work_dir(config) / "checkpoints"
    resume = None
    if t.resume is True or (isinstance(t.resume, str) and t.resume.lower() in ("true", "latest")):
        resume = _latest_checkpoint(checkpoints)
        if resume is None:
            log.warning(
                "training.resume=true but %s holds no checkpoint; starting from scratch.",
                checkpoints,
            )
    elif isinstance(t.resume, str) and t.resume:
        resume = t.resume

    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    elapsed = time.perf_counter() - started
    figures = {
        "train_seconds": round(elapsed, 1),
        "train_samples_per_second": round(output.metrics.get("train_samples_per_second", 0.0), 2),
        "train_loss": round(output.metrics.get("train_loss", float("nan")), 5),
        "epochs": round(trainer.state.epoch or 0.0, 2),
        "steps": trainer.state.global_step,
        "best_checkpoint_step": _step_of(trainer.state.best_model_checkpoint),
        "peak_memory_mb": round(_peak_rss_mb(), 1),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "device": str(trainer.args.device),
    }
    if torch.cuda.is_available():
        figures["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return figures


def evaluate_splits(
    trainer: Any, datasets: dict[str, Any], splits: dict[str, list[dict]]
) -> dict[str, dict[str, Any]]:
    """Metrics of the trained model on the validation and test splits the run has."""
    metrics = {}
    for split in ("validation", "test"):
        if split in datasets:
            result = trainer.predict(datasets[split], metric_key_prefix=split)
            metrics[split] = {
                k[len(split) + 1 :]: round(float(v), 6)
                for k, v in result.metrics.items()
                if not k.endswith(("_runtime", "_per_second", "_loss"))
            }
            metrics[split]["examples"] = len(splits[split])
    return metrics


def save_artifact(
    config: RunConfig,
    trainer: Any,
    tokenizer: Any,
    task: TaskAdapter,
    spec: TaskSpec,
    metrics: dict[str, Any],
    splits: dict[str, list[dict]],
    spelling: SpellingCorrector | None = None,
) -> Path:
    """Write the artifact folder (with ``spelling.json`` when the run corrects spelling);
    the work folder goes unless the config keeps checkpoints."""
    from lepton_nlp.training.transfer import init_dir

    t = config.training
    work = work_dir(config)
    # The starting weights of a run with model.init_from: an adapter needs them to load.
    starting = init_dir(config) if config.model.init_from else None
    extra = []
    if spelling is not None:
        work.mkdir(parents=True, exist_ok=True)
        extra.append(spelling.save(work))
    artifact = write_artifact(
        Path(t.output_dir),
        model=trainer.model,
        tokenizer=tokenizer,
        task=task,
        config=config_to_dict(config),
        spec=spec,
        metrics=metrics,
        data_sizes={name: len(records) for name, records in splits.items() if records},
        overwrite=t.overwrite,
        logs_dir=work / "logs",
        extra_files=extra,
        base_dir=starting if starting is not None and starting.is_dir() else None,
    )
    if not t.keep_checkpoints:
        shutil.rmtree(work, ignore_errors=True)
    if starting is not None:
        shutil.rmtree(starting, ignore_errors=True)
    return artifact


def check_backends(
    artifact: Path, splits: dict[str, list[dict]], config: RunConfig
) -> dict[str, Any] | None:
    """The int8 backend check of a new artifact (recorded in it), None where it does not apply.

    A check that fails is logged, not raised: the model is trained and saved already.
    """
    try:
        return run_backend_check(
            artifact, splits, config.training.seed, config.evaluation.batch_size
        )
    except Exception as exc:  # the model is trained and saved; the check is extra
        log.warning(
            "The int8 backend check failed (%s: %s); the artifact is complete and "
            "backend=auto will run it in fp32. Retry with `lepton-nlp check-backends %s`.",
            type(exc).__name__,
            exc,
            artifact,
        )
        return None


def _prediction_trainer(base: type, task: Any, spec: TaskSpec, batch_size: int) -> type:
    """A Trainer whose evaluations add the task's metrics computed from predictions.

    The metrics join the evaluation output before callbacks see it, so best-checkpoint
    selection and early stopping work on them as on any other metric.
    """

    class PredictionTrainer(base):
        def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):  # fmt: skip
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
            records = getattr(dataloader.dataset, "records", None)
            if records:
                model = self.model
                was_training = model.training
                model.eval()
                items = [task.prepare_input(r) for r in records]
                predictions = predict_items(
                    task, model, self.processing_class, spec, items, batch_size
                )
                if was_training:
                    model.train()
                scores = task.evaluate_predictions(predictions, records, spec)
                output.metrics.update(
                    {f"{metric_key_prefix}_{k}": float(v) for k, v in scores.items()}
                )
            return output

    return PredictionTrainer


def _logits(predictions: Any) -> Any:
    # Some heads return (logits, hidden states...); metrics need the logits only.
    return predictions[0] if isinstance(predictions, tuple) else predictions


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[-1])
    except ValueError:
        return None
