"""Maximal marginal relevance (Carbonell & Goldstein 1998): re-rank so that the list is not
ten versions of one item."""

from __future__ import annotations

import numpy as np

__all__ = ["mmr"]


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float = 0.7) -> np.ndarray:
    """Positions (into ``scores``) of ``k`` picks, each maximising
    ``lam * relevance - (1 - lam) * (highest cosine to an item already picked)``.

    Args:
        scores: relevance of each candidate (any scale; scaled to 0..1 here).
        vectors: one unit vector per candidate (cosine = dot product).
        k: how many to pick.
        lam: 1 keeps the relevance order; lower values trade relevance for variety.

    Raises:
        ValueError: ``lam`` outside 0..1, or one vector per score not given.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be between 0 and 1, not {lam!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    if len(vectors) != len(scores):
        raise ValueError(f"Got {len(vectors)} vectors for {len(scores)} scores.")
    if not len(scores):
        return np.zeros(0, dtype=np.int64)
    low, high = scores.min(), scores.max()
    relevance = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    sims = np.asarray(vectors) @ np.asarray(vectors).T
    picked: list[int] = []
    closest = np.full(len(scores), -np.inf)
    available = np.ones(len(scores), dtype=bool)
    for _ in range(min(k, len(scores))):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = lam * relevance - (1 - lam) * penalty
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, sims[best])
    return np.array(picked, dtype=np.int64)
