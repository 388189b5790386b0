"""Training: the run driver around the Hugging Face Trainer, and its callbacks."""

from __future__ import annotations

from lepton_nlp.training.trainer import TrainResult, train

__all__ = ["TrainResult", "train"]
