"""Augmentation with the packaged MiniLM's embedding neighbours as the synonym source: real
words come in, and NER entities and QA answers still align."""

from __future__ import annotations

import pytest

from lepton_nlp.config import AugmentConfig
from lepton_nlp.hub import MINILM
from lepton_nlp.tasks.ner import spans_from_tags
from lepton_nlp.training.augment import augment_records, load_synonyms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synonyms():
    return load_synonyms(AugmentConfig(methods=["synonym"]), MINILM)


def test_embedding_synonyms_are_whole_words_of_the_vocabulary(synonyms):
    found = synonyms.neighbours("profit")
    assert found and all(w.isalpha() and w != "profit" for w in found)
    assert synonyms.neighbours("the") == []  # stop words are neither queries nor answers


def test_synonym_and_insert_on_real_records_keep_spans(synonyms):
    ner = {
        "tokens": ["Nokia", "shares", "rose", "sharply", "in", "Helsinki", "on", "Monday"],
        "tags": ["B-ORG", "O", "O", "O", "O", "B-LOC", "O", "O"],
    }
    config = AugmentConfig(methods=["synonym", "insert"], per_example=6, probability=0.3)
    out, report = augment_records([ner], "tokens", config, synonyms=synonyms)
    assert report.added >= 4
    for record in out[1:]:
        assert len(record["tokens"]) == len(record["tags"])
        entities = [(k, record["tokens"][a:b]) for k, a, b in spans_from_tags(record["tags"])]
        assert entities == [("ORG", ["Nokia"]), ("LOC", ["Helsinki"])]
    context = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn a year earlier."
    qa = {
        "question": "What did profit rise to?",
        "context": context,
        "answers": {"text": ["EUR 13.1 mn"], "answer_start": [context.index("EUR 13.1")]},
    }
    out, _ = augment_records([qa], "qa", config, synonyms=synonyms)
    for record in out[1:]:
        start = record["answers"]["answer_start"][0]
        assert record["context"][start : start + len("EUR 13.1 mn")] == "EUR 13.1 mn"
    assert any(r["context"] != context for r in out[1:])
