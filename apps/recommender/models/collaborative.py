"""Collaborative filtering with ``implicit``: ALS (Hu, Koren, Volinsky 2008) and BPR (Rendle et
al. 2009) matrix factorisation on the users x items matrix, CPU by default.

A user's score for an item is the dot product of their factors. A user the model did not
train on (or whose history grew since) is folded in from their items: ALS's own least-squares
step (``recalculate_user``); for BPR a ridge fit of the user vector to the liked items'
factors. Explanations name the liked items whose factors are closest to the recommended
one (cosine of item factors) and count how many of the most similar users (cosine of user
factors) chose it. (implicit's ALS ``explain`` recomputes the items' Gram matrix on every
call: far too slow per recommendation on a large catalogue.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

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

__all__ = ["ALSConfig", "ALSModel", "BPRConfig", "BPRModel"]

NEIGHBOURS = 20


@dataclass
class ALSConfig:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    """Confidence of an observed pair: 1 + alpha * weight."""
    iterations: int = 15
    seed: int = 42
    threads: int = 0
    """implicit's threads (0: all cores)."""


@dataclass
class BPRConfig:
    factors: int = 128
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 42
    threads: int = 0


class _Factorisation:
    """What ALS and BPR share: scoring, folding in, explaining, files."""

    name = "cf"
    config: Any

    def __init__(self) -> None:
        self.model: Any = None
        self.data: InteractionMatrix | None = None
        self.catalogue: Catalogue | None = None
        self._unit_users: np.ndarray | None = None
        self._unit_items: np.ndarray | None = None
        self._near_cache: tuple[Any, Any] | None = None
        self._by_item: Any = None  # the training matrix by column, for "who chose this item"

    def _make(self) -> Any:
        raise NotImplementedError

    def fit(self, data: InteractionMatrix, catalogue: Catalogue | None = None) -> _Factorisation:
        from threadpoolctl import threadpool_limits

        self.data, self.catalogue = data, catalogue
        # implicit runs its own threads; a multi-threaded BLAS under them only slows it down.
        # (implicit warns about BLAS threads when it is built, even inside this limit.)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="OpenBLAS is configured", category=RuntimeWarning
            )
            self.model = self._make()
            self.model.fit(data.matrix, show_progress=False)
        self._unit_users = self._unit_items = self._near_cache = self._by_item = None
        return self

    @property
    def item_factors(self) -> np.ndarray:
        return np.asarray(self.model.item_factors)

    @property
    def user_factors(self) -> np.ndarray:
        return np.asarray(self.model.user_factors)

    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def user_vector(self, ctx: UserContext) -> np.ndarray | None:
        if ctx.user is not None and not ctx.changed:
            return self.user_factors[ctx.user]
        history = ctx.history[ctx.history < len(self.item_factors)]
        return self._fold_in(history) if len(history) else None

    def candidates(self, ctx: UserContext, n: int) -> tuple[np.ndarray, np.ndarray]:
        vector = self.user_vector(ctx)
        if vector is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return top_k(self.item_factors @ vector, n, ctx.exclude)

    def score(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        vector = self.user_vector(ctx)
        out = np.zeros(len(items))
        known = items < len(self.item_factors)  # items added after training have no factors
        if vector is not None:
            out[known] = self.item_factors[items[known]] @ vector
        return out

    def recommend_users(self, users: Sequence[int], k: int) -> list[np.ndarray]:
        assert self.data is not None
        users = np.asarray(users, dtype=np.int64)
        ids, _ = self.model.recommend(
            users, self.data.matrix[users], N=k, filter_already_liked_items=True
        )
        out = []
        for user, row in zip(users, ids, strict=True):
            dismissed = self.data.dismissed.get(int(user))
            row = row[row >= 0]
            out.append(row[~np.isin(row, list(dismissed))] if dismissed else row)
        return out

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items whose factors are closest (cosine) to item ``item``'s."""
        units = self._items_unit()
        return top_k(units @ units[item], n, {item})

    def _items_unit(self) -> np.ndarray:
        if self._unit_items is None:
            f = self.item_factors
            self._unit_items = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
        return self._unit_items

    def _users_unit(self) -> np.ndarray:
        if self._unit_users is None:
            f = self.user_factors
            self._unit_users = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
        return self._unit_users

    def _liked_items_reason(self, ctx: UserContext, item: int) -> Reason | None:
        history = ctx.history[ctx.history < len(self.item_factors)]
        if not len(history):
            return None
        units = self._items_unit()
        sims = units[history] @ units[item]
        best = history[np.argsort(-sims)[:2]]
        names = " and ".join(f"'{self._title(i)}'" for i in best)
        return Reason(
            "similar_items",
            f"People who liked {names} (in your history) also liked it",
            [self._id(i) for i in best],
        )

    def _neighbours(self, ctx: UserContext) -> np.ndarray | None:
        """The training users whose factors are closest to this user's (cached per user)."""
        key = (ctx.user, ctx.changed, tuple(ctx.history[:50].tolist()))
        if self._near_cache is not None and self._near_cache[0] == key:
            return self._near_cache[1]
        vector = self.user_vector(ctx)
        near = None
        if vector is not None:
            sims = self._users_unit() @ (vector / max(float(np.linalg.norm(vector)), 1e-9))
            near, _ = top_k(sims, NEIGHBOURS, {ctx.user} if ctx.user is not None else set())
        self._near_cache = (key, near)
        return near

    def _neighbours_reason(self, ctx: UserContext, item: int) -> Reason | None:
        assert self.data is not None
        near = self._neighbours(ctx)
        if near is None or item >= self.data.n_items:
            return None
        if self._by_item is None:
            self._by_item = self.data.matrix.tocsc()
        column = self._by_item.indices[self._by_item.indptr[item] : self._by_item.indptr[item + 1]]
        chose = int(np.isin(near, column).sum())
        if not chose:
            return None
        return Reason(
            "similar_users",
            f"Liked by {chose} of the {len(near)} users whose tastes are closest to yours",
        )

    def explain(self, ctx: UserContext, item: int) -> list[Reason]:
        reasons = [
            r
            for r in (self._liked_items_reason(ctx, item), self._neighbours_reason(ctx, item))
            if r
        ]
        return reasons or [Reason("similar_users", "Fits the taste your history shows")]

    def _id(self, item: int) -> str:
        return self.catalogue.items[item].id if self.catalogue else str(item)

    def _title(self, item: int) -> str:
        if not self.catalogue:
            return str(item)
        found = self.catalogue.items[item]
        return found.title or found.id

    def save(self, folder: Path) -> None:
        write_model_file(folder, self.name, self.config, {"library": "implicit"})
        np.savez(folder / "factors.npz", users=self.user_factors, items=self.item_factors)

    @classmethod
    def load(cls, folder: Path, data: InteractionMatrix, catalogue: Catalogue, **_: Any) -> Any:
        from threadpoolctl import threadpool_limits

        model = cls(read_model_file(folder)["config"])
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="OpenBLAS is configured", category=RuntimeWarning
            )
            model.model = model._make()
        arrays = np.load(folder / "factors.npz")
        model.model.user_factors, model.model.item_factors = arrays["users"], arrays["items"]
        model.data, model.catalogue = data, catalogue
        return model


class ALSModel(_Factorisation):
    """implicit's ``AlternatingLeastSquares``."""

    name = "als"

    def __init__(self, config: ALSConfig | dict | None = None) -> None:
        super().__init__()
        self.config = (
            config if isinstance(config, ALSConfig) else config_from_dict(ALSConfig, config, "ALS")
        )

    def _make(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        return AlternatingLeastSquares(
            factors=c.factors,
            regularization=c.regularization,
            alpha=c.alpha,
            iterations=c.iterations,
            random_state=c.seed,
            num_threads=c.threads,
        )

    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        row = sparse.csr_matrix(
            (np.ones(len(history), np.float32), (np.zeros(len(history), int), history)),
            shape=(1, len(self.item_factors)),
        )
        return np.asarray(self.model.recalculate_user(0, row)).ravel()


class BPRModel(_Factorisation):
    """implicit's ``BayesianPersonalizedRanking``."""

    name = "bpr"

    def __init__(self, config: BPRConfig | dict | None = None) -> None:
        super().__init__()
        self.config = (
            config if isinstance(config, BPRConfig) else config_from_dict(BPRConfig, config, "BPR")
        )

    def _make(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        return BayesianPersonalizedRanking(
            factors=c.factors,
            learning_rate=c.learning_rate,
            regularization=c.regularization,
            iterations=c.iterations,
            random_state=c.seed,
            num_threads=c.threads,
        )

    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        # Ridge fit: the user vector whose dot product with each liked item's factors is 1.
        items = self.item_factors[history].astype(np.float64)
        gram = items.T @ items + max(self.config.regularization, 1e-3) * len(history) * np.eye(
            items.shape[1]
        )
        return np.linalg.solve(gram, items.sum(axis=0)).astype(np.float32)
