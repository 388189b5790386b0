"""Integration: the support bot's answers with the packaged MiniLM on the shipped FAQ."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.support.answers import AnswerFinder

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finder() -> AnswerFinder:
    # policy_qa=None: the FAQ step alone, whether or not the policy model is there
    return AnswerFinder.from_folder(ROOT / "data" / "support", policy_qa=None)


def test_shipped_thresholds_are_used(finder):
    assert finder.thresholds.details.get("faq_sha256"), "thresholds.json was refitted on load"
    assert finder.thresholds.faq == pytest.approx(0.450041)


def test_paraphrased_questions_hit_their_entries(finder):
    questions = {
        "someone might have copied my card number": "faq-100",
        "What kind of card do you issue, is it visa?": "faq-013",
        "the letter with my card had no pin in it??": "faq-006",
    }
    answers = finder.find_many(list(questions))
    for answer, (question, entry) in zip(answers, questions.items(), strict=True):
        assert answer is not None, question
        assert (answer.kind, answer.source) == ("faq", f"faq.jsonl#{entry}")
        assert answer.score >= finder.thresholds.faq


def test_out_of_scope_question_is_declined(finder):
    assert finder.find("What's the weather going to be like in Manchester tomorrow?") is None


def test_the_understood_intent_finds_its_entry_the_search_misses(finder):
    assert finder.thresholds.intent == pytest.approx(0.21216)
    assert finder.thresholds.details["intent"]["model"] == "data/models/banking77-intent"
    question = "why is there an extra pound on my statement"
    assert finder.find(question) is None  # under the FAQ threshold by similarity alone
    answer = finder.find(question, intent="extra_charge_on_statement")
    entry = answer.source.removeprefix("faq.jsonl#")
    assert answer.matched_by == "intent" and entry in {"faq-034", "faq-035"}  # its two entries
    assert finder.by_id[entry].intent == "extra_charge_on_statement"
    assert finder.thresholds.intent <= answer.score < finder.thresholds.faq


def test_an_out_of_scope_message_the_intent_model_lets_through_is_still_declined(finder):
    # the intent model reads this as getting_spare_card (0.92); its entries are far from it
    question = "Book me a table for two at an Italian restaurant"
    assert finder.find(question, intent="getting_spare_card") is None
