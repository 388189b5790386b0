"""Robustness attacks: exactly the budgeted edits, the same ones under the same seed, counted
(not fatal) when a text is too short, and an evaluation that scores a model under them."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from lepton_nlp.errors import ConfigError
from lepton_nlp.evaluation.robustness import (
    ATTACKS,
    EmbeddingNeighbours,
    SynonymTable,
    attack_records,
    attack_text,
    attack_words,
    evaluate_robustness,
    parse_attacks,
    parse_budgets,
)

TEXT = (
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period, "
    "the company said; Finnish sales grew strongly!"
)
SYNONYMS = SynonymTable(
    {
        "profit": ["earnings"],
        "rose": ["climbed", "increased"],
        "company": ["firm"],
        "sales": ["revenue"],
        "shares": ["stocks"],
        "grew": ["expanded"],
        "strongly": ["markedly"],
        "period": ["quarter"],
    }
)


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


@pytest.mark.parametrize("budget", [1, 3, 7])
def test_typo_replaces_exactly_budget_letters_by_keyboard_neighbours(budget):
    new, edits = attack_text(TEXT, "typo", budget, seed=1)
    assert edits == budget and len(new) == len(TEXT)
    changed = [(a, b) for a, b in zip(TEXT, new, strict=True) if a != b]
    assert len(changed) == budget
    assert all(a.isalpha() and b.isalpha() and a.isupper() == b.isupper() for a, b in changed)
    assert all(b.lower() in "qwertyuiopasdfghjklzxcvbnm" for _, b in changed)


@pytest.mark.parametrize("budget", [1, 4])
def test_swap_exchanges_exactly_budget_adjacent_letter_pairs(budget):
    new, edits = attack_text(TEXT, "swap", budget, seed=2)
    assert edits == budget and sorted(new) == sorted(TEXT)
    differ = [i for i, (a, b) in enumerate(zip(TEXT, new, strict=True)) if a != b]
    assert len(differ) == 2 * budget
    pairs = list(zip(differ[0::2], differ[1::2], strict=True))
    assert all(j == i + 1 and new[i] == TEXT[j] and new[j] == TEXT[i] for i, j in pairs)


@pytest.mark.parametrize("budget", [1, 5])
def test_delete_removes_exactly_budget_letters(budget):
    new, edits = attack_text(TEXT, "delete", budget, seed=3)
    assert edits == budget and len(new) == len(TEXT) - budget
    assert _is_subsequence(new, TEXT) and len(new.split()) == len(TEXT.split())


@pytest.mark.parametrize("budget", [1, 4])
def test_case_changes_exactly_budget_words_and_nothing_else(budget):
    new, edits = attack_text(TEXT, "case", budget, seed=4)
    assert edits == budget and new.lower() == TEXT.lower()
    assert sum(a != b for a, b in zip(TEXT.split(), new.split(), strict=True)) == budget


@pytest.mark.parametrize("budget", [1, 3, 6])
def test_punctuation_inserts_or_deletes_exactly_budget_marks(budget):
    new, edits = attack_text(TEXT, "punctuation", budget, seed=5)
    assert edits == budget
    words = list(zip(TEXT.split(), new.split(), strict=True))
    assert sum(_levenshtein(a, b) for a, b in words) == budget
    letters = [ch for ch in TEXT if ch.isalnum() or ch.isspace()]
    assert [ch for ch in new if ch.isalnum() or ch.isspace()] == letters
    assert "13.1" in new and "8.7" in new  # marks inside a token stay


@pytest.mark.parametrize("budget", [1, 3])
def test_synonym_replaces_exactly_budget_words_from_the_source(budget):
    new, edits = attack_text(TEXT, "synonym", budget, seed=6, synonyms=SYNONYMS)
    assert edits == budget
    pairs = [(a, b) for a, b in zip(TEXT.split(), new.split(), strict=True) if a != b]
    assert len(pairs) == budget
    for old, replaced in pairs:
        core = old.strip(",;!").lower()
        assert replaced.strip(",;!").lower() in SYNONYMS.neighbours(core)
        # The punctuation around the word stays.
        assert old[len(old.rstrip(",;!")) :] == replaced[len(replaced.rstrip(",;!")) :]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_deterministic_under_a_seed_and_vary_with_it(attack):
    first = attack_text(TEXT, attack, 3, seed=11, key=5, synonyms=SYNONYMS)
    assert attack_text(TEXT, attack, 3, seed=11, key=5, synonyms=SYNONYMS) == first
    others = {attack_text(TEXT, attack, 3, seed=s, key=5, synonyms=SYNONYMS)[0] for s in range(6)}
    assert len(others) > 1


def test_whitespace_is_kept_as_it_was():
    text = "  Profit\trose   sharply \n"
    for attack in ATTACKS:
        new, _ = attack_text(text, attack, 2, seed=0, synonyms=SynonymTable({"rose": ["rise"]}))
        assert [c for c in new if c.isspace()] == [c for c in text if c.isspace()]


def test_a_budget_larger_than_the_text_is_counted_not_fatal(caplog):
    records = [
        {"text": "Up", "label": "positive"},  # 2 letters: one deletion at most
        {"text": "Profit rose sharply", "label": "positive"},
        {"text": "", "label": "neutral"},
    ]
    with caplog.at_level(logging.WARNING, logger="lepton_nlp.evaluation.robustness"):
        outcome = attack_records(records, "text", "delete", 3, seed=0)
    assert outcome.edits == [1, 3, 0]
    assert outcome.short_of_budget == 2 and outcome.changed == 2
    assert "2 of 3 records had room for fewer edits" in caplog.text
    assert [r["text"] for r in outcome.records][2] == ""
    assert [r["label"] for r in outcome.records] == [r["label"] for r in records]
    assert records[1]["text"] == "Profit rose sharply"  # the originals are not touched


def test_ner_tokens_keep_their_number_and_tags():
    record = {"tokens": ["Nokia", "shares", "rose", "in", "Helsinki", "."], "tags": ["B-ORG", "O", "O", "O", "B-LOC", "O"]}  # fmt: skip
    for attack in ATTACKS:
        outcome = attack_records([record], "tokens", attack, 2, seed=0, synonyms=SYNONYMS)
        (new,) = outcome.records
        assert len(new["tokens"]) == len(record["tokens"]) and new["tags"] == record["tags"]
        assert all(new["tokens"])
        assert outcome.edits == [2]


def test_attack_words_refuses_bad_requests():
    with pytest.raises(ConfigError, match="Unknown attack 'typos'"):
        attack_words(["a"], "typos", 1)
    with pytest.raises(ConfigError, match="1 or more"):
        attack_words(["a"], "typo", 0)
    with pytest.raises(ConfigError, match="needs a synonym source"):
        attack_words(["profit"], "synonym", 1)
    with pytest.raises(ConfigError, match="kind 'qa' are not supported"):
        attack_records([{"question": "q"}], "qa", "typo", 1)


def test_parse_attacks_and_budgets():
    assert parse_attacks("typo, synonym") == ["typo", "synonym"]
    assert parse_attacks("all") == list(ATTACKS)
    with pytest.raises(ConfigError, match="Did you mean 'synonym'"):
        parse_attacks("typo,synonyms")
    assert parse_budgets("1,3") == [1, 3]
    for bad in ("0", "two", "1,-2"):
        with pytest.raises(ConfigError, match="whole numbers of edits"):
            parse_budgets(bad)


def test_embedding_neighbours_are_the_nearest_whole_words():
    vocab = {"[PAD]": 0, "profit": 1, "profits": 2, "earnings": 3, "the": 4, "##s": 5, "loss": 6}
    embeddings = torch.tensor(
        [[0, 0, 0], [1, 0, 0], [0.95, 0.1, 0], [0.8, 0.3, 0], [0.99, 0, 0], [1, 0, 0], [0, 0, 1]],
        dtype=torch.float,
    )
    source = EmbeddingNeighbours(embeddings, vocab, top_k=3, min_similarity=0.5)
    # Stop words and word pieces take no part; "loss" is too far; best first.
    assert list(source.neighbours("Profit")) == ["profits", "earnings"]
    assert list(source.neighbours("unknown")) == []


def test_synonym_file(tmp_path):
    path = tmp_path / "syn.json"
    path.write_text(json.dumps({"Rise": ["climb", "rise"]}), encoding="utf-8")
    assert list(SynonymTable.from_file(path).neighbours("rise")) == ["climb"]
    path.write_text(json.dumps(["rise"]), encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON object of word -> list of words"):
        SynonymTable.from_file(path)


class _KeywordModel:
    """A stand-in predictor: 'positive' when the text holds 'rose', else 'negative'."""

    def __init__(self):
        from lepton_nlp.tasks import TaskSpec, get_task

        self.task = get_task("classification")
        self.spec = TaskSpec(labels=["negative", "positive"])

    def predict(self, records):
        return [
            {"label": "positive" if "rose" in r["text"].lower() else "negative", "score": 1.0}
            for r in records
        ]


def test_evaluate_robustness_scores_clean_and_attacked_records():
    records = [
        {"text": "Profit rose", "label": "positive"},
        {"text": "Sales fell", "label": "negative"},
    ]
    report = evaluate_robustness(
        _KeywordModel(),
        records,
        ["case", "synonym"],
        [1],
        seed=0,
        synonyms=SynonymTable({"rose": ["climbed"], "fell": ["dropped"]}),
    )
    assert report["clean"]["accuracy"] == 1.0 and report["metric"] == "accuracy"
    case = report["attacks"]["case@1"]
    assert case["accuracy"] == 1.0 and case["prediction_flips"] == 0 and case["drop"] == 0
    synonym = report["attacks"]["synonym@1"]
    # "rose" -> "climbed" fools the keyword model on the first record only.
    assert synonym["accuracy"] == 0.5 and synonym["prediction_flips"] == 1
    assert synonym["drop"] == 0.5 and synonym["changed"] == 2
