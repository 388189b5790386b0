"""Real public datasets (LEPTON_DATASETS, default ../shared/datasets): readers, splits, shipped models.

Skipped, with the reason, where the folder is absent. Nothing here is copied into the repository.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from lepton_nlp.config import load_config
from lepton_nlp.data import load_splits
from lepton_nlp.inference import Predictor

ROOT = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("LEPTON_DATASETS", ROOT.parent / "shared" / "datasets"))
pytestmark = [
    pytest.mark.datasets,
    pytest.mark.skipif(
        not DATASETS.is_dir(),
        reason=f"shared datasets not found at {DATASETS} (set LEPTON_DATASETS)",
    ),
]


@pytest.fixture(autouse=True)
def _datasets_env(monkeypatch):
    monkeypatch.setenv("LEPTON_DATASETS", str(DATASETS))


def test_financial_phrasebank_finbert_split():
    path = ROOT / "configs" / "classification_fpb.yaml"
    # The runs that chose the settings: 64/16/20.
    splits = load_splits(load_config(path, ["data.train_on_validation=false"]).data, "text")
    sizes = {name: len(records) for name, records in splits.items()}
    assert sum(sizes.values()) == 4846
    assert sizes == {"train": 3102, "validation": 775, "test": 969}
    # The final fit (the config as shipped): train + validation, the same test sentences.
    final = load_splits(load_config(path).data, "text")
    assert [len(final[s]) for s in ("train", "validation")] == [3877, 0]
    assert final["test"] == splits["test"]
    # Stratified: each split keeps the label proportions of the whole.
    whole = Counter(r["label"] for s in splits.values() for r in s)
    for records in splits.values():
        counts = Counter(r["label"] for r in records)
        for label, n in whole.items():
            assert abs(counts[label] / len(records) - n / 4846) < 0.01


def test_conll2003_official_splits():
    config = load_config(ROOT / "configs" / "ner_conll2003.yaml")
    splits = load_splits(config.data, "tokens")
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [14041, 3250, 3453]
    tags = {tag for s in splits["train"] for tag in s["tags"]}
    assert tags == {"O"} | {f"{p}-{t}" for p in "BI" for t in ("PER", "ORG", "LOC", "MISC")}


def test_banking77_official_test_and_held_out_validation():
    config = load_config(ROOT / "configs" / "classification_banking77.yaml")
    splits = load_splits(config.data, "text")
    assert len(splits["test"]) == 3080
    assert len(splits["train"]) + len(splits["validation"]) == 10003
    assert len({r["label"] for r in splits["train"]}) == 77


@pytest.mark.parametrize(
    ("name", "config", "metric", "floor"),
    [
        ("finance-sentiment", "classification_fpb.yaml", "accuracy", 0.80),
        ("banking77-intent", "classification_banking77.yaml", "accuracy", 0.88),
    ],
)
def test_shipped_model_scores_as_its_card_says_on_the_real_test_split(name, config, metric, floor):
    """Re-scores the shipped adapter through Predictor on the re-created test split: fp32
    reproduces the card; the default backend (int8 where the artifact's check passed) loses
    at most 0.5 points against it."""
    import json

    artifact = ROOT / "data" / "models" / name
    splits = load_splits(load_config(ROOT / "configs" / config).data, "text")
    fp32 = Predictor.from_artifact(artifact, batch_size=64, backend="torch")
    metrics = fp32.evaluate(splits["test"])
    card = json.loads(artifact.joinpath("metrics.json").read_text())
    assert metrics[metric] >= floor, metrics
    assert metrics[metric] == pytest.approx(card["test"][metric], abs=0.005)
    default = Predictor.from_artifact(artifact, batch_size=64)
    assert default.backend == card["backends"]["cpu_default"]
    if default.backend != "torch":
        assert default.evaluate(splits["test"])[metric] >= metrics[metric] - 0.005
