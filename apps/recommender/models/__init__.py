"""The recommender models by name, and the one way to turn a model's scores into
explained recommendations."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from apps.recommender.catalogue import Catalogue
from apps.recommender.errors import RecommenderError
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.models.base import (
    Model,
    Reason,
    Recommendation,
    UserContext,
    read_model_file,
)
from apps.recommender.models.collaborative import ALSModel, BPRModel
from apps.recommender.models.content import ContentModel
from apps.recommender.models.hybrid import HybridModel
from apps.recommender.models.popularity import PopularityModel

__all__ = [
    "MODELS",
    "Model",
    "Reason",
    "Recommendation",
    "UserContext",
    "load_model",
    "make_model",
    "recommend",
]

MODELS: dict[str, type] = {
    "popularity": PopularityModel,
    "content": ContentModel,
    "als": ALSModel,
    "bpr": BPRModel,
    "hybrid": HybridModel,
}
#: Models built with an embedder (item texts and interests are embedded).
USES_TEXT = ("content", "hybrid")


def _check(name: str) -> type:
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RecommenderError(f"Unknown model {name!r}{hint}: choose one of {', '.join(MODELS)}.")
    return MODELS[name]


def make_model(name: str, config: dict[str, Any] | None = None, embedder: Any = None) -> Any:
    """An unfitted model of kind ``name`` with ``config`` (unknown settings are errors)."""
    cls = _check(name)
    return cls(config, embedder) if name in USES_TEXT else cls(config)


def load_model(
    folder: str | Path, data: InteractionMatrix, catalogue: Catalogue, embedder: Any = None
) -> Any:
    """The model saved in ``folder`` (its ``model.json`` names the kind)."""
    folder = Path(folder)
    kind = read_model_file(folder)["kind"]
    return _check(kind).load(folder, data, catalogue, embedder=embedder)


def recommend(model: Any, ctx: UserContext, k: int, catalogue: Catalogue) -> list[Recommendation]:
    """The model's top ``k`` for ``ctx``, each with the model's reasons."""
    if hasattr(model, "rank"):  # the hybrid explains from the features it ranked with
        items, scores, features = model.rank(ctx, k)
        reasons = [model.explain_features(ctx, i, f) for i, f in zip(items, features, strict=True)]
    else:
        items, scores = model.candidates(ctx, k)
        reasons = [model.explain(ctx, i) for i in items.tolist()]
    out = []
    for item, score, why in zip(items.tolist(), scores.tolist(), reasons, strict=True):
        found = catalogue.items[item]
        out.append(
            Recommendation(
                item=found.id,
                score=round(float(score), 6),
                model=model.name,
                reasons=why,
                title=found.title,
            )
        )
    return out
