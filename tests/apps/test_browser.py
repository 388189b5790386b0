"""The running suite in a real browser: headless Chromium driven by selenium, explicit waits.

The test starts the suite with the README's launcher on a free loopback port, opens every
page, uploads the finance sample, trains two runs to completion in the studio (plain, then
with adversarial training) and reads their metrics and the method's effect. The runs are tiny (a 2-layer model) unless LEPTON_SCREENSHOTS is set: then
they are what a user would train, MiniLM + LoRA with the page's defaults (about a minute
each on 2 cores), and a screenshot of each page is saved in that folder, taken with the
suite's data under a fresh home folder (~/.local/share/lepton-nlp), as on a user's machine.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "samples" / "finance_sentiment.csv"
SCREENSHOTS = os.environ.get("LEPTON_SCREENSHOTS")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT = float(os.environ.get("LEPTON_BROWSER_WAIT", "120"))  # generous: CI has 2 cores
TRAIN_WAIT = 600

if not (CHROMIUM and DRIVER):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """The suite started by `python -m apps.launch` on a free port, with its own data folder."""
    home = tmp_path_factory.mktemp("suite-home")
    port = _free_port()
    env = {
        **os.environ,
        "LEPTON_HOME": str(home),
        "LEPTON_DB_URL": f"sqlite:///{home / 'studio.db'}",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    if SCREENSHOTS:
        # As on a user's machine: the default data folder under a home folder, so the pages
        # show ~/.local/share/lepton-nlp; the real runs use every core.
        env["HOME"] = str(home)
        home = home / ".local" / "share" / "lepton-nlp"
        for name in ("LEPTON_HOME", "LEPTON_DB_URL", "OMP_NUM_THREADS"):
            env.pop(name, None)
        home.mkdir(parents=True)
    log = open(home / "suite.log", "wb")  # noqa: SIM115 - kept open while the server runs
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.launch", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        WebDriverWait(None, WAIT, poll_frequency=0.5).until(
            lambda _: _healthy(url) or process.poll() is not None
        )
        assert process.poll() is None, (home / "suite.log").read_text()
        # apps.launch execs streamlit in place, so this pid is the suite's server.
        yield {"url": url, "env": env, "home": home, "port": port, "pid": process.pid}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _new_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1500",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))


@pytest.fixture(scope="module")
def browser():
    driver = _new_browser()
    yield driver
    driver.quit()


def _wait(driver, seconds: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.25)


def _text_visible(driver, text: str, seconds: float = WAIT):
    return _wait(driver, seconds).until(
        EC.visibility_of_element_located(
            (By.XPATH, f"//*[contains(normalize-space(text()), {text!r})]")
        )
    )


def _idle(driver, seconds: float = WAIT) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' status)."""
    _wait(driver, seconds).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
    )


def _title(driver, title: str) -> None:
    _wait(driver).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid='stMain'] h1"), title)
    )
    _idle(driver)


def _nav(driver, label: str, title: str | None = None) -> None:
    """Open the sidebar link ``label`` and wait for its page (titled ``title``, default the
    label)."""
    link = _wait(driver).until(
        EC.element_to_be_clickable(
            (
                By.XPATH,
                f"//a[@data-testid='stSidebarNavLink'][.//span[normalize-space()={label!r}]]",
            )
        )
    )
    link.click()
    _title(driver, title or ("lepton-nlp suite" if label == "Home" else label))


def _tab(driver, label: str) -> None:
    """Select the page's tab ``label``."""
    tab = _wait(driver).until(
        EC.element_to_be_clickable(
            (By.XPATH, f"//*[@data-testid='stTab'][normalize-space(.)={label!r}]")
        )
    )
    tab.click()
    _wait(driver).until(lambda d: tab.get_attribute("aria-selected") == "true")


def _settled(driver, check, seconds: float = WAIT) -> None:
    """Wait until ``check(driver)`` holds with no script running, over several polls in a
    row: a rerun that starts just after a change (and may rebuild the widget) is seen."""
    streak = [0]

    def steady(d) -> bool:
        ok = not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']") and check(d)
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 6  # 1.5 s at 0.25 s a poll

    _wait(driver, seconds).until(steady)


def _select(driver, label: str, option: str, attempts: int = 4) -> None:
    """Choose ``option`` in the selectbox ``label``. A rerun that replaces the widget while
    its list is open (the page reruns after the previous choice) closes the list, so an
    attempt that sees no option, or no change, closes the list and opens it again."""
    box = f"//input[@role='combobox'][@aria-label={label!r}]"
    choice = f"//*[@role='option'][contains(., {option!r})]"
    for attempt in range(attempts):
        last = attempt == attempts - 1
        patience = WAIT if last else 20
        _idle(driver)
        try:
            _wait(driver).until(
                EC.element_to_be_clickable((By.XPATH, f"{box}/following-sibling::button"))
            ).click()
            _wait(driver, patience).until(EC.element_to_be_clickable((By.XPATH, choice))).click()
            _settled(
                driver,
                lambda d: option in d.find_element(By.XPATH, box).get_attribute("value"),
                patience,
            )
            return
        except (TimeoutException, StaleElementReferenceException):
            if last:
                raise
            ActionChains(driver).send_keys(Keys.ESCAPE).perform()


def _type(driver, label: str, value: str, attempts: int = 4) -> None:
    """Type ``value`` into the input ``label`` and see it kept once the page has rerun: keys
    sent while an earlier rerun rebuilds the form can be lost, so an attempt is repeated."""
    field = f"//input[@aria-label={label!r}]"
    for attempt in range(attempts):
        last = attempt == attempts - 1
        _idle(driver)
        try:
            element = _wait(driver).until(EC.element_to_be_clickable((By.XPATH, field)))
            element.send_keys(Keys.CONTROL, "a")
            element.send_keys(value, Keys.ENTER)
            _settled(
                driver,
                lambda d: (
                    d.find_element(By.XPATH, field).get_attribute("value") in _shown_as(value)
                ),
                WAIT if last else 20,
            )
            return
        except (TimeoutException, StaleElementReferenceException):
            if last:
                raise


def _shown_as(value: str) -> tuple[str, ...]:
    """How an input shows a typed value: as typed, or as a number input formats it."""
    try:
        number = float(value)
    except ValueError:
        return (value,)
    exponent = f"{number:.2e}"  # Python writes 1.00e-03, the page's JavaScript 1.00e-3
    return (value, f"{number:.2f}", exponent, re.sub(r"e([+-])0(\d)", r"e\1\2", exponent))


def _button(driver, label: str) -> None:
    _wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, f"//button[.//p[normalize-space()={label!r}]]"))
    ).click()


def _shot(driver, name: str, idle: bool = True) -> None:
    folder = os.environ.get("LEPTON_SCREENSHOTS")
    if folder:
        if idle:
            _idle(driver)
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_second_launch_says_the_suite_is_running(suite):
    result = subprocess.run(
        [sys.executable, "-m", "apps.launch", "--port", str(suite["port"])],
        cwd=ROOT,
        env=suite["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert f"already running at {suite['url']}" in result.stdout


@pytest.mark.parametrize(("path", "title"), [("train", "Train"), ("support", "Support")])
def test_a_link_to_a_page_opens_it_in_a_new_browser(suite, path, title):
    # A `pages/` folder beside apps/suite.py made Streamlit answer a first visit to /train
    # with a "Page not found" dialog over the page.
    driver = _new_browser()
    try:
        driver.get(f"{suite['url']}/{path}")
        _title(driver, title)
        assert "Page not found" not in driver.page_source
    finally:
        driver.quit()


def test_every_page_and_two_runs_in_the_studio(suite, browser, tiny_model):
    try:
        _studio_walkthrough(suite, browser, tiny_model)
    except Exception:
        failure = suite["home"] / "failure.png"
        browser.save_screenshot(str(failure))
        print(f"screenshot of the failure: {failure}")
        raise


def _progress(driver) -> tuple[int, int]:
    """(step, total) of the live run's progress bar; (0, 0) before it counts steps."""
    bars = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stProgress']")
    found = re.search(r"step (\d+) of (\d+)", bars[0].text) if bars else None
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _charts(driver) -> int:
    return len(
        driver.find_elements(
            By.CSS_SELECTOR,
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
        )
    )


def _train(driver, tiny_model: str, learning_rate: str | None = None) -> None:
    """Start a run from the Train page: tiny, or (taking screenshots) MiniLM + LoRA with the
    page's defaults; ``learning_rate`` typed in; the training method as chosen."""
    if not SCREENSHOTS:
        _select(driver, "Base model", "A local model folder")
        _type(driver, "Model folder", tiny_model)
        _type(driver, "Epochs", "2")
        _type(driver, "Batch size", "8")
        _type(driver, "Max tokens", "48")
    if learning_rate:
        _type(driver, "Learning rate", learning_rate)
    _button(driver, "Start training")


def _studio_walkthrough(suite, driver, tiny_model) -> None:
    driver.get(suite["url"])
    _title(driver, "lepton-nlp suite")
    _wait(driver).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stDataFrame']"))
    )
    _text_visible(driver, "Where the data is kept")
    if SCREENSHOTS:  # no machine paths: the data under ~, the shipped models in the project
        main = driver.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text
        assert "~/.local/share/lepton-nlp" in main and str(ROOT) not in main
    else:
        _shot(driver, "home")

    _nav(driver, "Data")
    upload = _wait(driver).until(
        EC.presence_of_element_located(
            (By.CSS_SELECTOR, "[data-testid='stFileUploader'] input[type='file']")
        )
    )
    upload.send_keys(str(SAMPLE))
    _wait(driver).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid='stMetricValue']"), "300")
    )
    _wait(driver).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stDataFrame']"))
    )
    _shot(driver, "data")
    _button(driver, "Use this data set for training")
    _text_visible(driver, "will be used on the Train page")

    _nav(driver, "Train")
    _train(driver, tiny_model)
    _wait(driver).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stProgress']"))
    )
    if SCREENSHOTS:
        # Real progress: past half of the steps, with the loss and validation curves drawn.
        _wait(driver, TRAIN_WAIT).until(
            lambda d: (
                (
                    (lambda done, total: total and done * 2 >= total)(*_progress(d))
                    and _charts(d) >= 2
                )
                or d.find_elements(By.XPATH, "//*[contains(text(), 'Finished in')]")
            )
        )
        _shot(driver, "train-running", idle=False)  # the run as it goes (bar, time left, Stop)
    _text_visible(driver, "Finished in", TRAIN_WAIT)
    _wait(driver).until(lambda d: _charts(d) >= 2)
    _text_visible(driver, "Model folder:")
    main = driver.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text
    assert str(suite["home"]) not in main  # paths are shown from ~ or LEPTON_HOME
    _shot(driver, "train")
    table = driver.find_element(By.CSS_SELECTOR, "[data-testid='stDataFrame']")
    assert table.is_displayed()

    _nav(driver, "Evaluate")
    _select(driver, "Model", "studio run #1")
    _button(driver, "Evaluate")
    _text_visible(driver, "Confusion matrix")
    _idle(driver)
    labels = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetricLabel']")
    ]
    assert "accuracy" in " ".join(labels)

    # A shipped model on the finance sample, then the NER one with entities highlighted.
    _select(driver, "Model", "finance-sentiment")
    _idle(driver)
    _select(driver, "Evaluate on", "finance sentiment sample")
    _idle(driver)
    _text_visible(driver, "records ready")  # the run's report is gone: this pair has none yet
    _button(driver, "Evaluate")
    _wait(driver).until(  # the shipped model's report on all 300 sentences, not the run's
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid='stMetricValue']"), "300")
    )
    _text_visible(driver, "Confusion matrix")
    _text_visible(driver, "Predicted with backend")
    _shot(driver, "evaluate")
    _select(driver, "Model", "conll2003-ner")
    _button(driver, "Evaluate")
    _text_visible(driver, "F1 per label")
    _text_visible(driver, "expected:")
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] mark"))
    _shot(driver, "evaluate-ner")

    # A second run, the same settings with adversarial training (FGM), so that Compare shows
    # what the method changed against the first, its plain twin.
    _nav(driver, "Train")
    # At the foot of the form: in the middle of the window, its options open in view.
    box = _wait(driver).until(
        EC.presence_of_element_located(
            (By.XPATH, "//input[@role='combobox'][@aria-label='Training method']")
        )
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    _select(driver, "Training method", "Adversarial training")
    area = _text_visible(driver, "Trains on input embeddings pushed")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    _shot(driver, "train-method")
    _train(driver, tiny_model)
    _text_visible(driver, "Last run #2", TRAIN_WAIT)
    _text_visible(driver, "Finished in", TRAIN_WAIT)

    _nav(driver, "Compare")
    _text_visible(driver, "Effect of a method against the plain run")
    _text_visible(driver, "Plain twin: #1")
    _text_visible(driver, "Two runs side by side")
    _wait(driver).until(
        EC.visibility_of_element_located((By.XPATH, "//label[.//p[text()='Status']]"))
    )
    # The runs; the effect of FGM; the settings that differ; the figures of B against A.
    _wait(driver).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stDataFrame']")) == 4
    )
    _wait(driver).until(lambda d: _charts(d) >= 2)
    _wait(driver).until(
        EC.visibility_of_element_located((By.XPATH, "//input[@aria-label='Run B']"))
    )
    _shot(driver, "compare")

    _nav(driver, "Try")
    _select(driver, "Model", "finance-sentiment")
    _button(driver, "Predict")
    _text_visible(driver, "with probability")
    _wait(driver).until(  # the model's zip, built after the prediction is shown
        EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stDownloadButton']"))
    )
    _idle(driver)
    _shot(driver, "try")

    if SCREENSHOTS:  # the home page with the two models trained here beside the shipped ones
        _nav(driver, "Home")
        _wait(driver).until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stDataFrame']"))
        )
        _text_visible(driver, "Where the data is kept")
        _text_visible(driver, "Runs database")
        _shot(driver, "home")
