"""Studio logic without streamlit: uploads, statistics, configs, the run store and the worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CSV, tiny_config, wait_for

from apps.common.catalog import model_catalog
from apps.common.paths import ROOT
from apps.common.processes import pid_alive
from apps.studio import artifacts, compare, datafiles, inputs, reports, runconfig, runs
from apps.studio.errors import StudioError
from apps.studio.store import RunStore
from apps.studio.summary import marked_text, summarize
from lepton_nlp.hub import MINILM, SMOLLM2
from lepton_nlp.tasks import get_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_upload_checks(studio_home):
    path = datafiles.save_upload("good.csv", CSV.read_bytes())
    assert path.read_bytes() == CSV.read_bytes()
    with pytest.raises(StudioError, match="empty"):
        datafiles.save_upload("empty.csv", b"  \n")
    with pytest.raises(StudioError, match="not a text file"):
        datafiles.save_upload("model.csv", b"PK\x03\x04\x00\x00binary")
    with pytest.raises(StudioError, match="not UTF-8"):
        datafiles.save_upload("latin.csv", "text,label\ncafé olé,x\n".encode("latin-1") * 3)
    big = b"a" * (datafiles.MAX_UPLOAD_MB * 2**20 + 1)
    with pytest.raises(StudioError, match="limited to"):
        datafiles.save_upload("big.csv", big)


def test_wrong_columns_say_what_the_file_has(studio_home):
    bad = studio_home / "bad.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("sentence,sentiment\nfine,positive\n", encoding="utf-8")
    with pytest.raises(StudioError, match="sentence"):
        datafiles.load_data(bad, "classification", "csv")
    records = datafiles.load_data(
        bad, "classification", "csv", {"text_column": "sentence", "label_column": "sentiment"}
    )
    assert records == [{"text": "fine", "label": "positive"}]


def test_summaries_of_each_kind():
    text = summarize(datafiles.load_data(CSV, "classification", "csv"))
    assert text.count == 48 and set(text.label_counts) == {"positive", "negative"}
    assert text.lengths["min"] > 0 and text.preview[0]["text"]
    ner = summarize(datafiles.load_data(FIXTURES / "ner_iob2.conll", "ner", "conll"))
    assert ner.label_name == "entity type" and "PER" in ner.label_counts
    qa = summarize(datafiles.load_data(FIXTURES / "squad_tiny.json", "qa", "squad"))
    assert qa.label_name == "answer" and qa.count > 0
    assert datafiles.guess_format("x.conll") == ("ner", "conll")


def test_build_config_validates(tiny_model):
    text = tiny_config(tiny_model)
    config = yaml.safe_load(text)
    assert config["peft"]["method"] == "lora" and config["training"]["epochs"] == 2
    with pytest.raises(StudioError, match="valid run"):
        runconfig.build_config(
            task="classification", data_path=CSV, fmt="csv", base_model=tiny_model,
            method="lorra", epochs=1, batch_size=8, learning_rate=1e-3, max_length=48,
        )  # fmt: skip
    assert all(get_task(task).training_defaults() for task in ("classification", "ner"))


def test_translation_defaults_follow_the_base_model():
    """MiniLM (the default) is warm-started as an encoder-decoder and trains in full with a
    cased target vocabulary; SmolLM2 keeps LoRA and a causal prompt window."""
    sample = datafiles.sample_data("translation")
    assert runconfig.base_models("translation")[0] == MINILM
    configs = {}
    for base in (MINILM, SMOLLM2):
        d = runconfig.defaults_for("translation", base)
        text = runconfig.build_config(
            task="translation", data_path=sample["path"], fmt=sample["format"],
            base_model=base, method=d["method"], epochs=d["epochs"],
            batch_size=d["batch_size"], learning_rate=d["learning_rate"],
            max_length=d["max_length"], columns=sample.get("columns"),
        )  # fmt: skip
        configs[base] = yaml.safe_load(text)
    encoder_decoder, causal = configs[MINILM], configs[SMOLLM2]
    assert encoder_decoder["peft"]["method"] == "full"
    assert encoder_decoder["model"]["max_length"] == 64
    options = encoder_decoder["task_options"]
    assert options["family"] == "encoder-decoder" and options["target_vocab_size"] == 4000
    assert options["max_new_tokens"] == options["max_target_length"] == 64
    assert causal["peft"]["method"] == "lora" and causal["model"]["max_length"] == 256
    assert causal["task_options"]["family"] != "encoder-decoder"
    assert not causal["task_options"].get("target_vocab_size")
    # anything else keeps the task's defaults
    assert runconfig.defaults_for("ner", MINILM) == {
        "method": "lora",
        **get_task("ner").training_defaults(),
    }


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
    run = runs.start_run(store, config, "tiny", "classification")
    with pytest.raises(StudioError, match="still training"):
        runs.start_run(store, config, "second", "classification")
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("queued", "running") and r)
    log = Path(done.log_path).read_text(errors="replace")
    assert done.status == "completed", done.error + log[-2000:]
    assert Path(done.artifact_path, "lepton_artifact.json").is_file()
    assert done.metrics["validation"]["accuracy"] >= 0 and done.progress == 1.0
    assert any("loss" in h for h in done.history)
    rows = compare.runs_table(store.list())
    assert rows[0]["id"] == run.id and rows[0]["trainable params"] > 0
    catalog = model_catalog(store)
    assert any(m["source"] == f"studio run #{run.id}" for m in catalog)
    assert {m["name"] for m in catalog} >= {"finance-sentiment", "conll2003-ner"}

    from lepton_nlp.inference import Predictor

    predictor = Predictor.from_artifact(done.artifact_path)
    records = runs.run_records(done.config_yaml, "validation")
    report = reports.evaluate_artifact(predictor, records)
    assert len(report.confusion) == 2 and "accuracy" in report.metrics
    assert artifacts.artifact_zip(done.artifact_path)[:2] == b"PK"

    second = runs.start_run(store, tiny_config(tiny_model, epochs=1), "b", "classification")
    wait_for(lambda: store.get(second.id).status not in ("queued", "running"))
    diff = compare.diff_runs(store.get(run.id), store.get(second.id))
    assert any(row["setting"] == "training.epochs" for row in diff)


def test_failing_run_is_marked_failed_with_reason(store, tiny_model, tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(CSV.read_bytes())
    config = tiny_config(tiny_model, data=data)
    data.unlink()  # the file disappears before the worker reads it
    run = runs.start_run(store, config, "broken", "classification")
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("queued", "running") and r)
    assert done.status == "failed"
    assert "data.csv" in done.error


def test_ner_highlight_escapes():
    html = reports.highlight_entities(
        "Anna <b> in Oslo",
        [{"label": "PER", "start": 0, "end": 4}, {"label": "LOC", "start": 12, "end": 16}],
    )
    assert "&lt;b&gt;" in html and html.count("<mark") == 2


def test_stop_keeps_the_best_checkpoint(store, tiny_model):
    run = runs.start_run(
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


def test_default_pooling_follows_the_models_own_sentence_pooling(tmp_path, tiny_model):
    import json

    assert runconfig.default_pooling(MINILM) == "mean"  # the packaged sentence-transformer
    assert runconfig.default_pooling(tiny_model) == "cls"  # a plain transformers folder
    assert runconfig.default_pooling(str(tmp_path / "missing")) == "cls"
    for mode, expected in (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean")):
        folder = tmp_path / mode
        (folder / "1_Pooling").mkdir(parents=True)
        modules = [{"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({mode: True}))
        assert runconfig.default_pooling(str(folder)) == expected


# --- the other tasks: qa, relation, summarization, translation -----------------------------

OTHER_TASKS = ["qa", "relation", "summarization", "translation"]


def test_unanswerable_questions_are_counted_and_recounted_when_the_file_changes(tmp_path):
    import json

    sample = datafiles.sample_data("qa")
    squad = json.loads(Path(sample["path"]).read_text(encoding="utf-8"))
    path = tmp_path / "squad2.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    assert datafiles.unanswerable_questions(path, "squad") == 0
    questions = [q for a in squad["data"] for p in a["paragraphs"] for q in p["qas"]]
    for question in questions[:3]:
        question.update(is_impossible=True, answers=[])
    path.write_text(json.dumps(squad), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert datafiles.unanswerable_questions(path, "squad") == 3
    records = datafiles.load_data(path, "qa", "squad")
    assert "on by default for this data" in summarize(records).warnings[0]
    with pytest.raises(StudioError, match="does not exist"):
        datafiles.unanswerable_questions(tmp_path / "missing.json", "squad")


@pytest.mark.parametrize("task", OTHER_TASKS)
def test_each_task_sample_loads_and_summarizes(task):
    sample = datafiles.sample_data(task)
    assert any(c["label"] == sample["label"] for c in datafiles.known_data_files())
    records = datafiles.load_data(sample["path"], task, sample["format"], sample["columns"])
    summary = summarize(records)
    assert summary.count == len(records) >= 30 and not summary.warnings
    first = summary.preview[0]
    if task == "qa":
        assert summary.figures["Contexts"] == 12
        assert set(summary.lengths_by_field) == {"context", "question", "answer"}
        assert first["answer"] in first["context"] and first["question"].endswith("?")
        assert summary.lengths_by_field["context"]["median"] > 30
    elif task == "relation":
        assert summary.label_name == "relation" and len(summary.label_counts) == 4
        assert set(summary.label_counts.values()) == {12}
        assert first["text"].count("<e1>") == first["text"].count("<e2>") == 1
        assert first["head (e1)"] == "Nordvik Oyj (ORG)" and first["relation"] == "acquired"
    else:
        assert summary.label_counts == {} and set(first) == {"source", "target"}
        source, target = (summary.lengths_by_field[k]["median"] for k in ("source", "target"))
        if task == "summarization":
            assert source > target and first["source"].startswith("Anna:")
        else:
            assert first["target"].startswith("Der Umsatz")
    # Uploaded as they are, each file is recognised by its content, not only its extension.
    name = sample["path"] + (".en" if sample["format"] == "parallel" else "")
    assert datafiles.guess_format(name) == (task, sample["format"])
    assert datafiles.detect_columns(sample["path"], task, sample["format"]) == {
        k: v for k, v in sample["columns"].items() if k.endswith("_column")
    }


@pytest.mark.parametrize(
    ("task", "fmt", "file", "expected"),
    [
        ("qa", "squad", "finance_sentiment.csv", "SQuAD JSON"),
        ("qa", "jsonl", "finance_relations.jsonl", '"question", "context" and "answers"'),
        ("relation", "jsonl", "finance_sentiment.csv", "<e1>...</e1> and <e2>...</e2>"),
        ("relation", "semeval", "finance_sentiment.csv", "SemEval-2010 Task 8"),
        ("summarization", "jsonl", "finance_relations.jsonl", "the text and its summary"),
        ("translation", "parallel", "finance_sentiment.csv", "upload both"),
    ],
)
def test_wrong_shape_says_what_was_expected(task, fmt, file, expected):
    with pytest.raises(StudioError, match="could not be read") as error:
        datafiles.load_data(ROOT / "data/samples" / file, task, fmt)
    assert expected in str(error.value)


def test_dialogues_need_their_columns_named(tmp_path):
    sample = datafiles.sample_data("summarization")
    with pytest.raises(StudioError, match="'dialogue'"):  # names the fields the file has
        datafiles.load_data(sample["path"], "summarization", "jsonl")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("document,summary\nA long text about sales.,Sales.\n", encoding="utf-8")
    assert datafiles.guess_format(pairs) == ("summarization", "csv")
    columns = datafiles.detect_columns(pairs, "summarization", "csv")
    assert datafiles.load_data(pairs, "summarization", "csv", columns) == [
        {"source": "A long text about sales.", "target": "Sales."}
    ]


def test_qa_windows_follow_max_tokens(tiny_model):
    from lepton_nlp.config import load_config

    sample = datafiles.sample_data("qa")
    for max_length, stride, question in ((384, 128, 64), (64, 21, 10)):
        config = runconfig.build_config(
            task="qa", data_path=sample["path"], fmt="squad", base_model=tiny_model,
            method="lora", epochs=1, batch_size=8, learning_rate=1e-3, max_length=max_length,
        )  # fmt: skip
        options = yaml.safe_load(config)["task_options"]
        assert (options["stride"], options["max_question_length"]) == (stride, question)
        assert load_config(yaml.safe_load(config)).task_options.stride == stride
    with pytest.raises(StudioError, match="task_options"):
        runconfig.build_config(
            task="qa", data_path=sample["path"], fmt="squad", base_model=tiny_model,
            method="lora", epochs=1, batch_size=8, learning_rate=1e-3, max_length=64,
            task_options={"strid": 8},
        )  # fmt: skip


def test_relation_input_from_marks_or_words():
    marked = inputs.relation_input("<e1>Eva Holm</e1> runs <e2>Vik Air</e2>.", "", "", "PER", "ORG")
    assert marked == {
        "text": "Eva Holm runs Vik Air.",
        "head": {"start": 0, "end": 8, "type": "PER"},
        "tail": {"start": 14, "end": 21, "type": "ORG"},
    }
    typed = inputs.relation_input("Vik Air hired Vik.", head="Vik", tail="Vik Air")
    assert typed["head"] == {"start": 14, "end": 17} and typed["tail"] == {"start": 0, "end": 7}
    assert marked_text(typed) == "<e2>Vik Air</e2> hired <e1>Vik</e1>."
    with pytest.raises(StudioError, match="'Anna' is not in the text"):
        inputs.relation_input("Eva runs Vik Air.", head="Anna", tail="Vik Air")
    with pytest.raises(StudioError, match="<e2>"):
        inputs.relation_input("<e1>Eva</e1> runs Vik Air.")
    with pytest.raises(StudioError, match="Head and Tail boxes"):
        inputs.relation_input("Eva runs Vik Air.")


class _FixedPredictor:
    """A predictor that answers from a table: the evaluation logic without a model."""

    def __init__(self, task: str, outputs: list[dict], labels: list[str] | None = None):
        from lepton_nlp.tasks import TaskSpec, get_task

        self.task = get_task(task)
        self.spec = TaskSpec(labels=labels or [], extra={"options": {}})
        self.outputs = outputs

    def predict(self, records):
        return self.outputs[: len(records)]


def test_worst_errors_come_with_their_texts():
    qa = [
        {"question": "Who?", "context": "Eva Holm runs Vik Air.", "answers": {"text": ["Eva Holm"], "answer_start": [0]}},
        {"question": "What?", "context": "Eva Holm runs Vik Air.", "answers": {"text": ["Vik Air"], "answer_start": [14]}},
        {"question": "Runs?", "context": "Eva Holm runs Vik Air.", "answers": {"text": ["runs"], "answer_start": [9]}},
    ]  # fmt: skip
    answers = [
        {"answer": "Holm", "score": 0.4, "start": 4, "end": 8},
        {"answer": "Eva", "score": 0.9, "start": 0, "end": 3},
        {"answer": "runs", "score": 0.8, "start": 9, "end": 13},
    ]
    report = reports.evaluate_artifact(_FixedPredictor("qa", answers), qa)
    assert report.metrics["exact_match"] == pytest.approx(1 / 3)
    assert reports.headline_metrics("qa", report.metrics) == ["exact_match", "f1"]
    assert [(e["question"], e["expected"], e["predicted"]) for e in report.errors] == [
        ("What?", "Vik Air", "Eva"),  # F1 0 before F1 0.67
        ("Who?", "Eva Holm", "Holm"),
    ]

    pairs = [
        {"source": "Sales rose.", "target": "Der Umsatz stieg."},
        {"source": "Profit fell.", "target": "Der Gewinn sank."},
    ]
    outputs = [{"generated_text": "Der Umsatz stieg."}, {"generated_text": "Die Bank."}]
    report = reports.evaluate_artifact(_FixedPredictor("translation", outputs), pairs)
    assert reports.headline_metrics("translation", report.metrics) == ["bleu", "chrf"]
    assert [(e["source"], e["reference"], e["output"]) for e in report.errors] == [
        ("Profit fell.", "Der Gewinn sank.", "Die Bank."),
        ("Sales rose.", "Der Umsatz stieg.", "Der Umsatz stieg."),
    ]
    assert report.errors[0]["chrF"] < report.errors[1]["chrF"] == 100.0
    summary = reports.evaluate_artifact(_FixedPredictor("summarization", outputs), pairs)
    assert "ROUGE-L" in summary.errors[0] and "rougeL" in summary.metrics

    relations = [
        {"text": "Eva runs Vik.", "head": {"start": 0, "end": 3}, "tail": {"start": 9, "end": 12}, "label": "ceo_of"},
        {"text": "Vik is in Oslo.", "head": {"start": 0, "end": 3}, "tail": {"start": 10, "end": 14}, "label": "Other"},
    ]  # fmt: skip
    labels = ["Other", "ceo_of"]
    guesses = [{"label": "Other", "score": 0.7}, {"label": "Other", "score": 0.6}]
    report = reports.evaluate_artifact(_FixedPredictor("relation", guesses, labels), relations)
    assert report.confusion == [[1, 0], [1, 0]] and report.per_label == {"ceo_of": 0.0}
    assert report.errors == [
        {
            "text": "<e1>Eva</e1> runs <e2>Vik</e2>.",
            "true": "ceo_of",
            "predicted": "Other",
            "confidence": 0.7,
        }
    ]


TRY_INPUTS = {
    "qa": {"question": "Who runs Polar Foods?", "context": "Maria Koski runs Polar Foods."},
    "relation": "<e1>Maria Koski</e1> runs <e2>Polar Foods</e2>.",
    "summarization": "Anna: The budget is due on Friday.\nBen: I'll send my numbers today.",
    "translation": "Sales rose by 5% in the second quarter.",
}
METRICS = {
    "qa": {"exact_match", "f1"},
    "relation": {"macro_f1", "micro_f1", "accuracy"},
    "summarization": {"rouge1", "rouge2", "rougeL"},
    "translation": {"bleu", "chrf"},
}
ERROR_COLUMNS = {
    "qa": {"question", "expected", "predicted", "F1", "confidence", "context"},
    "relation": {"text", "true", "predicted", "confidence"},
    "summarization": {"source", "reference", "output", "ROUGE-L"},
    "translation": {"source", "reference", "output", "chrF"},
}


@pytest.mark.parametrize("task", OTHER_TASKS)
def test_worker_trains_each_task_then_evaluate_and_try(task, store, tiny_model):
    from conftest import studio_tiny_config

    from lepton_nlp.inference import Predictor

    run = runs.start_run(store, studio_tiny_config(task, tiny_model), f"tiny-{task}", task)
    done = wait_for(lambda: (r := store.get(run.id)).status not in ("queued", "running") and r)
    log = Path(done.log_path).read_text(errors="replace")
    assert done.status == "completed", done.error + log[-2000:]
    assert METRICS[task] <= set(done.metrics["validation"]) and done.metrics["test"]
    assert any(m["source"] == f"studio run #{run.id}" for m in model_catalog(store))

    predictor = Predictor.from_artifact(done.artifact_path)
    records = runs.run_records(done.config_yaml, "test")
    assert len(records) >= 6
    report = reports.evaluate_artifact(predictor, records)
    assert report.task == task and METRICS[task] <= set(report.metrics)
    assert report.errors and set(report.errors[0]) == ERROR_COLUMNS[task]
    if task == "relation":
        assert sum(map(sum, report.confusion)) == len(records)
        assert set(report.per_label) == {"acquired", "ceo_of", "headquartered_in"}
        assert "<e1>" in report.errors[0]["text"]

    item = TRY_INPUTS[task]
    if task == "relation":
        item = inputs.relation_input(item, head_type="PER", tail_type="ORG")
    output = predictor.predict_one(item)
    if task == "qa":
        assert output["answer"] == item["context"][output["start"] : output["end"]]
        assert 0 < output["score"] <= 1
    elif task == "relation":
        assert output["label"] in {"acquired", "ceo_of", "headquartered_in", "Other"}
        assert output["head"]["text"] == "Maria Koski" and output["tail"]["text"] == "Polar Foods"
        assert sum(output["scores"].values()) == pytest.approx(1, abs=1e-3)
    else:
        assert isinstance(output["generated_text"], str)


def test_a_finished_worker_is_reaped_not_left_a_zombie(store, tmp_path):
    """A real worker process (for a run the store does not have: it says so and ends)."""
    from apps.studio.worker import spawn_worker

    pid = spawn_worker(9999, tmp_path / "worker.log")
    status = Path(f"/proc/{pid}/status")

    def state() -> str:
        try:
            return next(x for x in status.read_text().splitlines() if x.startswith("State:"))
        except (OSError, StopIteration):
            return "gone"

    # Reaped: its /proc entry disappears once it has ended (a zombie keeps it, State Z).
    wait_for(lambda: state() == "gone", timeout=90)
    assert "No run 9999" in (tmp_path / "worker.log").read_text()
