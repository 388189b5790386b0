"""PGD and FreeLB: the gradients they leave are the ones their definitions ask for, their
perturbations stay within epsilon, the embeddings come out bit for bit as they went in, and
the hook trains every encoder task; the config refuses nonsense."""

from __future__ import annotations

import pytest
import torch
from conftest import classification_overrides, ner_overrides

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.tasks import get_task
from lepton_nlp.training import train
from lepton_nlp.training.adversarial import EmbeddingPerturbation, direction, project
from lepton_nlp.training.trainer import build_model, build_trainer, encode_splits, load_data


def _setup(base_overrides, *extra: str):
    """A trainer over the tiny model without dropout (so passes can be recomputed exactly),
    one training batch, and the model."""
    config = load_config(
        None,
        [
            *classification_overrides(),
            *base_overrides,
            "training.learning_rate=1e-3",
            *extra,
        ],
    )
    task = get_task(config.task)
    splits, spec = load_data(config, task)
    model, tokenizer, _ = build_model(config, task, spec, splits)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    trainer = build_trainer(
        config, task, spec, model, tokenizer, encode_splits(task, tokenizer, spec, splits)
    )
    trainer.current_gradient_accumulation_steps = 1  # set by train(); a step outside needs it
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, model, batch


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _grads_at(trainer, model, batch, delta: torch.Tensor | None, weight: float = 1.0):
    """Parameter gradients of ``weight`` x the loss with ``delta`` added to the embeddings."""
    model.zero_grad()
    hook = EmbeddingPerturbation(model.get_input_embeddings())
    try:
        if delta is not None:
            hook.add(delta)
        loss = trainer.compute_loss(model, trainer._prepare_inputs(batch))
        (loss * weight).backward()
    finally:
        hook.remove()
    grads = _grads(model)
    model.zero_grad()
    return grads


def _sum(*grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: sum(g[name] for g in grads) for name in grads[0]}


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-6) for n in a)


def _capture_deltas(monkeypatch) -> list[torch.Tensor]:
    deltas: list[torch.Tensor] = []
    original = EmbeddingPerturbation.add

    def add(self, delta):
        deltas.append(delta.detach().clone())
        return original(self, delta)

    monkeypatch.setattr(EmbeddingPerturbation, "add", add)
    return deltas


def _sizes(deltas: list[torch.Tensor], norm: str) -> list[torch.Tensor]:
    if norm == "linf":
        return [d.abs().amax() for d in deltas]
    return [d.flatten(1).norm(dim=1) for d in deltas]


@pytest.mark.parametrize(("norm", "method"), [("l2", "full"), ("linf", "full"), ("l2", "lora")])
def test_pgd_trains_on_clean_plus_the_last_projected_point(
    base_overrides, monkeypatch, norm, method
):
    epsilon, steps = 0.5, 3
    trainer, model, batch = _setup(
        base_overrides,
        f"peft.method={method}",
        "training.adversarial=pgd",
        f"training.adversarial_epsilon={epsilon}",
        f"training.adversarial_steps={steps}",
        # Steps as long as epsilon: every step leaves the ball, so the projection must act.
        f"training.adversarial_alpha={epsilon}",
        f"training.adversarial_norm={norm}",
    )
    embeddings = model.get_input_embeddings()
    before = embeddings.weight.detach().clone()
    clean = _grads_at(trainer, model, batch, None)
    deltas = _capture_deltas(monkeypatch)

    model.zero_grad()
    trainer.training_step(model, batch)
    trained = _grads(model)

    assert len(deltas) == steps  # steps - 1 intermediate passes, then the trained one
    for size in _sizes(deltas, norm):
        assert torch.all(size <= epsilon * (1 + 1e-5))
    # The projection kept the push on the ball's surface, not inside it by chance.
    assert torch.allclose(_sizes(deltas[-1:], norm)[0], torch.tensor(epsilon))
    assert not torch.equal(deltas[0], deltas[-1])  # later steps followed new gradients
    # Gradients: the clean pass plus the pass at the last point, nothing from the others.
    assert _close(trained, _sum(clean, _grads_at(trainer, model, batch, deltas[-1])))
    assert not _close(trained, _sum(clean, clean))  # not plain training twice
    # The embedding weights are exactly as before, and the hook holds nothing for later.
    assert torch.equal(embeddings.weight, before)
    hook = trainer._perturbation
    assert hook.delta is None and hook.recorded is None and not hook._recording


@pytest.mark.parametrize(("init", "norm"), [(0.0, "l2"), (0.2, "l2"), (0.1, "linf")])
def test_freelb_accumulates_the_gradients_of_every_ascent_step(
    base_overrides, monkeypatch, init, norm
):
    epsilon, steps = 0.4, 3
    trainer, model, batch = _setup(
        base_overrides,
        "peft.method=full",
        "training.adversarial=freelb",
        f"training.adversarial_epsilon={epsilon}",
        f"training.adversarial_steps={steps}",
        "training.adversarial_alpha=0.3",
        f"training.adversarial_init={init}",
        f"training.adversarial_norm={norm}",
    )
    embeddings = model.get_input_embeddings()
    before = embeddings.weight.detach().clone()
    deltas = _capture_deltas(monkeypatch)

    model.zero_grad()
    loss = trainer.training_step(model, batch)
    trained = _grads(model)

    points = ([] if init else [None]) + deltas  # a zero start is the clean pass
    assert len(points) == steps
    if init:
        start = _sizes(deltas[:1], norm)[0]
        if norm == "l2":  # each example's random start has size init exactly
            assert torch.allclose(start, torch.full_like(start, init), atol=1e-6)
        else:  # uniform within [-init, init]
            assert init * 0.9 < start <= init
    for size in _sizes(deltas, norm):
        assert torch.all(size <= epsilon * (1 + 1e-5))
    # Every step's parameter gradient counts, each with weight 1/steps.
    expected = _sum(*(_grads_at(trainer, model, batch, d, 1 / steps) for d in points))
    assert _close(trained, expected)
    last_only = _grads_at(trainer, model, batch, points[-1])
    assert not _close(trained, last_only)
    # The reported loss is the mean over the steps.
    losses = []
    for d in points:
        hook = EmbeddingPerturbation(embeddings)
        if d is not None:
            hook.add(d)
        with torch.no_grad():
            losses.append(trainer.compute_loss(model, trainer._prepare_inputs(batch)))
        hook.remove()
    assert torch.allclose(loss, torch.stack(losses).mean(), rtol=1e-4)
    assert torch.equal(embeddings.weight, before)


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb"])
def test_every_method_changes_the_gradients_of_plain_training(base_overrides, method):
    trainer, model, batch = _setup(
        base_overrides, "peft.method=lora", f"training.adversarial={method}"
    )
    plain = _grads_at(trainer, model, batch, None)  # what a plain training step leaves
    model.zero_grad()
    trainer.training_step(model, batch)
    assert not _close(_grads(model), plain)


def test_projection_and_direction_per_norm():
    delta = torch.tensor([[[3.0, 4.0]], [[0.3, 0.4]]])  # l2 sizes 5 and 0.5
    projected = project(delta, 1.0, "l2")
    assert torch.allclose(projected.flatten(1).norm(dim=1), torch.tensor([1.0, 0.5]))
    assert torch.equal(project(delta, 1.0, "linf"), delta.clamp(-1, 1))
    grad = torch.tensor([[[0.0, -2.0]], [[0.0, 0.0]]])
    assert torch.equal(direction(grad, "l2"), torch.tensor([[[0.0, -1.0]], [[0.0, 0.0]]]))
    assert torch.equal(direction(grad, "linf"), grad.sign())


@pytest.mark.parametrize(
    ("task_overrides", "method"),
    [(classification_overrides, "pgd"), (ner_overrides, "freelb"), (ner_overrides, "pgd")],
)
def test_the_hook_trains_encoder_tasks_and_leaves_no_trace(
    base_overrides, monkeypatch, task_overrides, method
):
    perturbed = []
    original = EmbeddingPerturbation._hook

    def counting(self, module, args, output):
        if self.delta is not None:
            perturbed.append(True)
        return original(self, module, args, output)

    monkeypatch.setattr(EmbeddingPerturbation, "_hook", counting)
    overrides = [
        *task_overrides(),
        *base_overrides,
        "training.epochs=1",
        f"training.adversarial={method}",
        "training.adversarial_steps=2",
    ]
    result = train(load_config(None, overrides))
    steps = result.metrics["train"]["steps"]
    # PGD: one intermediate and one trained pass per step; FreeLB from zero: one pushed pass.
    assert steps > 0 and len(perturbed) == steps * (2 if method == "pgd" else 1)
    assert not result.predictor.model.get_input_embeddings()._forward_hooks


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.adversarial=pdg", "Did you mean 'pgd'"),
        ("training.adversarial=freeLB", "Did you mean 'freelb'"),
        ("training.adversarial_steps=0", "adversarial_steps=0 must be at least 1"),
        ("training.adversarial_epsilon=-0.1", "adversarial_epsilon=-0.1 must be positive"),
        ("training.adversarial_alpha=0", "adversarial_alpha=0.0 must be positive"),
        ("training.adversarial_norm=l3", "Did you mean 'l2'"),
        ("training.adversarial_init=0.5", r"adversarial_init=0.5 must be in \[0, "),
        ("training.adversarial_init=-1", "adversarial_init=-1.0 must be in"),
        ("training.adversarial_step=3", "Did you mean training.adversarial_steps"),
        ("training.adversarial_steps=two", "must be int"),
    ],
)
def test_bad_adversarial_settings_are_refused_with_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [*classification_overrides(), override])


def test_good_settings_load():
    config = load_config(
        None,
        [
            *classification_overrides(),
            "training.adversarial=freelb",
            "training.adversarial_epsilon=1",
            "training.adversarial_steps=2",
            "training.adversarial_alpha=0.5",
            "training.adversarial_norm=linf",
            "training.adversarial_init=0.25",
        ],
    )
    t = config.training
    assert (t.adversarial, t.adversarial_epsilon, t.adversarial_steps) == ("freelb", 1.0, 2)
    assert (t.adversarial_alpha, t.adversarial_norm, t.adversarial_init) == (0.5, "linf", 0.25)
