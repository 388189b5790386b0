"""bench/common.py's ``--restarts N``: N seeds, the run with the best validation metric kept,
every restart's figures recorded (so the choice can be checked, and never uses test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import FIXTURES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import common  # bench/ is a folder of scripts, not a package


def test_restarts_keep_the_best_validation_run(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run_config_benchmark moves to the repository root
    monkeypatch.setenv("LEPTON_DATASETS", str(tmp_path))
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "task": "classification",
                "data": {
                    "format": "csv",
                    "train": str(FIXTURES / "classification.csv"),
                    "validation_size": 0.25,
                    "test_size": 0.25,
                },
                "model": {"name": tiny_model, "max_length": 48},
                "peft": {"method": "lora", "r": 4},
                "training": {
                    "output_dir": str(tmp_path / "run"),
                    "epochs": 1,
                    "batch_size": 8,
                    "learning_rate": 5e-3,
                    "progress": False,
                    "report_to": ["none"],
                    "seed": 7,
                },
            }
        ),
        encoding="utf-8",
    )
    figures = common.run_config_benchmark("tiny", str(config), ["--restarts", "2"], {})
    metric = figures["restart_chosen_on"].removeprefix("validation_")
    scores = {seed: figures[f"seed{seed}_validation_{metric}"] for seed in (7, 8)}
    assert figures["restarts"] == 2 and f"seed8_test_{metric}" in figures
    assert scores[figures["restart_chosen_seed"]] == max(scores.values())
    assert figures[f"validation_{metric}"] == max(scores.values())
    assert figures["artifact"] == str(tmp_path / f"run-seed{figures['restart_chosen_seed']}")
    assert (tmp_path / "run-seed7").is_dir() and (tmp_path / "run-seed8").is_dir()
    written = json.loads((tmp_path / "results" / "tiny.json").read_text(encoding="utf-8"))
    assert written["restart_chosen_seed"] == figures["restart_chosen_seed"]


def test_restarts_choose_on_validation_only(monkeypatch, tmp_path):
    """Of three seeds the one best on validation is kept, even when another is best on test."""
    import lepton_nlp.training

    by_seed = {42: (0.70, 0.90), 43: (0.80, 0.60), 44: (0.75, 0.95)}  # (validation, test)

    def fake_train(config):
        validation, test = by_seed[config.training.seed]
        return SimpleNamespace(
            metrics={
                "validation": {"accuracy": validation, "macro_f1": validation},
                "test": {"accuracy": test, "macro_f1": test},
                "train": {"epochs": 1.0},
            },
            artifact=Path(config.training.output_dir),
        )

    monkeypatch.setattr(lepton_nlp.training, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEPTON_DATASETS", str(tmp_path))
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    figures = common.run_config_benchmark(
        "fpb", "configs/classification_fpb.yaml", ["--restarts=3"], {}
    )
    assert figures["restart_chosen_seed"] == 43
    assert (figures["test_accuracy"], figures["validation_macro_f1"]) == (0.60, 0.80)
    assert figures["seed44_test_accuracy"] == 0.95  # recorded, never used to choose
    assert figures["artifact"].endswith("classification_fpb-seed43")


@pytest.mark.parametrize("value", ["0", "x", ""])
def test_restarts_must_be_a_positive_number(value):
    with pytest.raises(SystemExit, match="--restarts"):
        common._pop_restarts(["a.b=1", f"--restarts={value}"])
    assert common._pop_restarts(["a.b=1", "--restarts", "3"]) == (3, ["a.b=1"])
