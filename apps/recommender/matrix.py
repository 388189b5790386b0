"""Events as a users x items sparse matrix with id <-> index maps: what every model trains on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import EVENT_KINDS, Interactions

__all__ = ["WEIGHTINGS", "InteractionMatrix"]

WEIGHTINGS = ("binary", "kind")


@dataclass
class InteractionMatrix:
    """Who touched what: ``matrix[u, i]`` > 0 when user ``u`` had a positive event on item ``i``.

    Columns are the catalogue's items in its order (items nobody touched are empty columns,
    so content can still recommend them); rows are the users with at least one event.
    """

    user_ids: list[str]
    item_ids: list[str]
    matrix: sparse.csr_matrix
    """float32 weights: 1 (``binary``) or the strongest event kind's weight (``kind``)."""
    times: sparse.csr_matrix
    """Same pattern: the time (seconds) of the latest positive event on each pair."""
    dismissed: dict[int, set[int]] = field(default_factory=dict)
    """User index -> item indices they dismissed (never recommended to them again)."""

    def __post_init__(self) -> None:
        self.user_index = {u: n for n, u in enumerate(self.user_ids)}
        self.item_index = {i: n for n, i in enumerate(self.item_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def build(
        cls,
        interactions: Interactions,
        item_ids: Sequence[str],
        *,
        weighting: str = "binary",
        users: Sequence[str] | None = None,
    ) -> InteractionMatrix:
        """The matrix of ``interactions`` over the items ``item_ids`` (in that order).

        Args:
            interactions: cleaned events (every item among ``item_ids``).
            item_ids: the catalogue's ids: the columns.
            weighting: ``binary`` (every positive pair is 1: all ratings as implicit
                interactions) or ``kind`` (view 1, click 2, rating 3, like 4, purchase 5).
            users: the row order (default: users in order of first appearance).

        Raises:
            RecommenderError: an event on an item not in ``item_ids``, an unknown weighting.
        """
        if weighting not in WEIGHTINGS:
            raise RecommenderError(
                f"Unknown weighting {weighting!r}: use one of {', '.join(WEIGHTINGS)}."
            )
        item_index = {i: n for n, i in enumerate(item_ids)}
        cols = np.fromiter(
            (item_index.get(i, -1) for i in interactions.items), np.int64, len(interactions)
        )
        if (cols < 0).any():
            missing = list(dict.fromkeys(interactions.items[cols < 0].tolist()))
            raise RecommenderError(
                f"{len(missing)} items of the events are not in the catalogue (e.g. "
                f"{', '.join(map(repr, missing[:3]))}): clean the events first "
                "(clean_interactions with known_items)."
            )
        user_ids = (
            list(users) if users is not None else list(dict.fromkeys(interactions.users.tolist()))
        )
        user_index = {u: n for n, u in enumerate(user_ids)}
        rows = np.fromiter(
            (user_index.get(u, -1) for u in interactions.users), np.int64, len(interactions)
        )
        if (rows < 0).any():
            raise RecommenderError("Some events belong to users outside the given user list.")
        positive = interactions.positive()
        if weighting == "binary":
            weights = np.ones(len(interactions), dtype=np.float32)
        else:
            weights = np.array([EVENT_KINDS.get(k, 0.0) for k in interactions.kinds], np.float32)
        shape = (len(user_ids), len(item_ids))
        r, c = rows[positive], cols[positive]
        # Duplicates of a pair keep the strongest weight and the latest time, not their sum.
        matrix = _max_of_pairs(r, c, weights[positive], shape)
        times = _max_of_pairs(r, c, interactions.timestamps[positive], shape)
        dismissed: dict[int, set[int]] = {}
        for row, col in zip(rows[~positive], cols[~positive], strict=True):
            dismissed.setdefault(int(row), set()).add(int(col))
        return cls(user_ids, list(item_ids), matrix.astype(np.float32), times, dismissed)

    def history(self, user: int) -> np.ndarray:
        """Item indices user ``user`` touched, most recent first."""
        start, end = self.matrix.indptr[user], self.matrix.indptr[user + 1]
        items = self.matrix.indices[start:end]
        times = self.times.data[start:end]
        return items[np.argsort(-times, kind="stable")]

    def seen(self, user: int) -> set[int]:
        """Items not to recommend to ``user``: touched or dismissed."""
        return set(self.history(user).tolist()) | self.dismissed.get(user, set())

    def item_popularity(self) -> np.ndarray:
        """Distinct users per item."""
        return np.asarray((self.matrix > 0).sum(axis=0)).ravel().astype(np.float64)

    def item_last_time(self) -> np.ndarray:
        """Latest event time per item (0 for untouched items)."""
        out = np.zeros(self.n_items)
        coo = self.times.tocoo()
        np.maximum.at(out, coo.col, coo.data)
        return out

    def save(self, folder: str | Path) -> None:
        import json

        folder = Path(folder)
        sparse.save_npz(folder / "matrix.npz", self.matrix)
        sparse.save_npz(folder / "times.npz", self.times)
        (folder / "ids.json").write_text(
            json.dumps(
                {
                    "users": self.user_ids,
                    "items": self.item_ids,
                    "dismissed": {str(k): sorted(v) for k, v in self.dismissed.items()},
                }
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, folder: str | Path) -> InteractionMatrix:
        import json

        folder = Path(folder)
        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        return cls(
            ids["users"],
            ids["items"],
            sparse.load_npz(folder / "matrix.npz").tocsr(),
            sparse.load_npz(folder / "times.npz").tocsr(),
            {int(k): set(v) for k, v in ids["dismissed"].items()},
        )


def _max_of_pairs(rows, cols, values, shape) -> sparse.csr_matrix:
    """A CSR matrix where a repeated (row, col) pair keeps its largest value (not the sum)."""
    if not len(rows):
        return sparse.csr_matrix(shape, dtype=np.float64)
    key = rows * shape[1] + cols
    order = np.lexsort((values, key))  # per pair, ascending values: the last is the max
    key, values = key[order], values[order]
    last = np.r_[key[1:] != key[:-1], True]
    key, values = key[last], values[last]
    return sparse.csr_matrix(
        (values.astype(np.float64), (key // shape[1], key % shape[1])), shape=shape
    )
