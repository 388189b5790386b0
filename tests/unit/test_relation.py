"""Relation extraction: official SemEval score, readers, markers, and every PEFT method end to end."""

from __future__ import annotations

import json
import math

import pytest
from conftest import ROOT

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.data import DataError
from lepton_nlp.data.semeval import parse_marked, read_relation_jsonl, read_semeval
from lepton_nlp.evaluation.relation import relation_metrics, relation_type
from lepton_nlp.inference import Predictor
from lepton_nlp.peft_methods import METHODS
from lepton_nlp.tasks import TaskSpec, get_task
from lepton_nlp.tasks.relation import (
    RelationCollator,
    RelationOptions,
    encode_items,
    mark_arguments,
    relation_pairs,
)
from lepton_nlp.training import train

# Prefix tuning is refused on encoders (transformers 5 dropped past_key_values there).
ENCODER_METHODS = [m for m in METHODS if m != "prefix"]

# Invented sentences: (template, label); {a} is e1, {b} is e2.
TEMPLATES = [
    ("The <e1>{a}</e1> caused a long <e2>{b}</e2> in the valley.", "Cause-Effect(e1,e2)"),
    ("A <e1>{a}</e1> was produced by the old <e2>{b}</e2> last year.", "Cause-Effect(e2,e1)"),
    ("The <e1>{a}</e1> stood next to the <e2>{b}</e2> all day.", "Other"),
]
NOUNS = [
    ("storm", "flood"),
    ("fire", "smoke"),
    ("virus", "fever"),
    ("quake", "damage"),
    ("drought", "famine"),
    ("spark", "blaze"),
    ("leak", "stain"),
    ("crash", "delay"),
    ("strike", "shortage"),
    ("frost", "crack"),
    ("wind", "noise"),
    ("tremor", "panic"),
]


def _semeval_text() -> str:
    lines, n = [], 0
    for a, b in NOUNS:
        for template, label in TEMPLATES:
            n += 1
            lines += [f'{n}\t"{template.format(a=a, b=b)}"', label, "Comment:", ""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def semeval_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("semeval") / "TRAIN.TXT"
    path.write_text(_semeval_text(), encoding="utf-8")
    return path


def _overrides(semeval_file) -> list[str]:
    return [
        "task=relation",
        "data.format=semeval",
        f"data.train={semeval_file}",
        "data.validation_size=0.25",
    ]


MARKED = [
    "The <e1>storm</e1> caused a long <e2>flood</e2> in the valley.",
    "A <e1>fever</e1> was produced by the old <e2>virus</e2> last year.",
]


# --- the official score ------------------------------------------------------------------


def test_official_score_hand_computed():
    refs = [
        "A(e1,e2)",
        "A(e1,e2)",
        "A(e2,e1)",
        "B(e1,e2)",
        "B(e1,e2)",
        "Other",
        "Other",
    ]
    preds = [
        "A(e1,e2)",  # right
        "A(e2,e1)",  # right type, wrong direction: an error charged to A's precision
        "A(e2,e1)",  # right
        "B(e1,e2)",  # right
        "Other",  # missed B
        "B(e2,e1)",  # a B that is not there
        "Other",  # right, but Other is not averaged
    ]
    m = relation_metrics(preds, refs)
    # A: 2 correct of 3 predicted, 3 gold -> P = R = F1 = 2/3. B: 1 of 2, 2 gold -> 1/2.
    assert math.isclose(m["f1_A"], 2 / 3)
    assert math.isclose(m["f1_B"], 1 / 2)
    assert math.isclose(m["macro_f1"], (2 / 3 + 1 / 2) / 2)  # 7/12
    assert math.isclose(m["micro_precision"], 3 / 5) and math.isclose(m["micro_recall"], 3 / 5)
    assert math.isclose(m["accuracy"], 4 / 7)
    assert "f1_Other" not in m
    # Direction ignored it would be A = 1.0: the official score is lower.
    assert relation_metrics([relation_type(p) for p in preds], [relation_type(r) for r in refs])[
        "f1_A"
    ] == pytest.approx(1.0)


def test_official_score_edge_cases():
    # A type only predicted (not in the key) is not averaged; it only costs accuracy.
    m = relation_metrics(["A(e1,e2)", "C(e1,e2)"], ["A(e1,e2)", "Other"])
    assert m["macro_f1"] == 1.0 and m["accuracy"] == 0.5
    # Precision 0 when every prediction of a type has the wrong direction.
    m = relation_metrics(["A(e2,e1)", "Other"], ["A(e1,e2)", "Other"])
    assert m["macro_f1"] == 0.0 and m["f1_A"] == 0.0
    # Labels without a direction are their own type; a custom no-relation label.
    m = relation_metrics(["founded_by", "none"], ["founded_by", "none"], other="none")
    assert m["macro_f1"] == 1.0 and "f1_none" not in m
    with pytest.raises(ValueError, match="2 predictions for 1"):
        relation_metrics(["a", "b"], ["a"])


# --- readers -----------------------------------------------------------------------------


def test_parse_marked():
    record = parse_marked("The <e1>child</e1> was put in the <e2>cradle</e2>.")
    text = record["text"]
    assert text == "The child was put in the cradle."
    assert text[record["head"]["start"] : record["head"]["end"]] == "child"
    assert text[record["tail"]["start"] : record["tail"]["end"]] == "cradle"
    with pytest.raises(DataError, match="expected both"):
        parse_marked("The <e1>child</e1> slept.")
    with pytest.raises(DataError, match="twice"):
        parse_marked("<e1>a</e1> <e1>b</e1> <e2>c</e2>")


def test_read_semeval(semeval_file, tmp_path):
    records = read_semeval(semeval_file)
    assert len(records) == 36
    first = records[0]
    assert first["id"] == "1" and first["label"] == "Cause-Effect(e1,e2)"
    assert first["text"] == "The storm caused a long flood in the valley."
    assert first["text"][first["tail"]["start"] : first["tail"]["end"]] == "flood"
    # An unlabelled test file: sentences only.
    unlabelled = tmp_path / "TEST.TXT"
    unlabelled.write_text('8001\t"The <e1>a</e1> and <e2>b</e2>."\n8002\t"<e1>c</e1> <e2>d</e2>"\n')
    assert [r.get("label") for r in read_semeval(unlabelled)] == [None, None]
    bad = tmp_path / "bad.txt"
    bad.write_text('1\t"no markers here"\nOther\n')
    with pytest.raises(DataError, match=r"bad.txt, line 1: expected both"):
        read_semeval(bad)


def test_read_relation_jsonl(tmp_path):
    path = tmp_path / "rel.jsonl"
    rows = [
        {
            "text": "Anna Berg founded Halden Steel.",
            "head": [0, 9],
            "tail": [18, 30],
            "label": "founded",
        },
        {
            "text": "Halden Steel hired Anna Berg.",
            "head": {"start": 0, "end": 12, "type": "ORG"},
            "tail": {"start": 19, "end": 28, "type": "PER"},
            "label": "employs",
        },
        {"text": "<e1>Nordvik</e1> is in <e2>Tampere</e2>.", "label": "located_in"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    records = read_relation_jsonl(path)
    assert records[0]["head"] == {"start": 0, "end": 9}
    assert records[1]["tail"] == {"start": 19, "end": 28, "type": "PER"}
    assert records[2]["text"] == "Nordvik is in Tampere."
    path.write_text(json.dumps({"text": "short", "head": [0, 3], "tail": [2, 5], "label": "x"}))
    with pytest.raises(DataError, match="overlap"):
        read_relation_jsonl(path)
    path.write_text(json.dumps({"text": "short", "head": [0, 3], "tail": [4, 9], "label": "x"}))
    with pytest.raises(DataError, match=r"rel.jsonl, line 1, tail: span \[4, 9\) is not inside"):
        read_relation_jsonl(path)


# --- markers, masks, options ---------------------------------------------------------------


def test_markers_and_masks(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    item = {
        "text": "Anna Berg founded Halden Steel in Oslo.",
        "head": {"start": 18, "end": 30, "type": "ORG"},
        "tail": {"start": 0, "end": 9, "type": "PER"},
    }
    options = RelationOptions()
    marked, ranges = mark_arguments(item, options)
    assert marked == "# Anna Berg # founded @ Halden Steel @ in Oslo."
    assert marked[ranges["head"][0] : ranges["head"][1]] == "@ Halden Steel @"
    typed, _ = mark_arguments(item, options, typed=True)
    assert typed == "# ^ PER ^ Anna Berg # founded @ * ORG * Halden Steel @ in Oslo."

    for pooling in ("mean", "start"):
        spec = TaskSpec(labels=["a", "b"], max_length=48, extra={"options": {"pooling": pooling}})
        (feature,) = encode_items([item], tokenizer, spec)
        tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
        head = [t for t, m in zip(tokens, feature["e1_mask"], strict=True) if m]
        tail = [t for t, m in zip(tokens, feature["e2_mask"], strict=True) if m]
        if pooling == "mean":
            assert tokenizer.convert_tokens_to_string(head) == tokenizer.decode(
                tokenizer("@ Halden Steel @", add_special_tokens=False)["input_ids"]
            )
            assert len(tail) == len(
                tokenizer("# Anna Berg #", add_special_tokens=False)["input_ids"]
            )
        else:
            assert len(head) == len(tail) == 1

    # A long text is cut to a window around the arguments, which stay whole.
    long_item = {
        "text": "word " * 60 + "the storm caused a flood" + " word" * 60,
        "head": {"start": 304, "end": 309},
        "tail": {"start": 319, "end": 324},
    }
    assert long_item["text"][304:309] == "storm" and long_item["text"][319:324] == "flood"
    spec = TaskSpec(labels=["a", "b"], max_length=24, extra={"options": {}})
    (feature,) = encode_items([long_item], tokenizer, spec)
    assert len(feature["input_ids"]) <= 24
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    head = [t for t, m in zip(tokens, feature["e1_mask"], strict=True) if m]
    assert tokenizer.convert_tokens_to_string(head[1:-1]) == "storm"

    batch = RelationCollator(tokenizer)(
        [*encode_items([item], tokenizer, TaskSpec(["a", "b"], extra={"options": {}})), feature]
    )
    assert batch["e1_mask"].shape == batch["input_ids"].shape


def test_options_are_checked():
    with pytest.raises(ConfigError, match="pooling='max'; choose mean or start"):
        load_config(None, ["task=relation", "task_options.pooling=max"])
    with pytest.raises(ConfigError, match="Did you mean task_options.pooling"):
        load_config(None, ["task=relation", "task_options.poling=mean"])
    with pytest.raises(ConfigError, match="same"):
        load_config(None, ["task=relation", "task_options.tail_marker=@"])


def test_label_space_adds_reverse_directions():
    task = get_task("relation")
    records = [{"label": "Cause-Effect(e1,e2)"}, {"label": "Other"}, {"label": "founded"}]
    assert task.label_space(records) == [
        "Cause-Effect(e1,e2)",
        "Cause-Effect(e2,e1)",
        "Other",
        "founded",
    ]
    with pytest.raises(DataError, match="one relation only"):
        task.label_space([{"label": "Other"}])


def test_relation_pairs():
    ner = {
        "text": "Anna Berg joined Halden Steel in Oslo .",
        "entities": [
            {"label": "ORG", "start": 17, "end": 29, "text": "Halden Steel", "score": 0.9},
            {"label": "PER", "start": 0, "end": 9, "text": "Anna Berg", "score": 0.9},
            {"label": "LOC", "start": 33, "end": 37, "text": "Oslo", "score": 0.8},
        ],
    }
    pairs = relation_pairs(ner)
    assert [(p["head"]["type"], p["tail"]["type"]) for p in pairs] == [
        ("PER", "ORG"),
        ("PER", "LOC"),
        ("ORG", "LOC"),
    ]
    assert relation_pairs(ner["text"], ner["entities"]) == pairs
    assert relation_pairs("no entities", []) == []
    with pytest.raises(DataError, match="not inside the text"):
        relation_pairs("short", [[0, 3], [2, 40]])


def test_shipped_config_loads():
    config = load_config(ROOT / "configs" / "relation_semeval2010.yaml")
    assert config.task == "relation" and config.data.format == "semeval"
    assert config.training.metric_for_best == "macro_f1"
    assert "${LEPTON_DATASETS}/semeval2010_task8/" in config.data.train


# --- end to end ----------------------------------------------------------------------------


def _same(before: list[dict], after: list[dict]) -> None:
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        assert b["label"] == a["label"]
        assert (b["head"], b["tail"]) == (a["head"], a["tail"])
        for label, score in b["scores"].items():
            assert math.isclose(score, a["scores"][label], abs_tol=1e-4)


@pytest.mark.parametrize("method", ENCODER_METHODS)
def test_relation_method_round_trip(method, semeval_file, base_overrides):
    config = load_config(
        None, [*_overrides(semeval_file), *base_overrides, f"peft.method={method}"]
    )
    result = train(config)
    before = result.predictor.predict(MARKED)
    after = Predictor.from_artifact(result.artifact, backend="torch").predict(MARKED)
    _same(before, after)
    figures = result.metrics["train"]
    if method != "full":
        assert figures["trainable_parameters"] < figures["total_parameters"] / 2
    assert {"macro_f1", "micro_f1", "accuracy"} <= set(result.metrics["validation"])
    assert set(before[0]["scores"]) == {"Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Other"}


def test_prediction_inputs_and_typed_jsonl(tmp_path, base_overrides):
    rows = []
    people = ["Anna Berg", "Lars Nilsen", "Eva Holm", "Jon Dahl", "Mia Lund", "Ole Sand"]
    firms = ["Halden Steel", "Nordvik Oyj", "Fjord Bank", "Polar Foods", "Tana Mining", "Vik Air"]
    for person, firm in zip(people, firms, strict=True):
        for text, label in (
            (f"{person} founded {firm} in Oslo.", "founded"),
            (f"{person} works for {firm} today.", "employee_of"),
            (f"{person} visited {firm} once.", "none"),
        ):
            p, f = text.index(person), text.index(firm)
            rows.append(
                {
                    "text": text,
                    "head": {"start": p, "end": p + len(person), "type": "PER"},
                    "tail": {"start": f, "end": f + len(firm), "type": "ORG"},
                    "label": label,
                }
            )
    path = tmp_path / "rel.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    overrides = [
        "task=relation",
        "data.format=jsonl",
        f"data.train={path}",
        "data.validation_size=0.25",
        "task_options.other_label=none",
        "task_options.pooling=start",
        "task_options.use_cls=false",
        *base_overrides,
        "training.epochs=1",
    ]
    result = train(load_config(None, overrides))
    predictor = Predictor.from_artifact(result.artifact, backend="torch")
    assert predictor.spec.extra["typed"] is True
    text = "Eva Holm founded Vik Air in Oslo."
    by_spans = predictor.predict_one({"text": text, "head": [0, 8], "tail": [17, 24]})
    by_markers = predictor.predict_one("<e1>Eva Holm</e1> founded <e2>Vik Air</e2> in Oslo.")
    assert by_spans["head"] == {"start": 0, "end": 8, "text": "Eva Holm"}
    assert by_markers["tail"]["text"] == "Vik Air"
    entities = [
        {"label": "PER", "start": 0, "end": 8},
        {"label": "ORG", "start": 17, "end": 24},
        {"label": "LOC", "start": 28, "end": 32},
    ]
    pairs = predictor.predict(relation_pairs(text, entities))
    assert [(p["head"]["text"], p["tail"]["text"]) for p in pairs] == [
        ("Eva Holm", "Vik Air"),
        ("Eva Holm", "Oslo"),
        ("Vik Air", "Oslo"),
    ]
    assert pairs[0]["head"]["type"] == "PER" and set(pairs[0]["scores"]) == {
        "employee_of",
        "founded",
        "none",
    }
    _same(result.predictor.predict(relation_pairs(text, entities)), pairs)
    metrics = predictor.evaluate(read_relation_jsonl(path))
    assert "f1_none" not in metrics and 0.0 <= metrics["macro_f1"] <= 1.0
    with pytest.raises(DataError, match="relation_pairs"):
        predictor.predict([42])
