"""The Finance monitor page in a real browser (headless Chromium, selenium, explicit waits).

The suite is started as in ``test_browser.py`` (its fixtures and helpers); the page scores the
shipped sample feed, then every tab is opened, a node of the graph is clicked and the article
view is read. The scorer is the deterministic stand-in (no models) unless LEPTON_SCREENSHOTS is
set: then it is the shipped pipeline, as a user runs it, and a screenshot of each tab is
saved in that folder as ``finance-*.png``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.apps.test_browser import (  # noqa: F401 - suite and browser are fixtures
    ROOT,
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

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

SCORE_WAIT = 900 if SCREENSHOTS else WAIT  # the shipped models: loading, then 217 articles


@pytest.fixture(scope="module")
def finance_scorer():
    """The scorer the suite's finance page uses (set before the suite starts)."""
    saved = {
        k: os.environ.get(k) for k in ("LEPTON_FINANCE_SCORER", "LEPTON_FINANCE_PIPELINE_CONFIG")
    }
    folder = tempfile.mkdtemp(prefix="finance-browser-")
    if SCREENSHOTS:
        os.environ.pop("LEPTON_FINANCE_SCORER", None)
        if not (ROOT / "data" / "models" / "finance-relations" / "lepton_artifact.json").is_file():
            config = Path(folder) / "pipeline.yaml"  # until the relation model is shipped
            config.write_text("pipeline:\n  relation_model: null\n", encoding="utf-8")
            os.environ["LEPTON_FINANCE_PIPELINE_CONFIG"] = str(config)
    else:
        os.environ["LEPTON_FINANCE_SCORER"] = "tests.unit.finance_standins:make_scorer"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _visible_panel(driver):
    return next(
        p
        for p in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stTabPanel']")
        if p.is_displayed()
    )


def _picked(driver) -> str:
    box = driver.find_element(
        By.XPATH, "//input[@role='combobox'][@aria-label='Entity (or click a node in the graph)']"
    )
    return box.get_attribute("value")


def test_finance_page_scores_the_sample_and_every_tab_shows_it(finance_scorer, suite, browser):  # noqa: F811
    try:
        _walkthrough(suite, browser)
    except Exception:
        failure = suite["home"] / "finance-failure.png"
        browser.save_screenshot(str(failure))
        print(f"screenshot of the failure: {failure}")
        raise


def _walkthrough(suite, driver) -> None:  # noqa: F811
    driver.get(suite["url"])
    _nav(driver, "Finance monitor")
    _idle(driver)
    _wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, "//button[.//p[normalize-space()='Score']]"))
    ).click()
    _wait(driver).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stProgress']"))
    )
    _text_visible(driver, "Done: 217 new article(s)", SCORE_WAIT)
    _idle(driver)
    values = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetricValue']")
    ]
    assert values[:2] == ["217", "217"], values
    _shot(driver, "finance-score")

    _tab(driver, "Sentiment")
    _wait(driver).until(
        lambda d: _visible_panel(d).find_elements(
            By.CSS_SELECTOR, "[data-testid='stPlotlyChart'] .bars"
        )
    )
    lines = _visible_panel(driver).find_elements(By.CSS_SELECTOR, ".scatterlayer .trace")
    assert len(lines) == 3  # the three companies with most articles
    _shot(driver, "finance-sentiment")

    _tab(driver, "Movers and alerts")
    _wait(driver).until(
        lambda d: (
            len(_visible_panel(d).find_elements(By.CSS_SELECTOR, "[data-testid='stDataFrame']"))
            == 2
        )
    )
    _shot(driver, "finance-alerts")

    _tab(driver, "Graph")
    panel = _visible_panel(driver)
    _wait(driver).until(lambda d: panel.find_elements(By.CSS_SELECTOR, ".scatterlayer .point"))
    before = _picked(driver)
    # A true click on a node of the plotly network (the last trace holds the entities) picks it.
    nodes = panel.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace:last-of-type .point")
    labels = panel.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace:last-of-type .textpoint")
    target = next(i for i, label in enumerate(labels) if label.text and label.text not in before)
    name = labels[target].text
    ActionChains(driver).move_to_element(nodes[target]).click().perform()
    _wait(driver).until(lambda d: _picked(d).startswith(name))
    _idle(driver)
    _wait(driver).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "iframe[srcdoc*='<svg']")
            or d.find_elements(By.CSS_SELECTOR, "iframe")
        )
    )
    # Nordvik Shipping: the acquisition, with its evidence sentence and article link.
    box = driver.find_element(
        By.XPATH, "//input[@role='combobox'][@aria-label='Entity (or click a node in the graph)']"
    )
    box.click()
    box.send_keys("Nordvik Shipping")
    _wait(driver).until(
        EC.element_to_be_clickable(
            (By.XPATH, "//*[@role='option'][contains(., 'Nordvik Shipping')]")
        )
    ).click()
    _wait(driver).until(lambda d: _picked(d).startswith("Nordvik Shipping"))
    _idle(driver)
    relation = _wait(driver).until(
        EC.element_to_be_clickable(
            (By.XPATH, "//details[.//p[contains(., 'acquires Nordvik Shipping')]]/summary")
        )
    )
    relation.click()
    _wait(driver).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "ul.fin-evidence a[href^='https://news.example.com/']"
        )
    )
    _shot(driver, "finance-graph")

    _tab(driver, "Articles")
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".fin-article .fin-entity"))
    article = driver.find_element(By.CSS_SELECTOR, ".fin-article")
    assert article.find_elements(By.CSS_SELECTOR, ".fin-sentence")
    assert not article.find_elements(By.TAG_NAME, "script")
    _shot(driver, "finance-article")
