"""Figures of the support bot's traffic from its stored events: intents, containment, handoffs.

Events are the dicts :meth:`apps.support.store.SupportStore.events_of` returns
(``{"sender", "kind", "data", "time"}``); the page draws the tables this module builds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from apps.support.dialogue import LOW_CONFIDENCE

__all__ = ["hourly_traffic", "intent_table", "traffic_summary"]


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value))


def intent_table(events: list[dict]) -> pd.DataFrame:
    """One row per understood message: ``time, sender, intent, confidence, out_of_scope,
    ambiguous, low_confidence``."""
    rows = []
    for event in events:
        if event["kind"] != "intent":
            continue
        data = event["data"]
        rows.append(
            {
                "time": _time(event["time"]),
                "sender": event["sender"],
                "intent": data.get("intent") or "(out of scope)",
                "confidence": float(data.get("confidence") or 0.0),
                "out_of_scope": bool(data.get("out_of_scope")),
                "ambiguous": bool(data.get("ambiguous")),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=["time", "sender", "intent", "confidence", "out_of_scope", "ambiguous"],
    )
    table["low_confidence"] = (
        table["out_of_scope"] | table["ambiguous"] | (table["confidence"] < LOW_CONFIDENCE)
    )
    return table


def traffic_summary(events: list[dict]) -> dict[str, Any]:
    """Conversations, handoffs, containment rate (conversations never handed to a person, of
    all conversations), customer messages and low-confidence turns."""
    senders = {e["sender"] for e in events if e["kind"] == "user"}
    handed = {e["sender"] for e in events if e["kind"] == "handoff"}
    intents = intent_table(events)
    return {
        "conversations": len(senders),
        "messages": sum(e["kind"] == "user" for e in events),
        "handoffs": sum(e["kind"] == "handoff" for e in events),
        "containment_rate": (len(senders - handed) / len(senders)) if senders else None,
        "low_confidence_turns": int(intents["low_confidence"].sum()),
        "understood_turns": len(intents),
    }


def hourly_traffic(events: list[dict]) -> pd.DataFrame:
    """One row per hour with traffic: ``hour``, ``conversations`` (started that hour, by their
    first customer message), ``handed_over`` (of those, handed to a person at any time),
    ``containment_rate`` (the rest, as a share; None without conversations) and ``handoffs``
    (opened that hour)."""
    first: dict[str, pd.Timestamp] = {}
    for event in events:
        if event["kind"] == "user":
            first.setdefault(event["sender"], pd.Timestamp(_time(event["time"])).floor("h"))
    handed = {e["sender"] for e in events if e["kind"] == "handoff"}
    opened = [pd.Timestamp(_time(e["time"])).floor("h") for e in events if e["kind"] == "handoff"]
    hours = sorted(set(first.values()) | set(opened))
    rows = []
    for hour in hours:
        started = [sender for sender, at in first.items() if at == hour]
        over = sum(sender in handed for sender in started)
        rows.append(
            {
                "hour": hour,
                "conversations": len(started),
                "handed_over": over,
                "containment_rate": (len(started) - over) / len(started) if started else None,
                "handoffs": sum(at == hour for at in opened),
            }
        )
    columns = ["hour", "conversations", "handed_over", "containment_rate", "handoffs"]
    return pd.DataFrame(rows, columns=columns)
