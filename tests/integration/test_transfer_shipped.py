"""Integration: the shipped BANKING77 intent model as the source of intermediate-task transfer
(``model.init_from``), as configs/transfer_bank_faqs.yaml uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "models" / "banking77-intent"


def test_shipped_intent_model_starts_a_run_on_other_labels(tmp_path):
    from transformers import AutoModel, AutoModelForSequenceClassification

    from lepton_nlp.config import load_config
    from lepton_nlp.inference import Predictor
    from lepton_nlp.tasks import TaskSpec, get_task
    from lepton_nlp.training.transfer import INIT_FILE, prepare_init

    config = load_config(
        ROOT / "configs" / "transfer_bank_faqs.yaml",
        [f"model.init_from={SHIPPED}", f"training.output_dir={tmp_path / 'run'}"],
    )
    task = get_task("classification")
    spec = TaskSpec(labels=["cards", "loans"], max_length=64, extra={"options": {"pooling": "cls"}})
    init = prepare_init(config, task, spec, tmp_path / "start")
    assert not init.kept_head
    assert json.loads((init.path / INIT_FILE).read_text())["labels"] == 77
    started = AutoModel.from_pretrained(init.path).state_dict()
    shipped = Predictor.from_artifact(SHIPPED, backend="torch", packing=False).model
    merged = shipped.bert.state_dict()  # the adapter folded into the weights
    for name in ("encoder.layer.0.attention.self.query.weight", "pooler.dense.weight"):
        assert torch.allclose(started[name], merged[name], atol=1e-6), name
    # The new run's model: the shipped encoder under a new two-label head.
    model = AutoModelForSequenceClassification.from_pretrained(init.path, num_labels=2)
    assert model.classifier.out_features == 2
