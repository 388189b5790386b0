"""The suite's pages under streamlit.testing.v1.AppTest: upload, choose, train a tiny run, see results."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = str(Path(__file__).resolve().parents[2])
PAGES = ["home", "data", "train", "evaluate", "compare", "try"]


def _script(page: str, root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from apps import navigation

    navigation.run(default=page)


def open_page(page: str, state: dict | None = None) -> AppTest:
    app = AppTest.from_function(_script, args=(page, ROOT), default_timeout=120)
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "success", "warning", "error")
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens(studio_home, page):
    app = open_page(page)
    assert app.title[0].value in ("lepton-nlp suite", page.capitalize())


def test_home_lists_shipped_models_and_where_data_is(studio_home):
    app = open_page("home")
    table = app.dataframe[0].value
    assert {"finance-sentiment", "banking77-intent", "conll2003-ner"} <= set(table["name"])
    assert str(studio_home) in texts(app)


def test_data_upload_preview_and_bad_files(studio_home):
    app = open_page("data")
    app.file_uploader[0].set_value(
        ("reviews.csv", (FIXTURES / "classification.csv").read_bytes(), "text/csv")
    )
    app.run()
    assert not app.error, [e.value for e in app.error]
    assert app.metric[0].value == "48"
    app.button(key="data_use").click().run()
    chosen = app.session_state["studio_data"]
    assert chosen["task"] == "classification" and chosen["path"].endswith("reviews.csv")

    app.file_uploader[0].set_value(("weights.csv", b"\x00\x01\x02binary", "text/csv")).run()
    assert "not a text file" in app.error[0].value
    wrong = b"sentence,sentiment\ngood,positive\nbad,negative\n"
    app.file_uploader[0].set_value(("wrong.csv", wrong, "text/csv")).run()
    assert "sentence" in app.error[0].value  # names the columns the file has
    # What was chosen before is kept.
    assert app.session_state["studio_data"]["path"].endswith("reviews.csv")


def _tiny_data(tmp_path: Path) -> dict:
    data = tmp_path / "reviews.csv"
    shutil.copy(FIXTURES / "classification.csv", data)
    return {
        "label": "chosen: reviews.csv",
        "path": str(data),
        "task": "classification",
        "format": "csv",
        "columns": {},
        "validation_size": 0.25,
        "test_size": 0.0,
    }


def _start_tiny_run(app: AppTest, tiny_model: str, epochs: float = 2) -> None:
    app.selectbox(key="train_base_classification").set_value("A local model folder...").run()
    app.text_input(key="train_base_path").set_value(tiny_model)
    app.number_input(key="train_epochs_classification").set_value(epochs)
    app.number_input(key="train_batch_classification").set_value(8)
    app.number_input(key="train_len_classification").set_value(48)
    app.run()
    app.button(key="train_start").click().run()
    assert not app.error, [e.value for e in app.error]


def _wait_until_done(app: AppTest, store, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    seen_progress = False
    while time.monotonic() < deadline:
        if store.active():
            app.run()
            seen_progress |= bool(app.get("progress"))
            time.sleep(1.0)
            continue
        app.run()
        return
    raise AssertionError("the tiny run did not finish in time")


def test_train_a_tiny_run_then_evaluate_compare_try(studio_home, store, tiny_model, tmp_path):
    app = open_page("train", {"studio_data": _tiny_data(tmp_path)})
    _start_tiny_run(app, tiny_model)
    assert store.active(), "the run did not start"
    assert store.list()[0].name == "reviews-lora"
    app.run()
    assert app.button(key="train_start").disabled  # one run at a time
    _wait_until_done(app, store)
    run = store.list()[0]
    assert run.status == "completed", run.error
    assert any("Finished in" in s.value for s in app.success)
    assert "accuracy" in app.dataframe[0].value.columns

    evaluate = open_page("evaluate")
    labels = evaluate.selectbox(key="eval_model").options
    mine = next(label for label in labels if f"studio run #{run.id}" in label)
    evaluate.selectbox(key="eval_model").set_value(mine).run()
    evaluate.button(key="eval_run").click().run()
    assert not evaluate.error, [e.value for e in evaluate.error]
    assert [m.label for m in evaluate.metric][:2] == ["Records", "accuracy"]
    assert evaluate.get("vega_lite_chart")

    compare = open_page("compare")
    table = compare.dataframe[0].value
    assert list(table["id"]) == [run.id] and "validation accuracy" in table.columns

    trial = open_page("try")
    trial.selectbox(key="try_model").set_value(mine).run()
    trial.text_area(key=f"try_text_{run.artifact_path}").set_value(
        "the battery died after a week"
    ).run()
    trial.button(key="try_predict").click().run()
    assert trial.metric[0].label == "Prediction" and trial.get("vega_lite_chart")

    # The artifact is deleted: pages say so, the run's record stays.
    shutil.rmtree(run.artifact_path)
    evaluate = open_page("evaluate")
    assert "was deleted or moved" in evaluate.warning[0].value
    compare = open_page("compare")
    assert "model folder deleted" in compare.dataframe[0].value["status"][0]


def test_failed_run_says_why(studio_home, store, tiny_model, tmp_path):
    app = open_page("train", {"studio_data": _tiny_data(tmp_path)})
    Path(app.session_state["studio_data"]["path"]).write_text(
        "text,label\nonly,one\n", encoding="utf-8"
    )
    _start_tiny_run(app, tiny_model, epochs=1)
    _wait_until_done(app, store)
    assert store.list()[0].status == "failed"
    assert app.error and "The run failed." in app.error[0].value


def test_refresh_mid_run_shows_it_and_stop_keeps_the_best(studio_home, store, tiny_model):
    from apps.studio import logic

    config = logic.build_config(
        task="classification",
        data_path=FIXTURES / "classification.csv",
        fmt="csv",
        base_model=tiny_model,
        method="lora",
        epochs=300,
        batch_size=8,
        learning_rate=5e-3,
        max_length=48,
        validation_size=0.25,
        name="long",
        early_stopping=False,
    )
    run = logic.start_run(store, config, "long", "classification")
    deadline = time.monotonic() + 180
    while store.get(run.id).step < 12 and time.monotonic() < deadline:
        time.sleep(0.5)
    app = open_page("train")  # a new browser session: as after a refresh
    assert app.get("progress"), "the running run is not shown"
    assert app.button(key="train_start").disabled
    app.button(key="train_stop").click().run()
    assert store.get(run.id).stop_requested
    _wait_until_done(app, store)
    done = store.get(run.id)
    assert done.status == "stopped", done.error
    assert any("Stopped on request" in w.value for w in app.warning)
