"""The Support page in a real browser (headless Chromium, selenium, explicit waits).

The suite is started as in ``test_browser.py`` (its fixtures and helpers); a customer types
three messages in the chat (a question, one the bot is unsure of, answered by pressing a
button, and a request for a person), then the Handoffs and Analytics tabs are read. The bot is
the deterministic stand-in (no models) unless LEPTON_SCREENSHOTS is set: then it is the
shipped bot (intent model, FAQ, summarizer), as a user runs it, and a screenshot of each tab
is saved in that folder as ``support-*.png``.
"""

from __future__ import annotations

import os

import pytest

from tests.apps.test_browser import (  # noqa: F401 - suite and browser are fixtures
    SCREENSHOTS,
    WAIT,
    _idle,
    _nav,
    _shot,
    _tab,
    _text_visible,
    _wait,
    browser,
    suite,
)

pytestmark = pytest.mark.browser

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

#: The shipped bot loads its models on the first message.
REPLY_WAIT = 600 if SCREENSHOTS else WAIT


@pytest.fixture(scope="module")
def support_bot():
    """The bot the suite's support page builds (set before the suite starts)."""
    saved = os.environ.get("LEPTON_SUPPORT_BOT_FACTORY")
    if SCREENSHOTS:
        os.environ.pop("LEPTON_SUPPORT_BOT_FACTORY", None)
    else:
        os.environ["LEPTON_SUPPORT_BOT_FACTORY"] = "tests.unit.support_standins:make_bot"
    yield
    if saved is None:
        os.environ.pop("LEPTON_SUPPORT_BOT_FACTORY", None)
    else:
        os.environ["LEPTON_SUPPORT_BOT_FACTORY"] = saved


def test_support_page_chats_hands_over_and_counts_it(support_bot, suite, browser):  # noqa: F811
    try:
        _walkthrough(browser, suite["url"])
    except Exception:
        failure = suite["home"] / "support-failure.png"
        browser.save_screenshot(str(failure))
        print(f"screenshot of the failure: {failure}")
        raise


def _say(driver, text: str) -> None:
    box = _wait(driver).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']"))
    )
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    # the customer's words come back as a chat message of their own
    _text_visible(driver, text, REPLY_WAIT)
    _idle(driver, REPLY_WAIT)


def _messages(driver) -> list[str]:
    return [m.text for m in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")]


def _walkthrough(driver, url: str) -> None:
    driver.get(url)
    _nav(driver, "Support chat", title="Support")
    question, unsure = (
        ("Why is there an extra £1 on my statement?", "How long will it take?")
        if SCREENSHOTS
        else ("how do I activate my card", "my topup failed")
    )
    person = "Can I speak to a human please?"
    _say(driver, question)
    reply = _messages(driver)[-1]
    # the answer, and beside it what the bot understood and where the answer came from
    assert "in scope" in reply and "Answer:" in reply, reply
    if not SCREENSHOTS:
        assert "Answer to: how do I activate my card" in reply
        assert "activate_my_card" in reply and "policies/cards.md#x (score 0.80)" in reply

    _say(driver, unsure)
    reply = _messages(driver)[-1]
    assert "I'm not sure I understood" in reply, reply
    buttons = driver.find_elements(
        By.XPATH, "//*[@data-testid='stChatMessage']//button[.//p[normalize-space()]]"
    )
    assert len(buttons) == 2, [b.text for b in buttons]
    confirmed = buttons[0].text
    buttons[0].click()
    _wait(driver, REPLY_WAIT).until(lambda d: len(_messages(d)) >= 6)
    _idle(driver, REPLY_WAIT)
    reply = _messages(driver)[-1]
    assert reply != _messages(driver)[-3], "the button press was not answered"
    if not SCREENSHOTS:
        assert confirmed == "Top up failed" and "Answer to: my topup failed" in reply
    _say(driver, person)
    reply = _messages(driver)[-1]
    assert "colleague" in reply.lower() or "person" in reply.lower(), reply
    _shot(driver, "support-chat")

    _tab(driver, "Handoffs")
    _text_visible(driver, "Why: the customer asked for a person")
    panel = driver.find_element(By.XPATH, "//*[contains(normalize-space(text()), 'Why: ')]")
    assert panel.is_displayed()
    _shot(driver, "support-handoffs")

    _tab(driver, "Analytics")
    _wait(driver).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stMetricValue']"))
    )
    values = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetricValue']")
    ]
    # one conversation, handed over: containment 0%, one handoff
    assert values[:3] == ["1", "0%", "1"], values
    _wait(driver).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")) >= 3
    )
    _shot(driver, "support-analytics")
