"""Classification pooling: ``task_options.pooling=mean`` reads the masked mean of the tokens."""

from __future__ import annotations

import pytest
import torch
from conftest import classification_overrides

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.inference import Predictor
from lepton_nlp.tasks import get_task
from lepton_nlp.tasks.base import TaskSpec
from lepton_nlp.tasks.classification import _mean_pooled
from lepton_nlp.training import train

TEXTS = ["great product, works well", "ok", "terrible, broke after a day and nobody answered"]


def _model(tiny_model: str, pooling: str | None):
    options = {} if pooling is None else {"pooling": pooling}
    spec = TaskSpec(labels=["negative", "positive"], extra={"options": options})
    torch.manual_seed(0)
    return get_task("classification").load_model(tiny_model, spec).eval()


def _batch(tiny_model: str, texts: list[str]):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)(texts, padding=True, return_tensors="pt")


@torch.inference_mode()
def test_mean_pooling_is_the_masked_mean_of_the_tokens(tiny_model):
    model = _model(tiny_model, "mean")
    batch = _batch(tiny_model, TEXTS)
    hidden = model.bert(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = model.classifier((hidden * mask).sum(1) / mask.sum(1))
    assert torch.allclose(model(**batch).logits, expected, atol=1e-5)
    # Padding does not change a text's logits: alone or next to longer texts, the same.
    alone = model(**_batch(tiny_model, ["ok"])).logits[0]
    assert torch.allclose(alone, model(**batch).logits[1], atol=1e-5)


@torch.inference_mode()
def test_cls_pooling_is_the_default_and_leaves_the_model_as_transformers_builds_it(tiny_model):
    batch = _batch(tiny_model, TEXTS)
    default, cls, mean = (_model(tiny_model, p) for p in (None, "cls", "mean"))
    assert not default.bert._forward_hooks and not cls.bert._forward_hooks
    expected = default.classifier(default.bert(**batch).pooler_output)
    assert torch.allclose(default(**batch).logits, expected, atol=1e-5)
    assert torch.allclose(cls(**batch).logits, expected, atol=1e-5)
    # Same weights, another pooling: other logits.
    assert not torch.allclose(mean(**batch).logits, expected, atol=1e-3)


def test_bad_pooling_settings_are_refused(tiny_model, base_overrides):
    with pytest.raises(ConfigError, match="task_options.pooling='max' is not a pooling"):
        load_config(
            None, [*classification_overrides(), *base_overrides, "task_options.pooling=max"]
        )
    with pytest.raises(ConfigError, match="Did you mean task_options.pooling"):
        load_config(None, [*classification_overrides(), *base_overrides, "task_options.pool=mean"])
    spec = TaskSpec(labels=["a", "b"], extra={"options": {"pooling": "mean"}})
    with pytest.raises(ConfigError, match="has no pooler"):
        get_task("classification").configure_encoder(torch.nn.Linear(2, 2), spec)


@pytest.mark.parametrize("method", ["full", "lora", "prompt"])
def test_mean_pooling_trains_saves_and_reloads(tiny_model, base_overrides, method):
    config = load_config(
        None,
        [
            *classification_overrides(),
            *base_overrides,
            f"peft.method={method}",
            "task_options.pooling=mean",
            "training.learning_rate=5e-3",
        ],
    )
    result = train(config)
    predictor = Predictor.from_artifact(result.artifact, backend="torch")
    assert predictor.spec.options == {"pooling": "mean"}
    model = predictor.model
    hooks = [hook for m in model.modules() for hook in m._forward_hooks.values()]
    assert _mean_pooled in hooks, "the reloaded model lost its pooling"
    # The reloaded model predicts what the trained one in memory did.
    before, after = result.predictor.predict(TEXTS), predictor.predict(TEXTS)
    for b, a in zip(before, after, strict=True):
        assert b["label"] == a["label"]
        for label, score in b["scores"].items():
            assert abs(score - a["scores"][label]) < 1e-4
