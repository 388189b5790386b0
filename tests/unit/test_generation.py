"""Summarization and translation: readers, metrics, target-only loss, left padding, PEFT round trips.

Two tiny families built here from configs, nothing downloaded: a 2-layer Llama causal LM
with a byte-level BPE tokenizer trained in the fixture (with a chat template), and an
EncoderDecoderModel warm-started from the shared tiny BERT.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lepton_nlp.config import ConfigError, load_config
from lepton_nlp.data import DataError
from lepton_nlp.data.pairs import read_pairs_csv, read_pairs_jsonl, read_parallel
from lepton_nlp.evaluation.generation import (
    bleu_chrf,
    generation_metrics,
    lead_baseline,
    rouge_scores,
)
from lepton_nlp.inference import Predictor
from lepton_nlp.inference.predictor import predict_items
from lepton_nlp.peft_methods import METHODS
from lepton_nlp.tasks import TaskSpec, get_task
from lepton_nlp.training import train

SENTENCES = [
    "the cat sat on the red mat near the door",
    "a man walks his dog in the park every morning",
    "the company reported higher sales this quarter",
    "two children play football on the green grass",
    "the market closed lower after a long day",
    "a woman reads a book on the train to work",
    "the team won the final match of the season",
    "profit rose as the new product sold well",
    "a dog runs after a ball on the beach",
    "the bank raised its rates again in march",
    "people wait for the bus in the rain",
    "the shop opens early on saturday morning",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _pairs() -> list[dict]:
    return [{"source": s, "target": " ".join(s.split()[1:4])} for s in SENTENCES]


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory) -> str:
    """A 2-layer, hidden-32 Llama with a byte-level BPE tokenizer (pad, eos, chat template)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    tokenizer.train_from_iterator(
        SENTENCES * 3 + ["Summarize the following text in one or two sentences."],
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return str(out)


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in _pairs()) + "\n", encoding="utf-8")
    return path


def _overrides(model: str, data: Path, tmp_path: Path, task: str = "summarization") -> list[str]:
    return [
        f"task={task}",
        "data.format=jsonl",
        f"data.train={data}",
        "data.validation_size=0.25",
        f"model.name={model}",
        "model.max_length=48",
        f"training.output_dir={tmp_path / 'artifact'}",
        "training.max_steps=4",
        "training.batch_size=4",
        "training.eval_batch_size=4",
        "training.progress=false",
        "training.report_to=[none]",
        "training.eval_strategy=no",
        "training.early_stopping_patience=null",
        "task_options.max_new_tokens=6",
        "task_options.max_target_length=12",
        "evaluation.batch_size=4",
    ]


def _spec(task_name: str = "summarization", **options) -> TaskSpec:
    return TaskSpec(labels=[], max_length=48, extra={"options": options})


# --- readers ------------------------------------------------------------------------------


def test_jsonl_reads_one_reference_or_numbered_references(tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"dialogue": "#Person1#: Hi.", "summary": "They greet."}) + "\n")
    test = tmp_path / "test.jsonl"
    row = {"dialogue": "#Person1#: Bye.", "summary1": "A", "summary2": "B", "summary3": " "}
    test.write_text(json.dumps(row) + "\n")
    assert read_pairs_jsonl(dev, "dialogue", "summary") == [
        {"source": "#Person1#: Hi.", "target": "They greet."}
    ]
    # summary1..3 stand in for summary; blank references are dropped.
    assert read_pairs_jsonl(test, "dialogue", "summary")[0]["target"] == ["A", "B"]
    assert read_pairs_jsonl(test, "dialogue", "summary2,summary1")[0]["target"] == ["B", "A"]
    with pytest.raises(
        DataError, match=r"test.jsonl, line 1: missing target field\(s\) \['gist'\]"
    ):
        read_pairs_jsonl(test, "dialogue", "gist")
    with pytest.raises(DataError, match="missing source field 'text'.*data.source_column"):
        read_pairs_jsonl(test, "text", "summary")


def test_csv_reads_pairs(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('source,target\n"a, b",c\n', encoding="utf-8")
    assert read_pairs_csv(path) == [{"source": "a, b", "target": "c"}]


def test_parallel_files_pair_up_line_by_line(tmp_path):
    (tmp_path / "train.en").write_text("A dog.\n\nA cat.\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("Ein Hund.\n\nEine Katze.\n", encoding="utf-8")
    assert read_parallel(tmp_path / "train", "en", "de") == [
        {"source": "A dog.", "target": "Ein Hund."},
        {"source": "A cat.", "target": "Eine Katze."},
    ]
    (tmp_path / "bad.en").write_text("A dog.\nA cat.\n", encoding="utf-8")
    (tmp_path / "bad.de").write_text("Ein Hund.\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 2 lines but .*bad.de has 1"):
        read_parallel(tmp_path / "bad", "en", "de")
    (tmp_path / "gap.en").write_text("A dog.\nA cat.\n", encoding="utf-8")
    (tmp_path / "gap.de").write_text("Ein Hund.\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gap.de, line 2: blank line"):
        read_parallel(tmp_path / "gap", "en", "de")
    with pytest.raises(DataError, match=r"missing.fr does not exist.*data.source_lang"):
        read_parallel(tmp_path / "missing", "fr", "de")


def test_config_reads_parallel_splits_through_the_task(tmp_path):
    from lepton_nlp.data import load_splits

    for split in ("train", "val"):
        (tmp_path / f"{split}.en").write_text("A dog.\nA cat.\n", encoding="utf-8")
        (tmp_path / f"{split}.de").write_text("Ein Hund.\nEine Katze.\n", encoding="utf-8")
    config = load_config(
        None,
        [
            "task=translation",
            "data.format=parallel",
            f"data.train={tmp_path / 'train'}",
            f"data.validation={tmp_path / 'val'}",
        ],
    )
    task = get_task("translation")
    splits = load_splits(config.data, task.record_kind, task.read_records)
    assert splits["validation"][1] == {"source": "A cat.", "target": "Eine Katze."}


# --- metrics ------------------------------------------------------------------------------


def test_rouge_takes_the_best_reference_per_example_with_stemming():
    perfect = rouge_scores(["the cat sat"], ["the cat sat"])
    assert perfect == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    # Porter stemming: "running" and "runs" both become "run".
    stemmed = rouge_scores(["dogs running"], ["dog runs"])
    assert stemmed["rouge1"] == pytest.approx(1.0)
    best = rouge_scores(["a b c d"], [["x y", "a b c d"]])
    assert best["rougeL"] == pytest.approx(1.0)
    mean = rouge_scores(["a b", "q"], [["a b", "zzz"], "r"])
    assert mean["rouge1"] == pytest.approx(0.5)


def test_bleu_and_chrf_use_every_reference():
    hyp = ["the quick brown fox jumps over the lazy dog"]
    one = bleu_chrf(hyp, ["a fast brown fox leaps over a sleepy dog"])
    two = bleu_chrf(hyp, [["a fast brown fox leaps over a sleepy dog", hyp[0]]])
    assert two["bleu"] == pytest.approx(100.0) and two["chrf"] == pytest.approx(100.0)
    assert one["bleu"] < 30 and one["chrf"] < 80
    # Reference counts may differ between examples.
    mixed = bleu_chrf(hyp * 2, [hyp[0], [hyp[0], "something else entirely"]])
    assert mixed["bleu"] == pytest.approx(100.0)


def test_generation_metrics_and_lead_baseline():
    metrics = generation_metrics(["a b c"], [["a b c"]])
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "bleu", "chrf", "gen_words"}
    assert metrics["gen_words"] == 3
    assert lead_baseline("#P1#: Hi.\n#P2#: Hello.\n#P1#: Bye.") == "#P1#: Hi.\n#P2#: Hello."
    assert lead_baseline("One. Two! Three?", n=2) == "One. Two!"
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])


# --- encoding and generation --------------------------------------------------------------


def _prepared(task_name: str, model: str, **options):
    from transformers import AutoTokenizer

    task = get_task(task_name)
    spec = _spec(task_name, **options)
    tokenizer = task.prepare_tokenizer(AutoTokenizer.from_pretrained(model), spec)
    return task, spec, tokenizer


def test_causal_loss_covers_the_target_only(tiny_causal):
    task, spec, tokenizer = _prepared("summarization", tiny_causal)
    assert spec.extra["family"] == "causal" and tokenizer.padding_side == "left"
    (feature,) = task.encode([{"source": SENTENCES[0], "target": "cat mat"}], tokenizer, spec)
    target = [*tokenizer("cat mat", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    n_prompt = len(feature["input_ids"]) - len(target)
    assert feature["labels"] == [-100] * n_prompt + target
    assert feature["input_ids"][n_prompt:] == target
    prompt = tokenizer.decode(feature["input_ids"][:n_prompt])
    # The chat template wraps the instruction; generation starts after the assistant tag.
    assert prompt.startswith("<|user|>Summarize") and prompt.endswith("<|assistant|>")
    # Several references: training uses the first.
    (multi,) = task.encode([{"source": "x", "target": ["cat mat", "dog"]}], tokenizer, spec)
    assert multi["labels"][-len(target) :] == target


def test_long_sources_are_cut_not_the_instruction(tiny_causal):
    task, spec, tokenizer = _prepared("summarization", tiny_causal, chat_template=False)
    long_source = " ".join(SENTENCES * 4)
    (feature,) = task.encode([{"source": long_source, "target": "x"}], tokenizer, spec)
    prompt = [
        i for i, label in zip(feature["input_ids"], feature["labels"], strict=True) if label == -100
    ]
    assert len(prompt) <= spec.max_length
    assert tokenizer.decode(prompt).startswith("Summarize the following text")


def test_left_padded_batch_generates_as_one_at_a_time(tiny_causal):
    from transformers import AutoModelForCausalLM

    # Special tokens suppressed, so the random model writes 8 visible tokens for each input.
    task, spec, tokenizer = _prepared(
        "summarization",
        tiny_causal,
        max_new_tokens=8,
        generate_options={"suppress_tokens": list(range(6))},
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_causal).eval()
    items = [{"source": s} for s in (SENTENCES[0], "short", SENTENCES[3] + " " + SENTENCES[5])]
    batched = task.predict_batch(model, tokenizer, items, spec)
    alone = [task.predict_batch(model, tokenizer, [item], spec)[0] for item in items]
    assert batched == alone
    assert all(p["generated_text"] for p in batched)


def test_encoder_decoder_labels_and_generation_config(tiny_model):
    task, spec, tokenizer = _prepared("translation", tiny_model, num_beams=2, length_penalty=0.8)
    assert spec.extra["family"] == "encoder-decoder"
    assert spec.extra["peft_task_type"] == "SEQ_2_SEQ_LM"
    assert tokenizer.padding_side == "right"
    (feature,) = task.encode([{"source": "the cat", "target": "the mat"}], tokenizer, spec)
    # [CLS] starts decoding (the model shifts it in); labels end in [SEP].
    assert feature["labels"][0] != tokenizer.cls_token_id
    assert feature["labels"][-1] == tokenizer.sep_token_id
    assert feature["decoder_input_ids"] == [tokenizer.cls_token_id, *feature["labels"][:-1]]
    model = task.load_model(tiny_model, spec)
    config = task.generation_config(model, tokenizer, spec)
    assert (config.num_beams, config.length_penalty, config.do_sample) == (2, 0.8, False)
    assert config.decoder_start_token_id == tokenizer.cls_token_id
    out = predict_items(task, model.eval(), tokenizer, spec, [{"source": "the cat"}], 4)
    assert isinstance(out[0]["generated_text"], str)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="task_options.family='gpt'"):
        load_config(None, ["task=summarization", "task_options.family=gpt"])
    with pytest.raises(ConfigError, match="no \\{source\\} placeholder"):
        load_config(None, ["task=translation", "task_options.prompt=Translate"])
    with pytest.raises(ConfigError, match="unknown placeholder"):
        load_config(None, ["task=translation", "task_options.prompt={source} {lang}"])
    with pytest.raises(ConfigError, match="Did you mean task_options.num_beams"):
        load_config(None, ["task=translation", "task_options.num_beam=2"])
    config = load_config(None, ["task=translation"])
    assert config.training.metric_for_best == "bleu"
    assert config.task_options.max_new_tokens == 96


def test_seq2seq_family_refuses_a_decoder_only_model(tiny_causal):
    from lepton_nlp.tasks.generation import resolve_family

    with pytest.raises(ConfigError, match="family=seq2seq.*not an encoder-decoder"):
        resolve_family(tiny_causal, "seq2seq")


# --- training and PEFT round trips --------------------------------------------------------

# VeRA, OFT, HRA and FourierFT default to BERT's module names; on Llama, name its projections.
LLAMA_TARGETS = {
    m: ["peft.target_modules=[q_proj,v_proj]"] for m in ("vera", "oft", "hra", "fourierft")
}
# peft has no IA3 default for EncoderDecoderModel: name the modules.
ENCODER_DECODER_TARGETS = {
    "ia3": [
        "peft.target_modules=[key,value,intermediate.dense]",
        "peft.options={feedforward_modules: [intermediate.dense]}",
    ]
}


def _round_trip(model: str, data: Path, tmp_path: Path, method: str, targets: dict) -> None:
    overrides = [*_overrides(model, data, tmp_path), f"peft.method={method}"]
    overrides += targets.get(method, [])
    if method in ("prefix", "prompt", "ptuning"):
        overrides.append("peft.num_virtual_tokens=4")
    result = train(load_config(None, overrides))
    sources = [SENTENCES[1], "the dog", SENTENCES[7]]
    before = result.predictor.predict(sources)
    after = Predictor.from_artifact(result.artifact, batch_size=2).predict(sources)
    assert [p["generated_text"] for p in before] == [p["generated_text"] for p in after]
    figures = result.metrics["train"]
    assert figures["steps"] == 4
    if method != "full":
        assert figures["trainable_parameters"] < figures["total_parameters"]
    assert {"rougeL", "bleu", "chrf"} <= set(result.metrics["validation"])


@pytest.mark.parametrize("method", list(METHODS))
def test_causal_method_round_trip(method, tiny_causal, pairs_file, tmp_path):
    _round_trip(tiny_causal, pairs_file, tmp_path, method, LLAMA_TARGETS)


@pytest.mark.parametrize("method", list(METHODS))
def test_encoder_decoder_method_round_trip(method, tiny_model, pairs_file, tmp_path):
    _round_trip(tiny_model, pairs_file, tmp_path, method, ENCODER_DECODER_TARGETS)


GERMAN = [
    ("a man sleeps on a green sofa", "Ein Mann schläft auf einem grünen Sofa."),
    ("a dog runs on the beach", "Ein Hund läuft am Strand."),
    ("two children play football", "Zwei Kinder spielen Fußball."),
    ("a woman reads a book", "Eine Frau liest ein Buch."),
    ("the team won the match", "Die Mannschaft gewann das Spiel."),
    ("people wait for the bus", "Leute warten auf den Bus."),
    ("a man walks his dog", "Ein Mann führt seinen Hund aus."),
    ("the shop opens early", "Der Laden öffnet früh."),
]


def test_encoder_decoder_with_its_own_cased_target_vocabulary(tiny_model, tmp_path):
    for lang, column in (("en", 0), ("de", 1)):
        lines = "\n".join(pair[column] for pair in GERMAN) + "\n"
        (tmp_path / f"train.{lang}").write_text(lines, encoding="utf-8")
    config = load_config(
        None,
        [
            *_overrides(tiny_model, tmp_path / "train", tmp_path, task="translation"),
            "data.format=parallel",
            "peft.method=full",
            "training.learning_rate=1e-3",
            "task_options.target_vocab_size=120",
            "task_options.max_target_length=40",
        ],
    )
    result = train(config)
    predictor = Predictor.from_artifact(result.artifact)
    spec = predictor.spec
    assert spec.extra["family"] == "encoder-decoder" and "target_tokenizer" in spec.extra
    task = get_task("translation")
    (feature,) = task.encode(
        [{"source": "a dog", "target": GERMAN[0][1]}], predictor.tokenizer, spec
    )
    from lepton_nlp.tasks.generation import _decoder_tokenizer

    target = _decoder_tokenizer(predictor.tokenizer, spec)
    # Case and umlauts survive the decoder's vocabulary (the MiniLM-style one lower-cases).
    assert (
        target.decode(feature["labels"], skip_special_tokens=True).replace(" .", ".")
        == (GERMAN[0][1])
    )
    assert feature["labels"][-1] == spec.extra["eos_token_id"] == target.sep_token_id
    sources = [GERMAN[1][0], GERMAN[4][0]]
    assert [p["generated_text"] for p in result.predictor.predict(sources)] == [
        p["generated_text"] for p in predictor.predict(sources)
    ]
    assert predictor.model.config.decoder.vocab_size == len(target) <= 120


def test_target_vocabulary_is_refused_for_causal_models(tiny_causal, pairs_file, tmp_path):
    config = load_config(
        None,
        [*_overrides(tiny_causal, pairs_file, tmp_path), "task_options.target_vocab_size=200"],
    )
    with pytest.raises(ConfigError, match="target_vocab_size applies to family=encoder-decoder"):
        train(config)


def test_encoder_decoder_trains_with_label_smoothing(tiny_model, pairs_file, tmp_path):
    # The Trainer's label smoother takes the labels away: decoder inputs come from the collator.
    overrides = [*_overrides(tiny_model, pairs_file, tmp_path), "peft.method=full"]
    result = train(load_config(None, [*overrides, "training.label_smoothing=0.1"]))
    assert result.metrics["train"]["train_loss"] > 0
