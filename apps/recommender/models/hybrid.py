"""The hybrid: candidates from several sources, re-ranked by a blend tuned on validation data.

Candidates: the collaborative model's top ``cf_candidates``, the content model's top
``content_candidates`` (history and stated interests), the ``popular_candidates`` most
popular items. Each candidate gets five features, all on 0..1 scales:

- ``cf``: the collaborative score, scaled within the user's candidates;
- ``content``: the content model's score of the item for the user's history (cosine to the
  profile, or the learned content score), scaled the same way;
- ``popularity``: log(1 + users who chose it) / log(1 + the most popular item's);
- ``recency``: 0.5 ** (days since anyone last chose it / ``half_life_days``);
- ``interest``: the best cosine to one of the user's stated interests (0 without any).

The score is the weighted sum; :meth:`HybridModel.tune` picks the weights on validation
events by grid search (the collaborative weight fixed at 1). Each recommendation's reasons
come from the features that contributed most, in the words of the model behind each.
Optionally (``mmr_lambda`` < 1) the final list is diversified with MMR over content vectors.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.recommender.catalogue import Catalogue, Item
from apps.recommender.diversity import mmr
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.metrics import ndcg_at_k
from apps.recommender.models.base import (
    Reason,
    UserContext,
    config_from_dict,
    positive_ranks,
    read_model_file,
    write_model_file,
)
from apps.recommender.models.collaborative import ALSModel, BPRModel
from apps.recommender.models.content import ContentModel
from apps.recommender.models.popularity import PopularityModel

__all__ = ["FEATURES", "HybridConfig", "HybridModel"]

FEATURES = ("cf", "content", "popularity", "recency", "interest")
CF_MODELS = {"als": ALSModel, "bpr": BPRModel}
GRID = {
    "content": (0.0, 0.1, 0.25, 0.5),
    "popularity": (0.0, 0.1, 0.25, 0.5),
    "recency": (0.0, 0.1, 0.25),
}


@dataclass
class HybridConfig:
    cf: str = "als"
    """The collaborative component: ``als`` or ``bpr``."""
    cf_config: dict[str, Any] = field(default_factory=dict)
    content_config: dict[str, Any] = field(default_factory=dict)
    cf_candidates: int = 100
    content_candidates: int = 50
    popular_candidates: int = 20
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "cf": 1.0,
            "content": 0.1,
            "popularity": 0.1,
            "recency": 0.0,
            "interest": 0.5,
        }
    )
    """Feature weights (``tune`` sets all but ``cf`` and ``interest``; MovieLens has no
    stated interests, so ``interest`` keeps this default)."""
    half_life_days: float = 30.0
    mmr_lambda: float = 1.0
    """1: no diversification; lower: MMR trades relevance for variety (0.7 is a good start)."""

    def __post_init__(self) -> None:
        if self.cf not in CF_MODELS:
            raise ValueError(f"cf must be one of {', '.join(CF_MODELS)}, not {self.cf!r}.")
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ValueError(
                f"Unknown hybrid weights {sorted(unknown)}: use {', '.join(FEATURES)}."
            )
        self.weights = {f: float(self.weights.get(f, 0.0)) for f in FEATURES}
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be between 0 and 1, not {self.mmr_lambda!r}.")


class HybridModel:
    """Collaborative + content + popularity + recency + interests, blended."""

    name = "hybrid"

    def __init__(self, config: HybridConfig | dict | None = None, embedder: Any = None) -> None:
        self.config = (
            config
            if isinstance(config, HybridConfig)
            else config_from_dict(HybridConfig, config, "hybrid")
        )
        self.cf = CF_MODELS[self.config.cf](self.config.cf_config)
        self.content = ContentModel(self.config.content_config, embedder)
        self.popularity = PopularityModel()
        self.data: InteractionMatrix | None = None
        self.catalogue: Catalogue | None = None
        self._pop = np.zeros(0)
        self._recency = np.zeros(0)
        self._popular_order = np.zeros(0, dtype=np.int64)

    @property
    def weights(self) -> np.ndarray:
        return np.array([self.config.weights[f] for f in FEATURES])

    # --- fitting -------------------------------------------------------------------------------

    def fit(
        self,
        data: InteractionMatrix,
        catalogue: Catalogue,
        *,
        item_vectors: np.ndarray | None = None,
    ) -> HybridModel:
        """Fit every component (``item_vectors``: content embeddings computed already)."""
        self.data, self.catalogue = data, catalogue
        self.cf.fit(data, catalogue)
        if item_vectors is not None:
            self.content.use_vectors(data, catalogue, item_vectors)
        else:
            self.content.fit(data, catalogue)
        self.popularity.fit(data, catalogue)
        self._item_features()
        return self

    def _item_features(self) -> None:
        assert self.data is not None
        counts = self.popularity.users
        self._pop = np.log1p(counts) / max(np.log1p(counts.max(initial=0.0)), 1e-9)
        last = self.data.item_last_time()
        now = last.max(initial=0.0)
        age_days = np.where(last > 0, (now - last) / 86_400.0, np.inf)
        self._recency = 0.5 ** (age_days / self.config.half_life_days)
        self._popular_order = np.argsort(-counts, kind="stable")

    # --- candidates and features ---------------------------------------------------------------

    def pool(self, ctx: UserContext) -> np.ndarray:
        """Candidate item indices from every source, without duplicates or excluded items."""
        c = self.config
        parts = [
            self.cf.candidates(ctx, c.cf_candidates)[0],
            self.content.candidates(ctx, c.content_candidates)[0],
        ]
        popular = [
            i
            for i in self._popular_order[: c.popular_candidates + len(ctx.exclude)]
            if i not in ctx.exclude
        ]
        parts.append(np.array(popular[: c.popular_candidates], dtype=np.int64))
        return np.array(list(dict.fromkeys(np.concatenate(parts).tolist())), dtype=np.int64)

    def features(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        """One row per item, one column per feature of :data:`FEATURES` (0..1)."""
        out = np.zeros((len(items), len(FEATURES)))
        if not len(items):
            return out
        if self.cf.user_vector(ctx) is not None:
            out[:, 0] = positive_ranks(self.cf.score(ctx, items))
        if len(ctx.history):
            history_only = dataclasses.replace(ctx, interests=[])
            out[:, 1] = positive_ranks(self.content.score(history_only, items))
        out[:, 2] = self._pop[items]
        out[:, 3] = self._recency[items]
        if ctx.interests:
            out[:, 4] = np.clip(self.content.interest_scores(ctx.interests, items), 0.0, 1.0)
        return out

    def rank(self, ctx: UserContext, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items, scores, feature rows)`` of the top ``k``, best first."""
        items = self.pool(ctx)
        features = self.features(ctx, items)
        scores = features @ self.weights
        order = np.argsort(-scores, kind="stable")
        if self.config.mmr_lambda < 1.0 and len(order):
            head = order[: max(4 * k, 50)]
            picked = mmr(
                scores[head], self.content.unit_vectors(items[head]), k, self.config.mmr_lambda
            )
            order = head[picked]
        order = order[:k]
        return items[order], scores[order], features[order]

    # --- the model protocol --------------------------------------------------------------------

    def candidates(self, ctx: UserContext, n: int) -> tuple[np.ndarray, np.ndarray]:
        items, scores, _ = self.rank(ctx, n)
        return items, scores

    def score(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        return self.features(ctx, items) @ self.weights

    def recommend_users(self, users: Sequence[int], k: int) -> list[np.ndarray]:
        assert self.data is not None
        return [self.rank(UserContext.of_user(self.data, u), k)[0] for u in users]

    def explain(self, ctx: UserContext, item: int) -> list[Reason]:
        items = self.pool(ctx)
        if item not in set(items.tolist()):
            items = np.r_[items, item]
        rows = self.features(ctx, items)
        return self.explain_features(ctx, item, rows[int(np.flatnonzero(items == item)[0])])

    def explain_features(self, ctx: UserContext, item: int, features: np.ndarray) -> list[Reason]:
        """Reasons from the two features that added most to ``item``'s score."""
        parts = features * self.weights
        total = float(parts.sum()) or 1.0
        reasons: list[Reason] = []
        for n in np.argsort(-parts):
            if parts[n] <= 0 or len(reasons) >= 2:
                break
            share = float(parts[n]) / total
            for reason in self._reasons(FEATURES[n], ctx, item):
                reasons.append(dataclasses.replace(reason, weight=round(share, 3)))
        return reasons or self.popularity.explain(ctx, item)

    def _reasons(self, feature: str, ctx: UserContext, item: int) -> list[Reason]:
        if feature == "cf":
            return self.cf.explain(ctx, item)
        if feature == "content":
            return [r for r in self.content.explain(dataclasses.replace(ctx, interests=[]), item)]
        if feature == "interest":
            return [
                r
                for r in self.content.explain(
                    dataclasses.replace(ctx, history=ctx.history[:0]), item
                )
                if r.kind == "interest"
            ]
        if feature == "recency":
            return [Reason("trending", "Trending: chosen recently")]
        return self.popularity.explain(ctx, item)

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.content.similar_items(item, n)

    # --- tuning --------------------------------------------------------------------------------

    def tune(
        self,
        users: Sequence[int],
        relevant: dict[str, set[str]],
        k: int = 10,
        grid: dict[str, Sequence[float]] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Choose the feature weights that maximise validation nDCG@k.

        The model must be fitted on data that does not hold the ``relevant`` events (a
        validation split carved from training). Candidates and features are computed once;
        each weight setting only re-scores them.

        Returns:
            ``{"weights": the chosen weights, "ndcg": its validation nDCG, "tried": n}``;
            the model keeps the chosen weights.
        """
        assert self.data is not None
        grid = grid or GRID
        cached = []
        for u in users:
            ctx = UserContext.of_user(self.data, u)
            items = self.pool(ctx)
            cached.append((self.data.user_ids[u], items, self.features(ctx, items)))
            if progress:
                progress(1)
        names = list(grid)
        best: tuple[float, dict[str, float]] = (-1.0, dict(self.config.weights))
        tried = 0
        for values in itertools.product(*(grid[n] for n in names)):
            weights = {**self.config.weights, **dict(zip(names, values, strict=True))}
            vector = np.array([weights[f] for f in FEATURES])
            recommended = {}
            for user, items, feats in cached:
                scores = feats @ vector
                top = np.argsort(-scores, kind="stable")[:k]
                recommended[user] = [self.data.item_ids[i] for i in items[top]]
            ndcg = ndcg_at_k(recommended, relevant, k)
            tried += 1
            if ndcg > best[0] + 1e-12:
                best = (ndcg, weights)
        self.config.weights = best[1]
        return {"weights": best[1], "ndcg": best[0], "tried": tried}

    # --- new items and files ------------------------------------------------------------------

    def add_items(self, items: Sequence[Item], catalogue: Catalogue) -> None:
        """New items: findable by content at once, no collaborative or popularity signal yet."""
        self.content.add_items(items, catalogue)
        self.popularity.add_items(len(items))
        self._pop = np.r_[self._pop, np.zeros(len(items))]
        self._recency = np.r_[self._recency, np.zeros(len(items))]
        self.catalogue = catalogue

    def save(self, folder: Path) -> None:
        write_model_file(folder, self.name, self.config)
        for part in ("cf", "content", "popularity"):
            getattr(self, part).save(folder / part)

    @classmethod
    def load(
        cls,
        folder: Path,
        data: InteractionMatrix,
        catalogue: Catalogue,
        embedder: Any = None,
        **_: Any,
    ) -> HybridModel:
        model = cls(read_model_file(folder)["config"], embedder)
        model.cf = CF_MODELS[model.config.cf].load(folder / "cf", data, catalogue)
        model.content = ContentModel.load(folder / "content", data, catalogue, embedder)
        model.popularity = PopularityModel.load(folder / "popularity", data, catalogue)
        model.data, model.catalogue = data, catalogue
        model._item_features()
        return model
