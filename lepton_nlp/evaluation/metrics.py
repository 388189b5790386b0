"""Metrics as pure functions: (predictions, references) -> flat dict of floats."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["classification_metrics", "confusion", "multilabel_metrics", "ner_metrics"]


def classification_metrics(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro- and weighted-F1, and F1 per label (``f1_<label>``)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = list(labels)
    out = {
        "accuracy": float(accuracy_score(references, predictions)),
        "macro_f1": float(
            f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(references, predictions, labels=labels, average="weighted", zero_division=0)
        ),
    }
    if len(labels) <= 20:
        _, _, f1, _ = precision_recall_fscore_support(
            references, predictions, labels=labels, zero_division=0
        )
        out.update({f"f1_{label}": float(v) for label, v in zip(labels, f1, strict=True)})
    return out


def multilabel_metrics(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, float]:
    """Micro/macro F1 over labels and subset accuracy (every label of a record right)."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer(classes=list(labels))
    y_pred = binarizer.fit_transform(predictions)
    y_true = binarizer.transform(references)
    return {
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def ner_metrics(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level precision, recall and F1 (seqeval, conlleval rules), per type too, plus tag accuracy."""
    from seqeval.metrics import (
        accuracy_score,
        classification_report,
        f1_score,
        precision_score,
        recall_score,
    )

    predictions, references = [list(p) for p in predictions], [list(r) for r in references]
    out = {
        "precision": float(precision_score(references, predictions, zero_division=0)),
        "recall": float(recall_score(references, predictions, zero_division=0)),
        "f1": float(f1_score(references, predictions, zero_division=0)),
        "accuracy": float(accuracy_score(references, predictions)),
    }
    report = classification_report(references, predictions, output_dict=True, zero_division=0)
    for name, row in report.items():
        if name not in ("micro avg", "macro avg", "weighted avg"):
            out[f"f1_{name}"] = float(row["f1-score"])
    return out


def confusion(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Confusion matrix, rows = reference label, columns = predicted label, in ``labels`` order."""
    from sklearn.metrics import confusion_matrix

    return np.asarray(confusion_matrix(references, predictions, labels=list(labels))).tolist()
