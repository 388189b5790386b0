"""Ranking metrics as pure functions of (recommended lists, relevant sets), as Microsoft
Recommenders defines them (``recommenders.evaluation.python_evaluation``).

Users counted: those with relevant items who also got recommendations (Recommenders' common
users). Only the first ``k`` recommendations count; relevance is binary.

- precision@k: hits in the top k / k (so at most |relevant| / k when that is below 1);
- recall@k: hits / |relevant|;
- nDCG@k: sum over hits of 1 / log(1 + rank), over the same for the first min(|relevant|, k) ranks;
- MAP@k (``map_at_k``): sum over hits of (hits so far / rank), divided by min(|relevant|, k);
- catalogue coverage: distinct items recommended / items in the training data;
- novelty: mean over recommended (user, item) pairs of -log2(the item's share of the
  training interactions), Recommenders' ``novelty`` (Castells et al. 2011, item choice);
- diversity: 1 - the mean cosine between the items of one list (pairs of distinct items,
  item vectors given), averaged over users: Recommenders' ``diversity`` with
  ``item_feature_vector`` similarity.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

__all__ = ["catalogue_coverage", "diversity", "map_at_k", "ndcg_at_k", "novelty",
           "precision_at_k", "ranking_metrics", "recall_at_k"]  # fmt: skip

Ranked = Mapping[str, Sequence[str]]
Relevant = Mapping[str, Collection[str]]


def _users(recommended: Ranked, relevant: Relevant) -> list[str]:
    return [u for u in relevant if relevant[u] and u in recommended]


def _hits(ranked: Sequence[str], relevant: Collection[str], k: int) -> list[int]:
    """1-based ranks of the relevant items among the first k (each item counted once)."""
    seen: set[str] = set()
    out = []
    for rank, item in enumerate(ranked[:k], 1):
        if item in relevant and item not in seen:
            out.append(rank)
        seen.add(item)
    return out


def precision_at_k(recommended: Ranked, relevant: Relevant, k: int = 10) -> float:
    users = _users(recommended, relevant)
    if not users:
        return 0.0
    return float(np.mean([len(_hits(recommended[u], relevant[u], k)) / k for u in users]))


def recall_at_k(recommended: Ranked, relevant: Relevant, k: int = 10) -> float:
    users = _users(recommended, relevant)
    if not users:
        return 0.0
    return float(
        np.mean([len(_hits(recommended[u], relevant[u], k)) / len(relevant[u]) for u in users])
    )


def ndcg_at_k(recommended: Ranked, relevant: Relevant, k: int = 10) -> float:
    users = _users(recommended, relevant)
    if not users:
        return 0.0
    scores = []
    for u in users:
        dcg = sum(1.0 / np.log(1 + r) for r in _hits(recommended[u], relevant[u], k))
        ideal = sum(1.0 / np.log(1 + r) for r in range(1, min(len(relevant[u]), k) + 1))
        scores.append(dcg / ideal)
    return float(np.mean(scores))


def map_at_k(recommended: Ranked, relevant: Relevant, k: int = 10) -> float:
    users = _users(recommended, relevant)
    if not users:
        return 0.0
    scores = []
    for u in users:
        hits = _hits(recommended[u], relevant[u], k)
        precisions = sum(n / rank for n, rank in enumerate(hits, 1))
        scores.append(precisions / min(len(relevant[u]), k))
    return float(np.mean(scores))


def catalogue_coverage(recommended: Ranked, n_items: int, k: int = 10) -> float:
    """Distinct items among everyone's top ``k`` / ``n_items`` (the items in training)."""
    if n_items <= 0:
        return 0.0
    return len({i for items in recommended.values() for i in items[:k]}) / n_items


def novelty(
    recommended: Ranked, item_counts: Mapping[str, int], n_interactions: int, k: int = 10
) -> float:
    """Mean self-information -log2(the item's interactions / all interactions) of what is
    recommended; items nobody had in training are skipped (their novelty is undefined)."""
    values = [
        -np.log2(item_counts[i] / n_interactions)
        for items in recommended.values()
        for i in items[:k]
        if item_counts.get(i, 0) > 0
    ]
    return float(np.mean(values)) if values else 0.0


def diversity(
    recommended: Ranked, item_index: Mapping[str, int], vectors: np.ndarray, k: int = 10
) -> float:
    """1 - mean pairwise cosine within each list (lists of one item skipped), over users."""
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    values = []
    for items in recommended.values():
        rows = [item_index[i] for i in dict.fromkeys(items[:k]) if i in item_index]
        if len(rows) < 2:
            continue
        sims = units[rows] @ units[rows].T
        n = len(rows)
        values.append((sims.sum() - np.trace(sims)) / (n * (n - 1)))
    return float(1.0 - np.mean(values)) if values else 0.0


def ranking_metrics(
    recommended: Ranked,
    relevant: Relevant,
    *,
    k: int = 10,
    item_counts: Mapping[str, int] | None = None,
    n_interactions: int = 0,
    n_items: int = 0,
    item_index: Mapping[str, int] | None = None,
    vectors: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of the table, by name."""
    out = {
        f"precision@{k}": precision_at_k(recommended, relevant, k),
        f"recall@{k}": recall_at_k(recommended, relevant, k),
        f"ndcg@{k}": ndcg_at_k(recommended, relevant, k),
        f"map@{k}": map_at_k(recommended, relevant, k),
    }
    if n_items:
        out["coverage"] = catalogue_coverage(recommended, n_items, k)
    if item_counts is not None and n_interactions:
        out["novelty"] = novelty(recommended, item_counts, n_interactions, k)
    if item_index is not None and vectors is not None:
        out["diversity"] = diversity(recommended, item_index, vectors, k)
    return out
