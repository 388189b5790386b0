"""The Support page under AppTest, on the stand-in bot (no models loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = str(Path(__file__).resolve().parents[2])


def _script(root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from apps import navigation

    navigation.run(default="support")


@pytest.fixture()
def app(studio_home, monkeypatch) -> AppTest:
    monkeypatch.setenv("LEPTON_SUPPORT_BOT_FACTORY", "tests.unit.support_standins:make_bot")
    page = AppTest.from_function(_script, args=(ROOT,), default_timeout=60)
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    return page


def _texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error")
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_chat_shows_the_understanding_and_buttons(app):
    assert app.title[0].value == "Support"
    app.chat_input(key="support_input").set_value("how do I activate my card").run()
    assert not app.exception
    shown = _texts(app)
    assert "Answer to: how do I activate my card" in shown
    assert "**activate_my_card** · 0.92 · in scope" in shown
    assert "policies/cards.md#x" in shown
    app.chat_input(key="support_input").set_value("topup broke").run()
    buttons = [b for b in app.button if b.key and b.key.startswith("support_btn_")]
    assert [b.label for b in buttons] == ["Top up failed", "Top up reverted card payment"]
    buttons[0].click().run()
    shown = _texts(app)
    assert "Answer to: topup broke" in shown
    # the customer's side shows the button they pressed, not its payload
    said = [m.value for m in app.markdown]
    assert "Top up failed" in said and not [m for m in said if m.startswith("/")], said


def test_handoff_and_analytics_tabs(app):
    app.chat_input(key="support_input").set_value("how do I activate my card").run()
    assert "No traffic yet" not in _texts(app)
    app.chat_input(key="support_input").set_value("Can I speak to a human please?").run()
    shown = _texts(app)
    assert "Why: the customer asked for a person" in shown
    assert "No summary model is installed" in shown
    assert any(m.label == "Handoffs" and m.value == "1" for m in app.metric)
    assert any(m.label == "Containment" and m.value == "0%" for m in app.metric)
    assert not app.exception, [e.message for e in app.exception]
    charts = [h.value for h in app.subheader]
    assert charts == [
        "Intents over time",
        "Containment and handoffs",
        "Low-confidence turns",
        "Top intents",
    ]
    app.text_input(key="support_reply_1").set_value("Hi, Sam here").run()
    app.button(key="support_send_1").click().run()
    assert not app.exception
    assert "taken" in _texts(app)


def test_handoff_view_shows_similar_resolved_cases(app):
    say = app.chat_input(key="support_input")
    say.set_value("my card was stolen on the train").run()
    app.chat_input(key="support_input").set_value("Can I speak to a human please?").run()
    assert "None yet: closed handoffs that an agent answered show here" in _texts(app)
    app.text_input(key="support_reply_1").set_value("Frozen it and sent a new card").run()
    app.button(key="support_send_1").click().run()
    app.button(key="support_close_1").click().run()
    app.button(key="support_new").click().run()
    app.chat_input(key="support_input").set_value("somebody stole my card on the train").run()
    app.chat_input(key="support_input").set_value("I want to talk to a human").run()
    assert not app.exception, [e.message for e in app.exception]
    shown = _texts(app)
    assert "**Similar resolved cases**" in shown
    first_sender = app.session_state["support_sender"]  # the new conversation's
    [case] = [line for line in shown.splitlines() if line.startswith("#1 · ")]
    assert "similarity" in case and "my card was stolen on the train" in case
    assert first_sender not in case  # the case found is the other conversation
    assert "Resolved with: Frozen it and sent a new card" in shown
