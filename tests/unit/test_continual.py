"""Continual learning: replay buffer, EWC, label collisions, forgetting matrix, router, runs."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lepton_nlp.config import load_config
from lepton_nlp.errors import ConfigError, DataError, MultiAdapterError
from lepton_nlp.training.continual import (
    EWC,
    AdapterRouter,
    ContinualSettings,
    LabelCollisionError,
    ReplayBuffer,
    TaskData,
    check_label_sets,
    forgetting_summary,
    load_continual_config,
    run_sequence,
)
from tests.conftest import FIXTURES, tiny_training


def _records(task: str, labels: list[str], per_label: int) -> list[dict]:
    return [
        {"text": f"{task} {label} example {i}", "label": label}
        for label in labels
        for i in range(per_label)
    ]


# --- replay buffer ---------------------------------------------------------------------------


def test_balanced_buffer_keeps_and_replays_every_class_equally():
    buffer = ReplayBuffer(capacity=60, sampling="balanced", seed=1)
    buffer.add("a", _records("a", ["x", "y"], 100))
    buffer.add("b", _records("b", ["z"], 10))
    held = Counter((task, r["label"]) for task, r in buffer.items())
    # 60 slots over three classes; class z has only 10 examples and keeps them all.
    assert held == {("a", "x"): 20, ("a", "y"): 20, ("b", "z"): 10}
    drawn = Counter(r["label"] for r in buffer.sample(90))
    assert drawn == {"x": 30, "y": 30, "z": 30}


def test_replay_mix_has_the_configured_proportion_from_earlier_tasks():
    buffer = ReplayBuffer(capacity=50, sampling="balanced", seed=0)
    buffer.add("old", _records("old", ["p", "q"], 40))
    new = _records("new", ["r", "s"], 60)
    for proportion in (0.2, 0.5):
        mixed = buffer.mix(new, proportion)
        replayed = [r for r in mixed if r["text"].startswith("old")]
        assert len(mixed) == len(new) + len(replayed)
        assert len(replayed) / len(mixed) == pytest.approx(proportion, abs=0.01)
    assert ReplayBuffer(10).mix(new, 0.5) == new  # nothing earlier: nothing replayed


def test_reservoir_keeps_tasks_in_proportion_to_their_size():
    shares = []
    for seed in range(5):
        buffer = ReplayBuffer(capacity=200, sampling="reservoir", seed=seed)
        buffer.add("big", _records("big", ["x"], 1500))
        buffer.add("small", _records("small", ["y"], 500))
        assert len(buffer) == 200
        shares.append(Counter(task for task, _ in buffer.items())["big"] / 200)
    assert sum(shares) / len(shares) == pytest.approx(0.75, abs=0.05)


@pytest.mark.parametrize("sampling", ["reservoir", "balanced"])
def test_buffer_is_seeded(sampling):
    def draws(seed):
        buffer = ReplayBuffer(capacity=30, sampling=sampling, seed=seed)
        buffer.add("a", _records("a", ["x", "y", "z"], 50))
        return [r["text"] for r in buffer.sample(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


# --- EWC -------------------------------------------------------------------------------------


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, x, labels):
        logits = self.layer(x)
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels))


def _consolidated(strength=10.0) -> tuple[_Linear, EWC]:
    model = _Linear()
    ewc = EWC(model, strength)
    generator = torch.Generator().manual_seed(0)
    examples = [
        {"x": torch.randn(1, 4, generator=generator), "labels": torch.tensor([i % 3])}
        for i in range(12)
    ]
    ewc.consolidate(model, examples)
    return model, ewc


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    model, ewc = _consolidated()
    assert all(f.sum() > 0 for f in ewc.fisher.values())
    assert float(ewc.penalty()) == 0.0
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    values = []
    for step in (0.01, 0.1, 1.0):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(ewc.anchor[n] + step * direction[n])
        values.append(float(ewc.penalty()))
    assert 0 < values[0] < values[1] < values[2]
    # Quadratic: ten times further, a hundred times the penalty.
    assert values[1] / values[0] == pytest.approx(100, rel=1e-3)


def test_ewc_gradient_points_back_to_the_anchor():
    model, ewc = _consolidated(strength=5.0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.zero_grad()
    ewc.penalty().backward()
    for n, p in model.named_parameters():
        offset = p.detach() - ewc.anchor[n]
        # d/dtheta = strength * F * (theta - theta*): a descent step moves towards the anchor.
        assert torch.allclose(p.grad, 5.0 * ewc.fisher[n] * offset, atol=1e-6)
        assert float((p.grad * offset).sum()) > 0
    before = float(ewc.penalty())
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.01 * p.grad)
    assert float(ewc.penalty()) < before


def test_ewc_without_anchor_or_strength_adds_nothing():
    model = _Linear()
    assert float(EWC(model, 10.0).penalty()) == 0.0
    _, ewc = _consolidated(strength=0.0)
    assert not ewc.active


# --- label sets ------------------------------------------------------------------------------


def test_colliding_label_sets_raise_unless_merged():
    tasks = {"sentiment": ["negative", "positive"], "reviews": ["positive", "mixed"]}
    with pytest.raises(LabelCollisionError, match="'positive' in \\['sentiment', 'reviews'\\]"):
        check_label_sets(tasks)
    assert check_label_sets(tasks, merge=True) == ["negative", "positive", "mixed"]
    assert check_label_sets({"a": ["x", "y"], "b": ["z"]}) == ["x", "y", "z"]


def test_labels_equal_but_for_case_raise_even_when_merging():
    with pytest.raises(LabelCollisionError, match="only by case"):
        check_label_sets({"a": ["Positive", "neg"], "b": ["positive"]}, merge=True)


def test_shared_run_refuses_colliding_labels_before_training(tiny_model, tmp_path):
    run = load_config(None, tiny_training(tiny_model))
    tasks = [
        TaskData("a", _records("a", ["x", "y"], 4), [], []),
        TaskData("b", _records("b", ["y", "z"], 4), [], []),
    ]
    with pytest.raises(LabelCollisionError):
        run_sequence(run, tasks, ContinualSettings(method="replay"), tmp_path / "out")
    assert not list((tmp_path / "out").glob("step-*"))


# --- the forgetting matrix -------------------------------------------------------------------


def test_forgetting_summary_of_a_hand_made_matrix():
    matrix = [
        [0.90, None, None],
        [0.70, 0.80, None],
        [0.60, 0.85, 0.95],
    ]
    summary = forgetting_summary(matrix)
    assert summary["average_accuracy"] == pytest.approx((0.60 + 0.85 + 0.95) / 3)
    # Task 0: best 0.90, final 0.60 -> 0.30; task 1: best 0.80, final 0.85 -> -0.05.
    assert summary["average_forgetting"] == pytest.approx((0.30 - 0.05) / 2)
    assert summary["backward_transfer"] == pytest.approx(((0.60 - 0.90) + (0.85 - 0.80)) / 2)
    with pytest.raises(ValueError, match="square"):
        forgetting_summary([[0.9, None]])


# --- config ----------------------------------------------------------------------------------


def _sequence(tiny_model: str, tmp_path: Path, method: str) -> dict:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    rows = list(csv.DictReader((FIXTURES / "classification.csv").open()))
    with a.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    with b.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        for line in (FIXTURES / "fpb_style.txt").read_text(encoding="latin-1").splitlines():
            text, label = line.rsplit("@", 1)
            writer.writerow({"text": text, "label": f"fin-{label}"})
    overrides = dict(item.split("=", 1) for item in tiny_training(tiny_model))
    return {
        "run": {
            "task": "classification",
            "model": {"name": overrides["model.name"], "max_length": 48},
            "training": {
                "output_dir": str(tmp_path / "run"),
                "epochs": 2,
                "batch_size": 8,
                "learning_rate": 5e-3,
                "eval_strategy": "no",
                "early_stopping_patience": None,
                "progress": False,
                "report_to": ["none"],
            },
        },
        "tasks": [
            {
                "name": "products",
                "data": {"format": "csv", "train": str(a), "test_size": 0.25},
            },
            {
                "name": "finance",
                "data": {"format": "csv", "train": str(b), "test_size": 0.25},
                "labels": ["fin-positive", "fin-negative"],
            },
        ],
        "continual": {"method": method, "replay": {"buffer_size": 8}},
    }


def test_sequence_config_rejects_typos_with_a_suggestion(tiny_model, tmp_path):
    tree = _sequence(tiny_model, tmp_path, "replay")
    with pytest.raises(ConfigError, match="Did you mean continual.method"):
        load_continual_config(tree, ["continual.metod=ewc"])
    with pytest.raises(ConfigError, match="Did you mean continual.replay.proportion"):
        load_continual_config(tree, ["continual.replay.proportoin=0.2"])
    with pytest.raises(ConfigError, match="continual.method='finetune'"):
        load_continual_config(tree, ["continual.method=finetune"])
    with pytest.raises(ConfigError, match="Did you mean tasks"):
        load_continual_config({**tree, "taks": []})


# --- runs on the tiny model ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ewc", "replay"])
def test_shared_sequence_writes_the_forgetting_matrix(tiny_model, tmp_path, method):
    from lepton_nlp.cli import main

    sequence = tmp_path / "sequence.json"  # JSON is YAML
    sequence.write_text(json.dumps(_sequence(tiny_model, tmp_path, method)))
    assert main(["continual", str(sequence)]) == 0
    result = json.loads((tmp_path / "run" / "continual.json").read_text())
    assert result["method"] == method
    assert result["labels"] == ["negative", "positive", "fin-negative", "fin-positive"]
    matrix = result["test"]["matrix"]
    assert matrix[0][1] is None and all(0.0 <= v <= 1.0 for v in matrix[1])
    assert result["test"]["average_accuracy"] == pytest.approx(sum(matrix[1]) / 2, abs=1e-6)
    assert result["test"]["average_forgetting"] == pytest.approx(matrix[0][0] - matrix[1][0])
    if method == "replay":
        # Step two replays 30% (the default proportion) from the first task's buffer.
        step = result["steps"][1]
        assert step["replayed_examples"] == round(
            0.3 / 0.7 * (step["train_examples"] - step["replayed_examples"])
        )
        assert step["replayed_examples"] > 0


def test_adapter_router_returns_each_tasks_own_predictions(tiny_model, tmp_path):
    from lepton_nlp.inference.predictor import Predictor
    from lepton_nlp.training.continual import load_task_data

    config = load_continual_config(
        _sequence(tiny_model, tmp_path, "adapters"), ["continual.route_classifier=true"]
    )
    tasks = [load_task_data(t) for t in config.tasks]
    result = run_sequence(config.run, tasks, config.continual)
    # One adapter per task: nothing a later task trains changes an earlier one.
    matrix = result["test"]["matrix"]
    assert matrix[1][0] == matrix[0][0]
    router = AdapterRouter.from_artifacts(result["artifacts"])
    assert router.tasks == ["products", "finance"]
    texts = ["the kettle boils quickly", "Operating profit fell sharply ."]
    for task in tasks:
        routed = router.predict(task.name, texts)
        own = Predictor.from_artifact(result["artifacts"][task.name]).predict(texts)
        assert [p["label"] for p in routed] == [p["label"] for p in own]
        assert {p["label"] for p in routed} <= set(task.labels)
        for r, o in zip(routed, own, strict=True):
            assert r["score"] == pytest.approx(o["score"], abs=1e-4)
    with pytest.raises(MultiAdapterError, match="Unknown adapter 'news'"):
        router.predict("news", texts)
    with pytest.raises(MultiAdapterError, match="No task classifier loaded"):
        router.route(texts)
    # Routing by a classifier over the input: each text goes to the task the classifier
    # picks, and gets exactly that task's adapter's prediction.
    routed = AdapterRouter.from_artifacts(
        result["artifacts"], classifier=result["routing"]["classifier"]
    )
    assert routed.tasks == ["products", "finance"]
    chosen = routed.route(texts)
    assert set(chosen) <= {"products", "finance"}
    for text, task, prediction in zip(texts, chosen, routed.predict_routed(texts), strict=True):
        assert prediction["task"] == task
        assert prediction["label"] == routed.predict(task, [text])[0]["label"]
    figures = result["routing"]["test"]
    assert set(figures) == {"products", "finance"}
    assert all(0.0 <= f["routing_accuracy"] <= 1.0 for f in figures.values())


def test_task_data_keeps_its_labels_samples_every_class_and_drops_repeated_texts(tmp_path):
    from lepton_nlp.config import DataConfig
    from lepton_nlp.training.continual import ContinualTask, load_task_data

    path = tmp_path / "faq.csv"
    rows = [("q", f"rare question {i}", "rare") for i in range(3)]
    rows += [("q", f"common question {i}", "common") for i in range(60)]
    rows += [("q", f"other question {i}", "other") for i in range(30)]
    rows += [("q", "common question 0", "common")] * 5  # repeats, as FAQ lists have
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label"])
        writer.writerows(rows)
    task = ContinualTask(
        name="faq",
        data=DataConfig(format="csv", train=str(path), test_size=0.2, split_seed=1),
        labels=["rare", "common"],
        max_train_samples=10,
    )
    data = load_task_data(task)
    counts = Counter(r["label"] for r in data.train)
    assert set(counts) == {"rare", "common"}  # "other" filtered out, "rare" still sampled
    assert counts["rare"] >= 2 and sum(counts.values()) <= 12
    full = load_task_data(dataclasses.replace(task, max_train_samples=None))
    seen = {r["text"] for r in full.train}
    assert full.test and not any(r["text"] in seen for r in full.test)
    assert load_task_data(task).train == data.train  # seeded
    with pytest.raises(DataError, match="labels \\['missing'\\] have no training records"):
        load_task_data(dataclasses.replace(task, labels=["rare", "missing"]))
