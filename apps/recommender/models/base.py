"""What every recommender model shares: the user context, recommendations with reasons, the
model protocol, typed configs, and the self-describing model folder."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from apps.recommender.catalogue import Catalogue
from apps.recommender.errors import RecommenderError
from apps.recommender.matrix import InteractionMatrix

__all__ = [
    "MODEL_FILE",
    "Model",
    "Reason",
    "Recommendation",
    "UserContext",
    "config_from_dict",
    "read_model_file",
    "top_k",
    "write_model_file",
]

MODEL_FILE = "model.json"
FORMAT = "lepton-rec.model.v1"
C = TypeVar("C")


@dataclass
class UserContext:
    """Everything a model may use about one user, in item indices of the catalogue."""

    history: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Items the user touched, most recent first."""
    user: int | None = None
    """The user's row in the training matrix; None for a user the models never saw."""
    interests: list[str] = field(default_factory=list)
    """Stated interests, free text ("jazz", "space documentaries")."""
    exclude: set[int] = field(default_factory=set)
    """Items never to recommend (touched, dismissed)."""
    changed: bool = False
    """The history has events the models did not train on (fold them in)."""

    @classmethod
    def of_user(
        cls, data: InteractionMatrix, user: int, interests: Sequence[str] = ()
    ) -> UserContext:
        """A training user's context: their history, excluding what they saw or dismissed."""
        return cls(data.history(user), user, list(interests), data.seen(user))


@dataclass
class Reason:
    """Why an item is recommended, in words and data."""

    kind: str
    """``similar_items``, ``similar_users``, ``interest``, ``popular``, ``trending``, ``new``."""
    text: str
    items: list[str] = field(default_factory=list)
    """Item ids the reason names (the liked items it is similar to)."""
    weight: float = 1.0
    """Its share of the score, where the model can tell (the hybrid's blend)."""


@dataclass
class Recommendation:
    item: str
    score: float
    model: str
    reasons: list[Reason]
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def why(self) -> str:
        return "; ".join(r.text for r in self.reasons)


@runtime_checkable
class Model(Protocol):
    """A recommender: ``fit`` on the training matrix, then score items for a user context.

    ``candidates`` and ``score`` work in catalogue item indices (fast, batched where it
    matters); :func:`apps.recommender.models.recommend` turns them into
    :class:`Recommendation` with reasons from ``explain``.
    """

    name: str

    def fit(self, data: InteractionMatrix, catalogue: Catalogue) -> Model: ...

    def candidates(self, ctx: UserContext, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` (item indices, scores), best first, none of ``ctx.exclude``."""
        ...

    def score(self, ctx: UserContext, items: np.ndarray) -> np.ndarray: ...

    def recommend_users(self, users: Sequence[int], k: int) -> list[np.ndarray]:
        """Top ``k`` item indices for training users (seen items removed): evaluation's path."""
        ...

    def explain(self, ctx: UserContext, item: int) -> list[Reason]: ...

    def save(self, folder: Path) -> None: ...


def top_k(
    scores: np.ndarray, k: int, exclude: Sequence[int] | set[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest scores, best first, skipping ``exclude``."""
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if len(exclude):
        scores = scores.copy()
        scores[np.fromiter(exclude, np.int64, len(exclude))] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return order.astype(np.int64), scores[order]


def config_from_dict(cls: type[C], values: dict[str, Any] | None, what: str) -> C:
    """``cls(**values)``; an unknown key is an error naming the nearest valid key."""
    values = dict(values or {})
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecommenderError(
                f"Unknown {what} setting {key!r}{hint}: valid settings are {', '.join(names)}."
            )
    return cls(**values)


def write_model_file(
    folder: Path, kind: str, config: Any, extra: dict[str, Any] | None = None
) -> None:
    """``model.json``: what kind of model the folder holds and how it was configured."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "kind": kind,
        "config": dataclasses.asdict(config),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    (folder / MODEL_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_model_file(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise RecommenderError(
            f"{folder} is not a saved recommender model ({MODEL_FILE} missing): "
            "`lepton-rec train` writes one."
        )
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != FORMAT:
        raise RecommenderError(f"{path} has format {record.get('format')!r}; expected {FORMAT!r}.")
    return record


def positive_ranks(scores: np.ndarray) -> np.ndarray:
    """Scores of a candidate list scaled to 0..1 (1 for the best), for blending."""
    if not len(scores):
        return scores
    low, high = float(np.min(scores)), float(np.max(scores))
    return (scores - low) / (high - low) if high > low else np.ones_like(scores)
