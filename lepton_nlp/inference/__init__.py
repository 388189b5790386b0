"""Inference: predictors that load artifacts and predict in batches."""

from __future__ import annotations

from lepton_nlp.inference.predictor import Predictor

__all__ = ["Predictor"]
