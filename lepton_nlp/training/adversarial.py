"""Adversarial training on input embeddings: FGM, PGD and FreeLB, as a Trainer hook.

Every method trains on the batch's input embeddings pushed in the direction that raises the
loss, so that the model learns to give the same answer under a small worst-case change of
its input:

- **FGM**, the fast gradient method (Miyato et al., 2017): one push of size ``epsilon``
  along the clean pass's gradient; the clean and the pushed pass both train. Two forward
  and backward passes per step.
- **PGD**, projected gradient descent (Madry et al., 2018; the clean + adversarial form
  used for language models): ``steps`` pushes of ``alpha`` each, from the clean embeddings,
  every one projected back into the ball of radius ``epsilon``; the clean pass and the pass
  at the last (strongest) point train. ``steps + 1`` passes per step; the intermediate ones
  ask for the gradient of the input only (:func:`torch.autograd.grad`), leaving the
  parameters' gradients alone.
- **FreeLB** (Zhu et al., 2020): ``steps`` ascent steps of ``alpha`` from a random start of
  size ``init`` (0: the clean embeddings), each projected into the ``epsilon`` ball, and the
  parameters' gradients of *every* step accumulate, each with weight ``1/steps``: the model
  trains on the average loss over the whole ascent path. ``steps`` passes per step.

``norm`` is ``l2`` (the size of each example's whole perturbation, all positions and
dimensions together; a step goes along the gradient divided by its norm) or ``linf`` (each
coordinate within ``[-epsilon, epsilon]``; a step goes along the gradient's sign).

The perturbation is added to the *output* of the input-embedding layer by a forward hook,
so it works whether those embeddings are trained (full fine-tuning) or frozen (PEFT
methods), for every encoder task (classification, NER, relation extraction, QA) and model
family. The embedding weights are never written: each step ends with the hook holding no
perturbation, so the next forward pass (the next step, evaluation, prediction) sees the
embeddings exactly as they are. ``training.adversarial`` picks the method;
``training.adversarial_epsilon``, ``_alpha``, ``_steps``, ``_norm`` and ``_init`` set it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lepton_nlp.config import ADVERSARIAL_METHODS, ADVERSARIAL_NORMS

__all__ = [
    "ADVERSARIAL_METHODS",
    "ADVERSARIAL_NORMS",
    "AdversarialSettings",
    "EmbeddingPerturbation",
    "adversarial_trainer",
    "direction",
    "project",
    "random_start",
]


@dataclass(frozen=True)
class AdversarialSettings:
    """One adversarial method and its sizes (the ``training.adversarial*`` keys)."""

    method: str = "fgm"
    epsilon: float = 0.3
    steps: int = 3
    alpha: float | None = None
    """Step size of PGD and FreeLB; None: ``epsilon / steps``."""
    norm: str = "l2"
    init: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ADVERSARIAL_METHODS:
            raise ValueError(
                f"Unknown adversarial method {self.method!r}; choose one of "
                f"{', '.join(ADVERSARIAL_METHODS)}."
            )
        if self.norm not in ADVERSARIAL_NORMS:
            raise ValueError(
                f"Unknown norm {self.norm!r}; choose one of {', '.join(ADVERSARIAL_NORMS)}."
            )
        if self.epsilon <= 0 or self.steps < 1 or (self.alpha is not None and self.alpha <= 0):
            raise ValueError(
                f"epsilon ({self.epsilon}) and alpha ({self.alpha}) must be positive and steps "
                f"({self.steps}) at least 1."
            )

    @property
    def step_size(self) -> float:
        return self.alpha if self.alpha is not None else self.epsilon / self.steps

    @classmethod
    def from_training(cls, training: Any) -> AdversarialSettings:
        """The settings of a :class:`~lepton_nlp.config.TrainingConfig`."""
        return cls(
            method=training.adversarial,
            epsilon=training.adversarial_epsilon,
            steps=training.adversarial_steps,
            alpha=training.adversarial_alpha,
            norm=training.adversarial_norm,
            init=training.adversarial_init,
        )


def _example_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit step that raises the loss most: ``grad / ||grad||`` per example (l2), or
    ``sign(grad)`` (linf). An example whose gradient is zero (all padding) does not move."""
    if norm == "linf":
        return grad.sign()
    size = _example_norm(grad)
    return torch.where(size > 0, grad / size.clamp_min(1e-12), 0.0)


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """``delta`` brought back into the ball of radius ``epsilon`` (per example for l2)."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    size = _example_norm(delta)
    return delta * torch.where(size > epsilon, epsilon / size.clamp_min(1e-12), 1.0)


def random_start(
    shape: tuple[int, ...], magnitude: float, norm: str, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """FreeLB's random start: uniform noise on the real (unmasked) positions, scaled to l2
    size ``magnitude`` per example, or within ``[-magnitude, magnitude]`` (linf). Drawn from
    torch's global generator, which the Trainer seeds."""
    noise = torch.rand(shape) * 2 - 1
    if mask is not None:
        noise = noise * mask.to(noise.device)
    if norm == "linf":
        return noise * magnitude
    return direction(noise, "l2") * magnitude


class EmbeddingPerturbation:
    """A forward hook on the input embeddings: adds a perturbation to their output, and/or
    records that output so that its gradient can be read after the backward pass.

    ``record()`` asks the next forward pass to keep its embedding output (with the
    perturbation, if any) and that output's gradient (:meth:`gradient`); ``add(delta)`` asks
    it to add ``delta``; ``perturb(epsilon)`` turns the recorded gradient into FGM's push
    and adds it. Each acts on the next call of the layer only: an encoder-decoder that
    shares one embedding layer (T5, BART) calls it for the encoder first and then for the
    decoder, whose inputs stay as they are. ``clear()`` ends both, ``remove()`` detaches the
    hook. The layer's weights are never touched.
    """

    def __init__(self, module: torch.nn.Module):
        self.recorded: torch.Tensor | None = None
        self.delta: torch.Tensor | None = None
        self._recording = False
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        if self.delta is not None:
            delta, self.delta = self.delta, None
            if delta.shape != output.shape:
                raise RuntimeError(
                    f"Adversarial perturbation of shape {tuple(delta.shape)} does not fit "
                    f"embeddings of shape {tuple(output.shape)}: the adversarial pass must see "
                    "the clean pass's batch."
                )
            output = output + delta.to(output.dtype)
        if self._recording:
            self._recording = False
            if not output.requires_grad:
                # Frozen embeddings (PEFT): the output is a leaf, and its gradient is wanted.
                output.requires_grad_()
            output.retain_grad()
            self.recorded = output
        return output

    def record(self) -> None:
        """Keep the next forward pass's embedding output and, after backward, its gradient."""
        self.recorded = None
        self._recording = True

    def add(self, delta: torch.Tensor) -> None:
        """Add ``delta`` to the next forward pass's embedding output."""
        self.delta = delta.detach()

    def gradient(self) -> torch.Tensor | None:
        """The loss's gradient at the recorded embedding output (None without one)."""
        self._recording = False
        grad = None if self.recorded is None else self.recorded.grad
        self.recorded = None
        return None if grad is None else grad.detach()

    def perturb(self, epsilon: float, norm: str = "l2") -> bool:
        """FGM: add ``epsilon`` times the recorded gradient's direction to the next pass;
        False when there is no recorded gradient."""
        grad = self.gradient()
        if grad is None:
            return False
        self.add(epsilon * direction(grad, norm))
        return True

    def clear(self) -> None:
        self._recording = False
        self.recorded = None
        self.delta = None

    def remove(self) -> None:
        self.clear()
        self._handle.remove()


def _position_mask(inputs: dict, like: torch.Tensor) -> torch.Tensor:
    """1 at real tokens and 0 at padding, shaped to broadcast over ``like`` (batch, length,
    hidden); all ones when the batch has no attention mask of that shape."""
    mask = inputs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and tuple(mask.shape) == tuple(like.shape[:2]):
        return mask.to(device=like.device, dtype=like.dtype).unsqueeze(-1)
    return torch.ones((*like.shape[:2], 1), device=like.device, dtype=like.dtype)


def adversarial_trainer(
    base: type,
    method: str | AdversarialSettings,
    epsilon: float | None = None,
    **sizes: Any,
) -> type:
    """A subclass of the Trainer class ``base`` whose training steps train adversarially.

    Args:
        base: a ``transformers.Trainer`` class (or subclass).
        method: ``training.adversarial`` (``none`` returns ``base`` itself), or the whole
            :class:`AdversarialSettings`.
        epsilon: ``training.adversarial_epsilon`` (with a method name).
        **sizes: ``steps``, ``alpha``, ``norm``, ``init`` (with a method name).
    """
    if isinstance(method, AdversarialSettings):
        settings = method
    else:
        if method not in ADVERSARIAL_METHODS:
            raise ValueError(
                f"Unknown adversarial method {method!r}; choose one of "
                f"{', '.join(ADVERSARIAL_METHODS)}."
            )
        if method == "none":
            return base
        settings = AdversarialSettings(
            method=method, epsilon=0.3 if epsilon is None else epsilon, **sizes
        )
    if settings.method == "none":
        return base

    class AdversarialTrainer(base):
        adversarial = settings
        _perturbation: EmbeddingPerturbation | None = None
        _loss_scale: float = 1.0

        def compute_loss(
            self, model, inputs, return_outputs=False, num_items_in_batch=None, **kwargs
        ):
            result = super().compute_loss(
                model,
                inputs,
                return_outputs=return_outputs,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
            if self._loss_scale == 1.0:
                return result
            if return_outputs:
                return result[0] * self._loss_scale, result[1]
            return result * self._loss_scale

        def training_step(self, model, inputs, num_items_in_batch=None):
            if self._perturbation is None:
                embeddings = self.accelerator.unwrap_model(model).get_input_embeddings()
                self._perturbation = EmbeddingPerturbation(embeddings)
            step = {"fgm": self._fgm_step, "pgd": self._pgd_step, "freelb": self._freelb_step}
            try:
                return step[settings.method](model, inputs, num_items_in_batch)
            finally:
                # Whatever happened, the next forward pass sees the embeddings as they are.
                self._perturbation.clear()
                self._loss_scale = 1.0

        def _plain_step(self, model, inputs, num_items_in_batch):
            return super().training_step(model, inputs, num_items_in_batch)

        def _fgm_step(self, model, inputs, num_items_in_batch):
            hook = self._perturbation
            hook.record()
            loss = self._plain_step(model, inputs, num_items_in_batch)
            if hook.perturb(settings.epsilon, settings.norm):
                self._plain_step(model, inputs, num_items_in_batch)
            # The clean loss is what the logs report, comparable with a plain run.
            return loss

        def _input_gradient(self, model, inputs, num_items_in_batch):
            """The loss's gradient at the (perturbed) embeddings only: no parameter gradient
            is computed or accumulated, and no gradient is synchronised across processes."""
            hook = self._perturbation
            hook.record()
            prepared = self._prepare_inputs(inputs)
            with self.accelerator.no_sync(model), self.compute_loss_context_manager():
                loss = self.compute_loss(model, prepared, num_items_in_batch=num_items_in_batch)
                recorded, hook.recorded = hook.recorded, None
                if recorded is None or not loss.requires_grad:
                    return None
                (grad,) = torch.autograd.grad(loss, recorded)
            return grad.detach()

        def _pgd_step(self, model, inputs, num_items_in_batch):
            hook = self._perturbation
            hook.record()
            loss = self._plain_step(model, inputs, num_items_in_batch)
            grad = hook.gradient()
            if grad is None:
                return loss
            mask = _position_mask(inputs, grad)
            delta = torch.zeros_like(grad)
            for step in range(settings.steps):
                delta = project(
                    delta + settings.step_size * direction(grad, settings.norm) * mask,
                    settings.epsilon,
                    settings.norm,
                )
                if step == settings.steps - 1:
                    break
                hook.add(delta)
                grad = self._input_gradient(model, inputs, num_items_in_batch)
                if grad is None:
                    break
            hook.add(delta)
            self._plain_step(model, inputs, num_items_in_batch)
            return loss

        def _freelb_step(self, model, inputs, num_items_in_batch):
            hook = self._perturbation
            self._loss_scale = 1.0 / settings.steps
            delta = None
            if settings.init > 0:
                ids = inputs.get("input_ids")
                if isinstance(ids, torch.Tensor):
                    embeddings = self.accelerator.unwrap_model(model).get_input_embeddings()
                    shape = (*ids.shape, embeddings.weight.shape[-1])
                    mask = _position_mask(inputs, torch.empty(shape))
                    delta = project(
                        random_start(shape, settings.init, settings.norm, mask),
                        settings.epsilon,
                        settings.norm,
                    ).to(self.args.device)
            total = None
            for step in range(settings.steps):
                if delta is not None:
                    hook.add(delta)
                last = step == settings.steps - 1
                if not last:
                    hook.record()
                loss = self._plain_step(model, inputs, num_items_in_batch)
                total = loss if total is None else total + loss
                if last:
                    break
                grad = hook.gradient()
                if grad is None:
                    break
                base_delta = torch.zeros_like(grad) if delta is None else delta
                delta = project(
                    base_delta
                    + settings.step_size
                    * direction(grad, settings.norm)
                    * _position_mask(inputs, grad),
                    settings.epsilon,
                    settings.norm,
                )
            # Each pass's loss carried weight 1/steps: the sum is the mean adversarial loss.
            return total

        def train(self, *args, **kwargs):
            try:
                return super().train(*args, **kwargs)
            finally:
                # The trained model leaves without the hook: prediction is plain.
                if self._perturbation is not None:
                    self._perturbation.remove()
                    self._perturbation = None

    label = {"fgm": "FGM", "pgd": "PGD", "freelb": "FreeLB"}[settings.method]
    AdversarialTrainer.__name__ = f"{label}{base.__name__}"
    return AdversarialTrainer
