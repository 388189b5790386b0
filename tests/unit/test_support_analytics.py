"""The support page's traffic figures from stored events (apps/support/analytics.py)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from apps.support.analytics import hourly_traffic, intent_table, traffic_summary
from apps.support.dialogue import MemoryStore, SupportBot
from tests.unit.support_standins import StandInAnswers, StandInNLU

NINE = datetime(2026, 12, 3, 9, 5).timestamp()


class Clock:
    """Each turn 10 minutes after the one before, from 09:05."""

    def __init__(self) -> None:
        self.now = NINE - 600

    def __call__(self) -> float:
        self.now += 600
        return self.now


def traffic() -> list[dict]:
    store = MemoryStore()
    clock = Clock()
    bot = SupportBot(StandInNLU(), StandInAnswers(), store=store, clock=clock)
    # The store stamps events with the wall clock; restamp them with the bot's clock.
    add = store.add_event

    def stamped(sender, kind, data):
        add(sender, kind, data)
        store.events[-1]["time"] = clock.now

    store.add_event = stamped
    bot.reply("a", "how do I activate my card")  # 09:05, answered
    bot.reply("b", "what's the weather")  # 09:15, out of scope
    bot.reply("b", "put me through to an agent")  # 09:25, handoff
    bot.reply("c", "topup broke")  # 09:35, unsure
    for _ in range(3):
        bot.reply("d", "exchange rate")  # 09:45 ... 10:05
    bot.reply("e", "I want to talk to a human")  # 10:15, handoff
    return store.events


def test_summary_counts_conversations_handoffs_and_unsure_turns():
    summary = traffic_summary(traffic())
    assert summary["conversations"] == 5 and summary["handoffs"] == 2
    assert summary["containment_rate"] == 3 / 5
    assert summary["messages"] == 8 and summary["understood_turns"] == 6
    assert summary["low_confidence_turns"] == 2  # the weather (out of scope), the top-up (unsure)


def test_intent_table_has_one_row_per_understood_message():
    table = intent_table(traffic())
    assert list(table["intent"]) == [
        "activate_my_card",
        "(out of scope)",
        "top_up_failed",
        "exchange_rate",
        "exchange_rate",
        "exchange_rate",
    ]
    assert list(table["low_confidence"]) == [False, True, True, False, False, False]
    assert intent_table([]).empty


def test_hourly_traffic_gives_containment_and_handoffs_per_hour():
    hourly = hourly_traffic(traffic())
    nine, ten = pd.Timestamp(datetime(2026, 12, 3, 9)), pd.Timestamp(datetime(2026, 12, 3, 10))
    assert list(hourly["hour"]) == [nine, ten]
    first, second = hourly.to_dict("records")
    # 09:xx: a, b, c, d start; b is handed over at 09:25.
    assert (first["conversations"], first["handed_over"], first["handoffs"]) == (4, 1, 1)
    assert first["containment_rate"] == 0.75
    # 10:xx: e starts and is handed over; d's later turns start nothing.
    assert (second["conversations"], second["handed_over"], second["handoffs"]) == (1, 1, 1)
    assert second["containment_rate"] == 0.0
    assert hourly_traffic([]).empty
