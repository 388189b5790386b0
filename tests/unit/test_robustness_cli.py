"""``lepton-nlp eval ARTIFACT --attack ...``: clean and attacked metrics, the same on a rerun,
synonyms from the artifact's own base model, and clear errors for bad requests."""

from __future__ import annotations

import json

from conftest import FIXTURES

from lepton_nlp.cli import main

CSV = FIXTURES / "classification.csv"


def test_eval_with_attacks_reports_each_budget_and_repeats_exactly(tiny_artifact, tmp_path, capsys):
    runs = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.json"
        command = ["eval", str(tiny_artifact), "--data", str(CSV), "--backend", "torch"]
        command += ["--attack", "typo,synonym,case", "--budget", "1,2", "--output", str(out)]
        assert main(command) == 0
        runs.append(json.loads(out.read_text(encoding="utf-8")))
    capsys.readouterr()
    first, second = runs
    assert first == second  # seeded: the same texts, the same figures
    assert set(first["attacks"]) == {f"{a}@{b}" for a in ("typo", "synonym", "case") for b in (1, 2)}  # fmt: skip
    examples = first["clean"]["examples"]
    assert examples == 48 and first["metric"] == "accuracy"
    for scores in first["attacks"].values():
        assert scores["examples"] == examples
        assert scores["drop"] == round(first["clean"]["accuracy"] - scores["accuracy"], 6)
        assert 0 <= scores["prediction_flips"] <= examples
    # The tiny model's tokenizer lower-cases: changing case cannot change a prediction.
    assert first["attacks"]["case@2"]["prediction_flips"] == 0
    # Every fixture text has letters enough for two typos, and the tiny vocabulary has
    # neighbours for some of its words.
    assert first["attacks"]["typo@2"]["changed"] == examples
    assert first["attacks"]["synonym@1"]["changed"] > 0


def test_eval_refuses_a_bad_attack_or_budget(tiny_artifact, capsys):
    command = ["eval", str(tiny_artifact), "--data", str(CSV)]
    assert main([*command, "--attack", "typos"]) == 2
    assert "Did you mean 'typo'" in capsys.readouterr().err
    assert main([*command, "--attack", "typo", "--budget", "0"]) == 2
    assert "whole numbers of edits, 1 or more" in capsys.readouterr().err
