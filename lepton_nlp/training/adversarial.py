"""Adversarial training: FGM, the fast gradient method on input embeddings (Miyato et al., 2017).

Each training step runs twice on the same batch: once as usual, recording the gradient of
the loss with respect to the input embeddings; then with those embeddings pushed by
``epsilon`` along that gradient (normalised per example, L2), the direction that raises
the loss most. Both backward passes add into the gradients the optimizer applies, so the
model learns to give the same answer under a small worst-case change of its input: a
regulariser that costs one more forward and backward pass per step.

The perturbation is added to the *output* of the input-embedding layer by a forward hook,
so it works whether those embeddings are trained (full fine-tuning) or frozen (PEFT
methods), for every task and model family. ``training.adversarial=fgm`` turns it on;
``training.adversarial_epsilon`` sets the size.
"""

from __future__ import annotations

from typing import Any

import torch

from lepton_nlp.config import ADVERSARIAL_METHODS

__all__ = ["ADVERSARIAL_METHODS", "EmbeddingPerturbation", "adversarial_trainer"]


class EmbeddingPerturbation:
    """A forward hook on the input embeddings: records their output, or perturbs it.

    ``record()`` before the clean pass keeps the embedding output and its gradient;
    ``perturb(epsilon)`` then turns that gradient into the FGM perturbation, which the next
    forward pass adds. Each acts on the first call of the layer only: an encoder-decoder
    that shares one embedding layer (T5, BART) calls it for the encoder first and then for
    the decoder, whose inputs stay as they are. ``clear()`` ends both, ``remove()`` detaches
    the hook.
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
                    f"FGM perturbation of shape {tuple(delta.shape)} does not fit "
                    f"embeddings of shape {tuple(output.shape)}: the adversarial pass must see "
                    "the clean pass's batch."
                )
            return output + delta
        if self._recording:
            self._recording = False
            if not output.requires_grad:
                # Frozen embeddings (PEFT): the output is a leaf, and its gradient is wanted.
                output.requires_grad_()
            output.retain_grad()
            self.recorded = output
        return output

    def record(self) -> None:
        self.clear()
        self._recording = True

    def perturb(self, epsilon: float) -> bool:
        """Set the perturbation from the recorded gradient; False when there is none."""
        self._recording = False
        grad = None if self.recorded is None else self.recorded.grad
        self.recorded = None
        if grad is None:
            return False
        grad = grad.detach()
        dims = tuple(range(1, grad.dim()))
        norm = grad.pow(2).sum(dim=dims, keepdim=True).sqrt()
        # An example whose loss does not depend on its embeddings (all padding) stays as is.
        self.delta = torch.where(norm > 0, epsilon * grad / norm.clamp_min(1e-12), 0.0)
        return True

    def clear(self) -> None:
        self._recording = False
        self.recorded = None
        self.delta = None

    def remove(self) -> None:
        self.clear()
        self._handle.remove()


def adversarial_trainer(base: type, method: str, epsilon: float) -> type:
    """A subclass of the Trainer class ``base`` whose training steps add FGM's adversarial pass.

    Args:
        base: a ``transformers.Trainer`` class (or subclass).
        method: ``training.adversarial``; ``none`` returns ``base`` itself.
        epsilon: ``training.adversarial_epsilon``.
    """
    if method not in ADVERSARIAL_METHODS:
        raise ValueError(
            f"Unknown adversarial method {method!r}; choose one of {', '.join(ADVERSARIAL_METHODS)}."
        )
    if method == "none":
        return base

    class FGMTrainer(base):
        _perturbation: EmbeddingPerturbation | None = None

        def training_step(self, model, inputs, num_items_in_batch=None):
            if self._perturbation is None:
                embeddings = self.accelerator.unwrap_model(model).get_input_embeddings()
                self._perturbation = EmbeddingPerturbation(embeddings)
            hook = self._perturbation
            hook.record()
            try:
                loss = super().training_step(model, inputs, num_items_in_batch)
                if hook.perturb(epsilon):
                    super().training_step(model, inputs, num_items_in_batch)
            finally:
                hook.clear()
            # The clean loss is what the logs report, comparable with a run without FGM.
            return loss

        def train(self, *args, **kwargs):
            try:
                return super().train(*args, **kwargs)
            finally:
                # The trained model leaves without the hook: prediction is plain.
                if self._perturbation is not None:
                    self._perturbation.remove()
                    self._perturbation = None

    FGMTrainer.__name__ = f"FGM{base.__name__}"
    return FGMTrainer
