"""Padding-free batches: the encoder layers see only real tokens, never padding.

A batch of sentences of different lengths is padded to its longest; an encoder then spends
most of its time (the Linear layers: ~86% on a CPU) on padding. Packing gathers the real
tokens of the whole batch into one row before the first layer, runs every layer on that row,
and attends within each sentence only (one attention call per run of neighbouring
sentences of equal length, as length-sorted batches have them); after the last
layer the tokens go back to their padded places. Embeddings, pooling and the task heads
still see the usual padded ``[batch, length, hidden]`` tensors, so every encoder task
(classification, NER, relations, QA) and every adapter method runs unchanged.

The arithmetic per token is the one the padded batch does (outputs agree to ~1e-6). It pays
where lengths differ: random server micro-batches, or any batch that sorting cannot even out.

How: two hooks on the transformers encoder module (no parameter is renamed, so adapters
load and switch as before) and an attention function registered with transformers'
``AttentionInterface``; without packed input it is plain SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

__all__ = ["PACKABLE_MODEL_TYPES", "enable_packing", "packing_enabled"]

#: Encoders whose layers call transformers' attention interface with BERT's signature and
#: whose positions are added in the embeddings (before the layers). Each is tested.
PACKABLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")

ATTENTION = "lepton_packed"
_MARK = "_lepton_packing"


@dataclass
class _Packed:
    valid: torch.Tensor  # [batch, length] bool: the real tokens
    shape: torch.Size  # the padded hidden states' shape
    runs: list[tuple[int, int, int]]  # (start, sentences, length): neighbours of equal length


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    packed: _Packed | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA within each packed sentence; plain SDPA when the input is not packed."""
    if packed is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    heads, dim = query.shape[1], query.shape[3]
    parts = []
    for start, count, length in packed.runs:
        # Neighbouring sentences of one length (common in length-sorted batches) share one
        # call: [1, H, count * length, d] viewed as [count, H, length, d], no copy.
        q, k, v = (
            x[0, :, start : start + count * length]
            .reshape(heads, count, length, dim)
            .transpose(0, 1)
            for x in (query, key, value)
        )
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling)
        parts.append(out.transpose(0, 1).reshape(1, heads, count * length, dim))
    # [1, heads, tokens, head_dim] -> [1, tokens, heads, head_dim], as sdpa_attention_forward.
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, _attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def _pack(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    hidden = args[0] if args else kwargs.get("hidden_states")
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1:
        mask = args[1]
    if hidden is None or mask is None or hidden.shape[0] == 1 or mask.dim() != 4:
        return None  # nothing padded: run as is
    if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None:
        return None  # prefix tuning's cached keys are per padded row
    # The padding mask of a bidirectional encoder: which keys the first query may see.
    row = mask[:, 0, 0, :]
    valid = row if row.dtype == torch.bool else row == 0
    if valid.shape != hidden.shape[:2]:
        return None
    lengths = valid.sum(dim=1).tolist()
    runs, start = [], 0
    for length in lengths:
        if runs and runs[-1][2] == length:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, length)
        else:
            runs.append((start, 1, length))
        start += length
    row_of_tokens = hidden[valid].unsqueeze(0)
    args, kwargs = list(args), {**kwargs, "packed": _Packed(valid, hidden.shape, runs)}
    if args:
        args[0] = row_of_tokens
    else:
        kwargs["hidden_states"] = row_of_tokens
    if len(args) > 1:
        args[1] = None
    else:
        kwargs["attention_mask"] = None
    return tuple(args), kwargs


def _unpack(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
    packed = kwargs.get("packed")
    if packed is None:
        return output
    row = output[0]  # last_hidden_state, of a ModelOutput or a plain tuple
    full = row.new_zeros(packed.shape)
    full[packed.valid] = row[0]
    if isinstance(output, tuple):
        return (full, *output[1:])
    output.last_hidden_state = full
    return output


def _encoder_of(model: Any) -> tuple[Any, Any] | None:
    """The transformers encoder module (``BertEncoder``...) and its config, if packable."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(inner, "base_model", inner)  # BertForX -> BertModel; BertModel -> itself
    config = getattr(base, "config", None)
    encoder = getattr(base, "encoder", None)
    if (
        config is None
        or encoder is None
        or getattr(config, "model_type", None) not in PACKABLE_MODEL_TYPES
        or getattr(config, "is_decoder", False)
        or getattr(config, "add_cross_attention", False)
        or not hasattr(encoder, "layer")
    ):
        return None
    return encoder, config


def enable_packing(model: Any) -> bool:
    """Make ``model``'s encoder run padding-free batches; False (and nothing changed) when its
    architecture is not one of :data:`PACKABLE_MODEL_TYPES`.

    Works on a transformers model, a PeftModel (merged or not) and a dynamically quantized
    copy; call it after quantizing (quantization copies the model). Idempotent.
    """
    found = _encoder_of(model)
    if found is None:
        return False
    encoder, config = found
    if getattr(encoder, _MARK, False):
        return True
    config._attn_implementation = ATTENTION
    encoder.register_forward_pre_hook(_pack, with_kwargs=True)
    encoder.register_forward_hook(_unpack, with_kwargs=True)
    setattr(encoder, _MARK, True)
    return True


def packing_enabled(model: Any) -> bool:
    found = _encoder_of(model)
    return found is not None and getattr(found[0], _MARK, False)
