"""Training behaviour users rely on: early stopping, best checkpoint, exact resume, atomic artifacts,
bad data refused, and the data-parallel run under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, classification_overrides
from safetensors.torch import load_file

from lepton_nlp.artifacts import ArtifactError, read_artifact
from lepton_nlp.config import load_config
from lepton_nlp.data import DataError
from lepton_nlp.training import train
from lepton_nlp.training.callbacks import StopAfterStepCallback


def _weights(artifact: Path) -> dict[str, torch.Tensor]:
    info = read_artifact(artifact)
    (file,) = list(info.weights_dir.glob("*.safetensors"))
    return load_file(str(file))


def test_early_stopping_stops_and_keeps_the_best_checkpoint(base_overrides):
    # A learning rate too small to change anything: the metric never improves after epoch 1.
    config = load_config(
        None,
        [
            *classification_overrides(),
            *base_overrides,
            "training.epochs=10",
            "training.learning_rate=1e-12",
            "training.early_stopping_patience=2",
            "training.warmup_ratio=0",
        ],
    )
    result = train(config)
    figures = result.metrics["train"]
    assert figures["epochs"] == 3  # epoch 1 best, then 2 evaluations without improvement
    steps_per_epoch = figures["steps"] // 3
    assert figures["best_checkpoint_step"] == steps_per_epoch


def test_final_fit_on_train_and_validation_keeps_the_last_step(base_overrides):
    """data.train_on_validation: no validation left, so no early stopping or best checkpoint;
    the artifact says what it was trained on."""
    config = load_config(
        None,
        [
            *classification_overrides(),  # validation_size 0.25 of the 48 fixture records
            *base_overrides,
            "data.train_on_validation=true",
            "training.early_stopping_patience=2",
        ],
    )
    result = train(config)
    assert "validation" not in result.metrics
    figures = result.metrics["train"]
    assert figures["best_checkpoint_step"] is None and figures["epochs"] == 2
    card = (result.artifact / "README.md").read_text(encoding="utf-8")
    assert "| examples | train 48 (the final fit: training and validation records" in card
    assert "train_on_validation: true" in (result.artifact / "config.yaml").read_text()


def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(base_overrides, tmp_path):
    common = [
        *classification_overrides(),
        *base_overrides,
        "training.epochs=3",
        "training.eval_strategy=no",
        "training.early_stopping_patience=null",
        "peft.method=lora",
        "peft.dropout=0.1",
    ]
    straight = train(load_config(None, [*common, f"training.output_dir={tmp_path / 'straight'}"]))

    out = tmp_path / "resumed"
    interrupted = [
        *common,
        f"training.output_dir={out}",
        "training.keep_checkpoints=true",
        "training.eval_steps=5",
    ]
    train(load_config(None, interrupted), callbacks=[StopAfterStepCallback(5)])
    assert (tmp_path / "resumed.work" / "checkpoints" / "checkpoint-5").is_dir()
    resumed = train(
        load_config(None, [*interrupted, "training.resume=true", "training.overwrite=true"])
    )

    assert resumed.metrics["train"]["steps"] == straight.metrics["train"]["steps"]
    a, b = _weights(straight.artifact), _weights(resumed.artifact)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_output_folder_holding_an_artifact_is_refused_and_untouched(base_overrides):
    config = load_config(None, [*classification_overrides(), *base_overrides, "training.epochs=1"])
    first = train(config)
    before = {p.name: p.stat().st_mtime_ns for p in first.artifact.rglob("*")}
    with pytest.raises(ArtifactError, match=r"already holds an artifact.*training.overwrite=true"):
        train(config)
    assert {p.name: p.stat().st_mtime_ns for p in first.artifact.rglob("*")} == before


def test_a_crash_while_writing_leaves_the_old_artifact_and_no_debris(base_overrides, monkeypatch):
    config = load_config(None, [*classification_overrides(), *base_overrides, "training.epochs=1"])
    first = train(config)
    created = read_artifact(first.artifact).created

    import lepton_nlp.artifacts as artifacts

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "model_card", broken)
    again = load_config(
        None,
        [
            *classification_overrides(),
            *base_overrides,
            "training.epochs=1",
            "training.overwrite=true",
        ],
    )
    with pytest.raises(OSError, match="disk full"):
        train(again)
    assert read_artifact(first.artifact).created == created
    assert [p.name for p in first.artifact.parent.iterdir() if ".tmp-" in p.name] == []


def test_a_failed_swap_puts_the_old_artifact_back(base_overrides, monkeypatch):
    config = load_config(None, [*classification_overrides(), *base_overrides, "training.epochs=1"])
    first = train(config)
    created = read_artifact(first.artifact).created
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the staged artifact moving into place
            raise OSError("rename failed")
        return real_replace(src, dst)

    import lepton_nlp.artifacts as artifacts

    monkeypatch.setattr(artifacts.os, "replace", flaky_replace)
    again = load_config(
        None,
        [
            *classification_overrides(),
            *base_overrides,
            "training.epochs=1",
            "training.overwrite=true",
        ],
    )
    with pytest.raises(OSError, match="rename failed"):
        train(again)
    monkeypatch.setattr(artifacts.os, "replace", real_replace)
    assert read_artifact(first.artifact).created == created
    assert sorted(p.name for p in first.artifact.parent.iterdir() if p.name.startswith(".")) == []


def test_artifact_describes_itself(base_overrides):
    result = train(
        load_config(None, [*classification_overrides(), *base_overrides, "training.epochs=1"])
    )
    folder = result.artifact
    meta = json.loads((folder / "lepton_artifact.json").read_text())
    assert meta["task"] == "classification" and meta["peft_method"] == "lora"
    assert json.loads((folder / "labels.json").read_text()) == ["negative", "positive"]
    card = (folder / "README.md").read_text()
    assert "## Metrics" in card and "licence" in card and "validation" in card
    assert (folder / "config.yaml").is_file() and (
        folder / "adapter" / "adapter_config.json"
    ).is_file()
    assert not (folder.parent / (folder.name + ".work")).exists()  # checkpoints cleaned up


def test_tensorboard_logs_land_in_the_artifact(base_overrides):
    overrides = [
        *classification_overrides(),
        *base_overrides,
        "training.epochs=1",
        "training.report_to=[tensorboard]",
    ]
    result = train(load_config(None, overrides))
    assert list((result.artifact / "logs").glob("events.out.tfevents.*"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_one_class_training_set_is_refused(base_overrides, tmp_path):
    data = _write(
        tmp_path / "one.csv", "text,label\n" + "".join(f"text {i},pos\n" for i in range(10))
    )
    config = load_config(None, [*base_overrides, f"data.train={data}"])
    with pytest.raises(DataError, match="one class only"):
        train(config)


def test_label_unseen_in_training_is_refused(base_overrides, tmp_path):
    valid = _write(tmp_path / "valid.csv", "text,label\ngood,positive\nmeh,neutral\n")
    config = load_config(
        None,
        [
            *base_overrides,
            f"data.train={FIXTURES / 'classification.csv'}",
            f"data.validation={valid}",
        ],
    )
    with pytest.raises(
        DataError, match=r"validation data has label\(s\) never seen in training: \{'neutral': 1\}"
    ):
        train(config)


def test_missing_training_file_is_named(base_overrides, tmp_path):
    config = load_config(None, [*base_overrides, f"data.train={tmp_path / 'nope.csv'}"])
    with pytest.raises(DataError, match="nope.csv does not exist"):
        train(config)


def test_data_parallel_run_under_torchrun(tiny_model, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "lepton_nlp.cli",
        "train",
        str(Path(__file__).resolve().parents[2] / "configs" / "demo_finance.yaml"),
        f"model.name={tiny_model}",
        f"training.output_dir={out}",
        "training.epochs=1",
        "training.batch_size=8",
        "training.progress=false",
        "training.report_to=[none]",
        "data.max_train_samples=64",
        "model.max_length=48",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["world_size"] == 2
    # 64 examples, batch 8 per process, 2 processes: 4 steps in the epoch.
    assert metrics["train"]["steps"] == 4
    assert read_artifact(out).task == "classification"
