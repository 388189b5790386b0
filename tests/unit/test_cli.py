"""The lepton-nlp command: train, eval, predict (stdin -> JSONL), export, help, errors."""

from __future__ import annotations

import io
import json
import sys

import pytest
from conftest import FIXTURES, classification_overrides

from lepton_nlp.cli import build_parser, main
from lepton_nlp.inference import Predictor


@pytest.fixture
def trained(base_overrides, tmp_path):
    code = main(
        ["train", "configs/demo_finance.yaml", *classification_overrides(), *base_overrides]
    )
    assert code == 0
    return tmp_path / "artifact"


def test_train_eval_predict_export(trained, tmp_path, monkeypatch, capsys):
    capsys.readouterr()
    assert main(["eval", str(trained), "--data", str(FIXTURES / "classification.csv")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 48 and 0.0 <= metrics["accuracy"] <= 1.0

    # Standard input: one JSON object per line (the first line decides; ids copied through).
    stdin = b'{"text": "good value"}\n{"id": 7, "text": "awful"}\n\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert main(["predict", str(trained)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[1]["id"] == 7 and lines[1]["text"] == "awful"
    assert lines[0]["label"] in ("positive", "negative") and set(lines[0]["scores"]) == {
        "positive",
        "negative",
    }

    merged = tmp_path / "merged"
    assert main(["export", str(trained), str(merged), "--merge"]) == 0
    texts = ["good value", "awful", "works fine"]
    a = Predictor.from_artifact(trained).predict(texts)
    b = Predictor.from_artifact(merged).predict(texts)
    assert [x["label"] for x in a] == [x["label"] for x in b]
    for x, y in zip(a, b, strict=True):
        assert x["score"] == pytest.approx(y["score"], abs=1e-4)
    capsys.readouterr()
    assert main(["eval", str(merged), "--data", str(FIXTURES / "classification.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        metrics["accuracy"], abs=0.03
    )
    assert main(["export", str(merged), str(tmp_path / "again"), "--merge"]) == 2
    assert "already holds full weights" in capsys.readouterr().err


def test_streams_option_changes_speed_not_results(trained, capsys):
    data = str(FIXTURES / "classification.csv")
    runs = []
    for streams in ("1", "2"):
        capsys.readouterr()
        assert (
            main(["eval", str(trained), "--data", data, "--batch-size", "8", "--streams", streams])
            == 0
        )
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(trained), "--streams", "0"])
    assert exc.value.code == 2
    assert "--streams: needs a whole number, 1 or more; got '0'" in capsys.readouterr().err


def test_eval_without_data_uses_the_runs_test_split(base_overrides, tmp_path, capsys):
    overrides = [
        *classification_overrides(),
        *base_overrides,
        "data.test_size=0.25",
        "training.epochs=1",
    ]
    assert main(["train", "configs/demo_finance.yaml", *overrides]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "artifact")]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12


def test_errors_are_one_clear_line_and_exit_2(tmp_path, capsys):
    assert main(["train", "configs/demo_finance.yaml", "training.epoch=3"]) == 2
    assert "Did you mean training.epochs?" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 2
    assert "not a lepton-nlp artifact" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "predict", "export"])
def test_help_of_each_command_explains_it(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: lepton-nlp " + command in text and len(text) > 300
