"""User behaviour: events (view, click, rating, like, purchase, dismiss) with timestamps.

:class:`Interactions` holds them column-wise; :func:`load_interactions` reads CSV, JSONL or
Parquet; :func:`clean_interactions` is the one gate every event passes before training or
storage: exact duplicates dropped (counted), events put in time order (counted), ratings
outside the scale and unknown items refused with the rows named (or, for unknown items,
dropped on request and counted), so nothing is lost without being said.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.recommender.errors import RecommenderError
from apps.recommender.tables import pick, read_rows

__all__ = [
    "EVENT_KINDS",
    "NEGATIVE_KINDS",
    "CleanReport",
    "Event",
    "Interactions",
    "clean_interactions",
    "load_interactions",
    "parse_time",
]

#: Positive kinds and their strength when ``weighting="kind"`` (the strongest per item counts).
EVENT_KINDS = {"view": 1.0, "click": 2.0, "rating": 3.0, "like": 4.0, "purchase": 5.0}
#: Kinds that say "not this": never positive, and the item is not recommended to that user again.
NEGATIVE_KINDS = ("dismiss",)
ALL_KINDS = (*EVENT_KINDS, *NEGATIVE_KINDS)

USER_COLUMNS = ("user", "user_id", "userId", "customer_id", "reader")
ITEM_COLUMNS = ("item", "item_id", "itemId", "movieId", "product_id", "article")
KIND_COLUMNS = ("kind", "event", "event_type", "type", "action")
RATING_COLUMNS = ("rating", "score", "stars")
TIME_COLUMNS = ("timestamp", "time", "ts", "date", "created")


def parse_time(value: Any, where: str = "") -> float:
    """Seconds since 1970 (UTC) from a number (seconds, or milliseconds above 1e11) or an ISO
    8601 date; None or empty is 0 (unknown: sorts first)."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
        return moment.timestamp()
    try:
        number = float(value)
    except (TypeError, ValueError):
        try:
            moment = _dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise RecommenderError(
                f"{where or 'An event'} has timestamp {value!r}: give seconds since 1970 or an "
                "ISO date such as 2026-12-03T10:00:00Z."
            ) from None
        return parse_time(moment)
    if not math.isfinite(number):
        raise RecommenderError(f"{where or 'An event'} has timestamp {value!r}, not a time.")
    return number / 1000.0 if number > 1e11 else number


@dataclass(frozen=True)
class Event:
    """One thing a user did to an item."""

    user: str
    item: str
    kind: str = "view"
    timestamp: float = 0.0
    rating: float | None = None


@dataclass
class Interactions:
    """Events column by column (one row per event), in the order given."""

    users: np.ndarray
    items: np.ndarray
    kinds: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray
    """NaN where the event has no rating."""

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=object)
        self.items = np.asarray(self.items, dtype=object)
        self.kinds = np.asarray(self.kinds, dtype=object)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.ratings = np.asarray(self.ratings, dtype=np.float64)
        sizes = {len(self.users), len(self.items), len(self.kinds), len(self.timestamps)}
        if len(sizes | {len(self.ratings)}) != 1:
            raise ValueError("Interactions columns must all have one value per event.")

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def empty(cls) -> Interactions:
        return cls([], [], [], [], [])

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Interactions:
        events = list(events)
        return cls(
            [e.user for e in events],
            [e.item for e in events],
            [e.kind for e in events],
            [e.timestamp for e in events],
            [np.nan if e.rating is None else e.rating for e in events],
        )

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], source: str = "") -> Interactions:
        """Events from dict rows (file rows, API bodies); a missing ``kind`` is ``rating``
        when the row has a rating, else ``view``.

        Raises:
            RecommenderError: a row without user or item, an unknown kind, a bad timestamp.
        """
        events = []
        for n, row in enumerate(rows, 1):
            where = f"{source or 'events'}, row {n}"
            user, item = pick(row, USER_COLUMNS), pick(row, ITEM_COLUMNS)
            if user is None or item is None:
                raise RecommenderError(
                    f"{where} needs a user and an item: name the columns one of "
                    f"{', '.join(USER_COLUMNS)} and {', '.join(ITEM_COLUMNS)} "
                    f"(got {sorted(row)})."
                )
            rating = pick(row, RATING_COLUMNS)
            try:
                rating = None if rating is None else float(rating)
            except (TypeError, ValueError):
                raise RecommenderError(f"{where} has rating {rating!r}, not a number.") from None
            kind = str(pick(row, KIND_COLUMNS) or ("rating" if rating is not None else "view"))
            kind = kind.strip().lower()
            if kind not in ALL_KINDS:
                raise RecommenderError(
                    f"{where} has event kind {kind!r}: use one of {', '.join(ALL_KINDS)}."
                )
            events.append(
                Event(
                    _id(user),
                    _id(item),
                    kind,
                    parse_time(pick(row, TIME_COLUMNS), where),
                    rating,
                )
            )
        return cls.from_events(events)

    def events(self) -> list[Event]:
        return [
            Event(u, i, k, float(t), None if np.isnan(r) else float(r))
            for u, i, k, t, r in zip(
                self.users, self.items, self.kinds, self.timestamps, self.ratings, strict=True
            )
        ]

    def take(self, rows: np.ndarray) -> Interactions:
        """The events at ``rows`` (indices or a boolean mask), in that order."""
        return Interactions(
            self.users[rows],
            self.items[rows],
            self.kinds[rows],
            self.timestamps[rows],
            self.ratings[rows],
        )

    def concat(self, other: Interactions) -> Interactions:
        return Interactions(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            np.concatenate([self.kinds, other.kinds]),
            np.concatenate([self.timestamps, other.timestamps]),
            np.concatenate([self.ratings, other.ratings]),
        )

    def positive(self) -> np.ndarray:
        """Mask of the events that say the user liked the item (every kind but dismiss)."""
        return ~np.isin(self.kinds, NEGATIVE_KINDS)

    def by_user(self) -> dict[str, list[str]]:
        """Each user's positively-touched items, oldest first, each once."""
        out: dict[str, list[str]] = {}
        seen: dict[str, set[str]] = {}
        order = np.argsort(self.timestamps, kind="stable")
        positive = self.positive()
        for row in order:
            if not positive[row]:
                continue
            user, item = self.users[row], self.items[row]
            if item not in seen.setdefault(user, set()):
                seen[user].add(item)
                out.setdefault(user, []).append(item)
        return out


def _id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise RecommenderError("An event has an empty user or item id.")
    return text


@dataclass
class CleanReport:
    """What :func:`clean_interactions` did, so that nothing changes unsaid."""

    received: int = 0
    kept: int = 0
    duplicates: int = 0
    """Exact repeats (same user, item, kind, time and rating) dropped: replaying a file is harmless."""
    reordered: int = 0
    """Events that arrived after a later one (sorted into time order)."""
    unknown_items_dropped: int = 0
    unknown_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def clean_interactions(
    interactions: Interactions,
    *,
    known_items: Any = None,
    rating_range: tuple[float, float] = (1.0, 5.0),
    unknown: str = "error",
    sort: bool = True,
) -> tuple[Interactions, CleanReport]:
    """The events de-duplicated, in time order, checked against the catalogue and rating scale.

    Args:
        interactions: the events as received.
        known_items: a container of the catalogue's item ids (None: no check).
        rating_range: the inclusive rating scale; a rating outside it is an error.
        unknown: ``"error"`` (refuse the whole batch, naming the ids) or ``"drop"`` (drop
            those events and count them) for events on items not in ``known_items``.

    Raises:
        RecommenderError: ratings out of range, or unknown items with ``unknown="error"``.
    """
    if unknown not in ("error", "drop"):
        raise ValueError(f"unknown must be 'error' or 'drop', not {unknown!r}.")
    report = CleanReport(received=len(interactions))
    low, high = rating_range
    rated = ~np.isnan(interactions.ratings)
    bad = rated & ((interactions.ratings < low) | (interactions.ratings > high))
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(
            f"row {r + 1} ({interactions.users[r]}, {interactions.items[r]}, "
            f"{interactions.ratings[r]:g})"
            for r in rows[:3]
        )
        raise RecommenderError(
            f"{len(rows)} ratings are outside the scale {low:g}..{high:g}: {shown}. Fix them, "
            "or give the right scale (rating_range / --rating-range)."
        )
    keep = np.ones(len(interactions), dtype=bool)
    if known_items is not None:
        missing = np.array([i not in known_items for i in interactions.items], dtype=bool)
        if missing.any():
            ids = list(dict.fromkeys(interactions.items[missing].tolist()))
            report.unknown_examples = ids[:5]
            if unknown == "error":
                raise RecommenderError(
                    f"{int(missing.sum())} events are on {len(ids)} items that are not in the "
                    f"catalogue (e.g. {', '.join(map(repr, ids[:3]))}): add those items to the "
                    "catalogue, or drop such events (unknown='drop' / --drop-unknown)."
                )
            report.unknown_items_dropped = int(missing.sum())
            keep &= ~missing
    seen: set[tuple] = set()
    for row in np.flatnonzero(keep):
        rating = interactions.ratings[row]
        key = (
            interactions.users[row],
            interactions.items[row],
            interactions.kinds[row],
            float(interactions.timestamps[row]),
            None if np.isnan(rating) else float(rating),
        )
        if key in seen:
            keep[row] = False
            report.duplicates += 1
        else:
            seen.add(key)
    kept = interactions.take(keep)
    times = kept.timestamps
    report.reordered = (
        int((times[1:] < np.maximum.accumulate(times)[:-1]).sum()) if len(times) else 0
    )
    if sort:
        kept = kept.take(np.argsort(times, kind="stable"))
    report.kept = len(kept)
    return kept, report


def load_interactions(path: str | Path) -> Interactions:
    """Events from a CSV, JSONL, JSON or Parquet file: columns ``user``, ``item``, optional
    ``kind`` (view, click, rating, like, purchase, dismiss), ``rating``, ``timestamp``
    (seconds or ISO date). Run :func:`clean_interactions` before use."""
    return Interactions.from_rows(read_rows(path), str(path))
