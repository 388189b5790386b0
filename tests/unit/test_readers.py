"""Readers: records out, and errors that name the file, the line and the fix."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.data import (
    DataError,
    load_splits,
    read_conll,
    read_csv,
    read_fpb,
    read_hf,
    read_jsonl,
    split_records,
    to_iob2,
)


def test_csv_reads_text_and_label():
    records = read_csv(FIXTURES / "classification.csv")
    assert len(records) == 48
    assert {r["label"] for r in records} == {"positive", "negative"}


def test_csv_missing_column_names_file_and_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sentence,label\nhello,a\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"x.csv: missing column\(s\) \['text'\].*\['sentence', 'label'\]"
    ):
        read_csv(path)


def test_csv_in_another_encoding_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,a\ncaf\xe9 au lait,b\n".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"latin.csv, line 3: not valid utf-8.*data.encoding=latin-1"
    ):
        read_csv(path)
    assert read_csv(path, encoding="latin-1")[1]["text"] == "café au lait"


def test_empty_and_binary_files_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        read_csv(empty)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(DataError, match="binary"):
        read_csv(binary)


def test_empty_label_cell_names_the_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,label\nfine,a\nmissing label,\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3: empty label"):
        read_csv(path)


def test_jsonl_reads_and_names_bad_lines(tmp_path):
    records = read_jsonl(FIXTURES / "multilabel.jsonl", label_column="labels", multi_label=True)
    assert all(isinstance(r["label"], list) and r["label"] for r in records)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.jsonl, line 2: not valid JSON"):
        read_jsonl(bad)


def test_financial_phrasebank_format_reads_latin1():
    records = read_fpb(FIXTURES / "fpb_style.txt")
    assert len(records) == 30
    assert {r["label"] for r in records} == {"negative", "neutral", "positive"}
    assert any(any(ord(c) > 127 for c in r["text"]) for r in records)


def test_conll_iob1_is_converted_to_iob2():
    sentences = read_conll(FIXTURES / "ner_iob1.conll")
    assert len(sentences) == 20
    for sentence in sentences:
        previous = "O"
        for tag in sentence["tags"]:
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:], sentence
            previous = tag


def test_to_iob2_keeps_adjacent_entities_apart():
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == [
        "B-PER",
        "I-PER",
        "B-PER",
        "O",
        "B-LOC",
    ]


def test_conll_iob2_reads_two_columns():
    sentences = read_conll(FIXTURES / "ner_iob2.conll")
    assert len(sentences) == 30
    assert all(len(s["tokens"]) == len(s["tags"]) for s in sentences)


def test_malformed_conll_line_names_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Oslo B-LOC\nis O\nnice\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.conll, line 3"):
        read_conll(path)
    path.write_text("Oslo B-LOC\nis PLACE\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: tag 'PLACE'"):
        read_conll(path)


def test_hf_datasets_folder(tmp_path):
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    ds = datasets.Dataset.from_dict(
        {"text": ["good", "bad", "fine"], "label": [1, 0, 1]}, features=features
    )
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "hf"))
    rows = read_hf(tmp_path / "hf")
    assert [r["label"] for r in rows] == ["pos", "neg", "pos"]
    with pytest.raises(DataError, match="splits"):
        read_hf(tmp_path / "hf", split="validation")


def test_stratified_split_is_seeded_and_keeps_proportions():
    records = [{"text": f"t{i}", "label": "a" if i % 4 else "b"} for i in range(200)]
    keep, held = split_records(records, 0.2, seed=42)
    _keep2, held2 = split_records(records, 0.2, seed=42)
    assert held == held2 and len(held) == 40 and len(keep) == 160
    assert sum(r["label"] == "b" for r in held) == 10  # 25% of 40, as in the whole


def test_a_label_seen_once_stays_in_training():
    records = [{"text": f"t{i}", "label": "a" if i % 2 else "b"} for i in range(40)] + [
        {"text": "x", "label": "rare"}
    ]
    for seed in range(5):
        keep, held = split_records(records, 0.3, seed=seed)
        assert {"text": "x", "label": "rare"} in keep and len(keep) + len(held) == 41


def test_max_train_samples_is_a_stratified_sample_not_the_first_rows(tmp_path):
    path = tmp_path / "grouped.csv"
    path.write_text(
        "text,label\n" + "".join(f"t{i},{'ab'[i >= 50]}\n" for i in range(100)), encoding="utf-8"
    )
    config = load_config(None, [f"data.train={path}", "data.max_train_samples=20"])
    train = load_splits(config.data, "text")["train"]
    assert len(train) == 20 and sum(r["label"] == "a" for r in train) == 10


def test_finbert_protocol_split_sizes():
    config = load_config(
        None,
        [
            f"data.train={FIXTURES / 'classification.csv'}",
            "data.test_size=0.25",
            "data.validation_size=0.25",
        ],
    )
    splits = load_splits(config.data, "text")
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (24, 12, 12)
    texts = [r["text"] for s in splits.values() for r in s]
    assert len(texts) == len(set(texts)) == 48


def test_train_on_validation_is_the_final_fit_with_test_still_held_out():
    protocol = [
        f"data.train={FIXTURES / 'classification.csv'}",
        "data.test_size=0.25",
        "data.validation_size=0.25",
    ]
    chosen = load_splits(load_config(None, protocol).data, "text")
    final = load_splits(
        load_config(None, [*protocol, "data.train_on_validation=true"]).data, "text"
    )
    assert final["validation"] == []
    assert final["test"] == chosen["test"]  # the same held-out test records
    assert final["train"] == chosen["train"] + chosen["validation"]
    with pytest.raises(ConfigError, match="there are none: set data.validation"):
        load_config(
            None, [f"data.train={FIXTURES / 'classification.csv'}", "data.train_on_validation=true"]
        )


def test_jsonl_ner_records(tmp_path):
    path = tmp_path / "ner.jsonl"
    path.write_text(
        json.dumps({"tokens": ["Anna", "works"], "tags": ["I-PER", "O"]}) + "\n", encoding="utf-8"
    )
    config = load_config(None, ["task=ner", "data.format=jsonl", f"data.train={path}"])
    assert load_splits(config.data, "tokens")["train"] == [
        {"tokens": ["Anna", "works"], "tags": ["B-PER", "O"]}
    ]


def test_group_split_keeps_each_group_on_one_side():
    # SQuAD-style: questions of one article must never be on both sides of a split.
    records = [{"text": f"q{i}", "title": f"article{i % 10}"} for i in range(200)]
    keep, held = split_records(records, 0.2, seed=7, group="title")
    assert {r["title"] for r in keep}.isdisjoint({r["title"] for r in held})
    assert len(keep) + len(held) == 200 and len(held) == 40  # 2 of 10 equal articles
    assert split_records(records, 0.2, seed=7, group="title") == (keep, held)
    assert split_records(records, 0.2, seed=8, group="title")[1] != held


def test_group_split_needs_two_groups():
    records = [{"text": f"q{i}", "title": "only"} for i in range(10)]
    with pytest.raises(DataError, match="at least two"):
        split_records(records, 0.2, seed=0, group="title")
