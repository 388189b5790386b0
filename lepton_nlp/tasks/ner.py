"""Named-entity recognition as token classification, returning spans with character offsets."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import torch

from lepton_nlp.errors import DataError
from lepton_nlp.evaluation.metrics import ner_metrics
from lepton_nlp.hub import MINILM
from lepton_nlp.tasks.base import TaskSpec, register_task, run_settings

__all__ = ["NerTask", "spans_from_tags", "split_words"]

# Words as CoNLL tokenises them: abbreviations and decimals ("U.S.", "3.5"), runs of word
# characters joined by ' - & ("Johnson&Johnson"), and every other non-space character alone.
_WORD = re.compile(r"\w+(?:\.\w+)+\.?|\w+(?:['’&-]\w+)*|[^\w\s]")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Split text into (word, start, end) with character offsets."""
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def spans_from_tags(tags: list[str]) -> list[tuple[str, int, int]]:
    """IOB2 tags -> (type, first word, last word + 1); a stray I- starts a new entity."""
    spans, current = [], None
    for i, tag in enumerate([*tags, "O"]):
        if current and not (tag.startswith("I-") and tag[2:] == current[0]):
            spans.append((current[0], current[1], i))
            current = None
        if tag.startswith("B-") or (tag.startswith("I-") and current is None):
            current = (tag[2:], i)
    return spans


class NerTask:
    """Words -> IOB2 tags; raw text -> entity spans with character offsets and scores."""

    name = "ner"
    version = "ner.v1"
    record_kind = "tokens"
    peft_task_type = "TOKEN_CLS"
    default_metric = "f1"
    data_formats: ClassVar[dict[str, str]] = {
        "conll": "one word and its tag a line (e.g. 'Oslo B-LOC'), a blank line between sentences",
        "jsonl": 'one JSON object a line with "tokens" and "tags" lists of the same length',
        "hf": "a Hugging Face datasets folder (save_to_disk) with tokens and tags columns",
    }
    headline_metrics = ("accuracy", "precision", "recall", "f1")
    base_models = (MINILM,)

    def training_defaults(self, base_model: str = "") -> dict[str, Any]:
        """Starting settings of a run: LoRA (r=16) on MiniLM."""
        return run_settings(epochs=3, batch_size=16, learning_rate=1e-3, max_length=128)

    def entities_from_tags(self, tokens: list[str], tags: list[str]) -> list[dict]:
        """The entities that a sentence's IOB2 tags mark: ``{"label", "text"}`` each, the
        text its words joined by spaces (a stray I- starts an entity, as in prediction)."""
        return [
            {"label": kind, "text": " ".join(tokens[first:last])}
            for kind, first, last in spans_from_tags(tags)
        ]

    def metric_names(self, multi_label: bool) -> list[str]:
        """Metrics a run can select its best checkpoint by (per-type F1 aside)."""
        return ["f1", "precision", "recall", "accuracy", "loss"]

    def label_space(self, records: list[dict]) -> list[str]:
        if not records:
            raise DataError(
                "The training set is empty: give data.train a CoNLL or JSONL file with sentences."
            )
        counts = Counter(tag for r in records for tag in r["tags"])
        types = {tag[2:] for tag in counts if tag != "O"}
        if not types:
            raise DataError(
                "The training set has no entity tags (only 'O'); check data.conll_tag_column."
            )
        # Always B- and I- of every type, O first, so the label ids are stable.
        return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in ("B", "I")]

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None:
        known = set(spec.labels)
        unseen = Counter(tag for r in records for tag in r["tags"] if tag not in known)
        if unseen:
            raise DataError(
                f"The {split} data has tag(s) never seen in training: {dict(unseen)}. "
                f"Training tags: {spec.labels}."
            )

    def load_model(self, model_path: str, spec: TaskSpec) -> Any:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification.from_pretrained(
            model_path,
            num_labels=len(spec.labels),
            id2label=dict(enumerate(spec.labels)),
            label2id={label: i for i, label in enumerate(spec.labels)},
        )

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]:
        index = {label: i for i, label in enumerate(spec.labels)}
        encoded = tokenizer(
            [r["tokens"] for r in records],
            is_split_into_words=True,
            truncation=True,
            max_length=spec.max_length,
        )
        features = []
        for i, record in enumerate(records):
            feature = {key: encoded[key][i] for key in encoded}
            if "tags" in record:
                # Only the first word piece of a word carries its tag; the rest are ignored (-100).
                labels, previous = [], None
                for word in encoded.word_ids(i):
                    labels.append(
                        -100 if word is None or word == previous else index[record["tags"][word]]
                    )
                    previous = word
                feature["labels"] = labels
            features.append(feature)
        return features

    def collator(self, tokenizer: Any):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]:
        predicted = np.asarray(logits).argmax(-1)
        label_ids = np.asarray(label_ids)
        preds, refs = [], []
        for pred_row, gold_row in zip(predicted, label_ids, strict=True):
            keep = gold_row != -100
            preds.append([spec.labels[int(i)] for i in pred_row[keep]])
            refs.append([spec.labels[int(i)] for i in gold_row[keep]])
        return ner_metrics(preds, refs)

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]:
        return ner_metrics([p["tags"] for p in predictions], [r["tags"] for r in records])

    def prepare_input(self, item: Any) -> dict:
        if isinstance(item, dict) and "tokens" in item:
            tokens = [str(t) for t in item["tokens"]]
            text, words, pos = "", [], 0
            for token in tokens:
                words.append((token, pos, pos + len(token)))
                pos += len(token) + 1
            text = " ".join(tokens)
            return {"text": text, "words": words}
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise DataError(
                f"NER input must be a string, {{'text': ...}} or {{'tokens': [...]}}, got {item!r}."
            )
        return {"text": text, "words": split_words(text)}

    def chars_read(self, tokenizer: Any, item: dict, spec: TaskSpec) -> int | None:
        """Characters of the text up to the last word the model tags; None: all of it."""
        words = item["words"]
        if not words:
            return None
        encoded = tokenizer(
            [w for w, _, _ in words],
            is_split_into_words=True,
            truncation=True,
            max_length=spec.max_length + 1,
        )
        if len(encoded["input_ids"]) <= spec.max_length:
            return None
        seen = [w for w in encoded.word_ids()[: spec.max_length - 1] if w is not None]
        return words[max(seen)][2] if seen else 0

    @torch.inference_mode()
    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]:
        nonempty = [i for i, item in enumerate(items) if item["words"]]
        results = [{"text": item["text"], "entities": [], "tags": []} for item in items]
        if not nonempty:
            return results
        batch = tokenizer(
            [[w for w, _, _ in items[i]["words"]] for i in nonempty],
            is_split_into_words=True,
            truncation=True,
            max_length=spec.max_length,
            padding=True,
            return_tensors="pt",
        )
        probs = torch.softmax(model(**batch.to(model.device)).logits.float(), dim=-1).cpu().numpy()
        for row, i in enumerate(nonempty):
            words = items[i]["words"]
            word_probs: dict[int, np.ndarray] = {}
            for position, word in enumerate(batch.word_ids(row)):
                if word is not None and word not in word_probs:
                    word_probs[word] = probs[row, position]
            # Words cut off by max_length get "O".
            tags = [
                spec.labels[int(word_probs[w].argmax())] if w in word_probs else "O"
                for w in range(len(words))
            ]
            entities = []
            for kind, first, last in spans_from_tags(tags):
                start, end = words[first][1], words[last - 1][2]
                score = float(
                    np.mean([word_probs[w].max() for w in range(first, last) if w in word_probs])
                )
                entities.append(
                    {
                        "label": kind,
                        "start": start,
                        "end": end,
                        "text": items[i]["text"][start:end],
                        "score": round(score, 6),
                    }
                )
            results[i] = {"text": items[i]["text"], "entities": entities, "tags": tags}
        return results


register_task(NerTask())
