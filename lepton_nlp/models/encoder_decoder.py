"""Encoder-decoder models warm-started from an encoder, optionally with a target vocabulary of their own.

A bare encoder (the packaged MiniLM) becomes an ``EncoderDecoderModel`` (Rothe et al. 2020):
the decoder starts from encoder weights, with new cross-attention and LM head. Its
vocabulary can be a cased WordPiece one trained on the run's targets
(:func:`train_target_tokenizer`), each new token's embedding initialised from the
pretrained pieces of the word. The generation tasks (:mod:`lepton_nlp.tasks.generation`)
load these models; the tokenizer travels in the artifact's task spec as JSON.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

__all__ = [
    "load_encoder_decoder",
    "load_target_tokenizer",
    "train_target_tokenizer",
    "warm_start_with_target_vocabulary",
]


def train_target_tokenizer(texts: list[str], vocab_size: int) -> str:
    """A cased, accent-keeping WordPiece tokenizer trained on ``texts``, serialized as JSON.

    Special tokens: ``[PAD]`` ``[UNK]`` ``[CLS]`` (starts decoding) ``[SEP]`` (ends a target).
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(
        texts,
        trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        ),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A [SEP]", special_tokens=[("[SEP]", tokenizer.token_to_id("[SEP]"))]
    )
    return tokenizer.to_str()


@functools.lru_cache(maxsize=4)
def load_target_tokenizer(serialized: str) -> Any:
    """The tokenizer that :func:`train_target_tokenizer` serialized (cached: specs repeat it)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(serialized),
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def warm_start_with_target_vocabulary(
    encoder_path: str, decoder_path: str, target_tokenizer: str
) -> Any:
    """An EncoderDecoderModel whose decoder has the run's own target vocabulary.

    The decoder's layers come from ``decoder_path`` and its vocabulary from
    ``target_tokenizer`` (serialized by :func:`train_target_tokenizer`); each new token's embedding is the mean
    of the pretrained embeddings of its pieces under the pretrained tokenizer (lower-cased,
    accents stripped as that tokenizer does), so ``Mann`` starts where ``mann`` was.
    """
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoTokenizer,
        EncoderDecoderModel,
    )

    target = load_target_tokenizer(target_tokenizer)
    encoder = AutoModel.from_pretrained(encoder_path, dtype=torch.float32)
    config = AutoConfig.from_pretrained(
        decoder_path,
        is_decoder=True,
        add_cross_attention=True,
        vocab_size=len(target),
        pad_token_id=target.pad_token_id,
    )
    decoder = AutoModelForCausalLM.from_pretrained(
        decoder_path, config=config, ignore_mismatched_sizes=True, dtype=torch.float32
    )
    pretrained_tokenizer = AutoTokenizer.from_pretrained(decoder_path)
    pretrained = (
        (encoder if decoder_path == encoder_path else AutoModel.from_pretrained(decoder_path))
        .get_input_embeddings()
        .weight.detach()
    )

    def first(*ids: int | None) -> int | None:
        return next((i for i in ids if i is not None), None)

    specials = {
        "[PAD]": pretrained_tokenizer.pad_token_id,
        "[UNK]": pretrained_tokenizer.unk_token_id,
        "[CLS]": first(pretrained_tokenizer.cls_token_id, pretrained_tokenizer.bos_token_id),
        "[SEP]": first(pretrained_tokenizer.sep_token_id, pretrained_tokenizer.eos_token_id),
    }
    embeddings = decoder.get_input_embeddings().weight
    with torch.no_grad():
        for token, index in target.get_vocab().items():
            if token in specials:
                ids = [specials[token]] if specials[token] is not None else []
            else:
                ids = pretrained_tokenizer(token.removeprefix("##"), add_special_tokens=False)[
                    "input_ids"
                ]
            if ids:
                embeddings[index] = pretrained[ids].mean(dim=0)
    decoder.tie_weights()
    return EncoderDecoderModel(encoder=encoder, decoder=decoder)


def load_encoder_decoder(
    model_path: str,
    *,
    decoder_start_token_id: int,
    eos_token_id: int,
    decoder_model: str | None = None,
    tie_encoder_decoder: bool = False,
    target_tokenizer: str | None = None,
    decoder_pad_token_id: int | None = None,
) -> Any:
    """A saved ``EncoderDecoderModel``, or one warm-started from the encoder at ``model_path``.

    Args:
        model_path: a saved encoder-decoder, or a bare encoder (BERT-like) to warm-start from.
        decoder_start_token_id: the token decoding starts with ([CLS] or bos).
        eos_token_id: the token that ends a target ([SEP] or eos).
        decoder_model: warm start: the decoder's model (None: the encoder's own weights).
        tie_encoder_decoder: warm start: share encoder and decoder weights.
        target_tokenizer: warm start: the decoder's own vocabulary (serialized by
            :func:`train_target_tokenizer`), else the encoder's.
        decoder_pad_token_id: the decoder's pad token (None: the encoder's, else eos).
    """
    from transformers import AutoConfig, EncoderDecoderModel

    if AutoConfig.from_pretrained(model_path).model_type == "encoder-decoder":
        model = EncoderDecoderModel.from_pretrained(model_path, dtype=torch.float32)
    else:
        # Cross-attention and the LM head are new: a fixed seed makes them the same at
        # every load, so an adapter trained on top of them reloads onto the same base.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if target_tokenizer:
                model = warm_start_with_target_vocabulary(
                    model_path, decoder_model or model_path, target_tokenizer
                )
            else:
                model = EncoderDecoderModel.from_encoder_decoder_pretrained(
                    model_path,
                    decoder_model or model_path,
                    tie_encoder_decoder=tie_encoder_decoder,
                )
        model.float()
    if getattr(model.encoder, "pooler", None) is not None:
        # The decoder reads the encoder's states, never its pooled output: no gradient
        # would reach the pooler (AdaLoRA needs one for every adapted layer).
        model.encoder.pooler = None
    config = model.config
    config.decoder_start_token_id = decoder_start_token_id
    config.eos_token_id = eos_token_id
    config.pad_token_id = (
        decoder_pad_token_id if decoder_pad_token_id is not None else config.encoder.pad_token_id
    )
    if config.pad_token_id is None:
        config.pad_token_id = eos_token_id
    config.vocab_size = config.decoder.vocab_size
    # peft's prompt-learning methods read layer count and sizes from the top-level config.
    config.num_hidden_layers = config.decoder.num_hidden_layers
    config.num_attention_heads = config.decoder.num_attention_heads
    config.hidden_size = config.decoder.hidden_size
    return model
