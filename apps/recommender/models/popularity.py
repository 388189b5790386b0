"""The baseline: the items most users touched (optionally counting recent events more)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.recommender.catalogue import Catalogue
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.models.base import (
    Reason,
    UserContext,
    config_from_dict,
    read_model_file,
    top_k,
    write_model_file,
)

__all__ = ["PopularityConfig", "PopularityModel"]


@dataclass
class PopularityConfig:
    half_life_days: float = 0.0
    """When > 0, an event counts 0.5 ** (age / half-life), age measured from the latest event."""


class PopularityModel:
    """Every user gets the most popular items they have not seen."""

    name = "popularity"

    def __init__(self, config: PopularityConfig | dict | None = None) -> None:
        self.config = (
            config
            if isinstance(config, PopularityConfig)
            else config_from_dict(PopularityConfig, config, "popularity")
        )
        self.counts = np.zeros(0)
        self.users = np.zeros(0)
        self.data: InteractionMatrix | None = None

    def fit(self, data: InteractionMatrix, catalogue: Catalogue | None = None) -> PopularityModel:
        self.data = data
        self.users = data.item_popularity()
        if self.config.half_life_days > 0 and data.times.nnz:
            coo = data.times.tocoo()
            age_days = (coo.data.max() - coo.data) / 86_400.0
            decayed = np.zeros(data.n_items)
            np.add.at(decayed, coo.col, 0.5 ** (age_days / self.config.half_life_days))
            self.counts = decayed
        else:
            self.counts = self.users.copy()
        return self

    def candidates(self, ctx: UserContext, n: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.counts, n, ctx.exclude)

    def score(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        return self.counts[items]

    def recommend_users(self, users: Sequence[int], k: int) -> list[np.ndarray]:
        assert self.data is not None
        return [top_k(self.counts, k, self.data.seen(u))[0] for u in users]

    def explain(self, ctx: UserContext, item: int) -> list[Reason]:
        n = int(self.users[item]) if item < len(self.users) else 0
        if n == 0:
            return [
                Reason("popular", "Nobody has chosen anything yet: one of the catalogue's items")
            ]
        text = f"Popular: {n} {'person' if n == 1 else 'people'} chose it"
        if self.config.half_life_days > 0:
            text += " (recent activity counts more)"
        return [Reason("popular", text)]

    def save(self, folder: Path) -> None:
        write_model_file(folder, self.name, self.config)
        np.savez(folder / "popularity.npz", counts=self.counts, users=self.users)

    @classmethod
    def load(
        cls, folder: Path, data: InteractionMatrix, catalogue: Catalogue, **_
    ) -> PopularityModel:
        model = cls(read_model_file(folder)["config"])
        arrays = np.load(folder / "popularity.npz")
        model.counts, model.users, model.data = arrays["counts"], arrays["users"], data
        return model

    def add_items(self, n: int) -> None:
        """Room for ``n`` new catalogue items (nobody has chosen them yet)."""
        self.counts = np.r_[self.counts, np.zeros(n)]
        self.users = np.r_[self.users, np.zeros(n)]
