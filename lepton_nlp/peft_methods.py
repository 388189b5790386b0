"""PEFT method name -> peft config; peft does the work, this only maps one config key to it.

(Named ``peft_methods`` rather than ``peft`` so that it never shadows the ``peft`` package.)
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lepton_nlp.errors import ConfigError

__all__ = [
    "METHODS",
    "PeftMethod",
    "apply_peft",
    "check_method",
    "count_parameters",
    "default_learning_rate",
]


@dataclass(frozen=True)
class PeftMethod:
    """One fine-tuning method: how to build its peft config and how it trains best."""

    build: Callable[[Any, str, int], Any] | None
    """(PeftConfig section, peft task type, total optimizer steps) -> peft config; None = full fine-tuning."""
    learning_rate: float
    """Default peak learning rate when training.learning_rate is not set."""
    mergeable: bool
    """Whether ``export --merge`` can fold the adapter into the base weights."""
    summary: str


#: Names of task heads across transformers models; they train in full, never adapted.
HEAD_MODULES = ("classifier", "score", "qa_outputs", "lm_head")


def _targets(cfg, default: Any = "all-linear") -> Any:
    return cfg.target_modules if cfg.target_modules is not None else default


def _lora(cfg, task_type, steps):
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type,
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=_targets(cfg),
        **cfg.options,
    )


def _adalora(cfg, task_type, steps):
    from peft import AdaLoraConfig

    # Rank budget is reallocated between 10% and 70% of training; AdaLoRA needs the total.
    options = {
        "tinit": max(1, steps // 10),
        "tfinal": max(1, (3 * steps) // 10),
        "deltaT": max(1, steps // 50),
    }
    options.update(cfg.options)
    return AdaLoraConfig(
        task_type=task_type,
        init_r=max(cfg.r + cfg.r // 2, cfg.r + 1),
        target_r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=_targets(cfg),
        total_step=max(steps, options["tinit"] + options["tfinal"] + 2),
        **options,
    )


def _ia3(cfg, task_type, steps):
    from peft import IA3Config

    return IA3Config(task_type=task_type, target_modules=cfg.target_modules, **cfg.options)


def _prefix(cfg, task_type, steps):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(
        task_type=task_type, num_virtual_tokens=cfg.num_virtual_tokens, **cfg.options
    )


def _prompt(cfg, task_type, steps):
    from peft import PromptTuningConfig

    return PromptTuningConfig(
        task_type=task_type, num_virtual_tokens=cfg.num_virtual_tokens, **cfg.options
    )


def _ptuning(cfg, task_type, steps):
    from peft import PromptEncoderConfig

    options = {"encoder_hidden_size": 128, **cfg.options}
    return PromptEncoderConfig(
        task_type=task_type, num_virtual_tokens=cfg.num_virtual_tokens, **options
    )


def _loha(cfg, task_type, steps):
    from peft import LoHaConfig

    return LoHaConfig(
        task_type=task_type,
        r=cfg.r,
        alpha=cfg.alpha,
        module_dropout=cfg.dropout,
        target_modules=_targets(cfg),
        **cfg.options,
    )


def _lokr(cfg, task_type, steps):
    from peft import LoKrConfig

    return LoKrConfig(
        task_type=task_type,
        r=cfg.r,
        alpha=cfg.alpha,
        module_dropout=cfg.dropout,
        target_modules=_targets(cfg),
        **cfg.options,
    )


def _vera(cfg, task_type, steps):
    from peft import VeraConfig

    options = {"r": max(cfg.r, 128), **cfg.options}
    return VeraConfig(
        task_type=task_type,
        vera_dropout=cfg.dropout,
        target_modules=_targets(cfg, ["query", "value"]),
        **options,
    )


def _oft(cfg, task_type, steps):
    from peft import OFTConfig

    options = {"r": 0, "oft_block_size": 16, **cfg.options}
    return OFTConfig(
        task_type=task_type,
        module_dropout=cfg.dropout,
        target_modules=_targets(cfg, ["query", "value"]),
        **options,
    )


def _ln_tuning(cfg, task_type, steps):
    from peft import LNTuningConfig

    # Norm layer names of BERT-like and Llama-like models; peft needs at least one to match.
    default = ["LayerNorm", "input_layernorm", "post_attention_layernorm", "norm"]
    return LNTuningConfig(task_type=task_type, target_modules=_targets(cfg, default), **cfg.options)


def _hra(cfg, task_type, steps):
    from peft import HRAConfig

    options = {"r": 8, **cfg.options}
    return HRAConfig(
        task_type=task_type, target_modules=_targets(cfg, ["query", "value"]), **options
    )


def _fourierft(cfg, task_type, steps):
    from peft import FourierFTConfig

    options = {"n_frequency": 1000, "scaling": 150.0, **cfg.options}
    return FourierFTConfig(
        task_type=task_type, target_modules=_targets(cfg, ["query", "value"]), **options
    )


METHODS: dict[str, PeftMethod] = {
    "full": PeftMethod(None, 5e-5, False, "full fine-tuning: every weight trains"),
    "lora": PeftMethod(_lora, 5e-4, True, "LoRA: low-rank updates of the linear layers"),
    "adalora": PeftMethod(
        _adalora, 1e-3, True, "AdaLoRA: LoRA whose rank budget is reallocated while training"
    ),
    "ia3": PeftMethod(
        _ia3, 5e-3, True, "IA3: learned rescaling of keys, values and feed-forward activations"
    ),
    "prefix": PeftMethod(
        _prefix, 1e-2, False, "prefix tuning: trained key/value prefixes in every layer"
    ),
    "prompt": PeftMethod(_prompt, 1e-2, False, "prompt tuning: trained soft prompt embeddings"),
    "ptuning": PeftMethod(
        _ptuning, 1e-2, False, "P-tuning: soft prompts produced by a small MLP encoder"
    ),
    "loha": PeftMethod(_loha, 5e-4, True, "LoHa: low-rank Hadamard-product updates"),
    "lokr": PeftMethod(_lokr, 5e-4, True, "LoKr: low-rank Kronecker-product updates"),
    "vera": PeftMethod(
        _vera, 5e-3, True, "VeRA: shared frozen random matrices with trained scaling vectors"
    ),
    "oft": PeftMethod(_oft, 5e-4, True, "OFT: orthogonal fine-tuning of the weights"),
    "ln_tuning": PeftMethod(_ln_tuning, 1e-3, False, "LN tuning: only the LayerNorm layers train"),
    "hra": PeftMethod(_hra, 5e-4, True, "HRA: Householder reflection adaptation"),
    "fourierft": PeftMethod(_fourierft, 5e-3, True, "FourierFT: sparse spectral updates"),
}


def check_method(name: str) -> PeftMethod:
    """Return the method, or raise naming the nearest valid one."""
    if name in METHODS:
        return METHODS[name]
    close = difflib.get_close_matches(name, list(METHODS), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Unknown PEFT method peft.method={name!r}.{hint} Choose one of: {', '.join(METHODS)}."
    )


def default_learning_rate(method: str) -> float:
    return check_method(method).learning_rate


def apply_peft(model: torch.nn.Module, cfg, task_type: str, total_steps: int) -> torch.nn.Module:
    """Wrap ``model`` with the PEFT method of ``cfg`` (a :class:`lepton_nlp.config.PeftConfig`).

    The task head is kept trainable and saved with the adapter (peft's ``modules_to_save``
    for sequence and token classification).
    """
    method = check_method(cfg.method)
    if method.build is None:
        return model
    from peft import get_peft_model

    if (
        cfg.method == "prefix"
        # transformers 5.24 renamed past_key_values to cache (the old name still accepted).
        and not {"past_key_values", "cache"} & set(inspect.signature(model.forward).parameters)
    ):
        raise ConfigError(
            f"peft.method=prefix needs a model whose forward takes past_key_values; "
            f"{type(model).__name__} does not (transformers 5 encoders dropped it). Use "
            "peft.method=ptuning or prompt for soft prompts on this model, or a decoder model."
        )
    peft_config = method.build(cfg, task_type, max(1, total_steps))
    if getattr(peft_config, "target_modules", None) == "all-linear" and hasattr(
        peft_config, "exclude_modules"
    ):
        # The task head trains in full (modules_to_save); an adapter on it as well clashes.
        peft_config.exclude_modules = sorted({*HEAD_MODULES, *(peft_config.exclude_modules or [])})
    return get_peft_model(model, peft_config)


def count_parameters(model: torch.nn.Module) -> dict[str, int | float]:
    """Trainable and total parameters (peft's own count for adapters)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    return {
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "trainable_percent": round(100.0 * trainable / max(total, 1), 4),
    }
