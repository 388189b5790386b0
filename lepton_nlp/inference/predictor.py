"""Predictor: load an artifact once, predict in length-sorted batches."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.artifacts import ArtifactInfo, read_artifact
from lepton_nlp.hub import resolve_model
from lepton_nlp.tasks import get_task

__all__ = ["Predictor", "predict_items"]

log = logging.getLogger(__name__)


class _SkipVirtualTokens(torch.nn.Module):
    """Drop the logits of prompt-learning virtual tokens so positions line up with the input."""

    def __init__(self, model: torch.nn.Module, virtual_tokens: int):
        super().__init__()
        self.model = model
        self.virtual_tokens = virtual_tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, **inputs):
        output = self.model(**inputs)
        if output.logits.dim() == 3:
            output.logits = output.logits[:, self.virtual_tokens :]
        return output


def _length(task: Any, item: dict) -> int:
    measure = getattr(task, "input_length", None)
    return measure(item) if measure else len(item.get("text", ""))


def _token_lengths(task: Any, tokenizer: Any, spec: Any, items: list[dict]) -> list[int]:
    """Tokens per item: counted by the tokenizer for text inputs, else estimated (4 chars a token)."""
    texts = [item.get("text") for item in items]
    if items and all(isinstance(t, str) for t in texts) and callable(tokenizer):
        ids = tokenizer(texts, truncation=True, max_length=spec.max_length)["input_ids"]
        return [len(x) for x in ids]
    return [_length(task, item) // 4 + 2 for item in items]


def batch_plan(
    lengths: list[int], batch_size: int, max_batch_tokens: int | None
) -> list[list[int]]:
    """Group item indices into batches of similar length.

    Items are sorted by length (so padding, and wasted compute, stays small); a batch closes
    at ``batch_size`` items or when its padded size (items x longest) would pass
    ``max_batch_tokens``. An item longer than the budget goes in a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(lengths[i], 1)
        too_many = len(current) >= batch_size
        too_big = max_batch_tokens is not None and (len(current) + 1) * longest > max_batch_tokens
        if current and (too_many or too_big):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def predict_items(
    task: Any,
    model: Any,
    tokenizer: Any,
    spec: Any,
    items: list[dict],
    batch_size: int,
    max_batch_tokens: int | None = None,
) -> list[dict]:
    """Run ``task.predict_batch`` over prepared items in length-sorted batches, in input order."""
    # Token counts, not characters: sentences of equal token length end up side by side,
    # which packing's attention runs as one call (and padded batches pad less).
    lengths = _token_lengths(task, tokenizer, spec, items)
    results: list[dict | None] = [None] * len(items)
    for ids in batch_plan(lengths, batch_size, max_batch_tokens):
        outputs = task.predict_batch(model, tokenizer, [items[i] for i in ids], spec)
        for i, output in zip(ids, outputs, strict=True):
            results[i] = output
    return results  # type: ignore[return-value]


class Predictor:
    """A trained model ready to predict: ``Predictor.from_artifact(path).predict(texts)``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ArtifactInfo,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        backend: str = "torch",
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.task = get_task(info.task_version)
        self.spec = info.spec
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.backend = backend
        prepare = getattr(self.task, "prepare_tokenizer", None)
        if prepare is not None:
            self.tokenizer = prepare(tokenizer, self.spec)

    @classmethod
    def from_artifact(
        cls,
        path: str | Path,
        device: str | None = None,
        batch_size: int = 32,
        base_model: str | None = None,
        backend: str = "auto",
        max_batch_tokens: int | None = None,
        threads: int | None = None,
        packing: bool = True,
    ) -> Predictor:
        """Load an artifact folder.

        Args:
            path: the artifact folder.
            device: ``cpu``, ``cuda``, ... (default: cuda when available).
            batch_size: largest batch.
            base_model: override the base model (a local folder holding the same model).
            backend: ``auto`` (int8 on a CPU where the artifact's check allows it, else
                ``torch``), ``torch`` (adapter merged), ``torch-int8``, ``onnx`` or
                ``onnx-int8`` (see :mod:`lepton_nlp.inference.backends`; the ONNX files are
                cached). ``predictor.backend`` names the one chosen.
            max_batch_tokens: also close a batch when items x longest would pass this.
            threads: CPU threads for torch and ONNX Runtime (None: their default).
            packing: with a torch backend, run padding-free batches where the encoder allows
                (BERT, RoBERTa, XLM-R: :mod:`lepton_nlp.inference.packing`); same outputs.
        """
        from transformers import AutoTokenizer

        from lepton_nlp.inference.backends import (
            check_backend,
            onnx_cache,
            prepare_backend,
            resolve_backend,
        )
        from lepton_nlp.inference.int8_check import read_ranges

        check_backend(backend)
        if threads:
            torch.set_num_threads(threads)
        info = read_artifact(path)
        task = get_task(info.task_version)
        tokenizer = AutoTokenizer.from_pretrained(str(info.path / "tokenizer"))
        if info.peft_method == "full":
            model = task.load_model(str(info.weights_dir), info.spec)
        else:
            from peft import PeftModel

            base = task.load_model(resolve_model(base_model or info.base_model), info.spec)
            model = PeftModel.from_pretrained(base, str(info.weights_dir))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = model.to(device)
        backend = resolve_backend(backend, info, device)
        log.info("%s: backend %s", info.name, backend)
        # Every backend merges a LoRA-family adapter into the weights first.
        model = prepare_backend(
            model,
            tokenizer,
            task,
            backend,
            onnx_cache(info, base_model),
            threads,
            packing,
            read_ranges(info.path) if backend == "torch-int8" else None,
        )
        predictor = cls.from_model(model, tokenizer, info, batch_size=batch_size)
        predictor.max_batch_tokens = max_batch_tokens
        predictor.backend = backend
        return predictor

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, info: ArtifactInfo, batch_size: int = 32
    ) -> Predictor:
        """Wrap a model already in memory (e.g. right after training) for prediction."""
        config = getattr(model, "active_peft_config", None)
        if (
            config is not None
            and config.is_prompt_learning
            and get_task(info.task_version).record_kind == "tokens"
        ):
            model = _SkipVirtualTokens(model, config.num_virtual_tokens)
        model.eval()
        return cls(model, tokenizer, info, batch_size=batch_size)

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    def predict(self, inputs: Iterable[Any]) -> list[dict]:
        """Predict a list of inputs (strings, or dicts with ``text``; NER also ``tokens``).

        Returns:
            One dict per input, in input order: ``{"label", "score", "scores"}`` for
            classification (``{"labels", "scores"}`` multi-label), ``{"text", "entities",
            "tags"}`` for NER, entities as ``{"label", "start", "end", "text", "score"}``;
            ``{"label", "relation", "score", "scores", "head", "tail", ...}`` for relations,
            ``{"answer", "start", "end", "score", "no_answer"}`` for QA and
            ``{"generated_text"}`` for summarization and translation.
        """
        items = [self.task.prepare_input(item) for item in inputs]
        return predict_items(
            self.task,
            self.model,
            self.tokenizer,
            self.spec,
            items,
            self.batch_size,
            self.max_batch_tokens,
        )

    def predict_one(self, item: Any) -> dict:
        return self.predict([item])[0]

    def evaluate(self, records: list[dict]) -> dict[str, float]:
        """Score labelled records (``text``/``label`` or ``tokens``/``tags``) with this predictor."""
        self.task.check_records(records, self.spec, "evaluation")
        predictions = self.predict(records)
        metrics = self.task.evaluate_predictions(predictions, records, self.spec)
        metrics["examples"] = len(records)
        return metrics
