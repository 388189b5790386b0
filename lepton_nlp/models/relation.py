"""The relation model: an encoder plus one linear head over ``[CLS]`` and the two marked arguments.

R-BERT (Wu & He 2019): the classifier reads ``[CLS]`` concatenated with the pooled
representations of the two argument spans (``e1_mask``, ``e2_mask`` from
:func:`lepton_nlp.tasks.relation.encode_items`). The class is built once per encoder
prefix (``bert``, ``roberta``...), so checkpoints of the bare encoder and of a saved
relation model both load with the standard key mapping; a saved model's ``config.json``
names it ``RelationModel`` and the artifact names the ``relation`` task, whose
``load_model`` calls :func:`load_relation_model`.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from lepton_nlp.errors import DataError

__all__ = ["load_relation_model"]


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@functools.cache
def _relation_model_class() -> type:
    from transformers import AutoModel, PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class RelationModel(PreTrainedModel):
        """An encoder plus one linear ``classifier`` over ``[CLS]`` and the two pooled arguments.

        The head is a single ``nn.Linear`` named ``classifier``, so peft's sequence
        classification wrapper trains it in full and saves it with every adapter. With
        prompt-learning adapters the encoder output is longer than the masks by the virtual
        tokens, which come first: the masks are aligned to the end.
        """

        base_model_prefix = "encoder"  # replaced by the encoder's own prefix, see below
        accepts_loss_kwargs = False

        def __init__(self, config):
            super().__init__(config)
            encoder = AutoModel.from_config(config)
            if getattr(encoder, "pooler", None) is not None:
                # The head reads token states, not the pooled output: an unused pooler would
                # get adapters without gradients (AdaLoRA fails on them).
                encoder.pooler = None
            setattr(self, self.base_model_prefix, encoder)
            parts = 3 if getattr(config, "relation_use_cls", True) else 2
            dropout = getattr(config, "classifier_dropout", None)
            if dropout is None:
                dropout = getattr(config, "hidden_dropout_prob", 0.1)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(parts * config.hidden_size, config.num_labels)
            self.post_init()

        def _init_weights(self, module):
            if module is self.classifier:
                module.weight.data.normal_(0.0, getattr(self.config, "initializer_range", 0.02))
                module.bias.data.zero_()
            else:
                getattr(self, self.base_model_prefix)._init_weights(module)

        def get_input_embeddings(self):
            return getattr(self, self.base_model_prefix).get_input_embeddings()

        def forward(
            self,
            input_ids=None,
            attention_mask=None,
            token_type_ids=None,
            inputs_embeds=None,
            e1_mask=None,
            e2_mask=None,
            labels=None,
            output_attentions=None,
            output_hidden_states=None,
            return_dict=None,
            **kwargs,
        ):
            if e1_mask is None or e2_mask is None:
                raise ValueError(
                    "The relation model needs e1_mask and e2_mask (the argument positions); "
                    "encode inputs with the relation task."
                )
            inputs = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
                "inputs_embeds": inputs_embeds,
                "output_attentions": output_attentions,
                "output_hidden_states": output_hidden_states,
                **{k: v for k, v in kwargs.items() if k != "num_items_in_batch"},
            }
            encoder = getattr(self, self.base_model_prefix)
            outputs = encoder(**{k: v for k, v in inputs.items() if v is not None})
            hidden = outputs.last_hidden_state
            offset = hidden.shape[1] - e1_mask.shape[1]  # prompt-learning virtual tokens
            hidden = hidden[:, offset:]
            parts = [_pool(hidden, e1_mask), _pool(hidden, e2_mask)]
            if getattr(self.config, "relation_use_cls", True):
                parts.insert(0, hidden[:, 0])
            logits = self.classifier(self.dropout(torch.cat(parts, dim=-1)))
            loss = None
            if labels is not None:
                loss = nn.functional.cross_entropy(logits, labels.view(-1))
            return SequenceClassifierOutput(
                loss=loss,
                logits=logits,
                hidden_states=outputs.hidden_states if output_hidden_states else None,
                attentions=outputs.attentions if output_attentions else None,
            )

    return RelationModel


@functools.cache
def _model_class_for(prefix: str) -> type:
    # Named after the encoder's own prefix (bert, roberta...), checkpoints of the bare
    # encoder and of a saved relation model both load with the standard key mapping.
    base = _relation_model_class()
    return type(base.__name__, (base,), {"base_model_prefix": prefix, "__module__": __name__})


def load_relation_model(model_path: str, labels: list[str], use_cls: bool = True) -> Any:
    """A relation model from an encoder folder (new head) or a saved relation model."""
    from transformers import MODEL_MAPPING, AutoConfig

    config = AutoConfig.from_pretrained(
        model_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    config.relation_use_cls = use_cls
    try:
        prefix = MODEL_MAPPING[type(config)].base_model_prefix
    except KeyError:
        raise DataError(
            f"{model_path} is a {config.model_type} model, which has no bare encoder class in "
            "transformers; relation extraction needs an encoder (BERT, RoBERTa, DeBERTa...)."
        ) from None
    return _model_class_for(prefix or "encoder").from_pretrained(model_path, config=config)
