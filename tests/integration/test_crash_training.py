"""SIGKILL a real ``lepton-nlp train`` at several points; resuming ends where an unbroken run does.

A tiny classification run checkpoints every two steps. The process is killed the moment a
given checkpoint folder appears (so mostly while that checkpoint is being written), then run
again with ``training.resume=true``, killed again at the next point and resumed again; its
final weights and metrics must match the run that was never interrupted. A second test kills ``write_artifact`` in the middle of writing the
artifact: no folder that loads is left behind, and a damaged folder gives ArtifactError.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.crash_report import record

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
#: Checkpoint folders at whose appearance the training process is killed (mostly while it is
#: being written), in turn: the run has 8 steps and checkpoints every 2.
KILL_AT = (4, 6)


def _overrides(model: str, output: Path, *extra: str) -> list[str]:
    return [
        "task=classification",
        "data.format=csv",
        f"data.train={FIXTURES / 'classification.csv'}",
        "data.validation_size=0.25",
        "data.test_size=0",
        f"model.name={model}",
        "model.max_length=32",
        f"training.output_dir={output}",
        "training.epochs=2",
        "training.batch_size=8",
        "training.learning_rate=5e-3",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
        "training.early_stopping_patience=null",
        "training.progress=false",
        "training.report_to=[none]",
        "training.save_total_limit=20",
        *extra,
    ]


def _train(overrides: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lepton_nlp.cli",
            "train",
            str(ROOT / "configs/demo_finance.yaml"),
            *overrides,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = process.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


def _kill_when(process: subprocess.Popen, path: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def _weights(artifact: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(artifact / "adapter" / "adapter_model.safetensors")


def _validation(artifact: Path) -> dict:
    metrics = json.loads((artifact / "metrics.json").read_text())
    return metrics["validation"]


def test_training_killed_and_resumed_matches_an_unbroken_run(tiny_model, tmp_path):
    unbroken = tmp_path / "unbroken"
    _finish(_train(_overrides(tiny_model, unbroken)))
    reference, ref_metrics = _weights(unbroken), _validation(unbroken)

    # One run killed at each kill point in turn, resumed after each kill.
    output = tmp_path / "killed"
    checkpoints = Path(f"{output}.work") / "checkpoints"
    process = _train(_overrides(tiny_model, output))
    artifacts_left = 0
    for step in KILL_AT:
        _kill_when(process, checkpoints / f"checkpoint-{step}")
        artifacts_left += output.exists()
        process = _train(_overrides(tiny_model, output, "training.resume=true"))
    log = _finish(process)
    weights, metrics = _weights(output), _validation(output)
    assert weights.keys() == reference.keys()
    weight_diff = max((weights[n] - t).abs().max().item() for n, t in reference.items())
    metric_diff = max(
        (abs(metrics[n] - v) for n, v in ref_metrics.items() if isinstance(v, float)), default=0
    )
    for _ in KILL_AT:
        record(
            "training_resume",
            artifacts_from_killed_runs=artifacts_left / len(KILL_AT),
            max_weight_difference=weight_diff,
            max_metric_difference=metric_diff,
        )
    assert artifacts_left == 0, "a killed run left an artifact folder"
    assert "starting from scratch" not in log
    assert weight_diff < 1e-4
    assert metric_diff < 1e-4


WRITER = """
import sys, time
from pathlib import Path

import yaml
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer

import lepton_nlp.artifacts as artifacts
from lepton_nlp.tasks import get_task

source, target, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
info = artifacts.read_artifact(source)
model = AutoPeftModelForSequenceClassification.from_pretrained(
    source / "adapter", num_labels=len(info.spec.labels)
)
tokenizer = AutoTokenizer.from_pretrained(source / "tokenizer")
config = yaml.safe_load((source / "config.yaml").read_text())
safe_dump = yaml.safe_dump


def slow_dump(*args, **kwargs):  # widen the window in which the artifact is part-written
    time.sleep(delay)
    return safe_dump(*args, **kwargs)


artifacts.yaml.safe_dump = slow_dump
for n in range(1000):  # write it again and again (overwrite) until killed
    print("writing", n, flush=True)
    artifacts.write_artifact(
        target, model=model, tokenizer=tokenizer, task=get_task(info.task_version),
        config=config, spec=info.spec, metrics=info.metrics, data_sizes={"train": 1},
        overwrite=True,
    )
"""
#: (seconds the config write takes, whole writes to let finish, seconds into the next to kill)
WRITE_KILLS = ((0.0, 0, 0.0), (0.0, 0, 0.05), (0.5, 1, 0.25), (0.5, 1, 0.6))


def test_artifact_write_killed_never_leaves_a_loadable_half(tiny_artifact, tmp_path):
    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.errors import ArtifactError
    from lepton_nlp.inference import Predictor

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    target = tmp_path / "copy"
    for delay, whole, kill_after in WRITE_KILLS:
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tiny_artifact), str(target), str(delay)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Let it write whole artifacts a few times, then kill it part-way through the next.
        for _ in range(whole + 1):
            line = process.stdout.readline()
            assert line.startswith(b"writing"), process.stderr.read().decode()[-3000:]
        time.sleep(kill_after)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        broken = 0
        if target.exists():
            # The last complete artifact, which loads and predicts: never a part of one.
            try:
                info = read_artifact(target)
                predictor = Predictor.from_artifact(target)
                label = predictor.predict(["Shares rose."])[0]["label"]
                broken = int(info.task != "classification" or label not in info.spec.labels)
            except Exception:  # counted, then failed below
                broken = 1
        record("artifact_write", broken_artifacts=broken)
        assert broken == 0, "a killed write left a broken artifact in place"
    assert target.exists(), "no write ever completed"
    # Leftover staging folders are hidden and are not artifacts.
    for leftover in tmp_path.glob(".copy.*"):
        with pytest.raises(ArtifactError):
            read_artifact(leftover)

    # A folder damaged by hand (or by a copy cut short) is refused with a clear error.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "lepton_artifact.json").write_text('{"format": "lepton-nlp-artifact", "task"')
    with pytest.raises(ArtifactError, match="damaged|not valid|incomplete"):
        read_artifact(damaged)
    (damaged / "lepton_artifact.json").write_text(
        json.dumps({"format": "lepton-nlp-artifact", "format_version": 1})
    )
    with pytest.raises(ArtifactError, match="damaged|incomplete|missing"):
        read_artifact(damaged)


def test_a_writer_killed_between_its_two_renames_loses_no_artifact(tmp_path):
    """Killed after moving the old artifact aside but before renaming the new one in: the
    next write (or a tidy-up) puts the old one back; dead writers' staging folders go."""
    from lepton_nlp.artifacts import ARTIFACT_FILE, _recover

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    retired = tmp_path / f".model.old-{dead.pid}"
    retired.mkdir()
    (retired / ARTIFACT_FILE).write_text("{}")
    staging = tmp_path / f".model.tmp-{dead.pid}"
    staging.mkdir()
    live = tmp_path / f".model.tmp-{os.getpid()}"  # a writer still running: left alone
    live.mkdir()
    _recover(tmp_path / "model")
    assert (tmp_path / "model" / ARTIFACT_FILE).is_file()
    assert not retired.exists() and not staging.exists() and live.exists()
