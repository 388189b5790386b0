"""Hyper-parameter search: a typed search space, a study that ranks trials on validation,
resumes from its database, prunes hopeless trials, and writes a best config that trains."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml

from lepton_nlp.cli import main
from lepton_nlp.config import ConfigError, ParamSpec, load_config
from lepton_nlp.training import train
from lepton_nlp.training.hpo import (
    PruningCallback,
    baseline_params,
    check_space,
    run_study,
    suggest_params,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def easy_csv(folder: Path) -> Path:
    """80 sentences whose label shows in two of their words: a tiny model learns it in a few
    epochs, so trials with other learning rates score differently."""
    rng = random.Random(0)
    positive = ["excellent", "reliable", "great", "love", "perfect", "quickly"]
    negative = ["broken", "leaking", "terrible", "refund", "after", "started"]
    filler = ["the", "kettle", "it", "and", "was", "very", "this", "is", "a"]
    path = folder / "easy.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(80):
            words = rng.sample(filler, 4) + rng.sample(positive if i % 2 else negative, 2)
            rng.shuffle(words)
            writer.writerow([" ".join(words), "positive" if i % 2 else "negative"])
    return path


def hpo_tree(tiny_model: str, folder: Path, **hpo) -> dict:
    """A tiny full fine-tuning run (60 training sentences, 20 validation) with a search space."""
    return {
        "task": "classification",
        "data": {"format": "csv", "train": str(easy_csv(folder)), "validation_size": 0.25},
        "model": {"name": tiny_model, "max_length": 48},
        "peft": {"method": "full"},
        "training": {
            "output_dir": str(folder / "run"),
            "epochs": 4,
            "batch_size": 8,
            "learning_rate": 3.0e-3,
            "progress": False,
            "report_to": ["none"],
            "threads": 1,
            "logging_steps": 5,
        },
        "evaluation": {"backend_check": False},
        "hpo": {
            "space": {
                "learning_rate": {"low": 1.0e-3, "high": 3.0e-2, "log": True},
                "batch_size": [8, 16],
            },
            "startup_trials": 2,
            "pruner": "none",
            **hpo,
        },
    }


def _quiet(line: str) -> None:
    pass


def _keys(node) -> list[str]:
    if isinstance(node, dict):
        return [*node, *(k for v in node.values() for k in _keys(v))]
    if isinstance(node, list):
        return [k for v in node for k in _keys(v)]
    return []


# --- the search space ----------------------------------------------------------------------


def test_search_space_reads_ranges_and_choices_with_their_types():
    config = load_config(
        None,
        [
            "hpo.space.learning_rate={low: 1e-4, high: 3e-3, log: true}",  # YAML: strings
            "hpo.space.epochs={low: 1, high: 4}",
            "hpo.space.batch_size=[16, 32]",
            "hpo.space.peft_method=[lora, ia3, full]",
            "hpo.space.dropout={low: 0.0, high: 0.3, step: 0.1}",
        ],
    )
    space = config.hpo.space
    assert space.learning_rate == ParamSpec(low=1e-4, high=3e-3, log=True)
    assert isinstance(space.learning_rate.low, float)
    assert (space.epochs.low, space.epochs.high) == (1, 4)
    assert isinstance(space.epochs.low, int)  # whole-number range: whole epochs
    assert space.batch_size.choices == [16, 32]
    assert space.peft_method.choices == ["lora", "ia3", "full"]
    assert list(space.searched()) == [
        "learning_rate",
        "epochs",
        "batch_size",
        "peft_method",
        "dropout",
    ]
    # Without an hpo section a run config is what it always was.
    assert load_config(None).hpo is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "hpo.space.learning_rat={low: 1e-4, high: 1e-3}",
            r"Did you mean hpo.space.learning_rate\?",
        ),
        ("hpo.spcae.r=[4, 8]", r"Did you mean hpo.space\?"),
        ("hpo.space.r={lo: 2, high: 8}", r"Did you mean hpo.space.r.low\?"),
        ("hpo.space.learning_rate={low: 1e-3, high: 1e-4}", r"learning_rate: empty range"),
        ("hpo.space.epochs={low: 2, high: 2}", r"epochs: empty range"),
        ("hpo.space.batch_size=[]", r"batch_size: choices must be a non-empty list"),
        ("hpo.space.learning_rate={low: 0, high: 1e-3, log: true}", r"log range needs low > 0"),
        ("hpo.space.r={low: 2.5, high: 8}", r"hpo.space.r.low must be a whole number"),
        ("hpo.space.r=8", r"a fixed value belongs in the run config \(peft.r\)"),
        ("hpo.space.peft_method=[lora, loar]", r"'loar' is not a valid peft.method.*'lora'"),
        ("hpo.space.peft_method={low: 1, high: 2}", r"takes a list of choices, not a range"),
        ("hpo.space.dropout={low: 0.1, high: 1.5}", r"1.5 is not a valid peft.dropout"),
        ("hpo.space.batch_size={low: 0, high: 32}", r"0 is not a valid training.batch_size"),
        ("hpo.trials=5", r"hpo.space declares no parameter"),
    ],
)
def test_search_space_rejects_typos_empty_ranges_and_impossible_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_hpo_options_are_checked():
    space = "hpo.space.r=[4, 8]"
    with pytest.raises(ConfigError, match=r"hpo.pruner='medain'. Did you mean 'median'\?"):
        load_config(None, [space, "hpo.pruner=medain"])
    with pytest.raises(ConfigError, match="set training.eval_strategy=epoch"):
        load_config(
            None, [space, "training.eval_strategy=no", "training.early_stopping_patience=null"]
        )


def test_a_search_the_run_cannot_carry_out_is_refused_before_any_trial():
    ia3 = load_config(None, ["data.validation_size=0.2", "peft.method=ia3", "hpo.space.r=[4, 8]"])
    with pytest.raises(ConfigError, match=r"hpo.space.r has no effect: .*\(ia3\)"):
        check_space(ia3)
    no_validation = load_config(None, ["hpo.space.r=[4, 8]"])
    with pytest.raises(ConfigError, match="has none: set data.validation"):
        check_space(no_validation)
    final_fit = load_config(ROOT / "configs" / "classification_fpb.yaml", ["hpo.space.r=[4, 8]"])
    with pytest.raises(ConfigError, match="data.train_on_validation=true trains on it"):
        check_space(final_fit)


def test_method_specific_parameters_are_drawn_only_for_methods_that_have_them():
    config = load_config(
        None,
        [
            "data.validation_size=0.2",
            "hpo.space.peft_method=[lora, ia3]",
            "hpo.space.r=[4, 8]",
            "hpo.space.learning_rate={low: 1e-4, high: 1e-2, log: true}",
        ],
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(12):
        trial = study.ask()
        params = suggest_params(trial, config.hpo.space, config.peft.method)
        study.tell(trial, 0.0)
        drawn.append(params)
    assert {p["peft_method"] for p in drawn} == {"lora", "ia3"}
    for params in drawn:
        assert ("r" in params) == (params["peft_method"] == "lora")
        assert 1e-4 <= params["learning_rate"] <= 1e-2


def test_shipped_search_configs_can_run():
    configs = sorted((ROOT / "configs").glob("hpo_*.yaml"))
    assert configs
    for path in configs:
        config = load_config(path)
        check_space(config)
        _, outside = baseline_params(config)
        assert not outside, f"{path.name}: the config's own values lie outside its space"


# --- a study -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_study(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hpo-study")
    tree = hpo_tree(tiny_model, folder)
    result = run_study(tree, trials=3, echo=_quiet)
    return tree, result


def test_study_ranks_its_trials_on_validation_and_writes_the_leaderboard(finished_study):
    _, result = finished_study
    assert result.trials_run == result.trials_finished == 3
    with result.leaderboard_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2]
    values = [float(r["macro_f1"]) for r in rows]
    assert values == sorted(values, reverse=True)
    assert float(rows[0]["macro_f1"]) == pytest.approx(result.best_value)
    assert int(rows[0]["trial"]) == result.best_trial
    # The first trial is the run config's own values: the baseline the search must beat.
    baseline = next(r for r in rows if r["trial"] == "0")
    assert baseline["baseline"] == "True"
    assert float(baseline["learning_rate"]) == pytest.approx(3e-3)
    assert baseline["batch_size"] == "8"

    record = json.loads(result.leaderboard_json.read_text())
    assert record["split"] == "validation" and record["metric"] == "macro_f1"
    assert record["trials"]["complete"] == 3
    assert record["best"]["trial"] == result.best_trial
    assert record["best"]["validation"]["macro_f1"] == pytest.approx(result.best_value)
    # The search never looks at the test split: no test figure is recorded anywhere.
    assert not [key for key in _keys(record) if key.startswith("test")]
    best_so_far = [point["best"] for point in record["history"]]
    assert best_so_far == sorted(best_so_far) and best_so_far[-1] == pytest.approx(
        result.best_value
    )
    # Only the best trial's artifact is kept (hpo.keep_artifacts=best); every trial keeps a log.
    trials = result.output_dir / "trials"
    assert sorted(p.name for p in trials.iterdir() if p.is_dir()) == [
        f"trial-{result.best_trial:04d}"
    ]
    assert len(list(trials.glob("trial-*.log"))) == 3
    # ...and the kept trial was never scored on test either (evaluation.score_test=false).
    kept = json.loads((trials / f"trial-{result.best_trial:04d}" / "metrics.json").read_text())
    assert "validation" in kept and "test" not in kept
    names = {p.name for p in result.plots}
    assert {"search.html", "optimization_history.png"} <= names
    assert all(p.stat().st_size > 1000 for p in result.plots)


def test_best_config_is_a_plain_run_config_that_trains_to_the_best_trials_score(
    finished_study,
):
    tree, result = finished_study
    text = result.best_config.read_text()
    assert text.startswith("# Best of 3 trials")
    written = yaml.safe_load(text)
    assert "hpo" not in written
    config = load_config(result.best_config)
    assert config.training.learning_rate == pytest.approx(result.best_params["learning_rate"])
    assert config.training.batch_size == result.best_params["batch_size"]
    assert config.data.train == tree["data"]["train"]
    trained = train(config)
    assert trained.artifact == result.output_dir / "best-model"
    # Same values, same seed: the retrained model scores what the trial scored.
    assert trained.metrics["validation"]["macro_f1"] == pytest.approx(result.best_value, abs=1e-6)


def test_a_stopped_study_resumes_from_its_storage_and_keeps_counting(tiny_model, tmp_path):
    tree = hpo_tree(tiny_model, tmp_path, pruner="median", pruner_startup_trials=1)
    lines: list[str] = []
    first = run_study(tree, trials=2, plots=False, echo=lines.append)
    assert first.trials_finished == 2
    storage = f"sqlite:///{(tmp_path / 'run-hpo' / 'study.db').resolve()}"
    before = {t.number: t for t in optuna.load_study(study_name="run", storage=storage).trials}

    second = run_study(tree, trials=4, plots=False, echo=lines.append)
    assert second.trials_run == 2 and second.trials_finished == 4
    after = optuna.load_study(study_name="run", storage=storage).trials
    assert [t.number for t in after] == [0, 1, 2, 3]
    for number, trial in before.items():  # finished trials are not redone
        assert after[number].datetime_complete == trial.datetime_complete
        assert after[number].params == trial.params
    assert sum(line.startswith("trial") for line in lines) == 4  # one line per finished trial
    assert any("2 finished trial(s); running 2 more (up to 4)" in line for line in lines)

    third = run_study(tree, trials=4, plots=False, echo=lines.append)
    assert third.trials_run == 0 and third.trials_finished == 4


# The search, run in a child process whose trial 1 stops after its first epoch and waits
# (writing a marker) until it is killed: the kill lands inside a trial however fast the
# machine trains, instead of racing a poll against a trial that may finish first.
STALLED_SEARCH = """
import sys, time
from pathlib import Path
from transformers import TrainerCallback
import lepton_nlp.training.trainer as trainer
from lepton_nlp.cli import main

real_train = trainer.train
marker = Path(sys.argv[1])

class StallAfterFirstEpoch(TrainerCallback):
    def on_epoch_end(self, args, state, control, **kwargs):
        marker.write_text(args.output_dir)
        while True:
            time.sleep(1)

def train(config, callbacks=None, **kwargs):
    if config.name.endswith("-trial-1"):
        callbacks = [*(callbacks or []), StallAfterFirstEpoch()]
    return real_train(config, callbacks=callbacks, **kwargs)

trainer.train = train
sys.exit(main(sys.argv[2:]))
"""


def test_a_killed_search_resumes_and_retries_the_trial_it_was_in(tiny_model, tmp_path):
    tree = hpo_tree(tiny_model, tmp_path, heartbeat_seconds=1, stale_seconds=2)
    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(tree))
    storage = f"sqlite:///{(tmp_path / 'run-hpo' / 'study.db').resolve()}"
    marker = tmp_path / "trial-1-stalled"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", STALLED_SEARCH, str(marker), "hpo", str(config_path)]
    process = subprocess.Popen(
        [*command, "--trials", "3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600  # a bound for a broken search, not the usual time
    try:
        while time.monotonic() < deadline and process.poll() is None and not marker.exists():
            time.sleep(0.2)
        stalled = marker.exists()
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert stalled, f"trial 1 never reached the end of its first epoch (exit {process.returncode})"
    trials = optuna.load_study(study_name="run", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "RUNNING"]  # killed inside trial 1
    first, killed_in = trials
    time.sleep(2.5)  # the killed trial's heartbeat goes stale

    result = run_study(tree, trials=3, plots=False, echo=_quiet)
    trials = optuna.load_study(study_name="run", storage=storage).trials
    states = {t.number: t.state.name for t in trials}
    assert states[killed_in.number] == "FAIL"
    assert result.trials_finished == 3
    assert trials[0].datetime_complete == first.datetime_complete  # not redone
    retry = trials[killed_in.number + 1]
    assert retry.params == killed_in.params  # the interrupted values are tried again
    assert retry.state.name == "COMPLETE"
    assert [t.number for t in trials] == list(range(len(trials)))


def test_a_search_stopped_with_ctrl_c_tries_the_interrupted_values_first(tiny_model, tmp_path):
    tree = hpo_tree(tiny_model, tmp_path)
    storage = f"sqlite:///{(tmp_path / 'run-hpo' / 'study.db').resolve()}"
    checkpoints = tmp_path / "run-hpo" / "trials" / "trial-0001.work" / "checkpoints"
    stop = threading.Event()

    def interrupt_trial_1_after_its_first_epoch() -> None:
        while not stop.wait(0.05):
            if checkpoints.is_dir() and any(checkpoints.iterdir()):
                os.kill(os.getpid(), signal.SIGINT)
                return

    # A process started in the background by a non-interactive shell ignores SIGINT.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt_trial_1_after_its_first_epoch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(tree, trials=5, plots=False, echo=_quiet)
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    trials = optuna.load_study(study_name="run", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "WAITING"]
    assert trials[2].params == {} and trials[2].user_attrs["retry_of"] == 1

    run_study(tree, trials=2, plots=False, echo=_quiet)
    trials = optuna.load_study(study_name="run", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[2].params == trials[1].params


# --- pruning -------------------------------------------------------------------------------


def test_pruning_callback_reports_each_evaluation_and_prunes_a_bad_one():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
    )
    good = study.ask()
    for step, value in ((1, 0.8), (2, 0.9)):
        good.report(value, step)
    study.tell(good, 0.9)

    trial = study.ask()
    callback = PruningCallback(trial, "macro_f1")
    callback.on_evaluate(None, None, None, metrics={"eval_macro_f1": 0.85, "eval_loss": 0.3})
    assert study.trials[1].intermediate_values == {1: 0.85}  # above the median: goes on
    with pytest.raises(optuna.TrialPruned, match="evaluation 2: validation macro_f1=0.5"):
        callback.on_evaluate(None, None, None, metrics={"eval_macro_f1": 0.5})
    assert study.trials[1].intermediate_values == {1: 0.85, 2: 0.5}


def test_a_training_run_that_falls_behind_is_stopped_at_its_first_evaluation(tiny_model, tmp_path):
    tree = hpo_tree(tiny_model, tmp_path)
    del tree["hpo"]
    tree["training"].update(epochs=4, learning_rate=1e-9)  # learns nothing: chance level
    config = load_config(tree)
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
    )
    strong = study.ask()
    strong.report(1.0, 1)
    study.tell(strong, 1.0)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned at evaluation 1"):
        train(config, callbacks=[PruningCallback(trial, "macro_f1")])
    reported = study.trials[1].intermediate_values
    assert list(reported) == [1] and reported[1] < 1.0  # stopped after 1 of 4 epochs
    assert not (tmp_path / "run").exists()  # no artifact: the rest of the run never ran


# --- the command ---------------------------------------------------------------------------


def test_hpo_command_without_a_search_space_says_how_to_add_one(tmp_path, capsys):
    path = tmp_path / "plain.yaml"
    path.write_text("task: classification\ndata:\n  train: x.csv\n  validation_size: 0.2\n")
    assert main(["hpo", str(path)]) == 2
    assert "has no hpo: section" in capsys.readouterr().err


def test_hpo_help_explains_the_command(capsys):
    from lepton_nlp.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["hpo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: lepton-nlp hpo" in text
    for words in ("--trials", "--storage", "resume", "never on test", "best_config.yaml"):
        assert words in " ".join(text.split()), words
