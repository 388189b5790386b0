"""Extractive question answering: question + context -> answer span, over overlapping windows.

A context longer than the model's window is cut into windows of ``model.max_length`` tokens
that overlap by ``task_options.stride`` tokens, each paired with the question. Training
marks the answer's first and last token in every window that holds it (the [CLS] token in
windows that do not); prediction scores the ``n_best`` start and end tokens of every
window, keeps spans inside the context and at most ``max_answer_length`` tokens long, and
maps the best one back to characters of the context. With ``allow_no_answer`` (SQuAD 2.0)
the answer is empty when the [CLS] "null" score beats the best span by more than
``null_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from lepton_nlp.data.squad import read_qa_records
from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.squad import squad_metrics
from lepton_nlp.hub import MINILM
from lepton_nlp.tasks.base import TaskSpec, register_task, run_settings

__all__ = ["QaOptions", "QuestionAnsweringTask"]


@dataclass
class QaOptions:
    """Windows over long contexts and the post-processing of answer spans."""

    stride: int = 128
    """Tokens shared by consecutive windows of a context longer than one window."""
    max_question_length: int = 64
    """Questions longer than this many tokens are cut, so the context keeps its room."""
    max_answer_length: int = 30
    """Longest answer in tokens."""
    n_best: int = 20
    """Start and end candidates per window that post-processing pairs up."""
    allow_no_answer: bool = False
    """SQuAD 2.0: answer nothing (``""``) when the null score wins by ``null_threshold``."""
    null_threshold: float = 0.0
    """How much the null score (start and end logits of [CLS]) must beat the best span's."""

    def __post_init__(self) -> None:
        if self.stride < 0:
            raise ConfigError(f"task_options.stride={self.stride} must be 0 or more.")
        for name in ("max_question_length", "max_answer_length", "n_best"):
            if getattr(self, name) < 1:
                raise ConfigError(f"task_options.{name}={getattr(self, name)} must be at least 1.")


def _options(spec: TaskSpec) -> QaOptions:
    return QaOptions(**spec.options)


def _check_window(spec: TaskSpec, options: QaOptions) -> None:
    # [CLS] question [SEP] context [SEP]: the context part must be longer than the overlap,
    # or windows would never advance.
    room = spec.max_length - options.max_question_length - 3
    if options.stride >= room:
        raise ConfigError(
            f"model.max_length={spec.max_length} leaves {room} tokens of context after a question "
            f"of up to task_options.max_question_length={options.max_question_length} tokens, not "
            f"more than task_options.stride={options.stride}. Raise model.max_length or lower the "
            "stride or max_question_length (e.g. max_length 384, stride 128, max_question_length 64)."
        )


def _clip_questions(questions: list[str], tokenizer: Any, limit: int) -> list[str]:
    """Cut questions longer than ``limit`` tokens at the end of their ``limit``-th token."""
    encoded = tokenizer(
        questions, add_special_tokens=False, return_offsets_mapping=True, truncation=False
    )
    return [
        question[: offsets[limit - 1][1]].rstrip() if len(offsets) > limit else question
        for question, offsets in zip(questions, encoded["offset_mapping"], strict=True)
    ]


def _windows(tokenizer: Any, items: list[dict], spec: TaskSpec, **kwargs: Any) -> Any:
    options = _options(spec)
    _check_window(spec, options)
    questions = _clip_questions(
        [item["question"].strip() for item in items], tokenizer, options.max_question_length
    )
    return tokenizer(
        questions,
        [item["context"] for item in items],
        truncation="only_second",
        max_length=spec.max_length,
        stride=options.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        # peft's PeftModelForQuestionAnswering (0.21) does not pass token_type_ids on to
        # the model, so an adapter trains without them while its merged or exported model
        # would get them: no path gets them, so every path sees the same inputs.
        return_token_type_ids=False,
        **kwargs,
    )


def _context_range(sequence_ids: list[int | None]) -> tuple[int, int] | None:
    """First and last token of the context in a window (None when it holds none)."""
    positions = [i for i, s in enumerate(sequence_ids) if s == 1]
    return (positions[0], positions[-1]) if positions else None


def _answer_tokens(
    offsets: list[tuple[int, int]], context: tuple[int, int] | None, start: int, end: int
) -> tuple[int, int] | None:
    """Tokens of the window that cover characters [start, end), or None if it does not hold them."""
    if context is None:
        return None
    first, last = context
    if offsets[first][0] > start or offsets[last][1] < end:
        return None
    token_start = first
    while token_start <= last and offsets[token_start][0] <= start:
        token_start += 1
    token_end = last
    while token_end >= first and offsets[token_end][1] >= end:
        token_end -= 1
    return token_start - 1, token_end + 1


def _cls_index(input_ids: list[int], tokenizer: Any) -> int:
    """Where the null answer points: the [CLS] token (the first token if there is none)."""
    cls = tokenizer.cls_token_id
    return input_ids.index(cls) if cls is not None and cls in input_ids else 0


def _softmax_top(scores: list[float]) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    values = np.exp(values - values.max())
    return values / values.sum()


class QuestionAnsweringTask:
    """Question + context -> the answer's span in the context, with a score (SQuAD EM and F1)."""

    name = "qa"
    version = "qa.v1"
    record_kind = "qa"
    peft_task_type = "QUESTION_ANS"
    default_metric = "f1"
    options_class = QaOptions
    evaluate_by_prediction = True
    label_names = ("start_positions", "end_positions")
    data_formats: ClassVar[dict[str, str]] = {
        "squad": 'SQuAD JSON: {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": '
        '[{"question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}',
        "jsonl": 'one JSON object a line with "question", "context" and "answers" ({"text": '
        '[...], "answer_start": [...]}, character offsets into the context)',
        "hf": "a Hugging Face datasets folder (save_to_disk) with SQuAD's columns",
    }
    headline_metrics = ("exact_match", "f1")
    base_models = (MINILM,)

    def training_defaults(self, base_model: str = "") -> dict[str, Any]:
        """Starting settings of a run: LoRA (r=16) on MiniLM, windows of 384 tokens."""
        return run_settings(epochs=2, batch_size=16, learning_rate=5e-4, max_length=384)

    def default_options(self, max_length: int, base_model: str = "") -> dict[str, Any]:
        """Windows that fit ``max_length``: the defaults (stride 128, questions up to 64
        tokens) need 384 tokens or so, so a shorter window gets a proportionally shorter
        overlap and question instead of an error."""
        return {
            "stride": min(128, max_length // 3),
            "max_question_length": max(1, min(64, max_length // 6)),
        }

    def read_records(self, data: Any, path: str) -> list[dict]:
        """SQuAD JSON, JSON Lines or a ``datasets`` folder -> flat question records."""
        return read_qa_records(data, path)

    def metric_names(self, multi_label: bool) -> list[str]:
        """Metrics a run can select its best checkpoint by."""
        return ["f1", "exact_match", "loss"]

    def label_space(self, records: list[dict]) -> list[str]:
        """The two logits per token of the QA head: answer start and answer end."""
        if not records:
            raise DataError("The training set is empty: give data.train a file with questions.")
        if not any(r["answers"]["text"] for r in records):
            raise DataError("No training question has an answer; check the file (SQuAD 'answers').")
        return ["start", "end"]

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None:
        for i, record in enumerate(records):
            missing = [k for k in ("question", "context", "answers") if k not in record]
            if missing:
                raise DataError(
                    f"The {split} data, record {i} (id {record.get('id')!r}), lacks {missing}; "
                    "question answering records need question, context and answers."
                )

    def input_length(self, item: dict) -> int:
        """Characters of question and context (how many windows and tokens it needs)."""
        return len(item["context"]) + len(item["question"])

    def prepare_spec(self, spec: TaskSpec, splits: dict, tokenizer: Any) -> None:
        """Fail before the model loads when the windows cannot work."""
        _check_window(spec, _options(spec))
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                "Question answering maps answers back to characters with a fast tokenizer's "
                f"offsets; {type(tokenizer).__name__} is not one. Use a model with a tokenizer.json."
            )

    def load_model(self, model_path: str, spec: TaskSpec) -> Any:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(model_path)

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]:
        """One feature per window, with ``start_positions``/``end_positions`` from the first answer."""
        encoded = _windows(tokenizer, records, spec)
        owners = encoded["overflow_to_sample_mapping"]
        features = []
        for w, offsets in enumerate(encoded["offset_mapping"]):
            record = records[owners[w]]
            feature = {
                key: encoded[key][w] for key in ("input_ids", "attention_mask") if key in encoded
            }
            answers = record.get("answers")
            if answers is not None:
                cls = _cls_index(feature["input_ids"], tokenizer)
                span = None
                if answers["text"]:
                    start = answers["answer_start"][0]
                    span = _answer_tokens(
                        offsets,
                        _context_range(encoded.sequence_ids(w)),
                        start,
                        start + len(answers["text"][0]),
                    )
                feature["start_positions"], feature["end_positions"] = span or (cls, cls)
            features.append(feature)
        return features

    def collator(self, tokenizer: Any):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def virtual_token_collator(self, collator: Any, virtual_tokens: int):
        """Prompt-learning adapters put virtual tokens first: shift the answer positions past them."""

        def collate(features: list[dict]) -> dict:
            batch = collator(features)
            for key in self.label_names:
                if key in batch:
                    batch[key] = batch[key] + virtual_tokens
            return batch

        return collate

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]:
        raise NotImplementedError(
            "Question answering is scored from predictions over whole contexts "
            "(evaluate_by_prediction); the trainer calls evaluate_predictions."
        )

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]:
        """SQuAD exact match and F1 (fractions in [0, 1]), best over each question's gold answers."""
        return squad_metrics(
            [p["answer"] for p in predictions], [r["answers"]["text"] for r in records]
        )

    def prepare_input(self, item: Any) -> dict:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            item = {"question": item[0], "context": item[1]}
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) for key in ("question", "context")
        ):
            raise DataError(
                "Question answering input must be {'question': ..., 'context': ...} "
                f"(or a (question, context) pair) of strings, got {item!r}."
            )
        if not item["question"].strip():
            raise DataError(f"Question answering input has an empty question: {item!r}.")
        return {"question": item["question"], "context": item["context"]}

    @torch.inference_mode()
    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]:
        """The best span of each item's context: ``{"answer", "start", "end", "score", "no_answer"}``.

        ``start``/``end`` are character offsets into the context (``context[start:end] ==
        answer``); ``score`` is the answer's probability among the n-best candidates (and the
        null answer when ``allow_no_answer``). A "no answer" prediction has ``answer == ""``,
        ``start``/``end`` None and ``no_answer`` True.
        """
        options = _options(spec)
        encoded = _windows(tokenizer, items, spec, padding=True, return_tensors="pt")
        owners = encoded["overflow_to_sample_mapping"].tolist()
        offsets = encoded["offset_mapping"].tolist()
        inputs = {key: encoded[key] for key in ("input_ids", "attention_mask") if key in encoded}
        # Long contexts make many windows: run them in chunks no larger than the batch.
        chunk = max(len(items), 8)
        starts, ends = [], []
        for first in range(0, len(owners), chunk):
            batch = {k: v[first : first + chunk].to(model.device) for k, v in inputs.items()}
            output = model(**batch)
            length = batch["input_ids"].shape[1]
            # Prompt-learning adapters prepend virtual tokens; keep the positions of the input.
            starts.append(output.start_logits[:, -length:].float().cpu().numpy())
            ends.append(output.end_logits[:, -length:].float().cpu().numpy())
        start_logits, end_logits = np.concatenate(starts), np.concatenate(ends)

        # (start, end) in characters -> best score; overlapping windows find the same spans.
        candidates: list[dict[tuple[int, int], float]] = [{} for _ in items]
        null_scores: list[float | None] = [None] * len(items)
        for w, owner in enumerate(owners):
            cls = _cls_index(encoded["input_ids"][w].tolist(), tokenizer)
            null = float(start_logits[w, cls] + end_logits[w, cls])
            if null_scores[owner] is None or null < null_scores[owner]:
                null_scores[owner] = null
            in_context = np.array([s == 1 for s in encoded.sequence_ids(w)])
            if not in_context.any():
                continue
            start_w = np.where(in_context, start_logits[w], -np.inf)
            end_w = np.where(in_context, end_logits[w], -np.inf)
            top_starts = np.argsort(start_w)[::-1][: options.n_best]
            top_ends = np.argsort(end_w)[::-1][: options.n_best]
            for s in top_starts:
                if not in_context[s]:
                    continue
                for e in top_ends:
                    if not in_context[e] or e < s or e - s + 1 > options.max_answer_length:
                        continue
                    span = (offsets[w][s][0], offsets[w][e][1])
                    score = float(start_w[s] + end_w[e])
                    if score > candidates[owner].get(span, -np.inf):
                        candidates[owner][span] = score

        results = []
        for i, item in enumerate(items):
            ranked = sorted(
                ((score, start, end) for (start, end), score in candidates[i].items()),
                reverse=True,
            )[: options.n_best]
            null = null_scores[i]
            scores = [c[0] for c in ranked]
            if options.allow_no_answer and null is not None:
                scores.append(null)
            probs = _softmax_top(scores) if scores else np.array([])
            no_answer = not ranked or (
                options.allow_no_answer
                and null is not None
                and null - ranked[0][0] > options.null_threshold
            )
            if no_answer:
                score = float(probs[-1]) if options.allow_no_answer and len(probs) else 0.0
                result = {"answer": "", "start": None, "end": None, "score": round(score, 6)}
            else:
                _, start, end = ranked[0]
                result = {
                    "answer": item["context"][start:end],
                    "start": start,
                    "end": end,
                    "score": round(float(probs[0]), 6),
                }
            result["no_answer"] = no_answer
            if options.allow_no_answer and null is not None and ranked:
                result["null_score_diff"] = round(null - ranked[0][0], 6)
            results.append(result)
        return results


register_task(QuestionAnsweringTask())
