"""Recommender events and user profiles in the suite's database (SQLite default, PostgreSQL by
``LEPTON_DB_URL``), through :mod:`apps.common.database`.

Writing is idempotent: every event has a key (the client's ``event_id``, else a hash of user,
item, kind, time and rating), unique in the table, so a batch sent twice is stored once and
the second call reports the duplicates. A batch is checked whole before anything is written
(:func:`~apps.recommender.interactions.clean_interactions`): a bad batch writes nothing, and
nothing already stored is ever lost or changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import DateTime, Float, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from apps.common.database import Base, Database, storable, utc_now
from apps.recommender.interactions import Interactions

__all__ = ["EventRow", "RecommenderStore", "UserRow", "event_key"]


class EventRow(Base):
    """One user event on an item."""

    __tablename__ = "rec_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    item_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    rating: Mapped[float | None] = mapped_column(Float, nullable=True)
    timestamp: Mapped[float] = mapped_column(Float, index=True)
    """When it happened: seconds since 1970 (UTC)."""
    stored: Mapped[datetime] = mapped_column(DateTime, default=utc_now)


class UserRow(Base):
    """A user's stated interests and profile attributes (age, region...)."""

    __tablename__ = "rec_users"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    interests_json: Mapped[str] = mapped_column(Text, default="[]")
    attributes_json: Mapped[str] = mapped_column(Text, default="{}")
    updated: Mapped[datetime] = mapped_column(DateTime, default=utc_now)


def event_key(
    user: str,
    item: str,
    kind: str,
    timestamp: float,
    rating: float | None,
    event_id: str | None = None,
) -> str:
    """The event's identity: the client's id when it gives one, else a hash of its content."""
    raw = (
        f"id\x1f{event_id}"
        if event_id
        else f"{user}\x1f{item}\x1f{kind}\x1f{timestamp!r}\x1f{rating!r}"
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class RecommenderStore:
    """Events and profiles at ``url`` (default: the suite's database).

    Raises:
        apps.common.database.StoreError: the database cannot be opened or reached.
    """

    def __init__(self, url: str | None = None) -> None:
        self.database = Database(url)
        self.url = self.database.url

    def add_events(
        self, events: Interactions, event_ids: Sequence[str | None] | None = None
    ) -> dict[str, int]:
        """Store ``events`` (cleaned already); returns ``{"added": n, "duplicates": m}``."""
        ids = list(event_ids) if event_ids is not None else [None] * len(events)
        rows: dict[str, EventRow] = {}
        duplicates = 0
        for n, event in enumerate(events.events()):
            key = event_key(
                event.user, event.item, event.kind, event.timestamp, event.rating, ids[n]
            )
            if key in rows:
                duplicates += 1
                continue
            rows[key] = EventRow(
                key=key,
                user_id=storable(event.user),
                item_id=storable(event.item),
                kind=event.kind,
                rating=event.rating,
                timestamp=event.timestamp,
            )
        with self.database.connected() as s:
            existing = set()
            keys = list(rows)
            for begin in range(0, len(keys), 500):
                chunk = keys[begin : begin + 500]
                existing |= set(s.scalars(select(EventRow.key).where(EventRow.key.in_(chunk))))
            new = [row for key, row in rows.items() if key not in existing]
            duplicates += len(existing)
            s.add_all(new)
            try:
                s.commit()
                added = len(new)
            except IntegrityError:  # another writer stored some of them meanwhile: one by one
                s.rollback()
                added = 0
                for row in new:
                    s.add(
                        EventRow(
                            **{
                                c: getattr(row, c)
                                for c in (
                                    "key",
                                    "user_id",
                                    "item_id",
                                    "kind",
                                    "rating",
                                    "timestamp",
                                )
                            }
                        )
                    )
                    try:
                        s.commit()
                        added += 1
                    except IntegrityError:
                        s.rollback()
                        duplicates += 1
        return {"added": added, "duplicates": duplicates}

    def events(self, user: str | None = None, since: float | None = None) -> Interactions:
        """Stored events (of ``user``; after ``since``), in time order."""
        query = select(EventRow).order_by(EventRow.timestamp, EventRow.id)
        if user is not None:
            query = query.where(EventRow.user_id == user)
        if since is not None:
            query = query.where(EventRow.timestamp > since)
        with self.database.connected() as s:
            found = list(s.scalars(query))
        return Interactions(
            [r.user_id for r in found],
            [r.item_id for r in found],
            [r.kind for r in found],
            [r.timestamp for r in found],
            [np.nan if r.rating is None else r.rating for r in found],
        )

    def count(self) -> int:
        from sqlalchemy import func

        with self.database.connected() as s:
            return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)

    def set_profile(
        self,
        user: str,
        interests: Sequence[str] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Save a user's interests and/or attributes (None keeps what is stored)."""
        with self.database.connected() as s:
            row = s.get(UserRow, user)
            if row is None:
                row = UserRow(user_id=storable(user))
                s.add(row)
            if interests is not None:
                row.interests_json = storable(json.dumps([str(i) for i in interests]))
            if attributes is not None:
                row.attributes_json = storable(json.dumps(attributes, default=str))
            row.updated = utc_now()
            s.commit()

    def profile(self, user: str) -> dict[str, Any] | None:
        """``{"interests": [...], "attributes": {...}}``, or None for a user without a profile."""
        with self.database.connected() as s:
            row = s.get(UserRow, user)
            if row is None:
                return None
            return {
                "interests": json.loads(row.interests_json),
                "attributes": json.loads(row.attributes_json),
            }
