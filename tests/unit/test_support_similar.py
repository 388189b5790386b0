"""Similar resolved cases for handoffs, on a hashed bag-of-words embedder (no MiniLM)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from apps.support import api
from apps.support.dialogue import MemoryStore, SupportBot
from apps.support.similar import SimilarCases, customer_text, resolved_cases
from tests.unit.support_standins import HashedWords, StandInAnswers, StandInNLU


def _resolve(bot: SupportBot, sender: str, words: str, answer: str | None, close=True) -> int:
    """A conversation of ``sender`` saying ``words``, handed over; answered and closed."""
    bot.reply(sender, words)
    [message] = bot.reply(sender, "I want to talk to a human")
    handoff_id = message.custom["handoff"]["id"]
    if answer is not None:
        bot.agent_reply(handoff_id, answer, "sam")
    if close:
        bot.close_handoff(handoff_id)
    return handoff_id


@pytest.fixture()
def bot() -> SupportBot:
    return SupportBot(StandInNLU(), StandInAnswers(HashedWords()), store=MemoryStore())


def test_customer_text_keeps_customer_lines():
    transcript = "Customer: my card\nwas stolen\nBot: Which card?\nCustomer: 1234\nAgent: done"
    assert customer_text(transcript) == "my card was stolen\n1234"
    assert customer_text("") == ""
    asked = "Customer: card stolen\nCustomer: I want to talk to a human"
    assert customer_text(asked) == "card stolen"
    assert customer_text("Customer: I want to talk to a human") == "I want to talk to a human"


def test_resolved_cases_need_closed_and_an_agent_reply(bot):
    stolen = _resolve(bot, "a", "my card was stolen on the train", "Card frozen, new one sent")
    _resolve(bot, "b", "exchange rate for dollars", None)  # closed, never answered
    _resolve(bot, "c", "refund from a shop", "Refund chased", close=False)  # still taken
    [case] = resolved_cases(bot.store)
    assert case.handoff_id == stolen and case.sender == "a"
    assert case.customer == "my card was stolen on the train"
    assert case.resolution == "Card frozen, new one sent"


def test_agent_reply_goes_to_its_own_handoff(bot):
    first = _resolve(bot, "a", "my card was stolen", "First answer")
    bot.reply("a", "back again about a refund")
    second = _resolve(bot, "a", "the refund never came", "Second answer")
    cases = {c.handoff_id: c.resolution for c in resolved_cases(bot.store)}
    assert cases == {first: "First answer", second: "Second answer"}


def test_top_three_best_first_with_scores(bot):
    embedder = bot.answers.embedder
    ids = {
        "stolen": _resolve(bot, "a", "my card was stolen on the train", "Frozen and replaced"),
        "refund": _resolve(bot, "b", "refund from a shop never arrived", "Refund chased"),
        "rate": _resolve(bot, "c", "exchange rate for dollars is wrong", "Rate explained"),
        "pin": _resolve(bot, "d", "forgot the pin of my card", "PIN reset"),
    }
    _resolve(bot, "e", "somebody stole my card on the train today", None, close=False)
    [open_one] = bot.store.handoffs("taken") or bot.store.handoffs("open")
    cases = SimilarCases(embedder)
    assert cases.refresh(bot.store) == 4
    found = cases.similar(open_one)
    assert len(found) == 3
    assert found[0].handoff_id == ids["stolen"] and found[0].resolution == "Frozen and replaced"
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    assert 0 < found[0].score <= 1 and found[0].score > found[1].score


def test_a_closed_handoff_never_finds_itself_and_refresh_embeds_only_new(bot):
    embedder = bot.answers.embedder
    first = _resolve(bot, "a", "my card was stolen", "Frozen")
    cases = SimilarCases(embedder)
    cases.refresh(bot.store)
    assert cases.similar(bot.store.get_handoff(first)) == []
    embedded = len(embedder.encoded)
    cases.refresh(bot.store)
    assert len(embedder.encoded) == embedded  # nothing new, nothing embedded
    second = _resolve(bot, "b", "card stolen at the station", "Frozen too")
    assert cases.refresh(bot.store) == 2
    assert len(embedder.encoded) == embedded + 1
    [near] = cases.similar(bot.store.get_handoff(second))
    assert near.handoff_id == first


def test_nothing_resolved_finds_nothing(bot):
    _resolve(bot, "a", "my card was stolen", None, close=False)
    cases = SimilarCases(bot.answers.embedder)
    assert cases.refresh(bot.store) == 0
    assert cases.similar(bot.store.handoffs(None)[0]) == []


def test_sql_store_cases(tmp_path):
    from apps.support.store import SupportStore

    store = SupportStore(f"sqlite:///{tmp_path / 's.db'}")
    bot = SupportBot(StandInNLU(), StandInAnswers(HashedWords()), store=store)
    stolen = _resolve(bot, "a", "my card was stolen", "Frozen and replaced")
    [case] = resolved_cases(store)
    assert case.handoff_id == stolen and case.resolution == "Frozen and replaced"


def test_get_handoff_lists_similar_cases(bot):
    app = FastAPI()
    app.include_router(api.router)
    app.dependency_overrides[api.get_bot] = lambda: bot
    client = TestClient(app)
    stolen = _resolve(bot, "a", "my card was stolen on the train", "Frozen and replaced")
    _resolve(bot, "b", "exchange rate for dollars is wrong", "Rate explained")
    _resolve(bot, "e", "somebody stole my card on the train", None, close=False)
    [listed] = client.get("/handoff").json()
    assert listed["similar"][0]["handoff_id"] == stolen
    assert listed["similar"][0]["resolution"] == "Frozen and replaced"
    one = client.get(f"/handoff/{listed['id']}").json()
    assert one["similar"] == listed["similar"]
    assert client.get(f"/handoff/{stolen}").json()["similar"][0]["handoff_id"] != stolen
    assert set(listed["similar"][0]) == {
        "handoff_id",
        "sender",
        "score",
        "reason",
        "customer",
        "resolution",
    }


def test_without_an_embedder_similar_is_empty():
    bot = SupportBot(StandInNLU(), StandInAnswers(), store=MemoryStore())
    app = FastAPI()
    app.include_router(api.router)
    app.dependency_overrides[api.get_bot] = lambda: bot
    _resolve(bot, "e", "my card was stolen", None, close=False)
    [listed] = TestClient(app).get("/handoff").json()
    assert listed["similar"] == []


def test_one_index_per_bot_shared_by_the_api_and_the_page(bot):
    from apps.support.similar import cases_for, similar_for

    assert cases_for(bot) is cases_for(bot) and cases_for(bot).embedder is bot.answers.embedder
    stolen = _resolve(bot, "a", "my card was stolen on the train", "Frozen and replaced")
    _resolve(bot, "e", "somebody stole my card on the train", None, close=False)
    [[near]] = similar_for(bot, bot.store.handoffs("open"), k=3)
    assert near.handoff_id == stolen and near.resolution == "Frozen and replaced"
    assert similar_for(bot, []) == []
    bare = SupportBot(StandInNLU(), StandInAnswers(), store=MemoryStore())
    assert cases_for(bare) is None and similar_for(bare, bare.store.handoffs()) is None
