"""Relation extraction: two marked arguments in a text -> a directed relation label (R-BERT style).

The two arguments are wrapped in punctuation markers that the vocabulary already has
(``@ head @`` and ``# tail #``; typed ``@ * person * Anna @`` where entity types are known,
after Zhou & Chen 2021), so no new embeddings are needed and every PEFT method can adapt
the encoder. The model (:mod:`lepton_nlp.models.relation`) classifies ``[CLS]``
concatenated with the pooled representations of the two marked spans (Wu & He 2019, R-BERT),
or of their opening markers; this module marks them and builds the masks. Labels keep the
direction (``Cause-Effect(e2,e1)``); the metric is SemEval-2010 Task 8's official score.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from lepton_nlp.data.semeval import entity_span, parse_marked
from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.relation import relation_metrics, relation_type
from lepton_nlp.hub import MINILM
from lepton_nlp.models.relation import load_relation_model
from lepton_nlp.tasks.base import TaskSpec, register_task, run_settings

__all__ = [
    "RelationCollator",
    "RelationOptions",
    "RelationTask",
    "load_relation_model",
    "mark_arguments",
    "relation_pairs",
]

log = logging.getLogger(__name__)

_MASKS = ("e1_mask", "e2_mask")


@dataclass
class RelationOptions:
    """Options of the relation task (``task_options`` in a run config)."""

    head_marker: str = "@"
    """Text put on both sides of the head (first) argument, ``e1``; pick a token the vocabulary has."""
    tail_marker: str = "#"
    """Text put on both sides of the tail (second) argument, ``e2``."""
    typed_markers: bool = True
    """Write the entity types inside the markers (``@ * person * Anna @``, ``# ^ city ^ Oslo #``)
    when every training example gives both types; untyped data (SemEval) keeps plain markers."""
    pooling: str = "mean"
    """Argument representation: ``mean`` (R-BERT: average over the marked span, markers
    included) or ``start`` (the opening marker's token, Baldini Soares et al. 2019)."""
    use_cls: bool = True
    """Give the classifier the ``[CLS]`` vector besides the two argument vectors."""
    other_label: str = "Other"
    """The no-relation label, left out of the macro-F1 (SemEval: ``Other``; TACRED: ``no_relation``)."""

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "start"):
            raise ConfigError(f"task_options.pooling={self.pooling!r}; choose mean or start.")
        for name in ("head_marker", "tail_marker"):
            value = getattr(self, name)
            if not value.strip() or value != value.strip():
                raise ConfigError(
                    f"task_options.{name}={value!r} must be non-empty text without outer spaces."
                )
        if self.head_marker == self.tail_marker:
            raise ConfigError(
                "task_options.head_marker and tail_marker are the same; the model could not tell "
                "the head from the tail (and so not the direction). Use two different markers."
            )


def _options(spec: TaskSpec) -> RelationOptions:
    return RelationOptions(**spec.options)


# --- inputs ------------------------------------------------------------------------------


def mark_arguments(
    item: dict, options: RelationOptions, typed: bool = False
) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """Insert the argument markers into the text.

    Args:
        item: ``{"text", "head": {"start", "end"[, "type"]}, "tail": {...}}``.
        options: the markers.
        typed: write the argument types (where given) inside the markers.

    Returns:
        The marked text and, for ``head`` and ``tail``, ``(start, end, opening_end)``: the
        character range of the whole marked argument and the end of its opening marker.
    """
    text = item["text"]
    pieces: list[str] = []
    ranges: dict[str, tuple[int, int, int]] = {}
    position = length = 0
    for name in sorted(("head", "tail"), key=lambda n: item[n]["start"]):
        span = item[name]
        marker, type_marker = (
            (options.head_marker, "*") if name == "head" else (options.tail_marker, "^")
        )
        opening = f"{marker} "
        if typed and span.get("type"):
            opening += f"{type_marker} {span['type']} {type_marker} "
        closing = f" {marker}"
        before = text[position : span["start"]]
        entity = text[span["start"] : span["end"]]
        start = length + len(before)
        pieces += [before, opening, entity, closing]
        length = start + len(opening) + len(entity) + len(closing)
        ranges[name] = (start, length, start + len(marker))
        position = span["end"]
    pieces.append(text[position:])
    return "".join(pieces), ranges


def _token_masks(
    offsets: list[tuple[int, int]],
    sequence_ids: list[int | None],
    ranges: dict[str, tuple[int, int, int]],
    pooling: str,
) -> dict[str, list[int]]:
    masks = {}
    for name, key in (("head", "e1_mask"), ("tail", "e2_mask")):
        start, end, opening_end = ranges[name]
        stop = opening_end if pooling == "start" else end
        mask = [0] * len(offsets)
        for j, ((s, e), seq) in enumerate(zip(offsets, sequence_ids, strict=True)):
            if seq is not None and e > s and s < stop and e > start:
                mask[j] = 1
                if pooling == "start":
                    break
        masks[key] = mask
    return masks


def _window(
    offsets: list[tuple[int, int]],
    sequence_ids: list[int | None],
    ranges: dict[str, tuple[int, int, int]],
    budget: int,
) -> tuple[int, int]:
    """Character range of at most ``budget`` tokens, centred on the two arguments."""
    content = [j for j, seq in enumerate(sequence_ids) if seq is not None]
    inside = [
        j
        for j in content
        if any(offsets[j][0] < end and offsets[j][1] > start for start, end, _ in ranges.values())
    ]
    first, last = min(inside), max(inside)
    k0, k1 = content[0], content[-1]
    if last - first + 1 <= budget:
        slack = budget - (last - first + 1)
        a = max(k0, first - slack // 2)
        b = min(k1, a + budget - 1)
        a = max(k0, b - budget + 1)
    else:
        a, b = first, first + budget - 1
    return offsets[a][0], offsets[b][1]


def encode_items(
    items: list[dict], tokenizer: Any, spec: TaskSpec, with_labels: bool = True
) -> list[dict]:
    """Marked, tokenized items with argument masks (``e1_mask``, ``e2_mask``) and label ids.

    A text longer than ``spec.max_length`` tokens is cut to a window around its two
    arguments, so truncation never drops an argument that fits.
    """
    options = _options(spec)
    typed = bool(spec.extra.get("typed"))
    marked = [mark_arguments(item, options, typed) for item in items]
    encoded = tokenizer([m[0] for m in marked], return_offsets_mapping=True)
    budget = spec.max_length - tokenizer.num_special_tokens_to_add()
    index = {label: i for i, label in enumerate(spec.labels)}
    features = []
    for i, (text, ranges) in enumerate(marked):
        ids, offsets = encoded["input_ids"][i], encoded["offset_mapping"][i]
        seq = encoded.sequence_ids(i)
        feature = {key: encoded[key][i] for key in encoded if key != "offset_mapping"}
        if len(ids) > spec.max_length:
            lo, hi = _window(offsets, seq, ranges, budget)
            ranges = {
                name: tuple(min(max(p - lo, 0), hi - lo) for p in r) for name, r in ranges.items()
            }
            window = tokenizer(
                text[lo:hi],
                return_offsets_mapping=True,
                truncation=True,
                max_length=spec.max_length,
            )
            offsets, seq = window["offset_mapping"], window.sequence_ids(0)
            feature = {key: window[key] for key in window if key != "offset_mapping"}
        feature.update(_token_masks(offsets, seq, ranges, options.pooling))
        if not all(any(feature[k]) for k in _MASKS):
            log.warning(
                "An argument of %r does not fit in model.max_length=%d tokens; it is represented "
                "by zeros. Raise model.max_length.",
                items[i]["text"][:60],
                spec.max_length,
            )
        if with_labels and "label" in items[i]:
            feature["labels"] = index[items[i]["label"]]
        features.append(feature)
    return features


class RelationCollator:
    """Pad token ids with the tokenizer, and the argument masks to the same length.

    Padding is always on the right, so ``[CLS]`` stays at position 0 for the head.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict]) -> dict:
        masks = {key: [f[key] for f in features] for key in _MASKS}
        labels = [f["labels"] for f in features if "labels" in f]
        rest = [{k: v for k, v in f.items() if k not in (*_MASKS, "labels")} for f in features]
        batch = self.tokenizer.pad(rest, padding_side="right", return_tensors="pt")
        length = batch["input_ids"].shape[1]
        for key, rows in masks.items():
            padded = torch.zeros(len(rows), length)
            for i, row in enumerate(rows):
                padded[i, : len(row)] = torch.tensor(row, dtype=torch.float)
            batch[key] = padded
        if labels:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


# --- the task ----------------------------------------------------------------------------


def _reverse(label: str) -> str | None:
    if label.endswith("(e1,e2)"):
        return label[: -len("(e1,e2)")] + "(e2,e1)"
    if label.endswith("(e2,e1)"):
        return label[: -len("(e2,e1)")] + "(e1,e2)"
    return None


def _argument(item: dict, name: str) -> dict:
    span = item[name]
    out = {
        "start": span["start"],
        "end": span["end"],
        "text": item["text"][span["start"] : span["end"]],
    }
    if span.get("type"):
        out["type"] = span["type"]
    return out


def relation_pairs(text: str | dict, entities: list[dict] | None = None) -> list[dict]:
    """Every pair of entities of a text, as relation inputs for ``Predictor.predict``.

    Pairs follow text order (the head is the earlier entity, as in SemEval, whose labels
    then say the direction); overlapping entities are not paired.

    Args:
        text: the text, or an NER prediction ``{"text", "entities"}``.
        entities: spans ``{"start", "end"[, "label" or "type"]}`` (an NER prediction's
            entities) or ``[start, end]``.

    Returns:
        ``{"text", "head", "tail"}`` items; the entity types ride along for typed markers.
    """
    if isinstance(text, dict):
        entities = text.get("entities") if entities is None else entities
        text = text.get("text")
    if not isinstance(text, str) or entities is None:
        raise DataError(
            "relation_pairs needs a text and its entities: relation_pairs(text, entities) or "
            "relation_pairs(ner_prediction)."
        )
    spans = sorted(
        (entity_span(e, text, f"entity {i}") for i, e in enumerate(entities)),
        key=lambda s: (s["start"], s["end"]),
    )
    return [
        {"text": text, "head": head, "tail": tail}
        for i, head in enumerate(spans)
        for tail in spans[i + 1 :]
        if head["end"] <= tail["start"]
    ]


class RelationTask:
    """A text with two marked arguments -> a directed relation, scored by SemEval's official F1."""

    name = "relation"
    version = "relation.v1"
    record_kind = "relation"
    peft_task_type = "SEQ_CLS"
    default_metric = "macro_f1"
    options_class = RelationOptions
    data_formats: ClassVar[dict[str, str]] = {
        "jsonl": 'one JSON object a line with "text", "label" and the two arguments, as '
        'character spans ("head": {"start": 0, "end": 9}, "tail": {...}) or marked in the '
        "text with <e1>...</e1> and <e2>...</e2>",
        "semeval": 'SemEval-2010 Task 8 text: a line 1<TAB>"The <e1>storm</e1> caused a '
        '<e2>flood</e2>.", the label on the next line, then a blank line',
    }
    headline_metrics = ("macro_f1", "micro_f1", "accuracy")
    base_models = (MINILM,)

    def training_defaults(self, base_model: str = "") -> dict[str, Any]:
        """Starting settings of a run: LoRA (r=16) on MiniLM."""
        return run_settings(epochs=5, batch_size=16, learning_rate=5e-4, max_length=128)

    def metric_names(self, multi_label: bool) -> list[str]:
        """Metrics a run can select its best checkpoint by (per-relation F1 aside)."""
        return ["macro_f1", "micro_f1", "accuracy", "macro_precision", "macro_recall", "loss"]

    def read_records(self, data: Any, path: str) -> list[dict]:
        """SemEval-2010 Task 8 files (``data.format=semeval``) or JSON Lines (``jsonl``)."""
        from lepton_nlp.data.semeval import read_relation_jsonl, read_semeval

        if data.format == "semeval":
            return read_semeval(path, data.encoding)
        if data.format == "jsonl":
            return read_relation_jsonl(path, data.text_column, data.label_column, data.encoding)
        raise DataError(
            f"data.format={data.format!r} cannot hold relation records; use semeval "
            "(SemEval-2010 Task 8 files) or jsonl ({'text', 'head', 'tail', 'label'} lines)."
        )

    def label_space(self, records: list[dict]) -> list[str]:
        """Labels seen in training, plus the reverse direction of each directed one.

        A model that knows ``R(e1,e2)`` may meet ``R(e2,e1)`` in test data even when training
        has none (SemEval's ``Entity-Destination(e2,e1)`` has one training example).
        """
        if not records:
            raise DataError("The training set is empty: give data.train a file with relations.")
        missing = sum("label" not in r for r in records)
        if missing:
            raise DataError(f"{missing} training record(s) have no label.")
        labels = {r["label"] for r in records}
        if len(labels) < 2:
            raise DataError(
                f"The training set has one relation only ({next(iter(labels))!r}); a classifier "
                "needs at least two (add the no-relation examples, e.g. 'Other')."
            )
        labels |= {reverse for label in labels if (reverse := _reverse(label))}
        return sorted(labels)

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None:
        known = set(spec.labels)
        unseen = Counter(r["label"] for r in records if "label" in r and r["label"] not in known)
        if unseen:
            raise DataError(
                f"The {split} data has relation(s) never seen in training: {dict(unseen)}. "
                f"Training relations: {spec.labels}."
            )

    def prepare_spec(self, spec: TaskSpec, splits: dict[str, list[dict]], tokenizer: Any) -> None:
        """Typed markers only when the options ask and every training argument has a type."""
        options = _options(spec)
        spec.extra["typed"] = bool(
            options.typed_markers
            and all(r["head"].get("type") and r["tail"].get("type") for r in splits["train"])
        )

    def load_model(self, model_path: str, spec: TaskSpec) -> Any:
        return load_relation_model(model_path, spec.labels, _options(spec).use_cls)

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]:
        return encode_items(records, tokenizer, spec)

    def collator(self, tokenizer: Any) -> RelationCollator:
        return RelationCollator(tokenizer)

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]:
        predicted = np.asarray(logits).argmax(-1)
        return relation_metrics(
            [spec.labels[int(i)] for i in predicted],
            [spec.labels[int(i)] for i in np.asarray(label_ids)],
            _options(spec).other_label,
        )

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]:
        return relation_metrics(
            [p["label"] for p in predictions],
            [r["label"] for r in records],
            _options(spec).other_label,
        )

    def prepare_input(self, item: Any) -> dict:
        """A text with ``<e1>..</e1>``/``<e2>..</e2>``, or ``{"text", "head", "tail"}`` spans."""
        if isinstance(item, str):
            return parse_marked(item, "input")
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            text = item["text"]
            if "head" in item and "tail" in item:
                out = {
                    "text": text,
                    "head": entity_span(item["head"], text, "input head"),
                    "tail": entity_span(item["tail"], text, "input tail"),
                }
                head, tail = out["head"], out["tail"]
                if head["start"] < tail["end"] and tail["start"] < head["end"]:
                    raise DataError(
                        f"The head {head} and tail {tail} overlap; give disjoint spans."
                    )
                return out
            return parse_marked(text, "input")
        raise DataError(
            "Relation input must be a text marked with <e1>..</e1> and <e2>..</e2>, or "
            f"{{'text', 'head': [start, end], 'tail': [start, end]}}; got {item!r}. "
            "For every entity pair of a text use relation_pairs(text, entities)."
        )

    def input_length(self, item: dict) -> int:
        return len(item["text"])

    @torch.inference_mode()
    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]:
        features = encode_items(items, tokenizer, spec, with_labels=False)
        batch = RelationCollator(tokenizer)(features)
        device = getattr(model, "device", None) or next(model.parameters()).device
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        out = []
        for item, row in zip(items, probs, strict=True):
            best = int(np.argmax(row))
            label = spec.labels[best]
            head, tail = _argument(item, "head"), _argument(item, "tail")
            reverse = label.endswith("(e2,e1)")
            out.append(
                {
                    "label": label,
                    "score": round(float(row[best]), 6),
                    "scores": {
                        name: round(float(p), 6) for name, p in zip(spec.labels, row, strict=True)
                    },
                    "relation": relation_type(label),
                    "head": head,
                    "tail": tail,
                    "subject": tail if reverse else head,
                    "object": head if reverse else tail,
                }
            )
        return out


register_task(RelationTask())
