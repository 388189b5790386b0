"""Trainer callbacks the runs need beyond the ones transformers ships."""

from __future__ import annotations

from transformers import TrainerCallback

__all__ = ["AdaLoraBudgetCallback", "StopAfterStepCallback"]


class AdaLoraBudgetCallback(TrainerCallback):
    """Let AdaLoRA reallocate its rank budget after each optimizer step, as peft requires.

    Gradients still exist at ``on_optimizer_step`` (zeroed only afterwards), which the
    importance scores need.
    """

    def __init__(self, model):
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


class StopAfterStepCallback(TrainerCallback):
    """Stop training (after saving a checkpoint) at a given step: simulates an interruption."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
        return control
