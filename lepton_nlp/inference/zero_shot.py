"""The zero-shot baseline: generate with a model as it comes (no fine-tuning) and score it."""

from __future__ import annotations

import dataclasses

from lepton_nlp.config import build_task_options
from lepton_nlp.hub import resolve_model
from lepton_nlp.inference.predictor import predict_items
from lepton_nlp.tasks import TaskSpec, get_task

__all__ = ["generate_zero_shot"]


def generate_zero_shot(
    task_name: str,
    model_name: str,
    records: list[dict],
    options: dict | None = None,
    max_length: int = 512,
    batch_size: int = 8,
) -> tuple[list[dict], dict[str, float]]:
    """Generate with a model as it comes (no fine-tuning) and score it: the zero-shot baseline.

    Args:
        task_name: ``summarization`` or ``translation``.
        model_name: a model name or folder (resolved like a run config's ``model.name``).
        records: pair records with ``source`` and ``target``.
        options: task options (prompt, generation settings...).
        max_length: longest prompt in tokens.
        batch_size: generation batch size.

    Returns:
        The predictions and their metrics.
    """
    from lepton_nlp.hf_imports import import_hf

    import_hf()
    from transformers import AutoTokenizer

    task = get_task(task_name)
    typed = build_task_options(task, options or {})
    spec = TaskSpec(labels=[], max_length=max_length, extra={"options": dataclasses.asdict(typed)})
    path = resolve_model(model_name)
    tokenizer = task.prepare_tokenizer(AutoTokenizer.from_pretrained(path), spec)
    model = task.load_model(path, spec).eval()
    items = [task.prepare_input(r) for r in records]
    predictions = predict_items(task, model, tokenizer, spec, items, batch_size)
    return predictions, task.evaluate_predictions(predictions, records, spec)
