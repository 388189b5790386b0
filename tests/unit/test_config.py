"""Run configs: shipped YAML files load, typos name the nearest key, overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_nlp.config import ConfigError, expand_path, load_config

ROOT = Path(__file__).resolve().parents[2]
# Continual-learning sequence files (a run config under `run:` plus `tasks:`) have their own
# reader, tested below; every other file in configs/ is a run config.
SEQUENCES = sorted((ROOT / "configs").glob("continual_*.yaml"))
CONFIGS = sorted(set((ROOT / "configs").glob("*.yaml")) - set(SEQUENCES))


def test_configs_exist():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_validates(path):
    config = load_config(path)
    assert config.task  # registered: RunConfig refuses unknown tasks
    assert config.data.train
    assert config.training.metric_for_best


@pytest.mark.parametrize("path", SEQUENCES, ids=[p.name for p in SEQUENCES])
def test_every_shipped_continual_sequence_loads_and_validates(path):
    from lepton_nlp.training.continual import load_continual_config

    config = load_continual_config(path)
    assert len(config.tasks) >= 2
    assert config.run.task == "classification"


def test_misspelt_key_names_the_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"'training.epoch'.*Did you mean training.epochs\?"):
        load_config({"training": {"epoch": 3}})
    with pytest.raises(ConfigError, match=r"Did you mean peft\?"):
        load_config({"pefT": {"method": "lora"}})


def test_overrides_change_nested_values_with_yaml_types():
    config = load_config(
        None,
        [
            "training.epochs=5",
            "peft.method=ia3",
            "training.learning_rate=3e-4",
            "data.multi_label=true",
        ],
    )
    assert config.training.epochs == 5.0
    assert config.peft.method == "ia3"
    assert config.training.learning_rate == pytest.approx(3e-4)
    assert config.data.multi_label is True


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [classification\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(bad)
    bad.write_text("- task: classification\n")
    with pytest.raises(ConfigError, match="bad.yaml must hold a mapping"):
        load_config(bad)


def test_override_typo_is_an_error_too():
    with pytest.raises(ConfigError, match="Did you mean training.batch_size"):
        load_config(None, ["training.batchsize=8"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["training.epochs"])


def test_wrong_types_and_impossible_values_are_refused():
    with pytest.raises(ConfigError, match="training.batch_size must be int"):
        load_config(None, ["training.batch_size=many"])
    with pytest.raises(ConfigError, match="validation_size"):
        load_config(None, ["data.validation_size=1.5"])
    with pytest.raises(ConfigError, match="eval_steps"):
        load_config(None, ["training.eval_strategy=steps"])


def test_unknown_peft_method_and_task_suggest_the_right_name():
    with pytest.raises(ConfigError, match="Did you mean 'lora'"):
        load_config(None, ["peft.method=loraa"])
    with pytest.raises(ConfigError, match="Did you mean 'classification'"):
        load_config(None, ["task=clasification"])


def test_dataset_path_expands_lepton_datasets(monkeypatch):
    monkeypatch.setenv("LEPTON_DATASETS", "/data/shared")
    config = load_config(ROOT / "configs" / "classification_fpb.yaml")
    # The config keeps the portable form; readers expand it when they open the file.
    assert config.data.train == "${LEPTON_DATASETS}/financial_phrasebank/Sentences_50Agree.txt"
    assert (
        expand_path(config.data.train) == "/data/shared/financial_phrasebank/Sentences_50Agree.txt"
    )


def test_metric_for_best_must_be_a_metric_of_the_task():
    with pytest.raises(ConfigError, match="Did you mean 'macro_f1'"):
        load_config(None, ["training.metric_for_best=macro-f1"])
    with pytest.raises(ConfigError, match="not a metric of classification \\(multi-label\\)"):
        load_config(None, ["data.multi_label=true", "training.metric_for_best=accuracy"])
    with pytest.raises(ConfigError, match="warmup_ratio"):
        load_config(None, ["training.warmup_ratio=2"])


def test_task_default_metric_fills_metric_for_best():
    assert load_config(None, ["task=ner"]).training.metric_for_best == "f1"
    assert load_config(None, []).training.metric_for_best == "macro_f1"


def test_task_options_are_refused_for_a_task_without_options():
    with pytest.raises(ConfigError, match="takes no task_options"):
        load_config(None, ["task=ner", "task_options.stride=64"])
