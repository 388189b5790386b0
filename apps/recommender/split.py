"""Per-user stratified random split, as Microsoft Recommenders' ``python_stratified_split``.

Every event gets a uniform random number (``np.random.seed(seed)``, then ``rand(n)`` in the
events' order); within each user the events are ranked by it, and those whose rank / count is
at most ``ratio`` go to the first part. So every user with events is in both parts (given
two or more events), each holding about ``ratio`` of them, and the same seed gives the same
split as Recommenders on the same rows in the same order.
"""

from __future__ import annotations

import numpy as np

from apps.recommender.interactions import Interactions

__all__ = ["stratified_split"]


def stratified_split(
    interactions: Interactions, ratio: float = 0.75, seed: int = 42
) -> tuple[Interactions, Interactions]:
    """``(first, second)``: per user, a random ``ratio`` of their events and the rest.

    Raises:
        ValueError: ``ratio`` not strictly between 0 and 1.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be between 0 and 1 (exclusive), not {ratio!r}.")
    n = len(interactions)
    random = np.random.RandomState(seed).rand(n)  # the legacy generator np.random.seed seeds
    _, user_codes = np.unique(interactions.users.astype(str), return_inverse=True)
    order = np.lexsort((random, user_codes))
    codes = user_codes[order]
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    counts = np.diff(np.r_[starts, n])
    group_start = np.repeat(starts, counts)
    rank = (np.arange(n) - group_start + 1) / np.repeat(counts, counts)
    first = np.zeros(n, dtype=bool)
    first[order[rank <= ratio]] = True
    return interactions.take(np.flatnonzero(first)), interactions.take(np.flatnonzero(~first))
