"""Several browser sessions on one running suite at once (issue 23, item 3).

Four headless Chromium sessions (selenium, explicit waits) use one suite, started as in
``test_browser.py``, at the same time, each on its own pages: Try (the shipped
finance-sentiment model predicts), the Finance monitor (scores the sample feed, stand-in
scorer), Support (a chat turn, stand-in bot) and the Recommender (the shipped demo, a known
user's list). Every page a session opens must show no exception box. The sessions run in
``LEPTON_SOAK_ROUNDS`` rounds (default 1, to keep CI short; the benchmark runs 3), and the
Streamlit server's RSS is read before the first and after each round; with two rounds or
more, the growth from the end of the first (models loaded) to the end of the last is held
to a limit. ``LEPTON_SOAK_REPORT=FILE`` writes what was measured there
(``bench/reliability.py --only soak`` reads it).
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tests.apps.test_browser import (  # noqa: F401 - suite is a fixture
    WAIT,
    _button,
    _idle,
    _nav,
    _new_browser,
    _select,
    _text_visible,
    _title,
    _wait,
    suite,
)

pytestmark = pytest.mark.browser

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

ROUNDS = int(os.environ.get("LEPTON_SOAK_ROUNDS", "1"))
#: What the suite may grow by from the end of the first round to the end of the last: the
#: models are loaded in the first; later rounds only add sessions' state and stored rows.
MAX_ROUND_GROWTH_MIB = 96.0


@pytest.fixture(scope="module")
def stand_ins():
    """The finance scorer and support bot stand-ins, set before the suite starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEPTON_FINANCE_SCORER", "tests.unit.finance_standins:make_scorer")
        patch.setenv("LEPTON_SUPPORT_BOT_FACTORY", "tests.unit.support_standins:make_bot")
        yield


def _no_exception(driver, page: str) -> None:
    _idle(driver)
    boxes = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert not boxes, f"{page}: {boxes[0].text[:500]}"
    assert "Page not found" not in driver.page_source, page


def _try(driver) -> list[str]:
    _nav(driver, "Try")
    _select(driver, "Model", "finance-sentiment")
    _button(driver, "Predict")
    _text_visible(driver, "with probability")
    return ["Try"]


def _finance(driver) -> list[str]:
    _nav(driver, "Finance monitor")
    _idle(driver)
    _button(driver, "Score")
    # A later round finds the sample already stored: nothing new to score.
    _wait(driver).until(
        lambda d: d.find_elements(By.XPATH, "//*[contains(normalize-space(text()), 'Done: ')]")
    )
    return ["Finance monitor"]


def _support(driver) -> list[str]:
    _nav(driver, "Support chat", title="Support")
    box = _wait(driver).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']"))
    )
    before = len(driver.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']"))
    box.send_keys("How do I activate my new card?", Keys.ENTER)
    _wait(driver).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")) >= before + 2
        )
    )
    return ["Support"]


def _recommender(driver) -> list[str]:
    _nav(driver, "Recommender")
    _text_visible(driver, "items in visitor's history")
    _select(driver, "User", "u02")
    _text_visible(driver, "items in u02's history")
    return ["Recommender"]


SESSIONS = {"try": _try, "finance": _finance, "support": _support, "recommender": _recommender}


def _session(running: dict, work, pages: list[str], failures: list[str], name: str) -> None:
    url = running["url"]
    driver = _new_browser()
    try:
        driver.get(url)
        _title(driver, "lepton-nlp suite")
        _no_exception(driver, "Home")
        pages.append("Home")
        for page in work(driver):
            _no_exception(driver, page)
            pages.append(page)
        _nav(driver, "Home")  # and back: the session's state survives a page change
        _no_exception(driver, "Home")
        pages.append("Home")
    except Exception as error:  # every session runs; failures are reported together
        shot = running["home"] / f"session-{name}.png"
        driver.save_screenshot(str(shot))
        message = str(error).split("Stacktrace:")[0].strip()[:800]
        failures.append(
            f"{name}: {type(error).__name__} {message} after pages {pages} (screenshot {shot})"
        )
    finally:
        driver.quit()


def _rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def test_four_sessions_at_once_see_no_exception(stand_ins, suite):  # noqa: F811
    rss = [_rss_mib(suite["pid"])]
    rounds = []
    for _ in range(ROUNDS):
        start = time.monotonic()
        pages = {name: [] for name in SESSIONS}
        failures: list[str] = []
        threads = [
            threading.Thread(target=_session, args=(suite, work, pages[name], failures, name))
            for name, work in SESSIONS.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT * 6)
        rss.append(_rss_mib(suite["pid"]))
        rounds.append(
            {
                "seconds": round(time.monotonic() - start, 1),
                "pages": {name: len(seen) for name, seen in pages.items()},
                "failures": failures,
            }
        )
        assert not failures, "\n".join(failures)
        assert all(not t.is_alive() for t in threads)
    growth = rss[-1] - rss[1]  # 0 with one round: the first loads the models
    report = os.environ.get("LEPTON_SOAK_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "sessions": len(SESSIONS),
                    "rounds": ROUNDS,
                    "page_views": sum(sum(r["pages"].values()) for r in rounds),
                    "exception_boxes": 0,
                    "rss_mib": [round(m, 1) for m in rss],
                    "growth_after_first_round_mib": round(growth, 1),
                    "max_growth_mib": MAX_ROUND_GROWTH_MIB,
                    "round_details": rounds,
                },
                out,
                indent=1,
            )
    print(f"suite RSS (MiB) before and after each round: {[round(m) for m in rss]}")
    assert growth <= MAX_ROUND_GROWTH_MIB, rss
