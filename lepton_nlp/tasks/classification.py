"""Sequence classification, single-label (softmax) and multi-label (sigmoid)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.metrics import classification_metrics, multilabel_metrics
from lepton_nlp.hub import MINILM
from lepton_nlp.tasks.base import TaskSpec, register_task, run_settings, truncated_at

__all__ = ["POOLINGS", "ClassificationOptions", "ClassificationTask"]

#: How a text becomes the one vector the classification head reads.
POOLINGS = ("cls", "mean", "mean-normalized")


@dataclass
class ClassificationOptions:
    """How the classification head reads the encoder."""

    pooling: str = "cls"
    """``cls``: the model's own pooler over the first token (what
    ``AutoModelForSequenceClassification`` does). ``mean``: the mean of the token vectors
    under the attention mask, the sentence vector sentence-transformers encoders such as
    all-MiniLM-L6-v2 were trained to produce (their pooler was never trained).
    ``mean-normalized``: that mean scaled to unit length, the vector a SetFit-style head
    (``lepton-nlp fewshot --method setfit``) was fitted on."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"task_options.pooling={self.pooling!r} is not a pooling; choose one of "
                f"{', '.join(POOLINGS)}."
            )


def _mean_pooled(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook on an encoder: its pooled output becomes the masked mean of its tokens."""
    hidden = output[0]
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1:
        mask = args[1]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], device=hidden.device)
    # Prompt tuning's virtual tokens come first in both the mask and the hidden states.
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if isinstance(output, tuple):
        return (output[0], pooled, *output[2:])
    output["pooler_output"] = pooled
    return output


def _unit_mean_pooled(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook: the masked mean of the tokens, scaled to unit length."""
    output = _mean_pooled(module, args, kwargs, output)
    pooled = torch.nn.functional.normalize(output[1], dim=-1)
    if isinstance(output, tuple):
        return (output[0], pooled, *output[2:])
    output["pooler_output"] = pooled
    return output


def _labels_of(record: dict) -> list[str]:
    label = record["label"]
    return list(label) if isinstance(label, list) else [label]


class ClassificationTask:
    """Text -> one label with probabilities, or any number of labels (multi-label)."""

    name = "classification"
    version = "classification.v1"
    record_kind = "text"
    peft_task_type = "SEQ_CLS"
    default_metric = "macro_f1"
    options_class = ClassificationOptions
    data_formats: ClassVar[dict[str, str]] = {
        "csv": "a CSV file with a header row, a text column and a label column (name them "
        "under Columns)",
        "jsonl": 'one JSON object a line with a text and a label field, e.g. {"text": '
        '"Profit rose.", "label": "positive"}',
        "fpb": "Financial PhraseBank's lines: a sentence, '@' and its label (latin-1)",
        "hf": "a Hugging Face datasets folder (save_to_disk) with text and label columns",
    }
    headline_metrics = ("accuracy", "macro_f1")
    base_models = (MINILM,)

    def training_defaults(self, base_model: str = "") -> dict[str, Any]:
        """Starting settings of a run: LoRA (r=16) on MiniLM."""
        return run_settings(epochs=5, batch_size=16, learning_rate=5e-4, max_length=128)

    def metric_names(self, multi_label: bool) -> list[str]:
        """Metrics a run can select its best checkpoint by (per-label F1 aside)."""
        names = (
            ["subset_accuracy", "micro_f1", "macro_f1"]
            if multi_label
            else ["accuracy", "macro_f1", "weighted_f1"]
        )
        return [*names, "loss"]

    def label_space(self, records: list[dict]) -> list[str]:
        if not records:
            raise DataError("The training set is empty: give data.train a file with labelled rows.")
        counts = Counter(label for r in records for label in _labels_of(r))
        if len(counts) < 2:
            raise DataError(
                f"The training set has one class only ({next(iter(counts), None)!r}); a classifier "
                "needs at least two. Check data.label_column and the file."
            )
        return sorted(counts)

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None:
        known = set(spec.labels)
        unseen = Counter(label for r in records for label in _labels_of(r) if label not in known)
        if unseen:
            raise DataError(
                f"The {split} data has label(s) never seen in training: {dict(unseen)}. "
                f"Training labels: {spec.labels}. Fix the labels or add examples of them to training."
            )

    def load_model(self, model_path: str, spec: TaskSpec) -> Any:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            model_path,
            num_labels=len(spec.labels),
            id2label=dict(enumerate(spec.labels)),
            label2id={label: i for i, label in enumerate(spec.labels)},
            problem_type="multi_label_classification"
            if spec.multi_label
            else "single_label_classification",
        )
        self.configure_encoder(getattr(model, model.base_model_prefix, None), spec)
        return model

    def configure_encoder(self, encoder: Any, spec: TaskSpec) -> None:
        """Make ``encoder`` (the model's encoder attribute, or a shared encoder's view) pool
        as ``task_options.pooling`` says.

        ``cls`` leaves the model as transformers builds it. ``mean`` and ``mean-normalized``
        add a forward hook, so parameter names, saved weights and the model class stay the
        same, and every path that calls the model (training, PEFT, merging, int8, ONNX
        export) pools alike.
        """
        options = ClassificationOptions(**spec.options)
        if options.pooling == "cls":
            return
        if getattr(encoder, "pooler", None) is None:
            raise ConfigError(
                f"task_options.pooling={options.pooling} needs a model whose classification "
                f"head reads the encoder's pooled output (the BERT family); "
                f"{type(encoder).__name__} has no pooler. Use task_options.pooling=cls with "
                "this model."
            )
        hook = _mean_pooled if options.pooling == "mean" else _unit_mean_pooled
        encoder.register_forward_hook(hook, with_kwargs=True)

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]:
        index = {label: i for i, label in enumerate(spec.labels)}
        encoded = tokenizer(
            [r["text"] for r in records], truncation=True, max_length=spec.max_length
        )
        features = []
        for i, record in enumerate(records):
            feature = {key: encoded[key][i] for key in encoded}
            if "label" in record:
                if spec.multi_label:
                    target = [0.0] * len(spec.labels)
                    for label in _labels_of(record):
                        target[index[label]] = 1.0
                    feature["labels"] = target
                else:
                    feature["labels"] = index[record["label"]]
            features.append(feature)
        return features

    def collator(self, tokenizer: Any):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def _decode(self, probs: np.ndarray, spec: TaskSpec) -> list[dict]:
        out = []
        for row in probs:
            scores = {label: round(float(p), 6) for label, p in zip(spec.labels, row, strict=True)}
            if spec.multi_label:
                chosen = [
                    label for label, p in zip(spec.labels, row, strict=True) if p >= spec.threshold
                ]
                out.append({"labels": chosen, "scores": scores})
            else:
                best = int(np.argmax(row))
                out.append(
                    {
                        "label": spec.labels[best],
                        "score": round(float(row[best]), 6),
                        "scores": scores,
                    }
                )
        return out

    def _probs(self, logits: Any, spec: TaskSpec) -> np.ndarray:
        logits = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
        return (
            torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, dim=-1)
        ).numpy()

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]:
        predictions = self._decode(self._probs(logits, spec), spec)
        label_ids = np.asarray(label_ids)
        if spec.multi_label:
            refs = [
                {"label": [spec.labels[j] for j in np.flatnonzero(row > 0.5)]} for row in label_ids
            ]
        else:
            refs = [{"label": spec.labels[int(i)]} for i in label_ids]
        return self.evaluate_predictions(predictions, refs, spec)

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]:
        if spec.multi_label:
            return multilabel_metrics(
                [p["labels"] for p in predictions], [_labels_of(r) for r in records], spec.labels
            )
        return classification_metrics(
            [p["label"] for p in predictions], [r["label"] for r in records], spec.labels
        )

    def prepare_input(self, item: Any) -> dict:
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise DataError(
                f"Classification input must be a string or {{'text': ...}}, got {item!r}."
            )
        return {"text": text}

    def chars_read(self, tokenizer: Any, item: dict, spec: TaskSpec) -> int | None:
        """Characters of the text the model reads (``max_length`` tokens); None: all of it."""
        return truncated_at(tokenizer, item["text"], spec.max_length)

    @torch.inference_mode()
    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]:
        batch = tokenizer(
            [item["text"] for item in items],
            truncation=True,
            max_length=spec.max_length,
            padding=True,
            return_tensors="pt",
        ).to(model.device)
        logits = model(**batch).logits
        return self._decode(self._probs(logits.float().cpu(), spec), spec)


register_task(ClassificationTask())
