"""Studio logic without streamlit: uploads, statistics, configs, the run store and the worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from apps.studio import logic
from apps.studio.logic import StudioError
from apps.studio.store import RunStore, pid_alive

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CSV = FIXTURES / "classification.csv"


def tiny_config(
    tiny_model: str, data: Path = CSV, epochs: float = 2, early_stopping: bool = True
) -> str:
    return logic.build_config(
        task="classification",
        data_path=data,
        fmt="csv",
        base_model=tiny_model,
        method="lora",
        epochs=epochs,
        batch_size=8,
        learning_rate=5e-3,
        max_length=48,
        validation_size=0.25,
        name="tiny",
        early_stopping=early_stopping,
    )


def wait_for(predicate, timeout: float = 180.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def test_upload_checks(studio_home):
    path = logic.save_upload("good.csv", CSV.read_bytes())
    assert path.read_bytes() == CSV.read_bytes()
    with pytest.raises(StudioError, match="empty"):
        logic.save_upload("empty.csv", b"  \n")
    with pytest.raises(StudioError, match="not a text file"):
        logic.save_upload("model.csv", b"PK\x03\x04\x00\x00binary")
    with pytest.raises(StudioError, match="not UTF-8"):
        logic.save_upload("latin.csv", "text,label\ncafé olé,x\n".encode("latin-1") * 3)
    big = b"a" * (logic.MAX_UPLOAD_MB * 2**20 + 1)
    with pytest.raises(StudioError, match="limited to"):
        logic.save_upload("big.csv", big)


def test_wrong_columns_say_what_the_file_has(studio_home):
    bad = studio_home / "bad.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("sentence,sentiment\nfine,positive\n", encoding="utf-8")
    with pytest.raises(StudioError, match="sentence"):
        logic.load_data(bad, "classification", "csv")
    records = logic.load_data(
        bad, "classification", "csv", {"text_column": "sentence", "label_column": "sentiment"}
    )
    assert records == [{"text": "fine", "label": "positive"}]


def test_summaries_of_each_kind():
    text = logic.summarize(logic.load_data(CSV, "classification", "csv"))
    assert text.count == 48 and set(text.label_counts) == {"positive", "negative"}
    assert text.lengths["min"] > 0 and text.preview[0]["text"]
    ner = logic.summarize(logic.load_data(FIXTURES / "ner_iob2.conll", "ner", "conll"))
    assert ner.label_name == "entity type" and "PER" in ner.label_counts
    qa = logic.summarize(logic.load_data(FIXTURES / "squad_tiny.json", "qa", "squad"))
    assert qa.label_name == "answer" and qa.count > 0
    assert logic.guess_format("x.conll") == ("ner", "conll")


def test_build_config_validates(tiny_model):
    text = tiny_config(tiny_model)
    config = yaml.safe_load(text)
    assert config["peft"]["method"] == "lora" and config["training"]["epochs"] == 2
    with pytest.raises(StudioError, match="valid run"):
        logic.build_config(
            task="classification", data_path=CSV, fmt="csv", base_model=tiny_model,
            method="lorra", epochs=1, batch_size=8, learning_rate=1e-3, max_length=48,
        )  # fmt: skip
    assert set(logic.TASK_DEFAULTS) >= {"classification", "ner"}


def test_store_survives_reopening(store):
    run = store.create(name="a", task="classification", config_yaml="task: classification\n")
    store.update(run.id, metrics={"test": {"accuracy": 0.5}})
    again = RunStore()
    assert again.get(run.id).metrics == {"test": {"accuracy": 0.5}}


def test_dead_worker_is_marked_failed(store):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    run = store.create(name="ghost", task="classification", config_yaml="{}")
    store.update(run.id, status="running", pid=process.pid)
    assert not pid_alive(process.pid)
    assert store.active() == []
    reaped = store.get(run.id)
    assert reaped.status == "failed" and "worker died" in reaped.error


def test_stop_flag_stops_the_trainer(store):
    from transformers import TrainerControl, TrainerState

    from apps.studio.worker import StudioCallback

    run = store.create(name="s", task="classification", config_yaml="{}")
    store.update(run.id, status="running", pid=os.getpid())
    callback = StudioCallback(store, run.id)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step = 10, 3
    assert not callback.on_step_end(None, state, control).should_training_stop
    store.request_stop(run.id)
    assert store.get(run.id).status == "stopping"
    assert callback.on_step_end(None, state, control).should_training_stop


def test_worker_trains_a_tiny_run_and_second_run_is_refused(store, tiny_model):
    config = tiny_config(tiny_model)
    run = logic.start_run(store, config, "tiny", "classification")
    with pytest.raises(StudioError, match="still training"):
        logic.start_run(store, config, "second", "classification")
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("queued", "running") and r)
    log = Path(done.log_path).read_text(errors="replace")
    assert done.status == "completed", done.error + log[-2000:]
    assert Path(done.artifact_path, "lepton_artifact.json").is_file()
    assert done.metrics["validation"]["accuracy"] >= 0 and done.progress == 1.0
    assert any("loss" in h for h in done.history)
    rows = logic.runs_table(store.list())
    assert rows[0]["id"] == run.id and rows[0]["trainable params"] > 0
    catalog = logic.model_catalog(store)
    assert any(m["source"] == f"studio run #{run.id}" for m in catalog)
    assert {m["name"] for m in catalog} >= {"finance-sentiment", "conll2003-ner"}

    from lepton_nlp.inference import Predictor

    predictor = Predictor.from_artifact(done.artifact_path)
    records = logic.run_records(done.config_yaml, "validation")
    report = logic.evaluate_artifact(predictor, records)
    assert len(report.confusion) == 2 and "accuracy" in report.metrics
    assert logic.artifact_zip(done.artifact_path)[:2] == b"PK"

    second = logic.start_run(store, tiny_config(tiny_model, epochs=1), "b", "classification")
    wait_for(lambda: store.get(second.id).status not in ("queued", "running"))
    diff = logic.diff_runs(store.get(run.id), store.get(second.id))
    assert any(row["setting"] == "training.epochs" for row in diff)


def test_failing_run_is_marked_failed_with_reason(store, tiny_model, tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(CSV.read_bytes())
    config = tiny_config(tiny_model, data=data)
    data.unlink()  # the file disappears before the worker reads it
    run = logic.start_run(store, config, "broken", "classification")
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("queued", "running") and r)
    assert done.status == "failed"
    assert "data.csv" in done.error


def test_ner_highlight_escapes():
    html = logic.highlight_entities(
        "Anna <b> in Oslo",
        [{"label": "PER", "start": 0, "end": 4}, {"label": "LOC", "start": 12, "end": 16}],
    )
    assert "&lt;b&gt;" in html and html.count("<mark") == 2


def test_stop_keeps_the_best_checkpoint(store, tiny_model):
    run = logic.start_run(
        store, tiny_config(tiny_model, epochs=300, early_stopping=False), "long", "classification"
    )
    wait_for(lambda: store.get(run.id).step >= 12)  # past the first evaluations
    store.request_stop(run.id)
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("running", "stopping") and r)
    assert done.status == "stopped", done.error
    assert done.step < 300 * 5
    assert Path(done.artifact_path, "lepton_artifact.json").is_file()
    assert done.metrics["train"]["best_checkpoint_step"] is not None
    assert "accuracy" in done.metrics["validation"]
