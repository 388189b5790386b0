"""The catalogue of models ready to use: the shipped ones and those the applications trained."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from apps.common.paths import ROOT

__all__ = ["CATALOG_METRICS", "SHIPPED_MODELS", "ModelSource", "model_catalog"]

SHIPPED_MODELS = ROOT / "data" / "models"
"""The artifacts that ship with the project, one folder each."""

CATALOG_METRICS = ("accuracy", "macro_f1", "f1", "exact_match", "rougeL", "bleu")
"""The metrics a catalogue entry shows from its model card, those it has."""


class ModelSource(Protocol):
    """Something that holds trained models (the Model Studio's run store)."""

    def ready_models(self) -> list[tuple[str, Path]]:
        """``(source, artifact folder)`` of each model it holds, the newest first."""
        ...


def model_catalog(*sources: ModelSource | None, shipped: Path = SHIPPED_MODELS) -> list[dict]:
    """Models ready to use: those of ``sources`` (newest first), then the shipped ones.

    Each is ``{"name", "task", "method", "base model", "labels", "metrics", "source",
    "path"}``; a folder that is not a readable artifact is left out.
    """
    from lepton_nlp.artifacts import ArtifactError, read_artifact

    folders: list[tuple[str, Path]] = []
    for source in sources:
        if source is not None:
            folders += source.ready_models()
    if shipped.is_dir():
        folders += [("shipped", p) for p in sorted(shipped.iterdir()) if p.is_dir()]
    models = []
    for source, folder in folders:
        try:
            info = read_artifact(folder)
        except (ArtifactError, OSError, KeyError, ValueError):
            continue
        test = info.metrics.get("test") or info.metrics.get("validation") or {}
        headline = {k: round(float(v), 3) for k, v in test.items() if k in CATALOG_METRICS}
        models.append(
            {
                "name": info.name or folder.name,
                "task": info.task,
                "method": info.peft_method,
                "base model": info.base_model,
                "labels": len(info.spec.labels),
                "metrics": ", ".join(f"{k} {v}" for k, v in headline.items()) or "-",
                "source": source,
                "path": str(folder),
            }
        )
    return models
