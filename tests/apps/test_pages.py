"""The suite's pages under streamlit.testing.v1.AppTest: upload, choose, train a tiny run, see results."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import tiny_config, wait_for
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


def _start_tiny_run(
    app: AppTest, tiny_model: str, epochs: float = 2, pooling: str | None = None
) -> None:
    app.selectbox(key="train_base_classification").set_value("A local model folder...").run()
    app.text_input(key="train_base_path").set_value(tiny_model)
    app.number_input(key="train_epochs_classification").set_value(epochs)
    app.number_input(key="train_batch_classification").set_value(8)
    app.number_input(key="train_len_classification").set_value(48)
    app.run()
    if pooling is not None:
        choice = app.selectbox(key=f"train_pooling_{tiny_model}")
        assert choice.value == "cls"  # a plain transformers folder starts from the first token
        choice.set_value(pooling).run()
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
    _start_tiny_run(app, tiny_model, pooling="mean")
    assert store.active(), "the run did not start"
    assert store.list()[0].name == "reviews-lora"
    assert "pooling: mean" in store.list()[0].config_yaml
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
    from apps.studio import runs

    config = tiny_config(tiny_model, epochs=300, early_stopping=False)
    run = runs.start_run(store, config, "long", "classification")
    wait_for(lambda: store.get(run.id).step >= 12)
    app = open_page("train")  # a new browser session: as after a refresh
    assert app.get("progress"), "the running run is not shown"
    assert app.button(key="train_start").disabled
    app.button(key="train_stop").click().run()
    assert store.get(run.id).stop_requested
    _wait_until_done(app, store)
    done = store.get(run.id)
    assert done.status == "stopped", done.error
    assert any("Stopped on request" in w.value for w in app.warning)


# --- the other tasks: qa, relation, summarization, translation -----------------------------

OTHER_TASKS = ["qa", "relation", "summarization", "translation"]
SAMPLES = Path(ROOT) / "data" / "samples"


@pytest.mark.parametrize(
    ("task", "figures", "preview"),
    [
        ("qa", ["Contexts", "Median context length (words)"], {"question", "answer", "context"}),
        ("relation", ["Relations", "Median length (words)"], {"text", "head (e1)", "tail (e2)"}),
        ("summarization", ["Median source length (words)"], {"source", "target"}),
        ("translation", ["Median source length (words)"], {"source", "target"}),
    ],
)
def test_data_page_sample_of_each_task_then_train_defaults(studio_home, task, figures, preview):
    from apps.studio import datafiles, runconfig
    from lepton_nlp.tasks import get_task

    sample = datafiles.sample_data(task)
    app = open_page("data")
    app.radio(key="data_source").set_value("A sample data set").run()
    app.selectbox(key="data_sample").set_value(sample["label"]).run()
    assert not app.error, [e.value for e in app.error]
    assert app.selectbox(key="data_task").value == task
    labels = [m.label for m in app.metric]
    assert labels[0] == "Records" and all(f in labels for f in figures)
    assert preview <= set(app.dataframe[-1].value.columns)
    app.button(key="data_use").click().run()
    chosen = app.session_state["studio_data"]
    assert (chosen["task"], chosen["format"]) == (task, sample["format"])

    train = open_page("train", {"studio_data": chosen})
    assert train.selectbox(key="train_task").value == task
    defaults = get_task(task).training_defaults()
    assert train.number_input(key=f"train_len_{task}").value == defaults["max_length"]
    assert train.selectbox(key=f"train_base_{task}").value == runconfig.base_models(task)[0]


def test_train_page_pools_minilm_as_it_was_trained(studio_home):
    from apps.studio import datafiles
    from lepton_nlp.hub import MINILM

    sample = datafiles.sample_data("classification")
    app = open_page("train", {"studio_data": {**sample, "validation_size": 0.2}})
    assert app.selectbox(key="train_base_classification").value == MINILM
    pooling = app.selectbox(key=f"train_pooling_{MINILM}")
    assert pooling.value == "mean" and pooling.label == "Sentence vector the classifier reads"


def test_train_page_defaults_follow_the_base_model(studio_home):
    """Translation starts on the MiniLM encoder-decoder (full, a note says why); picking
    SmolLM2 switches the method and lengths to its own defaults."""
    from apps.studio import datafiles
    from lepton_nlp.hub import MINILM, SMOLLM2

    sample = datafiles.sample_data("translation")
    chosen = {**sample, "validation_size": 0.2, "test_size": 0.1}
    app = open_page("train", {"studio_data": chosen})
    assert app.selectbox(key="train_base_translation").value == MINILM
    assert app.selectbox(key="train_method_translation").value == "full"
    assert "encoder-decoder" in app.info[0].value
    app.selectbox(key="train_base_translation").set_value(SMOLLM2).run()
    assert not app.exception, [e.message for e in app.exception]
    slot = f"translation_{SMOLLM2}"
    assert app.selectbox(key=f"train_method_{slot}").value == "lora"
    assert app.number_input(key=f"train_len_{slot}").value == 256
    assert not app.info


def test_data_page_recognises_uploads_and_refuses_the_wrong_shape(studio_home):
    app = open_page("data")
    relations = (SAMPLES / "finance_relations.jsonl").read_bytes()
    app.file_uploader[0].set_value(("rel.jsonl", relations, "application/json")).run()
    assert not app.error, [e.value for e in app.error]
    assert app.selectbox(key="data_task").value == "relation"
    assert app.metric[1].label == "Relations" and app.metric[1].value == "4"
    assert "<e1>" in app.dataframe[-1].value["text"][0]

    dialogues = (SAMPLES / "finance_dialogues.jsonl").read_bytes()
    app.file_uploader[0].set_value(("talks.jsonl", dialogues, "application/json")).run()
    assert app.selectbox(key="data_task").value == "summarization"
    assert app.text_input(key="data_source_col").value == "dialogue"
    assert not app.error and app.metric[0].value == "30"

    csv = (FIXTURES / "classification.csv").read_bytes()
    app.file_uploader[0].set_value(("questions.json", csv, "application/json")).run()
    assert app.selectbox(key="data_task").value == "qa"
    assert "Expected for qa (squad): SQuAD JSON" in app.error[0].value


def _register(store, task: str, studio_artifact) -> str:
    """A finished studio run holding the session's tiny artifact of ``task``; its model label."""
    artifact, config, metrics = studio_artifact(task)
    run = store.create(name=f"tiny-{task}", task=task, config_yaml=config)
    store.update(run.id, status="completed", artifact_path=str(artifact), metrics=metrics)
    return f"studio run #{run.id}"


def _choose_model(app: AppTest, key: str, source: str) -> None:
    box = app.selectbox(key=key)
    box.set_value(next(o for o in box.options if source in o)).run()
    assert not app.exception, [e.message for e in app.exception]


def test_train_page_runs_a_qa_model_in_the_worker(studio_home, store, tiny_model):
    """SQuAD 2.0 data (a question without an answer) trains a model that may say "no answer"."""
    from apps.studio import datafiles

    sample = datafiles.sample_data("qa")
    squad = json.loads(Path(sample["path"]).read_text(encoding="utf-8"))
    question = squad["data"][0]["paragraphs"][0]["qas"][0]
    question.update(is_impossible=True, answers=[])
    studio_home.mkdir(parents=True, exist_ok=True)
    squad2 = studio_home / "finance_qa.json"
    squad2.write_text(json.dumps(squad), encoding="utf-8")
    data = {**sample, "path": str(squad2), "validation_size": 0.2, "test_size": 0.2}
    app = open_page("train", {"studio_data": data})
    no_answer = app.checkbox(key=f"train_no_answer_{squad2}")
    assert no_answer.value is True and "1 question(s)" in no_answer.help
    app.selectbox(key="train_base_qa").set_value("A local model folder...").run()
    app.text_input(key="train_base_path").set_value(tiny_model)
    app.number_input(key="train_epochs_qa").set_value(1)
    app.number_input(key="train_batch_qa").set_value(8)
    app.number_input(key="train_len_qa").set_value(64)  # the windows follow (stride 21)
    app.run()
    app.button(key="train_start").click().run()
    assert not app.error, [e.value for e in app.error]
    _wait_until_done(app, store)
    run = store.list()[0]
    assert run.status == "completed", run.error
    assert run.name == "finance_qa-lora" and "stride: 21" in run.config_yaml
    assert "allow_no_answer: true" in run.config_yaml
    assert any("Finished in" in s.value for s in app.success)
    assert {"exact_match", "f1"} <= set(app.dataframe[0].value.columns)


ERROR_COLUMNS = {
    "qa": ["question", "expected", "predicted"],
    "relation": ["text", "true", "predicted"],
    "summarization": ["source", "reference", "output"],
    "translation": ["source", "reference", "output"],
}


@pytest.mark.parametrize("task", OTHER_TASKS)
def test_evaluate_page_shows_the_task_metrics_and_worst_errors(
    studio_home, store, studio_artifact, task
):
    from apps.studio import runs, summary

    source = _register(store, task, studio_artifact)
    app = open_page("evaluate")
    _choose_model(app, "eval_model", source)
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    headline = {
        "qa": ["exact_match", "f1"],
        "relation": ["macro_f1", "micro_f1", "accuracy"],
        "summarization": ["rouge1", "rouge2", "rougeL"],
        "translation": ["bleu", "chrf"],
    }[task]
    assert [m.label for m in app.metric] == ["Records", *headline]
    test_split = runs.run_records(store.list()[0].config_yaml, "test")
    assert app.metric[0].value == str(len(test_split))
    errors = app.dataframe[-1].value
    assert list(errors.columns[:3]) == ERROR_COLUMNS[task] and len(errors) > 0
    first = ERROR_COLUMNS[task][0]
    known = {summary.marked_text(r) if task == "relation" else r[first] for r in test_split}
    assert set(errors[first]) <= known  # the errors come with their own texts
    if task == "relation":
        assert "official score" in texts(app)
        assert len(app.get("vega_lite_chart")) == 2  # confusion matrix and F1 per relation


def _try(app: AppTest, task: str, path: str) -> object:
    """Fill the Try page's inputs for ``task``; the item the Predictor should get."""
    if task == "qa":
        context = "Maria Koski is the chief executive of Polar Foods, based in Lahti."
        question = "Who is the chief executive of Polar Foods?"
        app.text_area(key="try_context").set_value(context)
        app.text_input(key="try_question").set_value(question)
        return {"question": question, "context": context}
    if task == "relation":
        app.text_area(key=f"try_text_{path}").set_value(
            "<e1>Maria Koski</e1> is the chief executive of <e2>Polar Foods</e2>."
        )
        app.text_input(key=f"try_head_type_{path}").set_value("PER")
        app.text_input(key=f"try_tail_type_{path}").set_value("ORG")
        return {
            "text": "Maria Koski is the chief executive of Polar Foods.",
            "head": {"start": 0, "end": 11, "type": "PER"},
            "tail": {"start": 38, "end": 49, "type": "ORG"},
        }
    text = {
        "summarization": "Anna: The budget is due on Friday.\nBen: I'll send my numbers today.",
        "translation": "Sales rose by 5% in the second quarter.",
    }[task]
    app.text_area(key=f"try_text_{path}").set_value(text)
    return text


@pytest.mark.parametrize("task", OTHER_TASKS)
def test_try_page_takes_the_task_input_and_shows_the_prediction(
    studio_home, store, studio_artifact, task
):
    import html

    from lepton_nlp.inference import Predictor

    source = _register(store, task, studio_artifact)
    path = str(studio_artifact(task)[0])
    app = open_page("try")
    _choose_model(app, "try_model", source)
    item = _try(app, task, path)
    app.run()
    app.button(key="try_predict").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    expected = Predictor.from_artifact(path).predict_one(item)
    shown = "\n".join(str(m.value) for m in app.markdown)
    if task == "qa":
        assert app.metric[0].label == "Answer" and app.metric[0].value == expected["answer"]
        assert f"{html.escape(expected['answer'])} <b" in shown  # highlighted in the context
    elif task == "relation":
        assert app.metric[0].label == "Relation" and app.metric[0].value == expected["label"]
        assert shown.count("<mark") == 2 and ">head</b>" in shown and ">tail</b>" in shown
        assert app.get("vega_lite_chart")  # the probabilities of every relation
    else:
        assert ("Summary" if task == "summarization" else "Translation") in shown
        if expected["generated_text"]:
            assert html.escape(expected["generated_text"]) in shown
        else:
            assert "generated nothing" in texts(app)


def test_try_page_relation_from_typed_arguments_and_a_missing_one(
    studio_home, store, studio_artifact
):
    source = _register(store, "relation", studio_artifact)
    path = str(studio_artifact("relation")[0])
    app = open_page("try")
    _choose_model(app, "try_model", source)
    app.text_area(key=f"try_text_{path}").set_value("Eva Holm runs Vik Air.")
    app.text_input(key=f"try_head_{path}").set_value("Eva Holm")
    app.text_input(key=f"try_tail_{path}").set_value("Vik Airways").run()
    assert "'Vik Airways' is not in the text" in app.warning[0].value
    assert app.button(key="try_predict").disabled
    app.text_input(key=f"try_tail_{path}").set_value("Vik Air").run()
    app.button(key="try_predict").click().run()
    assert app.metric[0].label == "Relation"


# --- issue 17: refused uploads, fitting pairs, Try and Train details, one evaluation path ---

WRONG_COLUMNS = b"sentence,sentiment\ngood,positive\nbad,negative\nfine,positive\n"


def _stored_files(home: Path) -> set[str]:
    return {p.name for p in home.rglob("*") if p.is_file()}


def test_a_refused_upload_is_neither_kept_nor_offered(studio_home):
    from apps.studio import datafiles

    # What an earlier version left behind: a refused upload kept under LEPTON_HOME.
    uploads = studio_home / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "old-wrong.csv").write_bytes(WRONG_COLUMNS)
    app = open_page("data")
    app.file_uploader[0].set_value(("weights.csv", b"\x00\x01\x02binary", "text/csv")).run()
    assert "not a text file" in app.error[0].value
    app.file_uploader[0].set_value(("wrong.csv", WRONG_COLUMNS, "text/csv")).run()
    assert "sentence" in app.error[0].value
    stored = _stored_files(studio_home)
    assert not {"weights.csv", "wrong.csv"} & stored, stored

    # A new session: neither the Train page nor the Data page's picker offers them, and the
    # refused file an earlier version kept is gone once the uploads are listed.
    sample = datafiles.sample_data("classification")["label"]
    train = open_page("train")
    assert "old-wrong.csv" not in _stored_files(studio_home)
    assert train.selectbox(key="train_data").value == sample
    assert not [o for o in train.selectbox(key="train_data").options if "wrong" in o]
    data = open_page("data")
    data.radio(key="data_source").set_value("A sample data set").run()
    assert not [o for o in data.selectbox(key="data_sample").options if "wrong" in o]

    # The same file read with its columns named is accepted, and offered with those columns.
    app.text_input(key="data_text_col").set_value("sentence")
    app.text_input(key="data_label_col").set_value("sentiment").run()
    assert not app.error, [e.value for e in app.error]
    assert "wrong.csv" in _stored_files(studio_home)
    train = open_page("train")
    assert train.selectbox(key="train_data").value == "upload: wrong.csv"
    offered = next(c for c in datafiles.known_data_files() if c["label"] == "upload: wrong.csv")
    assert offered["columns"] == {"text_column": "sentence", "label_column": "sentiment"}
    records = datafiles.load_data(offered["path"], "classification", "csv", offered["columns"])
    assert len(records) == 3


def _labels_of(records: list[dict]) -> set[str]:
    return {t for r in records for t in (r["tags"] if "tags" in r else [r["label"]])}


def test_evaluate_starts_on_a_pair_that_fits_and_says_when_labels_do_not(studio_home):
    from apps.common.catalog import model_catalog
    from apps.studio import artifacts, datafiles

    app = open_page("evaluate")
    model = next(
        m for m in model_catalog() if app.selectbox(key="eval_model").value.startswith(m["name"])
    )
    data_box = app.selectbox(key=f"eval_data_{model['path']}")
    choice = next(c for c in datafiles.known_data_files() if c["label"] == data_box.value)
    records = datafiles.load_data(
        choice["path"], choice["task"], choice["format"], choice["columns"]
    )
    assert _labels_of(records) <= set(artifacts.artifact_spec(model["path"]).labels)
    assert not app.warning, [w.value for w in app.warning]

    # The intent model on the finance sample: one line that says so and names the model that fits.
    _choose_model(app, "eval_model", "banking77-intent")
    assert len(app.warning) == 1
    line = app.warning[0].value
    assert "\n" not in line and "finance-sentiment" in line and "activate_my_card" not in line
    assert app.button(key="eval_run").disabled
    app.button(key="eval_fit_0").click().run()  # the model offered
    assert app.selectbox(key="eval_model").value.startswith("finance-sentiment")
    assert not app.warning and not app.button(key="eval_run").disabled
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert [m.label for m in app.metric][:2] == ["Records", "accuracy"]


def test_evaluate_page_scores_as_the_core_does_and_names_the_backend(studio_home):
    from apps.common.catalog import SHIPPED_MODELS
    from apps.studio import datafiles, reports
    from lepton_nlp.config import DataConfig
    from lepton_nlp.data import load_records
    from lepton_nlp.inference import Predictor

    model = str(SHIPPED_MODELS / "finance-sentiment")
    sample = datafiles.sample_data("classification")
    predictor = Predictor.from_artifact(model, backend="auto")
    core = predictor.evaluate(load_records(DataConfig(format="csv"), sample["path"], "text"))

    app = open_page("evaluate")
    _choose_model(app, "eval_model", "finance-sentiment")
    app.selectbox(key=f"eval_data_{model}").set_value(sample["label"]).run()
    app.button(key="eval_run").click().run()
    assert not app.error, [e.value for e in app.error]
    shown = {m.label: m.value for m in app.metric}
    assert shown["Records"] == str(core["examples"])
    assert shown["accuracy"] == reports.format_metric("accuracy", core["accuracy"])
    assert shown["macro_f1"] == reports.format_metric("macro_f1", core["macro_f1"])
    assert f"backend {predictor.backend}" in texts(app)


def test_try_clears_the_old_prediction_and_refuses_whitespace(studio_home):
    from apps.common.catalog import SHIPPED_MODELS

    app = open_page("try")
    _choose_model(app, "try_model", "finance-sentiment")
    key = f"try_text_{SHIPPED_MODELS / 'finance-sentiment'}"
    app.button(key="try_predict").click().run()
    assert [m.label for m in app.metric] == ["Prediction"]
    app.text_area(key=key).set_value("").run()
    assert not app.metric and not app.get("vega_lite_chart")  # the old prediction is gone
    app.text_area(key=key).set_value("   \n\t ").run()
    app.button(key="try_predict").click().run()
    assert not app.metric
    assert "only whitespace" in app.error[0].value


def test_learning_rate_steps_both_ways_and_shows_what_was_typed(studio_home):
    from apps.studio import datafiles

    app = open_page("train", {"studio_data": datafiles.sample_data("classification")})
    key = "train_lr_classification"
    assert app.number_input(key=key).value == 5e-4
    app.number_input(key=key).increment().run()
    up = app.number_input(key=key).value
    assert 5e-4 < up < 1e-3, up
    app.number_input(key=key).set_value(5e-4).run()
    app.number_input(key=key).decrement().run()
    down = app.number_input(key=key).value
    assert 0 < down < 5e-4, down
    app.number_input(key=key).set_value(0.00025).run()
    box = app.number_input(key=key)
    assert box.value == 0.00025 and box.proto.format % box.value == "2.50e-04"


def _finished(store, name: str, history: list[dict]) -> None:
    run = store.create(name=name, task="classification", config_yaml="task: classification\n")
    store.update(
        run.id,
        status="completed",
        history=history,
        metrics={"validation": {"accuracy": 0.75}, "train": {"train_seconds": 3.0}},
    )


def _shows_points(spec: dict) -> bool:
    """Whether a Vega-Lite spec draws its points (not only hover points, opacity 0, filtered)."""
    layers = spec.get("layer") or [spec]
    for layer in layers:
        mark = layer.get("mark") or {}
        mark = {"type": mark} if isinstance(mark, str) else mark
        if mark.get("point"):
            return True
        visible = mark.get("opacity", 1) != 0 and not layer.get("transform")
        if mark.get("type") in ("point", "circle") and visible:
            return True
    return False


def test_one_evaluation_is_drawn_as_a_point_with_a_note(studio_home, store):
    history = [
        {"step": 1, "epoch": 0.5, "loss": 0.7},
        {"step": 2, "epoch": 1.0, "loss": 0.6},
        {"step": 2, "epoch": 1.0, "eval_loss": 0.65, "eval_accuracy": 0.75},
    ]
    _finished(store, "one-epoch", history)
    app = open_page("train")
    specs = [json.loads(c.proto.spec) for c in app.get("vega_lite_chart")]
    assert len(specs) == 2  # loss on the left, validation on the right
    assert _shows_points(specs[1]), specs[1]
    assert "One evaluation so far" in texts(app) and "0.750" in texts(app)


def test_a_duplicate_run_name_is_refused_and_the_default_is_unique(studio_home, store, tmp_path):
    _finished(store, "reviews-lora", [])
    app = open_page("train", {"studio_data": _tiny_data(tmp_path)})
    name = app.text_input(key="train_name_lora_reviews-lora-2")
    assert name.value == "reviews-lora-2"
    name.set_value("reviews-lora").run()
    app.button(key="train_start").click().run()
    assert "already" in app.error[0].value and "reviews-lora-2" in app.error[0].value
    assert [r.name for r in store.list()] == ["reviews-lora"]


# --- training methods: the Train page's Method area and the Compare page's effect ----------


def _no_worker(monkeypatch) -> None:
    """Runs are recorded but not trained: the worker "runs" as this process."""
    import os

    monkeypatch.setattr("apps.studio.worker.spawn_worker", lambda *args, **kwargs: os.getpid())


@pytest.mark.parametrize(
    ("label", "settings", "expect"),
    [
        (
            "Adversarial training",
            {"train_opt_adversarial_method": "pgd", "train_opt_adversarial_epsilon": 0.5},
            {
                "training.adversarial": "pgd",
                "training.adversarial_epsilon": 0.5,
                "training.adversarial_steps": 3,
                "peft.method": "lora",
            },
        ),
        (
            "Prompt learning (soft prompts)",
            {"train_opt_prompt_kind": "ptuning", "train_opt_prompt_virtual_tokens": 12},
            {
                "peft.method": "ptuning",
                "peft.num_virtual_tokens": 12,
                "training.learning_rate": 0.01,
            },
        ),
        (
            "Few-shot (SetFit, LLM prompts)",
            {"train_opt_fewshot_approach": "in-context", "train_opt_fewshot_shots": 8},
            {
                "prompting.method": "in-context",
                "prompting.shots": 8,
                "prompting.seed": 42,
                "prompting.max_eval_samples": 200,
            },
        ),
        (
            "Hyper-parameter search",
            {"train_opt_hpo_trials": 3, "train_opt_hpo_space": ["learning_rate", "r"]},
            {"hpo.trials": 3, "hpo.space.r.choices": [8, 16, 32], "hpo.space.epochs": None},
        ),
        (
            "Continual learning",
            {"train_opt_continual_method": "ewc"},
            {"continual.method": "ewc", "run.peft.method": "lora"},
        ),
    ],
)
def test_choosing_a_method_on_train_writes_its_settings(
    studio_home, store, tmp_path, monkeypatch, label, settings, expect
):
    import yaml

    from apps.studio import datafiles, methods

    _no_worker(monkeypatch)
    app = open_page("train", {"studio_data": _tiny_data(tmp_path)})
    assert app.selectbox(key="train_training_method").value == "Plain fine-tuning"
    assert "prompt" not in app.selectbox(key="train_method_classification").options
    app.selectbox(key="train_training_method").set_value(label).run()
    for key, value in settings.items():
        widget = (
            app.multiselect(key=key)
            if isinstance(value, list)
            else app.number_input(key=key)
            if isinstance(value, int | float)
            else app.selectbox(key=key)
        )
        widget.set_value(value)
    if label == "Continual learning":  # the chosen data first; add the sample as task 2
        tasks = app.multiselect(key="train_opt_continual_datasets")
        assert tasks.value == ["chosen: reviews.csv"]
        tasks.set_value([*tasks.value, datafiles.sample_data("classification")["label"]])
    app.run()
    app.button(key="train_start").click().run()
    assert not app.error, [e.value for e in app.error]
    [run] = store.list()
    name = {v.label: k for k, v in methods._REGISTRY.items()}[label]
    assert run.name == f"reviews-lora-{name}"
    config = yaml.safe_load(run.config_yaml)
    flat = methods.flat_settings(config)
    for key, value in expect.items():
        assert flat[key] == value, key
    assert [m.label for m in methods.methods_used(flat)] == [label]
    if label == "Continual learning":
        assert [t["name"] for t in config["tasks"]] == ["reviews", "finance_sentiment"]
        assert config["run"]["training"]["output_dir"].endswith(f"run-{run.id}/artifact")


def _seed(store, name: str, config: str, accuracy: float, seconds: float) -> int:
    run = store.create(name=name, task="classification", config_yaml=config)
    metrics = {
        "validation": {"accuracy": accuracy, "macro_f1": accuracy - 0.1, "examples": 12},
        "train": {"train_seconds": seconds},
    }
    return store.update(run.id, status="completed", metrics=metrics).id


def test_compare_shows_a_method_against_its_plain_twin_and_launches_a_missing_one(
    studio_home, store, tiny_model, monkeypatch
):
    import yaml

    from apps.studio import runconfig

    plain = tiny_config(tiny_model)
    adversarial = runconfig.build_config(
        **{
            **yaml.safe_load(_TINY_ARGS),
            "base_model": tiny_model,
            "training_method": "adversarial",
            "method_values": {"method": "fgm", "epsilon": 0.2},
        }
    )
    twin = _seed(store, "tiny-plain", plain, 0.70, 10.0)
    run = _seed(store, "tiny-fgm", adversarial, 0.75, 16.0)
    app = open_page("compare")
    assert app.selectbox(key="cmp_effect_run").value == f"#{run} tiny-fgm"
    assert f"Plain twin: #{twin} tiny-plain." in texts(app)
    table = next(d.value for d in app.dataframe if "change" in d.value.columns)
    rows = {(r.split, r.metric): r for r in table.itertuples()}
    assert rows["validation", "accuracy"].change == pytest.approx(0.05)
    assert rows["validation", "accuracy"].better == "better"
    assert rows["cost", "train seconds"].change == 6.0
    assert rows["cost", "train seconds"].better == "worse"
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    runs_table = app.dataframe[0].value
    assert set(runs_table["method"]) == {"plain", "Adversarial training"}

    # A run without a plain twin (another seed): a button trains it.
    _no_worker(monkeypatch)
    other = yaml.safe_load(adversarial)
    other["training"]["seed"] = 7
    lonely = _seed(store, "fgm-seed7", yaml.safe_dump(other), 0.8, 15.0)
    app = open_page("compare")
    app.selectbox(key="cmp_effect_run").set_value(f"#{lonely} fgm-seed7").run()
    assert "No finished plain run with the same settings" in texts(app)
    app.button(key=f"cmp_baseline_{lonely}_adversarial").click().run()
    assert not app.error, [e.value for e in app.error]
    started = store.list()[0]
    assert started.name == "fgm-seed7-plain" and "started" in app.success[0].value
    config = yaml.safe_load(started.config_yaml)
    assert config["training"]["adversarial"] == "none" and config["training"]["seed"] == 7


_TINY_ARGS = f"""
task: classification
data_path: {FIXTURES / "classification.csv"}
fmt: csv
method: lora
epochs: 2
batch_size: 8
learning_rate: 5.0e-3
max_length: 48
validation_size: 0.25
name: tiny
"""


def test_train_page_shows_a_searchs_leaderboard_and_a_sequences_matrix(studio_home, store):
    import yaml

    from apps.studio import runconfig

    config = runconfig.build_config(
        **{
            **yaml.safe_load(_TINY_ARGS),
            "base_model": "tiny-model",
            "training_method": "hpo",
            "method_values": {"trials": 2},
        }
    )
    run = store.create(name="search", task="classification", config_yaml=config)
    leaderboard = [
        {
            "rank": 1,
            "trial": 1,
            "state": "complete",
            "macro_f1": 0.8,
            "evaluations": 2,
            "seconds": 3.0,
            "baseline": False,
            "learning_rate": 0.01,
        },
        {
            "rank": 2,
            "trial": 0,
            "state": "complete",
            "macro_f1": 0.6,
            "evaluations": 2,
            "seconds": 3.0,
            "baseline": True,
            "learning_rate": 0.005,
        },
    ]
    summary = {
        "metric": "macro_f1",
        "best_trial": 1,
        "best_value": 0.8,
        "baseline_value": 0.6,
        "leaderboard": leaderboard,
        "best_config": None,
    }
    store.update(
        run.id, status="completed", metrics={"hpo": summary, "train": {"train_seconds": 6}}
    )
    app = open_page("train")
    assert "trial 1, validation macro_f1 0.8000 (trial 0, the settings as given: 0.6000)" in texts(
        app
    )
    board = app.dataframe[0].value
    assert list(board["trial"]) == ["1", "0*"] and "evaluations" not in board.columns

    sequence = {
        "run": {"task": "classification", "model": {"name": "tiny-model"}},
        "tasks": [
            {"name": "a", "data": {"train": "a.csv"}},
            {"name": "b", "data": {"train": "b.csv"}},
        ],
        "continual": {"method": "replay"},
    }
    later = store.create(name="seq", task="classification", config_yaml=yaml.safe_dump(sequence))
    metrics = {
        "test": {"average_accuracy": 0.7, "average_forgetting": 0.1, "backward_transfer": -0.1},
        "continual": {"tasks": ["a", "b"], "matrix": {"test": [[0.8, None], [0.7, 0.7]]}},
        "train": {"train_seconds": 9},
    }
    store.update(later.id, status="completed", metrics=metrics)
    app = open_page("train")
    assert "Last run #2: seq" in [s.value for s in app.subheader]
    matrix = app.dataframe[1].value
    assert list(matrix["after learning"]) == ["a", "b"] and matrix["b"].isna()[0]
