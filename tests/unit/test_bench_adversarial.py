"""bench/adversarial_robustness.py's sizes per arm and the rule that chooses them on the
validation split (the choice must follow the rule, never the test split)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import adversarial_robustness as bench  # bench/ is a folder of scripts, not a package


def test_an_arm_names_its_own_sizes_and_the_others_take_the_defaults():
    assert bench.method_sizes("freelb", 0.3, 2) == ("freelb", 0.3, 2)
    assert bench.method_sizes("freelb-e1.0", 0.3, 2) == ("freelb", 1.0, 2)
    assert bench.method_sizes("pgd-e3-s4", 0.3, 2) == ("pgd", 3.0, 4)
    overrides = bench._overrides(
        bench._arguments(["--epsilon", "0.3"])[0], "freelb-e1.0-s3", 42, []
    )
    assert "training.adversarial=freelb" in overrides
    assert "training.adversarial_epsilon=1.0" in overrides
    assert "training.adversarial_steps=3" in overrides
    assert "training.output_dir=runs/adversarial_robustness/freelb-e1.0-s3-seed42" in overrides


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ("freelbb", "unknown 'freelbb'"),
        ("freelb-x1", "sizes are -e<epsilon> and -s<steps>"),
        ("freelb-eone", "sizes are -e<epsilon> and -s<steps>"),
        ("plain-e1.0", "plain has no adversarial sizes"),
    ],
)
def test_an_arm_that_is_not_a_method_with_sizes_is_refused(arm, message):
    with pytest.raises(SystemExit, match=message):
        bench.method_sizes(arm, 0.3, 2)


def _scores(arms: dict[str, tuple[float, float]], seed: str = "42") -> dict:
    """Per-arm scores from (clean, every attack's accuracy), one seed."""
    attacks = ("typo3", "swap3")
    return {
        arm: {"clean": {seed: clean}, **{a: {seed: attacked} for a in attacks}}
        for arm, (clean, attacked) in arms.items()
    }


def test_an_arm_run_on_fewer_seeds_is_compared_with_plain_on_the_same_seeds():
    scores = _scores({"plain": (0.80, 0.70), "freelb": (0.82, 0.74)})
    seed43 = _scores({"plain": (0.90, 0.90)}, seed="43")  # plain alone on a lucky seed
    for key, by_seed in seed43["plain"].items():
        scores["plain"][key].update(by_seed)
    summary = bench._summary(scores)
    assert summary["plain_clean_accuracy_mean"] == pytest.approx(0.85)  # over its 2 seeds
    assert summary["freelb_seeds_vs_plain"] == "42"
    # Paired on seed 42: +0.04 under attack, not 0.74 - 0.80 against plain's 2-seed mean.
    assert summary["freelb_attacked_gain_vs_plain"] == pytest.approx(0.04)
    assert summary["freelb_clean_delta_vs_plain"] == pytest.approx(0.02)
    assert summary["freelb_target_met_on_mean_of_attacks"] is True


def _part(tmp_path, part: str, seeds: str, scores: dict) -> None:
    record = {"seeds": seeds, "command": part, "date": "-", "machine": "-", "scores": scores}
    (tmp_path / f"adversarial_robustness_{part}.json").write_text(json.dumps(record))


def test_merge_joins_parts_by_seed_old_list_parts_included(tmp_path, monkeypatch):
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    written = {}
    monkeypatch.setattr(bench, "write_result", lambda name, figures: written.update(figures))
    # An older part: one value per seed of the part, in its seed order.
    _part(tmp_path, "a", "42,43", {"plain": {"clean": [0.8, 0.9], "typo3": [0.7, 0.8]}})
    _part(tmp_path, "b", "43", {"freelb": {"clean": {"43": 0.9}, "typo3": {"43": 0.85}}})
    bench.merge(["a", "b"])
    assert written["scores"]["plain"]["typo3"] == {"42": 0.7, "43": 0.8}
    assert written["seeds"] == "42,43" and written["freelb_seeds_vs_plain"] == "43"
    assert written["freelb_typo3_gain_vs_plain"] == pytest.approx(0.05)
    # The same seed in two parts, or a list that does not match its part's seeds: refused.
    _part(tmp_path, "c", "43", {"freelb": {"clean": {"43": 0.7}, "typo3": {"43": 0.7}}})
    with pytest.raises(SystemExit, match="seed 43 is in two parts"):
        bench.merge(["a", "b", "c"])
    _part(tmp_path, "d", "44", {"plain": {"clean": [0.8, 0.9]}})
    with pytest.raises(SystemExit, match="2 scores for seeds"):
        bench.merge(["d"])


def test_validation_chooses_the_best_corrected_arm_within_the_clean_budget():
    scores = _scores(
        {
            "plain": (0.80, 0.70),
            "plain+spelling": (0.80, 0.78),  # plain's own correction is no candidate
            "freelb+spelling": (0.81, 0.74),
            "freelb-e1.0+spelling": (0.80, 0.76),
            "freelb-e3.0+spelling": (0.78, 0.79),  # the best under attack, 2 points clean
            "freelb-e1.0": (0.80, 0.75),  # uncorrected arms are no candidates
        }
    )
    summary = {"epsilon": 0.3, "steps": 2, **bench._summary(scores)}
    choice = bench.choose(summary, scores)
    assert choice["chosen"] == "freelb-e1.0+spelling"
    assert choice["candidates"][0] == "freelb-e1.0+spelling"
    assert "freelb-e3.0+spelling" in choice["candidates"]
    assert "plain+spelling" not in choice["candidates"]


def test_a_tie_goes_to_the_smaller_epsilon_and_nothing_within_budget_chooses_nothing():
    tie = _scores({"plain": (0.8, 0.7), "freelb-e1.0+spelling": (0.8, 0.75)})
    tie["freelb+spelling"] = tie["freelb-e1.0+spelling"]
    summary = {"epsilon": 0.3, "steps": 2, **bench._summary(tie)}
    assert bench.choose(summary, tie)["chosen"] == "freelb+spelling"

    worse = _scores({"plain": (0.8, 0.7), "freelb-e3.0+spelling": (0.7, 0.75)})
    summary = {"epsilon": 0.3, "steps": 2, **bench._summary(worse)}
    assert bench.choose(summary, worse)["chosen"] is None


def test_the_docs_table_shows_each_arms_seeds_and_its_paired_change():
    scores = _scores({"plain": (0.80, 0.70), "freelb+spelling": (0.82, 0.74)})
    scores["plain"] = {k: {**v, "43": 0.9} for k, v in scores["plain"].items()}
    # An arm on seeds 42 and 44: compared with plain on seed 42 alone, and the row says so.
    scores["fgm"] = {k: {"42": 0.81, "44": 0.99} for k in ("clean", "typo3", "swap3")}
    figures = {"scores": scores, **bench._summary(scores)}
    lines = bench.markdown_table(figures).splitlines()
    assert lines[0].split("|")[3:6] == [" clean ", " typo ", " swap "]
    plain, freelb, fgm = lines[2:5]
    assert plain.startswith("| plain | 42,43 | 0.850 | 0.800 | 0.800 | 0.800 | - |")
    assert freelb == "| freelb+spelling | 42 | 0.820 | 0.740 | 0.740 | 0.740 | +2.0 / +4.00 |"
    assert fgm == ("| fgm | 42,44 | 0.900 | 0.900 | 0.900 | 0.900 | +1.0 / +11.00 (on seeds 42) |")
