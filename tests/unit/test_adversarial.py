"""FGM adversarial training: the perturbation goes where the loss rises, every step trains on
it, with frozen (PEFT) and trained embeddings alike, and the trained model comes out plain."""

from __future__ import annotations

import pytest
import torch
from conftest import classification_overrides

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.inference import Predictor
from lepton_nlp.training import train
from lepton_nlp.training.adversarial import EmbeddingPerturbation


class _Tiny(torch.nn.Module):
    def __init__(self, frozen: bool):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, 4)
        self.embed.weight.requires_grad_(not frozen)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, ids, labels):
        logits = self.head(self.embed(ids).mean(dim=1))
        return torch.nn.functional.cross_entropy(logits, labels)


@pytest.mark.parametrize("frozen", [True, False])
def test_perturbation_has_size_epsilon_per_example_and_raises_the_loss(frozen):
    model = _Tiny(frozen)
    hook = EmbeddingPerturbation(model.embed)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    labels = torch.tensor([0, 1])

    hook.record()
    clean = model(ids, labels)
    clean.backward()
    assert hook.perturb(0.5)
    assert torch.allclose(hook.delta.flatten(1).norm(dim=1), torch.tensor([0.5, 0.5]))
    adversarial = model(ids, labels)
    assert adversarial > clean  # pushed along the gradient: the loss goes up

    # One perturbed pass only: the next is clean again.
    assert torch.equal(model(ids, labels), clean.detach())
    hook.remove()
    assert not model.embed._forward_hooks


def test_a_shared_encoder_decoder_embedding_is_perturbed_for_the_encoder_only():
    embed = torch.nn.Embedding(10, 4)
    embed.weight.requires_grad_(False)
    head = torch.nn.Linear(4, 1)
    source, target = torch.tensor([[1, 2, 3]]), torch.tensor([[4, 5]])  # different lengths

    def loss():  # like T5: one embedding layer for the encoder's and the decoder's inputs
        return head(embed(source)).sum() + head(embed(target)).sum()

    hook = EmbeddingPerturbation(embed)
    hook.record()
    loss().backward()
    assert hook.recorded.shape == (1, 3, 4)  # the encoder's call
    assert hook.perturb(1.0)
    perturbed = loss()  # no shape error from the decoder's call
    assert hook.delta is None
    expected = head(embed(source) + hook_delta(head, 1.0, 3)).sum() + head(embed(target)).sum()
    assert torch.allclose(perturbed, expected)


def hook_delta(head: torch.nn.Linear, epsilon: float, length: int) -> torch.Tensor:
    """FGM's push for a loss that sums ``head`` over positions: the gradient is ``head.weight``
    at every position."""
    grad = head.weight.detach().expand(1, length, -1)
    return epsilon * grad / grad.norm()


def test_perturbation_refuses_a_different_batch():
    model = _Tiny(frozen=True)
    hook = EmbeddingPerturbation(model.embed)
    hook.record()
    model(torch.tensor([[1, 2, 3]]), torch.tensor([0])).backward()
    hook.perturb(1.0)
    with pytest.raises(RuntimeError, match="clean pass's batch"):
        model(torch.tensor([[1, 2]]), torch.tensor([0]))


def test_without_a_recorded_gradient_there_is_no_adversarial_pass():
    model = _Tiny(frozen=True)
    hook = EmbeddingPerturbation(model.embed)
    hook.record()
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]), torch.tensor([0]))
    assert not hook.perturb(1.0)
    assert hook.delta is None


@pytest.mark.parametrize("method", ["lora", "full"])
def test_fgm_trains_every_step_on_the_perturbed_batch(base_overrides, monkeypatch, method):
    perturbed = []  # one entry per forward pass that ran on perturbed embeddings
    original = EmbeddingPerturbation._hook

    def counting(self, module, args, output):
        if self.delta is not None:
            perturbed.append(True)
        return original(self, module, args, output)

    monkeypatch.setattr(EmbeddingPerturbation, "_hook", counting)
    overrides = [*classification_overrides(), *base_overrides, f"peft.method={method}"]
    plain = train(load_config(None, overrides))
    assert not perturbed  # off by default

    overrides = [
        *overrides,
        "training.overwrite=true",
        "training.adversarial=fgm",
        "training.adversarial_epsilon=2.0",
    ]
    result = train(load_config(None, overrides))
    steps = result.metrics["train"]["steps"]
    assert steps > 0 and perturbed == [True] * steps
    # Same seed and data, a different training signal.
    assert result.metrics["train"]["train_loss"] != plain.metrics["train"]["train_loss"]

    # The trained model carries no hook: the artifact predicts what the run's model predicts.
    embeddings = result.predictor.model.get_input_embeddings()
    assert not embeddings._forward_hooks
    texts = ["the market rallied", "profits fell sharply", "nothing changed"]
    loaded = Predictor.from_artifact(result.artifact)
    assert [p["label"] for p in loaded.predict(texts)] == [
        p["label"] for p in result.predictor.predict(texts)
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.adversarial=fmg", "Did you mean .fgm.. Choose one of none, fgm, pgd, freelb"),
        ("training.adversarial_epsilon=0", "must be positive"),
    ],
)
def test_bad_adversarial_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [*classification_overrides(), override])
