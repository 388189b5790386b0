"""Prompt learning and few-shot classification: LLM label scoring with templates,
verbalizers and calibration; label-description similarity; SetFit; soft prompts and LoRA on
a few examples. ``lepton-nlp fewshot``; docs/prompt-learning.md."""

from __future__ import annotations

from lepton_nlp.training.prompts.fewshot import (
    FewShotResult,
    FewShotRunner,
    eval_sample,
    sample_shots,
)
from lepton_nlp.training.prompts.scoring import LabelScorer, calibrate, word_token_ids
from lepton_nlp.training.prompts.setfit import SetFitClassifier, contrastive_pairs
from lepton_nlp.training.prompts.similarity import (
    describe_labels,
    example_similarity,
    label_similarity,
    nearest,
    top_labels,
)
from lepton_nlp.training.prompts.templates import PromptTemplate, Verbalizer, label_words

__all__ = [
    "FewShotResult",
    "FewShotRunner",
    "LabelScorer",
    "PromptTemplate",
    "SetFitClassifier",
    "Verbalizer",
    "calibrate",
    "contrastive_pairs",
    "describe_labels",
    "eval_sample",
    "example_similarity",
    "label_similarity",
    "label_words",
    "nearest",
    "sample_shots",
    "top_labels",
    "word_token_ids",
]
