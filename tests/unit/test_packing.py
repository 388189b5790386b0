"""Padding-free batches (lepton_nlp.inference.packing): same outputs, fewer tokens computed."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    DistilBertConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from lepton_nlp.inference.packing import enable_packing, packing_enabled

SIZES = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=80,
)
CONFIGS = {
    "bert": lambda: BertConfig(**SIZES),
    "roberta": lambda: RobertaConfig(**SIZES, pad_token_id=1),
    "xlm-roberta": lambda: XLMRobertaConfig(**SIZES, pad_token_id=1),
}
HEADS = {
    "classification": AutoModelForSequenceClassification,
    "tokens": AutoModelForTokenClassification,
    "qa": AutoModelForQuestionAnswering,
}


def _batch(lengths: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(sum(lengths))
    ids = torch.full((len(lengths), max(lengths)), pad_id)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, SIZES["vocab_size"], (n,), generator=generator)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _models(kind: str, head: str):
    torch.manual_seed(0)
    padded = HEADS[head].from_config(CONFIGS[kind]()).eval()
    packed = copy.deepcopy(padded)
    assert enable_packing(packed)
    # The first layer's input shapes: what the encoder really computes on.
    seen: list[tuple[int, ...]] = []
    packed.base_model.encoder.layer[0].register_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape))
    )
    return padded, packed, seen


@pytest.mark.parametrize(
    "lengths",
    # all different (one attention call each); neighbours of equal length (one call per run)
    [[5, 17, 2, 11], [3, 3, 3, 8, 2, 2, 8]],
)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_packed_outputs_equal_padded_ones(kind, head, lengths):
    padded, packed, seen = _models(kind, head)
    batch = _batch(lengths, padded.config.pad_token_id or 0)
    with torch.inference_mode():
        want, got = padded(**batch), packed(**batch)
    # Only the real tokens went through the layers, as one row.
    assert seen == [(1, sum(lengths), SIZES["hidden_size"])]
    valid = batch["attention_mask"].bool()
    for field in ("logits", "start_logits", "end_logits"):
        if getattr(want, field, None) is None:
            continue
        a, b = getattr(want, field), getattr(got, field)
        if head != "classification":  # per-token outputs: padding positions mean nothing
            a, b = a[valid], b[valid]
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_batches_without_padding_run_as_before():
    padded, packed, seen = _models("bert", "classification")
    for lengths in ([9], [6, 6, 6]):
        batch = _batch(lengths, 0)
        with torch.inference_mode():
            torch.testing.assert_close(packed(**batch).logits, padded(**batch).logits)
    assert seen == [(1, 9, 32), (3, 6, 32)]  # as given: nothing to pack


def test_gradients_through_the_packed_path_equal_the_padded_ones():
    """Packing is installed for inference, but a packed model still trains correctly."""
    padded, packed, seen = _models("bert", "classification")
    batch, labels = _batch([4, 9, 6], 0), torch.tensor([0, 1, 1])
    for model in (padded, packed):  # eval mode: no dropout, so both compute the same thing
        model(**batch, labels=labels).loss.backward()
    assert seen == [(1, 19, 32)]
    for name in ("classifier.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        want = padded.get_parameter(name).grad
        torch.testing.assert_close(packed.get_parameter(name).grad, want, atol=1e-6, rtol=1e-4)


def test_other_architectures_are_left_unpacked():
    config = DistilBertConfig(
        vocab_size=120, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=80
    )
    model = AutoModelForSequenceClassification.from_config(config).eval()
    before = model.config._attn_implementation
    assert enable_packing(model) is False
    assert not packing_enabled(model)
    assert model.config._attn_implementation == before
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_enable_packing_is_idempotent():
    padded, packed, _ = _models("bert", "tokens")
    assert enable_packing(packed)
    assert len(packed.base_model.encoder._forward_pre_hooks) == 1
    assert packing_enabled(packed) and not packing_enabled(padded)
