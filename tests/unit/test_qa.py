"""Extractive QA: the official SQuAD metric, the reader, windows and offsets, n-best
post-processing, and every PEFT method trained, saved and reloaded on a tiny model."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import torch
from conftest import FIXTURES, ROOT
from transformers import AutoTokenizer

from lepton_nlp.cli import main
from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.data import DataError, load_splits
from lepton_nlp.data.squad import read_qa_jsonl, read_squad
from lepton_nlp.evaluation.squad import (
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_metrics,
)
from lepton_nlp.inference import Predictor
from lepton_nlp.peft_methods import METHODS
from lepton_nlp.tasks import TaskSpec, get_task
from lepton_nlp.training import train

SQUAD = FIXTURES / "squad_tiny.json"
ENCODER_METHODS = [m for m in METHODS if m != "prefix"]
# Windows the tiny model (128 positions) can hold: 48 tokens, questions up to 16, overlap 12.
WINDOW = {"stride": 12, "max_question_length": 16}


def qa_overrides() -> list[str]:
    return [
        "task=qa",
        "data.format=squad",
        f"data.train={SQUAD}",
        "data.split_group=title",
        "data.validation_size=0.2",
        "task_options.stride=12",
        "task_options.max_question_length=16",
        "task_options.max_answer_length=12",
    ]


def _spec(max_length: int = 48, **options) -> TaskSpec:
    return TaskSpec(
        labels=["start", "end"], max_length=max_length, extra={"options": {**WINDOW, **options}}
    )


# --- the official metric -------------------------------------------------------------------


def test_normalize_answer_follows_the_official_script():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear & the plum.") == "apple pear plum"
    # Articles only as whole words; hyphens are punctuation and vanish (no space left).
    assert normalize_answer("Theatre anthem") == "theatre anthem"
    assert normalize_answer("state-of-the-art") == "stateoftheart"
    assert normalize_answer("  ") == ""


def test_exact_match_and_f1_on_hand_made_answers():
    assert exact_match_score("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match_score("Broncos", "Denver Broncos") == 0.0
    assert f1_score("Broncos", "Denver Broncos") == pytest.approx(2 / 3)  # P 1, R 1/2
    assert f1_score("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)  # P 2/3, R 1
    assert f1_score("Carolina Panthers", "Denver Broncos") == 0.0
    # Token counts, not sets: "a a b" vs "a b" shares two tokens.
    assert f1_score("x x y", "x y") == pytest.approx(0.8)


def test_squad_metrics_take_the_best_gold_answer_and_average():
    scores = squad_metrics(
        ["1987", "a storm", "forty boats", ""],
        [["in 1987", "1987"], ["a winter storm"], ["about forty"], []],
    )
    # EM: 1, 0, 0, 1 (no gold answer, empty prediction); F1: 1, 2/3, 1/2, 1.
    assert scores["exact_match"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 1 / 2 + 1) / 4)
    assert squad_metrics(["anything"], [[]]) == {"exact_match": 0.0, "f1": 0.0}
    assert squad_metrics([], []) == {"exact_match": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_metrics(["a", "b"], [["a"]])


# --- reader ----------------------------------------------------------------------------------


def test_read_squad_flattens_articles_into_question_records():
    records = read_squad(SQUAD)
    assert len(records) == 24
    first = records[0]
    assert set(first) == {"id", "question", "context", "answers", "title"}
    assert first["title"] == "Norrvik_Harbour"
    assert first["answers"] == {"text": ["1987", "in 1987"], "answer_start": [82, 79]}
    for record in records:
        for text, start in zip(*record["answers"].values(), strict=True):
            assert record["context"][start : start + len(text)] == text
    assert len({r["title"] for r in records}) == 4


def test_read_squad_errors_name_the_question_and_the_fix(tmp_path):
    tree = json.loads(SQUAD.read_text(encoding="utf-8"))
    tree["data"][1]["paragraphs"][0]["qas"][2]["answers"][0]["answer_start"] = 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tree), encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"'Glass_Bridge_Company', paragraph 0, question 2: answer .* not at answer_start=3",
    ):
        read_squad(bad)
    lines = tmp_path / "lines.json"
    lines.write_text('{"question": "q", "context": "c"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="data.format=jsonl"):
        read_squad(lines)


def test_jsonl_reader_and_squad2_impossible_questions(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "a", "question": "Who?", "context": "Anna came.", "answers": {"text": ["Anna"], "answer_start": [0]}},
        {"question": "Why?", "context": "Anna came.", "answers": [], "is_impossible": True},
        {"question": "When?", "context": "Anna came.", "is_impossible": True,
         "answers": [{"text": "came", "answer_start": 5}]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    records = read_qa_jsonl(path)
    assert records[0]["answers"] == {"text": ["Anna"], "answer_start": [0]}
    assert records[1]["answers"] == records[2]["answers"] == {"text": [], "answer_start": []}
    path.write_text('{"question": "", "context": "x", "answers": []}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1: 'question' must be a non-empty string"):
        read_qa_jsonl(path)


def test_article_split_keeps_whole_articles_apart():
    config = load_config(None, [*qa_overrides(), "data.test_size=0.2"])
    task = get_task("qa")
    splits = load_splits(config.data, task.record_kind, task.read_records)
    titles = {name: {r["title"] for r in recs} for name, recs in splits.items()}
    assert all(titles.values())
    assert not titles["train"] & titles["test"]
    assert not titles["train"] & titles["validation"]
    assert not titles["validation"] & titles["test"]
    assert sum(len(r) for r in splits.values()) == 24


# --- windows and offsets ---------------------------------------------------------------------


def test_encode_marks_the_answer_tokens_in_every_window_that_holds_it(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    task = get_task("qa")
    records = read_squad(SQUAD)
    # Questions stay whole (under 24 tokens), so the windows can be rebuilt here.
    assert max(len(tokenizer(r["question"])["input_ids"]) for r in records) < 24
    features = task.encode(records, tokenizer, _spec(max_question_length=24))
    assert len(features) > len(records)  # long contexts make several windows
    encoded = tokenizer(
        [r["question"] for r in records],
        [r["context"] for r in records],
        truncation="only_second",
        max_length=48,
        stride=12,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    answered = set()
    for w, feature in enumerate(features):
        assert len(feature["input_ids"]) <= 48
        record = records[encoded["overflow_to_sample_mapping"][w]]
        start, end = feature["start_positions"], feature["end_positions"]
        if start == 0:
            assert end == 0  # [CLS]: the answer is not in this window
            continue
        offsets = encoded["offset_mapping"][w]
        text = record["context"][offsets[start][0] : offsets[end][1]]
        assert text == record["answers"]["text"][0]
        answered.add(record["id"])
    assert answered == {r["id"] for r in records}


def test_window_settings_that_cannot_work_are_refused_clearly(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    records = read_squad(SQUAD)[:2]
    with pytest.raises(ConfigError, match="leaves 13 tokens of context.*stride=20"):
        get_task("qa").encode(records, tokenizer, _spec(max_length=32, stride=20))
    with pytest.raises(ConfigError, match=r"task_options.n_best=0 must be at least 1"):
        load_config(None, ["task=qa", "task_options.n_best=0"])
    with pytest.raises(ConfigError, match=r"Did you mean task_options.stride\?"):
        load_config(None, ["task=qa", "task_options.strides=64"])


def test_long_questions_are_cut_to_max_question_length(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    record = read_squad(SQUAD)[0]
    long_question = " ".join(["when was the harbour rebuilt"] * 20) + "?"
    features = get_task("qa").encode(
        [{**record, "question": long_question}], tokenizer, _spec(max_question_length=10)
    )
    for feature in features:
        assert "token_type_ids" not in feature  # see lepton_nlp.tasks.qa._windows
        assert feature["input_ids"].index(tokenizer.sep_token_id) <= 10 + 1  # [CLS] question [SEP]


# --- n-best post-processing through a scripted model -----------------------------------------


class _ScriptedQa(torch.nn.Module):
    """Puts high start/end logits on the tokens covering chosen character spans of the context."""

    def __init__(self, tokenizer, spans, null=-10.0, virtual_tokens=0):
        super().__init__()
        self.tokenizer, self.spans, self.null = tokenizer, spans, null
        self.virtual_tokens = virtual_tokens
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    @property
    def device(self):
        return self.anchor.device

    def forward(self, input_ids, **kwargs):
        self.calls.append(input_ids.shape)
        batch, length = input_ids.shape
        start = torch.full((batch, length), -10.0)
        end = torch.full((batch, length), -10.0)
        start[:, 0] = end[:, 0] = self.null / 2
        for row in range(batch):
            text = self.tokenizer.decode(input_ids[row])
            for (first, last), (s_logit, e_logit) in self.spans.items():
                ids = input_ids[row].tolist()
                first_id = self.tokenizer.convert_tokens_to_ids(first)
                last_id = self.tokenizer.convert_tokens_to_ids(last)
                if first_id in ids and last_id in ids and "[SEP]" in text:
                    sep = ids.index(self.tokenizer.sep_token_id)
                    s = ids.index(first_id, sep)
                    e = ids.index(last_id, s)
                    start[row, s], end[row, e] = s_logit, e_logit
        pad = torch.full((batch, self.virtual_tokens), 50.0)  # must be ignored
        return SimpleNamespace(
            start_logits=torch.cat([pad, start], 1), end_logits=torch.cat([pad, end], 1)
        )


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory):
    """A whole-word tokenizer, so the scripted model can point at words by name."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [
        "norrvik",
        "harbour",
        "rebuilt",
        "1987",
        "storm",
        "forty",
        "boats",
        "ferry",
        "skarpö",
        "seven",
        "when",
        "was",
        "the",
        "of",
        "in",
    ]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {w: i for i, w in enumerate([*specials, *words, ".", ",", "?"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    return fast


CONTEXT = (
    "Norrvik harbour was rebuilt in 1987 after a storm. Forty boats use it, "
    "and a ferry goes to Skarpö at seven."
)
ITEM = {"question": "When was the harbour rebuilt?", "context": CONTEXT}


def test_best_span_maps_back_to_characters_of_the_context(word_tokenizer):
    task = get_task("qa")
    model = _ScriptedQa(
        word_tokenizer, {("1987", "1987"): (5.0, 5.0), ("forty", "boats"): (3.0, 3.0)}
    )
    (prediction,) = task.predict_batch(model, word_tokenizer, [task.prepare_input(ITEM)], _spec(64))
    assert prediction["answer"] == "1987"
    assert CONTEXT[prediction["start"] : prediction["end"]] == "1987"
    assert prediction["no_answer"] is False
    assert 0.5 < prediction["score"] <= 1.0
    # Original casing and accents come back from the context, not from the tokens.
    model = _ScriptedQa(word_tokenizer, {("ferry", "skarpö"): (5.0, 5.0)})
    (prediction,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64))
    assert prediction["answer"] == "ferry goes to Skarpö"


def test_spans_longer_than_max_answer_length_or_reversed_are_skipped(word_tokenizer):
    task = get_task("qa")
    # "Norrvik ... 1987" is 6 tokens: too long for 4, so the next best span wins.
    spans = {("norrvik", "1987"): (9.0, 9.0), ("forty", "boats"): (2.0, 2.0)}
    model = _ScriptedQa(word_tokenizer, spans)
    (short,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64, max_answer_length=4))
    (long,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64, max_answer_length=8))
    assert short["answer"] == "Forty boats"
    assert long["answer"] == "Norrvik harbour was rebuilt in 1987"


def test_answer_in_a_later_window_of_a_long_context(word_tokenizer):
    task = get_task("qa")
    filler = " ".join(["the harbour was rebuilt."] * 9)
    context = f"{filler} A ferry goes to Skarpö at seven. {filler}"
    model = _ScriptedQa(word_tokenizer, {("skarpö", "seven"): (6.0, 6.0)})
    item = {"question": "Where?", "context": context}
    (prediction,) = task.predict_batch(model, word_tokenizer, [item], _spec(40, stride=12))
    windows = word_tokenizer(
        ["Where?"], [context], truncation="only_second", max_length=40, stride=12,
        return_overflowing_tokens=True,
    )["input_ids"]  # fmt: skip
    skarpo = word_tokenizer.convert_tokens_to_ids("skarpö")
    assert sum(shape[0] for shape in model.calls) == len(windows) == 4
    assert [skarpo in ids for ids in windows] == [False, True, True, False]
    assert prediction["answer"] == "Skarpö at seven"
    assert context[prediction["start"] : prediction["end"]] == prediction["answer"]
    # Both overlapping windows find the span: it counts once in the n-best probabilities.
    assert prediction["score"] > 0.99


def test_no_answer_when_the_null_score_wins_by_the_threshold(word_tokenizer):
    task = get_task("qa")
    model = _ScriptedQa(word_tokenizer, {("1987", "1987"): (2.0, 2.0)}, null=6.0)
    # Null 6 vs best span 4: a difference of 2.
    (v1,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64))
    (v2,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64, allow_no_answer=True))
    (strict,) = task.predict_batch(
        model, word_tokenizer, [ITEM], _spec(64, allow_no_answer=True, null_threshold=2.5)
    )
    assert v1["answer"] == "1987" and not v1["no_answer"]
    assert v2 == {
        "answer": "",
        "start": None,
        "end": None,
        "score": pytest.approx(v2["score"]),
        "no_answer": True,
        "null_score_diff": pytest.approx(2.0),
    }
    assert v2["score"] > 0.5
    assert strict["answer"] == "1987" and not strict["no_answer"]


def test_virtual_token_positions_of_prompt_learning_are_ignored(word_tokenizer):
    task = get_task("qa")
    model = _ScriptedQa(word_tokenizer, {("1987", "1987"): (5.0, 5.0)}, virtual_tokens=7)
    (prediction,) = task.predict_batch(model, word_tokenizer, [ITEM], _spec(64))
    assert prediction["answer"] == "1987"
    collate = task.virtual_token_collator(task.collator(word_tokenizer), 7)
    batch = collate([{"input_ids": [2, 5, 3], "start_positions": 1, "end_positions": 1}])
    assert batch["start_positions"].tolist() == [8] and batch["end_positions"].tolist() == [8]


def test_prepare_input_accepts_dicts_and_pairs_and_refuses_the_rest():
    task = get_task("qa")
    assert task.prepare_input(("Who?", "Anna came.")) == {
        "question": "Who?",
        "context": "Anna came.",
    }
    assert task.prepare_input({**ITEM, "id": "x"}) == ITEM
    with pytest.raises(DataError, match=r"\{'question': \.\.\., 'context': \.\.\.\}"):
        task.prepare_input("just a string")
    with pytest.raises(DataError, match="empty question"):
        task.prepare_input({"question": " ", "context": "x"})


# --- training, every PEFT method -------------------------------------------------------------


QUESTIONS = [
    {"question": "Who opened the town museum?", "context": read_squad(SQUAD)[5]["context"]},
    ("How long is the longest race?", read_squad(SQUAD)[-4]["context"]),
]


@pytest.mark.parametrize("method", ENCODER_METHODS)
def test_qa_method_round_trip(method, base_overrides):
    config = load_config(None, [*qa_overrides(), *base_overrides, f"peft.method={method}"])
    result = train(config)
    before = result.predictor.predict(QUESTIONS)
    after = Predictor.from_artifact(result.artifact, backend="torch").predict(QUESTIONS)
    for b, a, question in zip(before, after, QUESTIONS, strict=True):
        context = question["context"] if isinstance(question, dict) else question[1]
        assert (b["answer"], b["start"], b["end"]) == (a["answer"], a["start"], a["end"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
        if not a["no_answer"]:
            assert context[a["start"] : a["end"]] == a["answer"]
    validation = result.metrics["validation"]
    assert {"f1", "exact_match", "examples"} <= set(validation)
    assert 0.0 <= validation["exact_match"] <= validation["f1"] <= 1.0
    figures = result.metrics["train"]
    if method != "full":
        assert figures["trainable_parameters"] < figures["total_parameters"] / 2
    assert any("eval_loss" in entry for entry in result.metrics["history"])


def test_qa_learns_the_fixture_and_the_predictor_evaluates_records(
    base_overrides, capsys, monkeypatch
):
    """Full fine-tuning on all 24 questions, scored on the same questions: it must learn them."""
    config = load_config(
        None,
        [
            *qa_overrides(),
            *base_overrides,
            "data.validation_size=0",
            "training.eval_strategy=no",
            "training.early_stopping_patience=null",
            "peft.method=full",
            "training.learning_rate=3e-3",
            "training.epochs=30",
            "training.warmup_ratio=0",
        ],
    )
    result = train(config)
    records = read_squad(SQUAD)
    metrics = Predictor.from_artifact(result.artifact, backend="torch").evaluate(records)
    assert metrics["examples"] == 24
    assert metrics["f1"] > 0.5, metrics
    # The command line reads SQuAD files through the task's reader, and JSON lines to predict.
    capsys.readouterr()
    assert main(["eval", str(result.artifact), "--data", str(SQUAD)]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(metrics["f1"], abs=1e-6)
    line = json.dumps({"id": "x", "question": "Who opened the museum?", "context": CONTEXT})
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(line.encode() + b"\n")))
    assert main(["predict", str(result.artifact)]) == 0
    (out,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert out["id"] == "x" and {"answer", "start", "end", "score", "no_answer"} <= set(out)


def test_shipped_squad_config_holds_out_articles():
    config = load_config(ROOT / "configs" / "qa_squad.yaml")
    assert config.task == "qa" and config.data.format == "squad"
    assert config.data.split_group == "title"
    assert config.task_options.stride < config.model.max_length
