"""Content-based: item texts embedded (MiniLM by default), a user is the mean of what they
touched (plus their stated interests), items found by cosine in a faiss ``VectorIndex``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from apps.recommender.catalogue import Catalogue, Item
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.models.base import (
    Reason,
    UserContext,
    config_from_dict,
    read_model_file,
    write_model_file,
)
from lepton_nlp.embeddings import DEFAULT_EMBED_MODEL
from lepton_nlp.retrieval import IndexConfig, VectorIndex

__all__ = ["ContentConfig", "ContentModel", "Embedder"]


class Embedder(Protocol):
    model_name: str

    def encode(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray: ...


@dataclass
class ContentConfig:
    embed_model: str = DEFAULT_EMBED_MODEL
    """The sentence-transformers model that embeds item texts and interests."""
    history_limit: int = 50
    """The user's profile averages at most this many of their most recent items."""
    recency_decay: float = 1.0
    """Weight of the n-th most recent item: decay ** n (1: all equal)."""
    interest_weight: float = 1.0
    """Weight of the stated interests against the history (each a unit vector)."""
    index: dict[str, Any] | None = None
    """``IndexConfig`` settings for the faiss index (default: flat up to 50k items, else HNSW,
    and one faiss thread: a single user's query is faster without OpenMP's start-up, which
    on a busy machine costs tens of milliseconds; ``threads`` is process-wide in faiss)."""


#: Stated-interest texts whose vectors a content model keeps (the oldest go first).
INTEREST_CACHE_SIZE = 4096


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


class ContentModel:
    """Recommends items whose text is like the texts of what the user chose."""

    name = "content"

    def __init__(
        self, config: ContentConfig | dict | None = None, embedder: Embedder | None = None
    ):
        self.config = (
            config
            if isinstance(config, ContentConfig)
            else config_from_dict(ContentConfig, config, "content")
        )
        self._embedder = embedder
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.index: VectorIndex | None = None
        self.data: InteractionMatrix | None = None
        self.catalogue: Catalogue | None = None
        self._interest_cache: dict[str, np.ndarray] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from lepton_nlp.embeddings import SentenceEmbedder

            self._embedder = SentenceEmbedder(self.config.embed_model)
        return self._embedder

    def fit(self, data: InteractionMatrix, catalogue: Catalogue) -> ContentModel:
        self.data, self.catalogue = data, catalogue
        self.vectors = _unit(np.asarray(self.embedder.encode(catalogue.texts()), np.float32))
        self._build_index()
        return self

    def _build_index(self) -> None:
        config = IndexConfig.from_dict({"threads": 1, **(self.config.index or {})})
        model = getattr(self._embedder, "model_name", self.config.embed_model)
        self.index = VectorIndex.build(
            list(range(len(self.vectors))), self.vectors, config, model=model
        )

    def use_vectors(
        self, data: InteractionMatrix, catalogue: Catalogue, vectors: np.ndarray
    ) -> ContentModel:
        """Fit on item vectors computed elsewhere (one row per catalogue item)."""
        self.data, self.catalogue = data, catalogue
        self.vectors = _unit(np.asarray(vectors, np.float32))
        self._build_index()
        return self

    # --- profiles -------------------------------------------------------------------------------

    def interest_vectors(self, interests: Sequence[str]) -> np.ndarray:
        cache = self._interest_cache
        found = {t: cache.get(t) for t in interests}
        missing = [t for t, vector in found.items() if vector is None]
        if missing:
            for text, vector in zip(missing, self.embedder.encode(missing), strict=True):
                found[text] = cache[text] = _unit(np.asarray(vector, np.float32))
            # Interests come from requests: unbounded, the cache grew with every new text a
            # client sent, for the life of the server. The oldest go first.
            while len(cache) > INTEREST_CACHE_SIZE:
                try:
                    cache.pop(next(iter(cache)), None)
                except (StopIteration, RuntimeError):  # another request changed it meanwhile
                    break
        return np.array([found[t] for t in interests], dtype=np.float32).reshape(
            len(interests), self.vectors.shape[1]
        )

    def profile(self, ctx: UserContext) -> np.ndarray | None:
        """The user's unit vector, or None with neither history nor interests."""
        parts = []
        history = ctx.history[: self.config.history_limit]
        if len(history):
            weights = self.config.recency_decay ** np.arange(len(history))
            parts.append(_unit(weights @ self.vectors[history]))
        if ctx.interests:
            interest = _unit(self.interest_vectors(ctx.interests).mean(axis=0))
            parts.append(self.config.interest_weight * interest)
        return _unit(np.sum(parts, axis=0)).astype(np.float32) if parts else None

    # --- the model protocol --------------------------------------------------------------------

    def candidates(self, ctx: UserContext, n: int) -> tuple[np.ndarray, np.ndarray]:
        profile = self.profile(ctx)
        if profile is None or self.index is None or not len(self.index):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        found = self.index.search(profile[None, :], n, exclude=[ctx.exclude])
        return np.array(found.ids[0], dtype=np.int64), np.array(found.scores[0])

    def score(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        profile = self.profile(ctx)
        return np.zeros(len(items)) if profile is None else self.vectors[items] @ profile

    def interest_scores(self, interests: Sequence[str], items: np.ndarray) -> np.ndarray:
        """Best cosine of each item to any one interest (0 without interests)."""
        if not interests:
            return np.zeros(len(items))
        return (self.vectors[items] @ self.interest_vectors(interests).T).max(axis=1)

    def recommend_users(self, users: Sequence[int], k: int) -> list[np.ndarray]:
        assert self.data is not None and self.index is not None
        contexts = [UserContext.of_user(self.data, u) for u in users]
        profiles = [self.profile(c) for c in contexts]
        rows = [n for n, p in enumerate(profiles) if p is not None]
        out = [np.zeros(0, dtype=np.int64) for _ in users]
        if rows:
            found = self.index.search(
                np.stack([profiles[n] for n in rows]),
                k,
                exclude=[contexts[n].exclude for n in rows],
            )
            for n, ids in zip(rows, found.ids, strict=True):
                out[n] = np.array(ids, dtype=np.int64)
        return out

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items whose text is most like item ``item``'s (itself excluded)."""
        assert self.index is not None
        found = self.index.search(self.vectors[item][None, :], n, exclude=[{item}])
        return np.array(found.ids[0], dtype=np.int64), np.array(found.scores[0])

    def explain(self, ctx: UserContext, item: int) -> list[Reason]:
        reasons = []
        history = ctx.history[: self.config.history_limit]
        if len(history):
            sims = self.vectors[history] @ self.vectors[item]
            best = history[np.argsort(-sims)[:2]]
            ids = [self._id(i) for i in best]
            names = " and ".join(f"'{self._title(i)}'" for i in best)
            reasons.append(Reason("similar_items", f"Similar to {names}, which you liked", ids))
        if ctx.interests:
            sims = self.interest_scores(ctx.interests, np.array([item]))
            per = self.interest_vectors(ctx.interests) @ self.vectors[item]
            topic = ctx.interests[int(np.argmax(per))]
            reasons.append(
                Reason("interest", f"Matches your interest in '{topic}' ({float(sims[0]):.2f})")
            )
        return reasons or [Reason("similar_items", "Like the items in this catalogue you may like")]

    def _id(self, item: int) -> str:
        assert self.catalogue is not None
        return self.catalogue.items[item].id

    def _title(self, item: int) -> str:
        assert self.catalogue is not None
        found = self.catalogue.items[item]
        return found.title or found.id

    # --- new items and files ------------------------------------------------------------------

    def add_items(self, items: Sequence[Item], catalogue: Catalogue) -> None:
        """Embed new items (already appended to ``catalogue``) and make them findable at once:
        a new item needs nothing but its text."""
        assert self.index is not None
        start = len(self.vectors)
        vectors = _unit(np.asarray(self.embedder.encode([i.text() for i in items]), np.float32))
        self.vectors = np.vstack([self.vectors, vectors])
        self.index.add(list(range(start, start + len(items))), vectors)
        self.catalogue = catalogue

    def save(self, folder: Path) -> None:
        assert self.index is not None
        write_model_file(folder, self.name, self.config)
        np.save(folder / "item_vectors.npy", self.vectors)
        self.index.save(folder / "index")

    @classmethod
    def load(
        cls, folder: Path, data: InteractionMatrix, catalogue: Catalogue, embedder: Any = None, **_
    ) -> ContentModel:
        model = cls(read_model_file(folder)["config"], embedder)
        model.vectors = np.load(folder / "item_vectors.npy")
        model.index = VectorIndex.load(folder / "index")
        model.data, model.catalogue = data, catalogue
        return model
