"""The Studio's training methods: the registry (form values -> job config), the plain-twin
matching rule and the metric deltas, and the worker running a search and a sequence."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import CSV

from apps.studio import compare, methods, runconfig, runs
from apps.studio.errors import StudioError
from apps.studio.worker import run_training

ADVERSARIAL = {"method": "pgd", "epsilon": 0.5, "steps": 2, "norm": "linf"}


def _config(model: str = "tiny-model", data: Path = CSV, **changes) -> dict:
    """A Studio run config tree (as the Train page builds it) of a tiny classification run."""
    settings = dict(
        task="classification",
        data_path=data,
        fmt="csv",
        base_model=model,
        method="lora",
        epochs=1,
        batch_size=8,
        learning_rate=5e-3,
        max_length=48,
        validation_size=0.25,
        test_size=0.0,
        name="tiny",
        early_stopping=False,
    )
    settings.update(changes)
    return yaml.safe_load(runconfig.build_config(**settings))


# --- the registry -------------------------------------------------------------------------------


def test_the_train_page_offers_what_the_core_supports():
    offered = [m.name for m in methods.methods()]
    assert offered[:6] == ["plain", "adversarial", "prompt", "fewshot", "hpo", "continual"]
    # Continual learning here is single-label classification only.
    assert "continual" not in [m.name for m in methods.methods(task="ner")]
    # Methods that need a core key (augment.methods, model.init_from) are offered
    # exactly when the core's run config has it.
    every = {m.name: m for m in methods.methods(available_only=False)}
    for name, key in (("augment", "augment.methods"), ("transfer", "model.init_from")):
        assert (name in offered) == methods.config_has(key)
        if not methods.config_has(key):
            with pytest.raises(StudioError, match=key):
                methods.get_method(name)
        assert every[name].requires == (key,)
    assert methods.config_has("training.adversarial") and not methods.config_has("training.nope")
    # Spelling correction: classification only, and its choices become the spelling keys.
    assert "spelling" in offered and "spelling" not in [m.name for m in methods.methods(task="ner")]
    with pytest.raises(StudioError, match="Did you mean 'adversarial'"):
        methods.get_method("adversarail")
    with pytest.raises(ValueError, match="registered already"):
        methods.register(every["hpo"])


def test_spelling_choices_become_spelling_keys():
    config = _config(training_method="spelling", method_values={"max_distance": 1})
    chosen = {k: config["spelling"][k] for k in ("enabled", "max_distance", "min_length")}
    assert chosen == {"enabled": True, "max_distance": 1, "min_length": 2}
    with pytest.raises(StudioError, match="Edits per word: 3 is not a choice"):
        _config(training_method="spelling", method_values={"max_distance": 3})


def test_adversarial_choices_become_training_keys():
    config = _config(training_method="adversarial", method_values=ADVERSARIAL)
    training = config["training"]
    assert training["adversarial"] == "pgd" and training["adversarial_epsilon"] == 0.5
    assert training["adversarial_steps"] == 2 and training["adversarial_norm"] == "linf"
    fgm = _config(training_method="adversarial", method_values={"epsilon": 0.2})
    assert fgm["training"]["adversarial"] == "fgm"  # the field's default
    # Everything else is the plain config's.
    plain = _config()
    rest = {k: v for k, v in training.items() if not k.startswith("adversarial")}
    assert rest == {k: v for k, v in plain["training"].items() if not k.startswith("adversarial")}
    with pytest.raises(StudioError, match="Epsilon must be between"):
        _config(training_method="adversarial", method_values={"epsilon": -1.0})
    with pytest.raises(StudioError, match="Did you mean 'epsilon'"):
        _config(training_method="adversarial", method_values={"epsilom": 0.1})
    with pytest.raises(StudioError, match="not a choice"):
        _config(training_method="adversarial", method_values={"method": "fsgm"})


def test_prompt_learning_sets_the_soft_prompt_and_its_learning_rate():
    config = _config(
        training_method="prompt",
        method_values={"kind": "ptuning", "virtual_tokens": 8, "learning_rate": 2e-2},
    )
    assert config["peft"]["method"] == "ptuning" and config["peft"]["num_virtual_tokens"] == 8
    assert config["training"]["learning_rate"] == 2e-2
    plain = methods.plain_tree(config, "prompt")
    # The plain twin: the task's default PEFT method at its default learning rate.
    defaults = runconfig.defaults_for("classification", "tiny-model")
    assert plain["peft"]["method"] == defaults["method"] == "lora"
    assert plain["training"]["learning_rate"] == defaults["learning_rate"]
    assert config["peft"]["method"] == "ptuning"  # the tree given is left alone


def test_a_search_is_a_run_config_with_a_space_around_its_values():
    config = _config(
        training_method="hpo",
        method_values={"trials": 4, "space": ["learning_rate", "batch_size", "r"]},
    )
    assert methods.job_of(config) == "hpo"
    hpo = config["hpo"]
    assert hpo["trials"] == 4 and hpo["keep_artifacts"] == "best"
    space = hpo["space"]
    # Around the settings given, so trial 0 (those settings) lies inside the space.
    assert space["learning_rate"]["low"] == pytest.approx(1e-3)
    assert space["learning_rate"]["high"] == pytest.approx(2.5e-2) and space["learning_rate"]["log"]
    assert space["batch_size"]["choices"] == [4, 8, 16]
    assert space["r"]["choices"] == [8, 16, 32]
    assert space["epochs"] is None
    with pytest.raises(StudioError, match="at least one hyper-parameter"):
        _config(training_method="hpo", method_values={"space": []})
    # The core's own checks run too: a search needs validation data to choose on, and its
    # pruner evaluations during training.
    with pytest.raises(StudioError, match="eval_strategy"):
        _config(training_method="hpo", validation_size=0.0)
    with pytest.raises(StudioError, match="scores trials on validation data"):
        _config(training_method="hpo", validation_size=0.0, method_values={"pruner": "none"})


def test_continual_learning_makes_a_sequence_of_the_chosen_data(tmp_path):
    other = tmp_path / "reviews.csv"
    other.write_bytes(CSV.read_bytes())
    chosen = [
        {"path": str(CSV), "format": "csv", "columns": {}, "validation_size": 0.25},
        {"path": str(other), "format": "csv", "columns": {}, "test_size": 0.2},
        {"path": str(other), "format": "csv", "columns": {}},
    ]
    values = {"datasets": chosen, "method": "ewc", "ewc_strength": 50.0, "max_train_samples": 24}
    sequence = _config(training_method="continual", method_values=values)
    assert methods.job_of(sequence) == "continual"
    assert [t["name"] for t in sequence["tasks"]] == ["classification", "reviews", "reviews-2"]
    assert sequence["tasks"][0]["data"]["train"] == str(CSV)
    assert sequence["tasks"][1]["data"]["test_size"] == 0.2
    assert all(t["max_train_samples"] == 24 for t in sequence["tasks"])
    assert sequence["continual"] == {
        "method": "ewc",
        "merge_labels": False,
        "ewc": {"strength": 50.0},
    }
    assert "data" not in sequence["run"] and sequence["run"]["model"]["name"] == "tiny-model"
    methods.set_output_dir(sequence, tmp_path / "out")
    assert sequence["run"]["training"]["output_dir"] == str(tmp_path / "out")
    with pytest.raises(StudioError, match="at least two data sets"):
        _config(training_method="continual", method_values={"datasets": chosen[:1]})
    ner = {"path": str(CSV.parent / "ner_iob2.conll"), "format": "conll", "columns": {}}
    with pytest.raises(StudioError, match="applies to classification runs; this run's task is ner"):
        _config(
            task="ner",
            data=Path(ner["path"]),
            fmt="conll",
            training_method="continual",
            method_values={"datasets": [ner, ner]},
        )


# --- the plain twin and the deltas ---------------------------------------------------------------


def _with(tree: dict, dotted: str, value) -> dict:
    tree = copy.deepcopy(tree)
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[last] = value
    return tree


def test_the_plain_twin_differs_only_in_the_method_keys(tmp_path):
    flat = methods.flat_settings
    plain = _config()
    adversarial = _config(training_method="adversarial", method_values=ADVERSARIAL)
    method = methods.get_method("adversarial")
    assert compare.is_plain_twin(flat(adversarial), flat(plain), method)
    # The name and where it wrote never count.
    renamed = _with(_with(plain, "name", "other"), "training.output_dir", str(tmp_path))
    assert compare.is_plain_twin(flat(adversarial), flat(renamed), method)
    # Any other setting does: seed, data, base model, PEFT settings, epochs.
    for key, value in (
        ("training.seed", 7),
        ("data.train", str(tmp_path / "other.csv")),
        ("model.name", "another-model"),
        ("peft.r", 8),
        ("training.epochs", 2.0),
        ("data.validation_size", 0.3),
    ):
        assert not compare.is_plain_twin(
            flat(adversarial), flat(_with(plain, key, value)), method
        ), key
    # A run with the method is no plain twin, nor is a plain run the twin of a plain run.
    other_attack = _with(adversarial, "training.adversarial", "fgm")
    assert not compare.is_plain_twin(flat(adversarial), flat(other_attack), method)
    assert not compare.is_plain_twin(flat(plain), flat(plain), method)
    # A config written before a key existed matches one that holds the key's default.
    old = copy.deepcopy(plain)
    del old["training"]["adversarial_init"], old["evaluation"]
    assert compare.is_plain_twin(flat(adversarial), flat(old), method)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("adversarial", ADVERSARIAL),
        ("prompt", {"kind": "prompt", "virtual_tokens": 10}),
        ("hpo", {"trials": 3}),
        ("continual", None),
        ("augment", {"methods": ["swap", "delete"]}),
        ("fewshot", {"approach": "in-context", "shots": 4}),
        ("spelling", {"max_distance": 1, "min_length": 3}),
    ],
)
def test_each_methods_plain_config_is_its_twin(name, values):
    data = {"path": str(CSV), "format": "csv", "columns": {}}
    if name == "continual":
        values = {"datasets": [data, data], "method": "replay", "merge_labels": True}
    config = _config(training_method=name, method_values=values)
    method = methods.get_method(name)
    mine = methods.flat_settings(config)
    assert [m.name for m in methods.methods_used(mine)] == [name]
    plain = runconfig.checked_job(methods.plain_tree(config, name))
    assert methods.methods_used(methods.flat_settings(plain)) == []
    assert compare.is_plain_twin(mine, methods.flat_settings(plain), method)
    # ...and the same with another seed is not.
    seeded = copy.deepcopy(plain)
    (seeded["run"] if name == "continual" else seeded)["training"]["seed"] = 1
    assert not compare.is_plain_twin(mine, methods.flat_settings(seeded), method)


def _stored(store, name: str, config: dict, metrics: dict, status: str = "completed"):
    run = store.create(name=name, task="classification", config_yaml=yaml.safe_dump(config))
    return store.update(run.id, status=status, metrics=metrics)


def _metrics(accuracy: float, loss: float, seconds: float) -> dict:
    return {
        "validation": {
            "accuracy": accuracy,
            "macro_f1": accuracy - 0.1,
            "loss": loss,
            "f1_positive": 0.5,
            "examples": 12,
        },
        "test": {"accuracy": accuracy - 0.05},
        "train": {"train_seconds": seconds},
    }


def test_effects_pick_the_newest_finished_twin_and_the_deltas(store):
    plain = _config()
    old_twin = _stored(store, "plain-old", plain, _metrics(0.70, 0.60, 10.0))
    twin = _stored(store, "plain", _with(plain, "name", "x"), _metrics(0.75, 0.50, 10.0))
    _stored(store, "plain-failed", plain, {}, status="failed")
    _stored(store, "seed-7", _with(plain, "training.seed", 7), _metrics(0.9, 0.1, 9.0))
    adversarial = _config(training_method="adversarial", method_values=ADVERSARIAL)
    run = _stored(store, "adv", adversarial, _metrics(0.80, 0.55, 17.0))
    lonely = _stored(store, "adv-r8", _with(adversarial, "peft.r", 8), _metrics(0.8, 0.5, 1.0))

    everything = store.list()
    [(method, found)] = compare.effects(run, everything)
    assert method.name == "adversarial" and found.id == twin.id != old_twin.id
    assert compare.effects(lonely, everything)[0][1] is None
    assert compare.effects(twin, everything) == []  # a plain run has no method to weigh

    rows = {(r["split"], r["metric"]): r for r in compare.metric_deltas(run, found)}
    assert set(rows) == {
        ("validation", "accuracy"),
        ("validation", "macro_f1"),
        ("validation", "loss"),
        ("test", "accuracy"),
        ("cost", "train seconds"),
    }  # no per-label F1, no counts
    accuracy = rows["validation", "accuracy"]
    assert (accuracy["baseline"], accuracy["run"], accuracy["change"]) == (0.75, 0.8, 0.05)
    assert accuracy["better"] is True
    assert (
        rows["validation", "loss"]["change"] == 0.05
        and rows["validation", "loss"]["better"] is False
    )
    assert (
        rows["cost", "train seconds"]["change"] == 7.0
        and not rows["cost", "train seconds"]["better"]
    )
    table = compare.runs_table(store.list())
    assert {r["name"]: r["method"] for r in table}["adv"] == "Adversarial training"
    assert {r["name"]: r["method"] for r in table}["plain"] == "plain"


def test_the_baseline_of_a_run_without_a_twin_is_its_twin(store):
    adversarial = _config(training_method="adversarial", method_values=ADVERSARIAL)
    run = _stored(store, "adv", adversarial, _metrics(0.8, 0.5, 1.0))
    [(method, none)] = compare.effects(run, store.list())
    assert none is None
    config, name = compare.baseline_config(run, method)
    assert name == "adv-plain"
    baseline = _stored(store, name, yaml.safe_load(config), _metrics(0.7, 0.6, 1.0))
    assert compare.effects(run, store.list())[0][1].id == baseline.id


def test_job_progress_lines(store):
    hpo = _stored(store, "s", _config(training_method="hpo", method_values={"trials": 4}), {})
    store.update(hpo.id, status="running", step=1, total_steps=4, eta_seconds=90.0)
    hpo = store.get(hpo.id)
    assert runs.job_of(hpo) == "hpo"
    assert runs.progress_text(hpo, "hpo") == "trial 1 finished of 4 - about 1 min 30 s left"
    store.update(hpo.id, status="stopping")
    assert "finished trials" in runs.progress_text(store.get(hpo.id), "hpo")


# --- the worker runs a search and a sequence ----------------------------------------------------


def _labelled(path: Path, prefix: str) -> Path:
    """The fixture CSV with its labels renamed (tasks of a sequence need their own labels)."""
    lines = CSV.read_text(encoding="utf-8").splitlines()
    body = [f"{line.rsplit(',', 1)[0]},{prefix}-{line.rsplit(',', 1)[1]}" for line in lines[1:]]
    path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return path


def test_worker_runs_a_search_and_keeps_the_best_trial(store, tiny_model, tmp_path):
    config = _config(
        model=tiny_model,
        training_method="hpo",
        method_values={"trials": 2, "space": ["learning_rate"], "pruner": "none"},
    )
    methods.set_output_dir(config, tmp_path / "artifact")
    config["training"]["report_to"] = ["none"]
    run = store.create(name="search", task="classification", config_yaml=yaml.safe_dump(config))
    run_training(store, run.id)
    done = store.get(run.id)
    assert done.status == "completed", done.error
    assert (done.step, done.total_steps, done.progress) == (2, 2, 1.0)
    summary = done.metrics["hpo"]
    board = summary["leaderboard"]
    assert len(board) == 2 and sum(r["baseline"] for r in board) == 1
    best = next(r for r in board if r["rank"] == 1)
    assert summary["best_trial"] == best["trial"]
    metric = summary["metric"]
    assert metric == "macro_f1"  # the task's headline metric chooses
    assert done.metrics["validation"][metric] == summary["best_value"] == best[metric]
    assert summary["baseline_value"] == next(r for r in board if r["baseline"])[metric]
    assert (
        Path(done.artifact_path)
        == tmp_path / "artifact-hpo" / "trials" / f"trial-{best['trial']:04d}"
    )
    assert Path(done.artifact_path, "lepton_artifact.json").is_file()
    assert "test" not in done.metrics  # the search never scores the test split
    # What a later run can start from (transfer): the best trial's model.
    assert runs.finished_models(store) == {f"#{run.id} search": done.artifact_path}
    rows = runs.leaderboard_table(summary)
    assert [r["trial"] for r in rows if r["trial"].endswith("*")] == ["0*"]


def test_worker_runs_a_sequence_and_a_stop_keeps_nothing(store, tiny_model, tmp_path):
    chosen = [
        {
            "path": str(_labelled(tmp_path / f"{name}.csv", name)),
            "format": "csv",
            "columns": {},
            "validation_size": 0.25,
            "test_size": 0.25,
        }
        for name in ("kettles", "toasters")
    ]
    config = _config(
        model=tiny_model,
        training_method="continual",
        method_values={"datasets": chosen, "method": "replay", "max_train_samples": 16},
    )
    methods.set_output_dir(config, tmp_path / "artifact")
    config["run"]["training"]["report_to"] = ["none"]
    run = store.create(name="seq", task="classification", config_yaml=yaml.safe_dump(config))
    run_training(store, run.id)
    done = store.get(run.id)
    assert done.status == "completed", done.error
    assert (done.step, done.total_steps) == (2, 2)
    matrix = done.metrics["continual"]["matrix"]["test"]
    assert matrix[0][1] is None and all(v is not None for v in matrix[1])
    assert done.metrics["test"]["average_accuracy"] == pytest.approx(sum(matrix[1]) / 2, abs=1e-6)
    table = runs.continual_table(done)
    assert [row["after learning"] for row in table] == ["kettles", "toasters"]

    again = store.create(name="seq-stop", task="classification", config_yaml=done.config_yaml)
    store.request_stop(again.id)
    run_training(store, again.id)
    stopped = store.get(again.id)
    assert stopped.status == "stopped" and "nothing was kept" in stopped.error


def test_worker_runs_a_few_shot_run_and_its_lora_twin(store, tiny_model, tmp_path):
    config = _config(
        model=tiny_model,
        test_size=0.25,
        training_method="fewshot",
        method_values={"approach": "setfit", "shots": 4, "eval_samples": 50},
    )
    assert methods.job_of(config) == "fewshot"
    assert config["prompting"]["method"] == "setfit" and config["prompting"]["shots"] == 4
    config["prompting"]["setfit"]["max_pairs"] = 16
    methods.set_output_dir(config, tmp_path / "setfit")
    run = store.create(name="fs", task="classification", config_yaml=yaml.safe_dump(config))
    run_training(store, run.id)
    done = store.get(run.id)
    assert done.status == "completed", done.error
    assert done.metrics["fewshot"]["examples"] == 8  # 4 of each of the 2 labels
    assert set(done.metrics["test"]) >= {"accuracy", "macro_f1"}
    # SetFit leaves a model the Studio's other pages (and the Predictor) load.
    from lepton_nlp.inference import Predictor

    predicted = Predictor.from_artifact(done.artifact_path, backend="torch").predict(["a kettle"])
    assert predicted[0]["label"] in ("negative", "positive")
    assert runs.finished_models(store)[f"#{run.id} fs"] == done.artifact_path

    # Its plain twin: LoRA on the same 8 examples; the Compare page pairs the two.
    method = methods.get_method("fewshot")
    assert compare.effects(done, store.list()) == [(method, None)]
    baseline, name = compare.baseline_config(done, method)
    tree = yaml.safe_load(baseline)
    assert tree["prompting"]["method"] == "lora" and tree["prompting"]["shots"] == 4
    methods.set_output_dir(tree, tmp_path / "lora")
    twin = store.create(name=name, task="classification", config_yaml=yaml.safe_dump(tree))
    run_training(store, twin.id)
    twin = store.get(twin.id)
    assert twin.status == "completed", twin.error
    assert twin.metrics["fewshot"]["method"] == "lora" and twin.metrics["fewshot"]["examples"] == 8
    assert compare.effects(done, store.list())[0][1].id == twin.id
    assert compare.methods_of(twin) == []
