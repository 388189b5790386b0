"""bench/support_answers.py sorts the bot's first reply the way its figures say: right and
wrong FAQ answers by the entry's intent, and every other kind of reply by what it did."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from apps.support.dialogue import MemoryStore, SupportBot
from tests.unit.support_standins import StandInAnswers, StandInNLU

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import support_answers  # bench/ is a folder of scripts, not a package


def test_each_first_reply_is_sorted_by_what_the_bot_did():
    bot = SupportBot(StandInNLU(), StandInAnswers(), MemoryStore(), handoff_phrases=[])
    # the stand-in answers every answerable question from the entry "x"
    entry_intents = {"x": "activate_my_card"}
    cases = {
        ("how do I activate my card", "activate_my_card"): "right",
        ("activate it please", "card_arrival"): "wrong",
        ("I lost my card", "lost_or_stolen_card"): "details",
        ("my topup failed", "top_up_failed"): "confirm",
        ("what is the weather", None): "out_of_scope",
        ("unanswerable: activate what", "activate_my_card"): "declined",
        ("activate this useless furious card, the worst", "activate_my_card"): "handoff",
    }
    for n, ((text, gold), expected) in enumerate(cases.items()):
        replies = bot.reply(f"s{n}", text)
        assert support_answers.outcome(replies, gold, entry_intents) == expected, text


def test_figures_count_answers_and_their_precision():
    counts = Counter(right=6, wrong=2, confirm=1, declined=1)
    figures = support_answers.figures_for(counts, 10)
    assert figures["right_share"] == 0.6 and figures["wrong_share"] == 0.2
    assert figures["answered_share"] == 0.8 and figures["precision"] == 0.75
    assert figures["handoff"] == 0 and figures["messages"] == 10
    assert support_answers.figures_for(Counter(declined=3), 3)["precision"] is None
