"""lepton-nlp: fine-tune pretrained transformers on your own labelled data, offline and cheaply."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
