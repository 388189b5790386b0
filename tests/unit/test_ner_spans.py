"""NER predictions: word pieces -> words -> entity spans with the right character offsets."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from transformers import AutoTokenizer

from lepton_nlp.tasks import TaskSpec, get_task
from lepton_nlp.tasks.ner import spans_from_tags, split_words

LABELS = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]


TAGS = {"Anna": "B-PER", "Berg": "I-PER", "Halden": "B-ORG", "Steel": "I-ORG", "Oslo": "B-PER"}


class _ScriptedModel(torch.nn.Module):
    """Gives every word piece of a word the tag TAGS names for that word (O otherwise)."""

    def __init__(self, tokenizer, words: list[str]):
        super().__init__()
        self.tokenizer, self.words = tokenizer, words
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.anchor.device

    def forward(self, input_ids, **kwargs):
        length = input_ids.shape[1]
        batch = self.tokenizer(
            [self.words],
            is_split_into_words=True,
            padding="max_length",
            max_length=length,
            truncation=True,
        )
        logits = torch.full((1, length, len(LABELS)), -5.0)
        for position, word in enumerate(batch.word_ids(0)):
            if word is not None:
                logits[0, position, LABELS.index(TAGS.get(self.words[word], "O"))] = 5.0
        return SimpleNamespace(logits=logits)


def test_spans_carry_character_offsets_of_the_original_text(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = "Yesterday  Anna Berg joined Halden Steel, in Oslo."
    task = get_task("ner")
    item = task.prepare_input(text)
    model = _ScriptedModel(tokenizer, [w for w, _, _ in item["words"]])
    (prediction,) = task.predict_batch(
        model, tokenizer, [item], TaskSpec(labels=LABELS, max_length=64)
    )
    entities = [(e["label"], e["text"], e["start"], e["end"]) for e in prediction["entities"]]
    assert entities == [
        ("PER", "Anna Berg", 11, 20),
        ("ORG", "Halden Steel", 28, 40),
        ("PER", "Oslo", 45, 49),
    ]
    for _label, span, start, end in entities:
        assert text[start:end] == span


def test_split_words_and_spans_from_tags():
    assert [w for w, _, _ in split_words("U.S. shares (3.5%) rose.")] == [
        "U.S.",
        "shares",
        "(",
        "3.5",
        "%",
        ")",
        "rose",
        ".",
    ]
    assert spans_from_tags(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 5),
        ("ORG", 5, 6),
    ]
