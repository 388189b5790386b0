"""Run configs from the Train page's choices: base models, starting settings, task options."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from apps.studio import methods
from apps.studio.errors import StudioError
from lepton_nlp.hub import MINILM

__all__ = [
    "FALLBACK_DEFAULTS",
    "LEARNING_RATE_MIN",
    "LEARNING_RATE_STEP",
    "MODEL_NOTES",
    "POOLINGS",
    "base_models",
    "build_config",
    "checked_job",
    "default_pooling",
    "default_task_options",
    "defaults_for",
    "own_defaults",
]

MODEL_NOTES = {
    ("translation", MINILM): "MiniLM is warm-started as an encoder-decoder: its cross-attention "
    "layers are new, so it trains in full, and the decoder gets a cased vocabulary trained on "
    "your targets. On Multi30k (1,000 pairs, 20 epochs) it reached BLEU 10.6.",
}
"""A line the Train page shows under a (task, base model) choice."""

FALLBACK_DEFAULTS: dict[str, Any] = {
    "method": "lora",
    "epochs": 3,
    "batch_size": 16,
    "learning_rate": 5e-4,
    "max_length": 128,
}
"""Starting settings for a task that does not suggest its own (``training_defaults``)."""


def base_models(task: str) -> list[str]:
    """The base models the Train page offers for ``task`` (the task's ``base_models``, else
    MiniLM), the first the default; any local model folder also works."""
    from lepton_nlp.tasks import get_task

    return list(getattr(get_task(task), "base_models", None) or (MINILM,))


def defaults_for(task: str, base_model: str) -> dict[str, Any]:
    """The Train page's starting values (epochs, batch size, learning rate, max tokens, PEFT
    method) for ``task`` on ``base_model``: the task's ``training_defaults``."""
    from lepton_nlp.tasks import get_task

    adapter = get_task(task)
    if not hasattr(adapter, "training_defaults"):
        return dict(FALLBACK_DEFAULTS)
    return {"method": "lora", **adapter.training_defaults(base_model)}


def own_defaults(task: str, base_model: str) -> bool:
    """Whether ``base_model`` starts from settings of its own, not those of the task's
    default base model (the Train page then keeps its widgets apart)."""
    return defaults_for(task, base_model) != defaults_for(task, base_models(task)[0])


def default_task_options(task: str, max_length: int, base_model: str = "") -> dict[str, Any]:
    """Task options that fit the chosen max tokens and base model: the task's
    ``default_options`` (QA's windows, translation's warm-started MiniLM)."""
    from lepton_nlp.tasks import get_task

    suggest = getattr(get_task(task), "default_options", None)
    return suggest(max_length, base_model) if suggest else {}


def build_config(
    *,
    task: str,
    data_path: str | Path,
    fmt: str,
    base_model: str,
    method: str,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    r: int = 16,
    validation_size: float = 0.2,
    test_size: float = 0.0,
    columns: dict[str, str] | None = None,
    name: str = "studio-run",
    output_dir: str | Path = "runs/studio",
    early_stopping: bool = True,
    task_options: dict[str, Any] | None = None,
    training_method: str = "plain",
    method_values: dict[str, Any] | None = None,
) -> str:
    """A validated job config, as YAML, for the choices made on the Train page.

    ``task_options`` are added to :func:`default_task_options` (and win over them).
    ``training_method`` names a method of :mod:`apps.studio.methods` (adversarial training,
    prompt learning, a hyper-parameter search, continual learning...) and ``method_values``
    its form's values: the config is then that method's job (a run config, one with an
    ``hpo:`` section, or a continual sequence file).

    Raises:
        StudioError: the choices do not make a valid config (the core's message says why).
    """
    from lepton_nlp.config import ConfigError, config_to_dict, load_config

    options = {
        **default_task_options(task, int(max_length), base_model),
        **(task_options or {}),
    }

    tree = {
        "task": task,
        "name": name,
        "data": {
            "format": fmt,
            "train": str(data_path),
            "validation_size": validation_size,
            "test_size": test_size,
            **(columns or {}),
        },
        "model": {"name": base_model, "max_length": int(max_length)},
        "peft": {"method": method, "r": int(r)},
        "training": {
            "output_dir": str(output_dir),
            "epochs": float(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "progress": False,
            "logging_steps": 1,
            "early_stopping_patience": 3 if validation_size > 0 and early_stopping else None,
            "eval_strategy": "epoch" if validation_size > 0 else "no",
        },
    }
    if options:
        tree["task_options"] = options
    try:
        config = load_config(tree)
    except (ConfigError, ValueError, KeyError) as error:
        raise StudioError(f"These settings do not make a valid run: {error}") from None
    plain = config_to_dict(config)
    if training_method == methods.PLAIN:
        return yaml.safe_dump(plain, sort_keys=False)
    job = methods.apply_method(plain, training_method, method_values)
    return yaml.safe_dump(checked_job(job), sort_keys=False)


def checked_job(tree: dict) -> dict:
    """A job's config tree as the core reads it (every default filled in), after the core's
    checks: the run config, its search (``hpo:``), or the continual sequence.

    Raises:
        StudioError: the core refuses the config; its message says why.
    """
    from lepton_nlp.config import ConfigError, config_to_dict, load_config

    try:
        job = methods.job_of(tree)
        if job == "continual":
            from lepton_nlp.training.continual import load_continual_config

            load_continual_config(copy.deepcopy(tree))
            return tree
        config = load_config(copy.deepcopy(tree))
        if job == "hpo":
            from lepton_nlp.training.hpo import check_space

            check_space(config)
    except (ConfigError, ValueError, KeyError) as error:
        raise StudioError(f"These settings do not make a valid run: {error}") from None
    return config_to_dict(config)


POOLINGS = {
    "mean": "Mean of the token vectors",
    "cls": "First token ([CLS], the model's pooler)",
}
"""Classification's ``task_options.pooling`` choices, as the Train page names them."""


def default_pooling(base_model: str) -> str:
    """``mean`` for a sentence-transformers model trained to mean its tokens (all-MiniLM-L6-v2:
    its [CLS] pooler was never trained), else ``cls``, what transformers does."""
    from lepton_nlp.hub import ModelNotFoundError, resolve_model, sentence_pooling

    if not base_model:
        return "cls"
    try:
        folder = resolve_model(base_model)
    except ModelNotFoundError:  # not installed, or no such folder: the run will say why
        return "cls"
    return "mean" if sentence_pooling(folder) == "mean" else "cls"


LEARNING_RATE_MIN = 1e-6
LEARNING_RATE_STEP = 1e-5
"""The Train page's learning-rate bounds and arrow step: a step well below the usual values
(1e-4 to 1e-3), so the arrows move both ways from any of them; typed values are kept as typed."""
