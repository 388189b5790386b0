"""The support bot's conversations, events and handoffs, tables in the suite's database.

:class:`SupportStore` is the SQL :class:`~apps.support.dialogue.ConversationStore`: SQLite
under ``LEPTON_HOME`` by default, PostgreSQL by ``LEPTON_DB_URL`` (:mod:`apps.common.database`).
A conversation's state survives restarts; every event (user said, bot said, intent, slots,
handoff, agent, feedback) is a row, written in its own short transaction, so an error later
in a turn loses nothing already written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from apps.common.database import Base, Database, storable, utc_now
from apps.support.dialogue import ConversationState, Handoff

__all__ = ["Conversation", "Event", "HandoffRow", "SupportStore"]


class Conversation(Base):
    """One sender's conversation state (JSON of :class:`ConversationState`)."""

    __tablename__ = "support_conversations"

    sender: Mapped[str] = mapped_column(String(200), primary_key=True)
    state_json: Mapped[str] = mapped_column(Text, default="{}")
    created: Mapped[datetime] = mapped_column(DateTime, default=utc_now)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utc_now)


class Event(Base):
    """One thing that happened in a conversation."""

    __tablename__ = "support_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    """``user``, ``bot``, ``intent``, ``slots``, ``handoff``, ``agent`` or ``feedback``."""
    data_json: Mapped[str] = mapped_column(Text, default="{}")
    created: Mapped[datetime] = mapped_column(DateTime, default=utc_now, index=True)


class HandoffRow(Base):
    """A conversation passed to a person."""

    __tablename__ = "support_handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(Text)
    transcript: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    agent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utc_now)

    def to_handoff(self) -> Handoff:
        return Handoff(
            sender=self.sender,
            reason=self.reason,
            transcript=self.transcript,
            summary=self.summary,
            note=self.note,
            status=self.status,
            agent=self.agent,
            created=self.created.timestamp() if self.created else 0.0,
            id=self.id,
        )


def _json(data: Any) -> str:
    return storable(json.dumps(data, default=str))


class SupportStore:
    """Conversations in the suite's database at ``url`` (default ``database_url()``).

    Raises:
        apps.common.database.StoreError: (from the constructor and every call) the database
            cannot be opened or reached; the message says why and how to fix it.
    """

    def __init__(self, url: str | None = None):
        self.database = Database(url)
        self.url = self.database.url

    # A turn loads once, saves twice and adds a few events: these three are written as plain
    # SQL statements rather than through the ORM's unit of work, a quarter of the CPU time
    # (about 1.2 ms a turn instead of 4.8), each still in its own transaction.

    def load(self, sender: str) -> ConversationState | None:
        table = Conversation.__table__
        with self.database.connected() as s:
            found = (
                s.connection()
                .execute(select(table.c.state_json).where(table.c.sender == sender))
                .scalar()
            )
        return None if found is None else ConversationState.from_dict(json.loads(found))

    def save(self, state: ConversationState) -> None:
        table = Conversation.__table__
        # The fields as they are, not state.to_dict(): asdict deep-copies every stored reply
        # first, and json.dumps copies anyway.
        values = {
            "state_json": _json({f: getattr(state, f) for f in state.__dataclass_fields__}),
            "updated": utc_now(),
        }
        with self.database.connected() as s:
            connection = s.connection()
            changed = connection.execute(
                update(table).where(table.c.sender == state.sender), values
            ).rowcount
            if not changed:
                connection.execute(insert(table), {"sender": state.sender, **values})
            s.commit()

    def add_event(self, sender: str, kind: str, data: dict[str, Any]) -> None:
        with self.database.connected() as s:
            s.connection().execute(
                insert(Event.__table__), {"sender": sender, "kind": kind, "data_json": _json(data)}
            )
            s.commit()

    def events_of(self, sender: str | None = None, kind: str | None = None) -> list[dict]:
        """Events oldest first: ``{"id", "sender", "kind", "data", "time"}`` (``time`` naive UTC)."""
        query = select(Event).order_by(Event.id)
        if sender is not None:
            query = query.where(Event.sender == sender)
        if kind is not None:
            query = query.where(Event.kind == kind)
        with self.database.connected() as s:
            return [
                {
                    "id": e.id,
                    "sender": e.sender,
                    "kind": e.kind,
                    "data": json.loads(e.data_json),
                    "time": e.created,
                }
                for e in s.scalars(query)
            ]

    def conversations(self) -> list[dict]:
        """Senders with their first and last activity, most recent first."""
        with self.database.connected() as s:
            rows = s.scalars(select(Conversation).order_by(Conversation.updated.desc()))
            return [{"sender": r.sender, "created": r.created, "updated": r.updated} for r in rows]

    def open_handoff(self, handoff: Handoff) -> Handoff:
        with self.database.connected() as s:
            row = HandoffRow(
                sender=handoff.sender,
                reason=storable(handoff.reason),
                transcript=storable(handoff.transcript),
                summary=storable(handoff.summary),
                note=storable(handoff.note),
                status=handoff.status,
                agent=handoff.agent,
            )
            s.add(row)
            s.commit()
            return row.to_handoff()

    def handoffs(self, status: str | None = "open") -> list[Handoff]:
        query = select(HandoffRow).order_by(HandoffRow.id)
        if status is not None:
            query = query.where(HandoffRow.status == status)
        with self.database.connected() as s:
            return [row.to_handoff() for row in s.scalars(query)]

    def get_handoff(self, handoff_id: int) -> Handoff | None:
        with self.database.connected() as s:
            row = s.get(HandoffRow, handoff_id)
            return None if row is None else row.to_handoff()

    def update_handoff(self, handoff_id: int, **fields: Any) -> Handoff:
        with self.database.connected() as s:
            row = s.get(HandoffRow, handoff_id)
            if row is None:
                raise KeyError(f"No handoff {handoff_id}.")
            for key, value in fields.items():
                setattr(row, key, storable(value))
            s.commit()
            return row.to_handoff()
