"""Offline evaluation on held-out events: the ranking metrics of every model on one split.

The protocol of Microsoft Recommenders' MovieLens table: :func:`stratified_split` (75/25 per
user, seed 42), every positive event an implicit interaction, top 10, items the user had in
training removed, metrics over the test users (:mod:`apps.recommender.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from apps.recommender.interactions import Interactions
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.metrics import ranking_metrics

__all__ = ["evaluate_model", "format_table", "relevant_by_user"]


def relevant_by_user(held_out: Interactions) -> dict[str, set[str]]:
    """User -> items they touched positively in the held-out events."""
    out: dict[str, set[str]] = {}
    positive = held_out.positive()
    for user, item, keep in zip(held_out.users, held_out.items, positive, strict=True):
        if keep:
            out.setdefault(user, set()).add(item)
    return out


def evaluate_model(
    model: Any,
    data: InteractionMatrix,
    relevant: dict[str, set[str]],
    k: int = 10,
    *,
    batch: int = 1024,
    progress: Callable[[int], None] | None = None,
    item_vectors: np.ndarray | None = None,
) -> dict[str, float]:
    """The metrics of ``model`` (fitted on ``data``) against ``relevant``.

    Users in ``relevant`` the model never saw in training are skipped (the split keeps every
    user in both parts). Returns the metrics plus ``users`` and ``seconds`` (recommending);
    with ``item_vectors`` (one row per item of ``data``) also the lists' ``diversity``.
    """
    users = [u for u in relevant if u in data.user_index]
    rows = [data.user_index[u] for u in users]
    start = time.perf_counter()
    recommended: dict[str, list[str]] = {}
    for begin in range(0, len(rows), batch):
        chunk = rows[begin : begin + batch]
        for user, items in zip(
            users[begin : begin + batch], model.recommend_users(chunk, k), strict=True
        ):
            recommended[user] = [data.item_ids[i] for i in items[:k]]
        if progress:
            progress(len(chunk))
    seconds = time.perf_counter() - start
    popularity = data.item_popularity()
    item_users = {data.item_ids[i]: int(c) for i, c in enumerate(popularity) if c > 0}
    metrics = ranking_metrics(
        recommended,
        {u: relevant[u] for u in users},
        k=k,
        item_counts=item_users,
        n_interactions=int(data.matrix.nnz),
        n_items=len(item_users),
        item_index=data.item_index if item_vectors is not None else None,
        vectors=item_vectors,
    )
    return {**metrics, "users": len(users), "seconds": round(seconds, 3)}


def format_table(rows: dict[str, dict[str, float]], columns: Sequence[str]) -> str:
    """A Markdown table: one row per model, the given metric columns (3 decimals)."""
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows.items():
        cells = [
            f"{metrics[c]:.3f}" if isinstance(metrics.get(c), float) else str(metrics.get(c, ""))
            for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
