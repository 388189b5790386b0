"""MovieLens 100K's own files (``u.data``, ``u.item``, ``u.user``) as a catalogue and events.

``u.data`` is ``user<TAB>item<TAB>rating<TAB>timestamp``; ``u.item`` is ``|``-separated latin-1:
id, title, release date, video release date, IMDb URL, then 19 genre flags in the order of
``u.genre``; ``u.user`` is ``user|age|gender|occupation|zip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from apps.recommender.catalogue import Catalogue, Item
from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import Interactions

__all__ = ["GENRES", "MovieLens", "load_movielens"]

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass
class MovieLens:
    catalogue: Catalogue
    interactions: Interactions
    """Every rating as a ``rating`` event, in ``u.data``'s order."""
    users: dict[str, dict[str, Any]]
    """User id -> age, gender, occupation, zip (empty when ``u.user`` is absent)."""


def load_movielens(folder: str | Path, ratings_file: str = "u.data") -> MovieLens:
    """The MovieLens 100K folder (GroupLens's layout).

    Raises:
        RecommenderError: the folder or ``u.data``/``u.item`` missing.
    """
    folder = Path(folder)
    for name in (ratings_file, "u.item"):
        if not (folder / name).is_file():
            raise RecommenderError(
                f"{folder / name} not found: point at the MovieLens 100K folder (it holds "
                "u.data, u.item, u.user), e.g. $LEPTON_DATASETS/movielens_100k."
            )
    items = []
    for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        flags = parts[5:24]
        genres = [g for g, flag in zip(GENRES, flags, strict=False) if flag == "1"]
        items.append(
            Item(
                id=parts[0],
                title=parts[1],
                categories=genres,
                metadata={"release_date": parts[2], "imdb_url": parts[4]},
            )
        )
    table = np.loadtxt(folder / ratings_file, dtype=np.int64, delimiter="\t", ndmin=2)
    interactions = Interactions(
        table[:, 0].astype(str).astype(object),
        table[:, 1].astype(str).astype(object),
        np.full(len(table), "rating", dtype=object),
        table[:, 3].astype(np.float64),
        table[:, 2].astype(np.float64),
    )
    users: dict[str, dict[str, Any]] = {}
    if (folder / "u.user").is_file():
        for line in (folder / "u.user").read_text(encoding="latin-1").splitlines():
            parts = line.split("|")
            if len(parts) == 5:
                users[parts[0]] = {
                    "age": int(parts[1]),
                    "gender": parts[2],
                    "occupation": parts[3],
                    "zip": parts[4],
                }
    return MovieLens(Catalogue(items), interactions, users)
