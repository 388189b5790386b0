"""What a data set holds, as the Data page shows it: counts, lengths in words and a preview."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DataSummary", "marked_text", "summarize"]


def _record_text(record: dict) -> str:
    for key in ("text", "source", "question"):
        if key in record:
            return str(record[key])
    if "tokens" in record:
        return " ".join(record["tokens"])
    return json.dumps(record, ensure_ascii=False)[:200]


def _record_kind(record: dict) -> str:
    """``tokens`` (NER), ``qa``, ``relation``, ``pair`` (summarization, translation) or ``text``."""
    if "tags" in record:
        return "tokens"
    if "answers" in record:
        return "qa"
    if "head" in record and "tail" in record:
        return "relation"
    if "source" in record and "target" in record:
        return "pair"
    return "text"


def _words(text: Any) -> int:
    return len(str(text).split())


def _stats(values: list[int]) -> dict[str, float]:
    values = values or [0]
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 1),
        "median": statistics.median(values),
        "max": max(values),
    }


def marked_text(record: dict) -> str:
    """A relation record's text with its head marked ``<e1>..</e1>`` and its tail ``<e2>..</e2>``."""
    text = record["text"]
    spans = sorted(((record["head"], "e1"), (record["tail"], "e2")), key=lambda s: s[0]["start"])
    out, last = [], 0
    for span, tag in spans:
        out += [text[last : span["start"]], f"<{tag}>", text[span["start"] : span["end"]]]
        out.append(f"</{tag}>")
        last = span["end"]
    out.append(text[last:])
    return "".join(out)


def _argument(record: dict, name: str) -> str:
    span = record[name]
    words = record["text"][span["start"] : span["end"]]
    return f"{words} ({span['type']})" if span.get("type") else words


def _label_of(record: dict) -> str | None:
    if "label" in record:
        label = record["label"]
        return "|".join(map(str, label)) if isinstance(label, list) else str(label)
    return None


def _cell(value: Any) -> Any:
    return value if isinstance(value, str | int | float) else json.dumps(value, ensure_ascii=False)


@dataclass
class DataSummary:
    """What a data set holds: size, label counts, lengths and a preview."""

    count: int
    label_counts: dict[str, int]
    label_name: str
    lengths: dict[str, float]
    """Length statistics in words of the main text (text, context or source)."""
    preview: list[dict]
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    """Headline figures after the record count (``{"Labels": 3, "Median length (words)": 12}``)."""
    lengths_by_field: dict[str, dict[str, float]] = field(default_factory=dict)
    """Length statistics in words per field (QA: question, context, answer; pairs: source, target)."""


def summarize(records: list[dict], preview_rows: int = 20) -> DataSummary:
    """Counts of labels (entity types, relations), length statistics in words, and a preview.

    The figures follow the records' kind: labels for classification and relations, entity
    types for NER, contexts and question lengths for QA, source and target lengths for
    summarization and translation.
    """
    from lepton_nlp.evaluation.generation import as_references

    kind = _record_kind(records[0]) if records else "text"
    labels: Counter = Counter()
    warnings: list[str] = []
    fields: dict[str, list[int]] = {}
    preview: list[dict] = []
    head = records[:preview_rows]
    if kind == "tokens":
        label_name = "entity type"
        for r in records:
            labels.update(t[2:] for t in r["tags"] if t.startswith("B-"))
        fields["text"] = [len(r["tokens"]) for r in records]
        for r in head:
            row = {k: v for k, v in r.items() if k not in ("tokens", "tags")}
            row["text"] = " ".join(r["tokens"])
            row["entities"] = ", ".join(t[2:] for t in r["tags"] if t.startswith("B-"))
            preview.append(row)
    elif kind == "qa":
        label_name = "answer"
        for r in records:
            labels["has an answer" if r["answers"]["text"] else "no answer"] += 1
        fields["context"] = [_words(r["context"]) for r in records]
        fields["question"] = [_words(r["question"]) for r in records]
        fields["answer"] = [
            _words(r["answers"]["text"][0]) for r in records if r["answers"]["text"]
        ]
        preview = [
            {
                "question": r["question"],
                "answer": " | ".join(r["answers"]["text"]) or "(no answer)",
                "context": r["context"],
                **({"title": r["title"]} if r.get("title") else {}),
            }
            for r in head
        ]
        if labels["no answer"]:
            warnings.append(
                f"{labels['no answer']} question(s) have no answer (SQuAD 2.0 style): the Train "
                'page lets such a model answer "no answer" (on by default for this data).'
            )
    elif kind == "relation":
        label_name = "relation"
        labels.update(lab for r in records if (lab := _label_of(r)) is not None)
        fields["text"] = [_words(r["text"]) for r in records]
        preview = [
            {
                "text": marked_text(r),
                "head (e1)": _argument(r, "head"),
                "tail (e2)": _argument(r, "tail"),
                "relation": r.get("label", ""),
            }
            for r in head
        ]
    elif kind == "pair":
        label_name = ""
        fields["source"] = [_words(r["source"]) for r in records]
        fields["target"] = [_words(as_references(r["target"])[0]) for r in records]
        preview = [
            {"source": r["source"], "target": " | ".join(as_references(r["target"]))} for r in head
        ]
        several = sum(len(as_references(r["target"])) > 1 for r in records)
        if several:
            warnings.append(
                f"{several} record(s) have several references: training uses the first, "
                "evaluation scores against all of them."
            )
    else:
        label_name = "label"
        labels.update(lab for r in records if (lab := _label_of(r)) is not None)
        fields["text"] = [len(_record_text(r).split()) for r in records]
        preview = [dict(r) for r in head]
    if kind in ("text", "relation"):
        if labels and len(labels) == 1:
            warnings.append(f"Only one {label_name}: a classifier needs at least two.")
        rare = [k for k, v in labels.items() if v < 2]
        if rare:
            warnings.append(
                f"{len(rare)} {label_name}(s) have a single example ({', '.join(sorted(rare)[:5])}); "
                "they stay in training and cannot be validated."
            )
    by_field = {name: _stats(values) for name, values in fields.items()}
    main = next(iter(by_field.values()), _stats([]))
    figures: dict[str, Any] = {}
    if kind == "qa":
        figures["Contexts"] = len({r["context"] for r in records})
        figures["Median context length (words)"] = by_field["context"]["median"]
        figures["Median question length (words)"] = by_field["question"]["median"]
    elif kind == "pair":
        figures["Median source length (words)"] = by_field["source"]["median"]
        figures["Median target length (words)"] = by_field["target"]["median"]
    else:
        figures[f"{label_name.capitalize()}s"] = len(labels)
        figures["Median length (words)"] = main["median"]
    return DataSummary(
        count=len(records),
        label_counts=dict(labels.most_common()),
        label_name=label_name,
        lengths=main,
        preview=[{k: _cell(v) for k, v in row.items()} for row in preview],
        warnings=warnings,
        figures=figures,
        lengths_by_field=by_field,
    )
