"""The support bot's conversation logic and its store, on deterministic stand-ins."""

from __future__ import annotations

import pytest

from apps.support.dialogue import (
    MAX_FAILURES,
    NO_SUMMARY,
    NOT_ENGLISH,
    SCOPE,
    MemoryStore,
    SupportBot,
    is_handoff_request,
    load_handoff_phrases,
    load_summarizer,
)
from tests.unit.support_standins import StandInAnswers, StandInNLU, understand


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 10  # every call a new moment, past the duplicate window
        return self.now


def make_bot(store=None, summarizer=None, clock=None) -> SupportBot:
    return SupportBot(
        StandInNLU(),
        StandInAnswers(),
        store=store,
        summarizer=summarizer,
        clock=clock or Clock(),
    )


def texts(messages) -> list[str]:
    return [m.text for m in messages]


def test_answer_carries_source_and_score():
    bot = make_bot()
    [message] = bot.reply("u1", "how do I activate my card")
    assert message.text == "Answer to: how do I activate my card"
    assert message.custom["answer"]["source"] == "policies/cards.md#x"
    assert message.custom["answer"]["score"] == 0.8
    assert message.custom["understanding"]["intent"] == "activate_my_card"
    # the answer source is told what the bot understood, to pick that intent's entry
    assert bot.answers.intents == ["activate_my_card"]
    rasa = message.to_rasa("u1")
    assert rasa["recipient_id"] == "u1" and "buttons" not in rasa


def test_callable_understanding_and_bad_source():
    bot = SupportBot(understand, StandInAnswers(), clock=Clock())
    assert bot.reply("u", "exchange rate for euros")[0].custom["answer"]
    with pytest.raises(TypeError, match="understanding must be"):
        SupportBot(42, StandInAnswers())


def test_out_of_scope_says_what_it_can_do():
    bot = make_bot()
    [message] = bot.reply("u1", "what's the weather in Leeds")
    assert message.text == SCOPE
    assert bot.state("u1").failures == 1


def test_a_message_in_another_language_is_told_the_bot_works_in_english():
    def reads(text: str):
        said = understand(text)
        if text.startswith("Bonjour"):  # what SupportNLU gives for a French message
            said.intent, said.out_of_scope, said.english = None, True, False
            said.reasons = ["not English: reads as another language (fr)"]
        return said

    bot = SupportBot(reads, StandInAnswers(), clock=Clock())
    [message] = bot.reply("u1", "Bonjour, j'ai perdu ma carte")
    assert message.text == NOT_ENGLISH and "English" in message.text
    assert message.custom["understanding"]["english"] is False
    assert bot.state("u1").failures == 1
    # Written again in the other language: handed to a person, as promised.
    [again] = bot.reply("u1", "Bonjour, je ne parle pas anglais")
    assert again.custom["handoff"]["reason"] == "2 turns in a row not understood"
    # An English message out of scope still gets the scope sentence.
    [english] = make_bot().reply("u2", "what's the weather in Leeds")
    assert english.text == SCOPE


def test_ambiguous_offers_top_two_as_buttons_and_button_confirms():
    bot = make_bot()
    [message] = bot.reply("u1", "my topup failed")
    assert [b["payload"] for b in message.buttons] == [
        "/top_up_failed",
        "/top_up_reverted_card_payment",
    ]
    assert message.to_rasa("u1")["buttons"][0]["title"] == "Top up failed"
    [answer] = bot.reply("u1", "/top_up_failed")
    # The answer is looked up with the customer's words, not the button's payload, and with
    # the intent the customer confirmed.
    assert answer.text == "Answer to: my topup failed"
    assert bot.answers.intents == ["top_up_failed"]
    assert bot.state("u1").failures == 0


def test_low_confidence_confirms():
    bot = make_bot()
    [message] = bot.reply("u1", "what is my limit")  # 0.5 vs 0.45: ambiguous
    assert len(message.buttons) == 2


def test_lost_card_slots_filled_across_turns():
    bot = make_bot()
    [ask] = bot.reply("u1", "I lost my card")
    assert "last 4 digits" in ask.text
    [ask2] = bot.reply("u1", "it's the one ending 4321")
    assert "When" in ask2.text
    assert bot.state("u1").slots == {"card": "4321"}
    done = bot.reply("u1", "yesterday")
    assert "card: 4321" in done[0].text and "when: 2026-12-02" in done[0].text
    assert done[1].text == "Answer to: I lost my card"
    assert bot.answers.intents == ["lost_or_stolen_card"]
    assert bot.state("u1").asking is None


def test_slots_given_up_front_and_bare_digits():
    bot = make_bot()
    messages = bot.reply("u1", "My card ending 1111 was stolen yesterday")
    assert "card: 1111" in messages[0].text and len(messages) == 2
    bot.reply("u2", "card stolen")
    [ask] = bot.reply("u2", "9876")  # no entity: the asked slot takes the bare digits
    assert bot.state("u2").slots["card"] == "9876" and "When" in ask.text


def test_transfer_and_refund_flows():
    bot = make_bot()
    assert "How much" in bot.reply("u1", "my transfer never arrived")[0].text
    assert "which date" in bot.reply("u1", "£250")[0].text
    done = bot.reply("u1", "2026-11-30")
    assert "amount: 250.0 GBP" in done[0].text and "date: 2026-11-30" in done[0].text

    assert "Which shop" in bot.reply("u3", "I want a refund")[0].text
    assert "How much" in bot.reply("u3", "Amazon")[0].text
    done = bot.reply("u3", "£20 please")
    assert "merchant: Amazon" in done[0].text and "amount: 20.0 GBP" in done[0].text


def test_new_question_during_a_flow_switches():
    bot = make_bot()
    bot.reply("u1", "I lost my card")
    [message] = bot.reply("u1", "what is the exchange rate to euros")
    assert message.custom["answer"]
    assert bot.state("u1").slots == {}


def test_handoff_on_request_with_transcript_and_no_fake_summary():
    bot = make_bot()
    bot.reply("u1", "how do I activate my card")
    [message] = bot.reply("u1", "Can I speak to a human please?")
    handoff = message.custom["handoff"]
    assert handoff["reason"] == "the customer asked for a person"
    assert handoff["summary"] is None and handoff["note"] == NO_SUMMARY
    assert "Customer: how do I activate my card" in handoff["transcript"]
    assert [h.sender for h in bot.store.handoffs()] == ["u1"]
    # While handed off the bot does not answer; an agent reply arrives on the next turn.
    assert "colleague" in bot.reply("u1", "hello?")[0].text
    bot.agent_reply(handoff["id"], "Hi, I'm Sam. How can I help?", agent="sam")
    assert bot.store.get_handoff(handoff["id"]).status == "taken"
    first = bot.reply("u1", "my card won't activate")[0]
    assert first.text == "Agent: Hi, I'm Sam. How can I help?"
    bot.close_handoff(handoff["id"])
    assert bot.reply("u1", "how do I activate my card")[0].custom["answer"]


def test_handoff_with_summarizer_and_failing_summarizer():
    bot = make_bot(summarizer=lambda t: f"summary of {len(t.splitlines())} lines")
    [message] = bot.reply("u1", "put me through to an agent")
    assert message.custom["handoff"]["summary"] == "summary of 1 lines"

    def broken(_):
        raise RuntimeError("out of memory")

    bot = make_bot(summarizer=broken)
    [message] = bot.reply("u1", "I want to talk to a real person")
    assert message.custom["handoff"]["summary"] is None
    assert "out of memory" in message.custom["handoff"]["note"]


def test_handoff_after_failures_and_on_anger():
    bot = make_bot()
    bot.reply("u1", "blah")
    [message] = bot.reply("u1", "blah blah")
    assert MAX_FAILURES == 2 and "handoff" in message.custom
    assert "2 turns in a row" in message.custom["handoff"]["reason"]

    bot.reply("u2", "blah")
    bot.reply("u2", "activate my card")  # success resets the count
    assert bot.state("u2").failures == 0
    [message] = bot.reply("u2", "this is the worst, my card won't activate")
    assert "strongly negative" in message.custom["handoff"]["reason"]


def test_no_answer_counts_as_failure():
    bot = make_bot()
    [message] = bot.reply("u1", "activate unanswerable")
    assert "no answer" in message.text
    assert bot.state("u1").failures == 1


def test_duplicates_answered_once():
    clock = Clock()
    answers = StandInAnswers()
    bot = SupportBot(StandInNLU(), answers, clock=lambda: clock.now)
    first = bot.reply("u1", "activate my card")
    clock.now += 2
    again = bot.reply("u1", "activate my card")
    assert texts(first) == texts(again) and len(answers.asked) == 1
    clock.now += 10
    bot.reply("u1", "activate my card")
    assert len(answers.asked) == 2
    # By client message id, whatever the time.
    bot.reply("u1", "exchange rate", message_id="m1")
    clock.now += 100
    bot.reply("u1", "exchange rate", message_id="m1")
    assert len(answers.asked) == 3
    events = [e for e in bot.store.events if e["kind"] == "user"]
    assert len(events) == 3


def test_empty_message_and_sender_refused():
    bot = make_bot()
    with pytest.raises(ValueError, match="empty"):
        bot.reply("u1", "   ")
    with pytest.raises(ValueError, match="sender"):
        bot.reply("", "hi")


def test_user_event_stored_before_a_failing_reply():
    def broken(text):
        raise RuntimeError("model crashed")

    store = MemoryStore()
    bot = SupportBot(broken, StandInAnswers(), store=store, clock=Clock())
    with pytest.raises(RuntimeError):
        bot.reply("u1", "activate my card")
    assert [e["kind"] for e in store.events] == ["user"]
    assert bot.state("u1").turns[0]["text"] == "activate my card"


def test_handoff_phrases_shipped_and_matched():
    phrases = load_handoff_phrases()
    assert phrases, "data/support/handoff_phrases.txt should ship phrases"
    for line in phrases:
        assert is_handoff_request(line, phrases)
    assert not is_handoff_request("my transfer agent fee is wrong?")
    assert not is_handoff_request("how do I activate my card")


def test_summarizer_absent_is_none(tmp_path):
    assert load_summarizer(tmp_path / "nothing") is None


# --- the SQL store ----------------------------------------------------------------------------


def test_sql_store_survives_reopen(tmp_path):
    from apps.support.store import SupportStore

    url = f"sqlite:///{tmp_path / 'support.db'}"
    bot = make_bot(store=SupportStore(url))
    bot.reply("u1", "I lost my card")
    bot.reply("u1", "ending 4321")

    reopened = make_bot(store=SupportStore(url))
    assert reopened.state("u1").slots == {"card": "4321"}
    done = reopened.reply("u1", "yesterday")
    assert done[1].text == "Answer to: I lost my card"
    kinds = [e["kind"] for e in reopened.store.events_of("u1")]
    assert kinds.count("user") == 3 and kinds.count("bot") == 4 and "intent" in kinds
    assert [c["sender"] for c in reopened.store.conversations()] == ["u1"]


def test_sql_store_handoffs_and_failed_reply(tmp_path):
    from apps.support.store import SupportStore

    store = SupportStore(f"sqlite:///{tmp_path / 'support.db'}")
    bot = make_bot(store=store)
    [message] = bot.reply("u1", "get me a real person")
    handoff_id = message.custom["handoff"]["id"]
    [open_one] = store.handoffs()
    assert open_one.id == handoff_id and open_one.summary is None
    bot.take_handoff(handoff_id, agent="sam")
    assert store.handoffs() == [] and store.get_handoff(handoff_id).agent == "sam"
    with pytest.raises(KeyError):
        bot.take_handoff(999)

    def broken(text):
        raise RuntimeError("model crashed")

    failing = SupportBot(broken, StandInAnswers(), store=store, clock=Clock())
    with pytest.raises(RuntimeError):
        failing.reply("u2", "activate my card")
    assert [e["kind"] for e in store.events_of("u2")] == ["user"]
    bot.feedback("u1", helpful=False, comment="slow")
    assert store.events_of("u1")[-1]["kind"] == "feedback"


def test_handoff_on_a_handoff_intent():
    from apps.support.understanding import IntentScore, Understanding

    def nlu(text):
        return Understanding(
            text, "human_handoff", 0.9, [IntentScore("human_handoff", 0.9)], False, False
        )

    bot = SupportBot(nlu, StandInAnswers(), handoff_phrases=[], clock=Clock())
    [message] = bot.reply("u1", "hand me over pls")
    assert message.custom["handoff"]["reason"] == "the customer asked for a person"


def test_concurrent_turns_of_one_sender_are_serialised():
    import threading

    bot = make_bot(clock=Clock())
    threads = [
        threading.Thread(target=bot.reply, args=("u1", f"activate card {i}")) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([t for t in bot.state("u1").turns if t["speaker"] == "user"]) == 8
    assert bot._senders == {}  # the per-sender lock goes with the last turn holding it


def test_the_bot_keeps_nothing_per_sender_once_turns_end():
    # The HTTP soak (bench/reliability.py --soak) sends endless new conversations: the bot
    # kept one lock per sender ever seen, for the life of the server.
    import threading

    bot = make_bot(clock=Clock())
    failing = SupportBot(lambda text: 1 / 0, StandInAnswers(), clock=Clock())
    threads = [
        threading.Thread(target=bot.reply, args=(f"s{i % 40}-{i}", "activate my card"))
        for i in range(200)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bot.store.states) == 200
    with pytest.raises(ZeroDivisionError):
        failing.reply("u1", "activate my card")
    assert bot._senders == {} and failing._senders == {}


def test_a_retry_after_a_failed_turn_is_answered():
    calls = []

    def flaky(text):
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return understand(text)

    clock = Clock()
    bot = SupportBot(flaky, StandInAnswers(), clock=lambda: clock.now)
    with pytest.raises(RuntimeError):
        bot.reply("u1", "activate my card")
    [message] = bot.reply("u1", "activate my card")  # within the duplicate window
    assert message.text == "Answer to: activate my card"


def test_flow_caption_says_what_is_known_and_what_is_still_needed():
    from apps.support.dialogue import flow_caption

    assert flow_caption("lost_or_stolen_card", {}) == (
        "Details for lost_or_stolen_card; still needed: card, when"
    )
    assert flow_caption("lost_or_stolen_card", {"card": "4821", "when": "yesterday"}) == (
        "Details for lost_or_stolen_card; known: card 4821, when yesterday; complete"
    )


def test_answer_caption_says_how_the_faq_entry_was_chosen():
    from apps.support.dialogue import answer_caption

    answer = {"source": "faq.jsonl#faq-011", "score": 0.4321, "matched_by": "intent"}
    assert answer_caption(answer) == (
        "Answer: faq.jsonl#faq-011 (score 0.43; the understood intent's entry)"
    )
    answer = {"source": "faq.jsonl#faq-001", "score": 0.9, "matched_by": "similarity"}
    assert answer_caption(answer).endswith("(score 0.90; the most similar entry)")
    policy = {"source": "policies/cards.md#x", "score": 0.95, "matched_by": None}
    assert answer_caption(policy) == "Answer: policies/cards.md#x (score 0.95)"


def test_faq_intents_the_model_does_not_know_are_named(caplog):
    from types import SimpleNamespace

    from apps.support.dialogue import warn_unknown_faq_intents

    answers = SimpleNamespace(by_intent={"card_arrival": [0], "lost_card": [1, 2]})
    with caplog.at_level("WARNING", logger="apps.support.dialogue"):
        known = ["card_arrival", "lost_or_stolen_card"]
        assert warn_unknown_faq_intents(answers, known, "m") == ["lost_card"]
    assert "1 FAQ intents are not intents of m (lost_card)" in caplog.text
    caplog.clear()
    assert warn_unknown_faq_intents(answers, ["card_arrival", "lost_card"], "m") == []
    assert warn_unknown_faq_intents(answers, None, "m") == []  # a model without labels
    assert not caplog.text


def test_entity_caption_shows_a_value_with_its_currency():
    from apps.support.dialogue import entity_caption

    amount = {"label": "AMOUNT", "text": "£1", "value": 1.0, "currency": "GBP"}
    assert entity_caption(amount) == "AMOUNT=1.0 GBP"
    assert entity_caption({"label": "CARD_LAST4", "text": "4821", "value": "4821"}) == (
        "CARD_LAST4=4821"
    )
    assert entity_caption({"label": "ORG", "text": "Tesco", "value": None}) == "ORG=Tesco"
