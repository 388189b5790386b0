"""Scoring: metric functions and reports."""

from __future__ import annotations

from lepton_nlp.evaluation.metrics import (
    classification_metrics,
    confusion,
    multilabel_metrics,
    ner_metrics,
)

__all__ = ["classification_metrics", "confusion", "multilabel_metrics", "ner_metrics"]
