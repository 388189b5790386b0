"""The adoption rules of the FAQ scoring benchmarks, as their scripts write them: the best mean
validation top-1 among settings that lose at most a point on either set, adopted above a
one-point gain."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import support_faq_fusion  # bench/ is a folder of scripts, not a package
import support_faq_scoring


def _row(weight: float, a: float, b: float) -> dict:
    return {"weight": weight, "top1": {"a": a, "b": b}, "mean_top1": round((a + b) / 2, 4)}


def test_fusion_takes_the_best_mean_among_settings_that_lose_little_anywhere():
    cosine = {"a": 0.50, "b": 0.60}
    grid = [
        _row(0.1, 0.52, 0.61),  # mean 0.565
        _row(0.2, 0.60, 0.585),  # the best mean, but loses 1.5 points on b
        _row(0.3, 0.53, 0.605),  # mean 0.5675: chosen
    ]
    assert support_faq_fusion.choose(grid, cosine)["weight"] == 0.3
    # a tie in mean goes to the lower weight
    assert (
        support_faq_fusion.choose([_row(0.4, 0.53, 0.60), _row(0.2, 0.52, 0.61)], cosine)["weight"]
        == 0.2
    )
    assert support_faq_fusion.choose([_row(0.5, 0.3, 0.9)], cosine) is None


def test_scoring_changes_the_bot_only_above_a_one_point_gain():
    current = support_faq_scoring.CURRENT
    rows = {current: {"a": 0.50, "b": 0.60}, "other": {"a": 0.51, "b": 0.60}}
    assert support_faq_scoring.choose(rows) == current  # +0.5 points: not enough
    rows["better"] = {"a": 0.52, "b": 0.61}  # +1.5 points, no loss
    assert support_faq_scoring.choose(rows) == "better"
    rows["lopsided"] = {"a": 0.70, "b": 0.58}  # the best mean, but 2 points lost on b
    assert support_faq_scoring.choose(rows) == "better"


def test_scoring_variants_are_computed_from_the_cosines():
    q, a, joint = np.array([[0.9, 0.1]]), np.array([[0.3, 0.5]]), np.array([[0.2, 0.8]])
    v = support_faq_scoring.variants(q, a, joint)
    assert v["max_question_answer"].tolist() == [[0.9, 0.5]]
    assert np.allclose(v["mean_question_answer"], [[0.6, 0.3]])
    assert v["max_of_three"].tolist() == [[0.9, 0.8]]
    assert v["question"] is q and v["answer"] is a and v["question_and_answer_text"] is joint
