"""Training-data augmentation: each lexical edit does what it says, spans of NER entities, QA
answers and relation arguments still align afterwards, checks drop what they should and
count it, texts that cannot be changed are counted (and fatal only when nothing is left),
generated text goes through both translators, and a run records what augmentation did."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter

import pytest

from lepton_nlp.config import AugmentConfig, load_config
from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.robustness import SynonymTable
from lepton_nlp.tasks.ner import spans_from_tags
from lepton_nlp.training.augment import Piece, augment_records, edit_pieces, load_generator
from tests.conftest import FIXTURES, ROOT, classification_overrides
from tests.unit.test_generation import tiny_causal  # noqa: F401  (a fixture)

SYNONYMS = SynonymTable(
    {
        "profit": ["earnings"],
        "rose": ["climbed", "increased"],
        "company": ["firm"],
        "sales": ["revenue"],
        "grew": ["expanded"],
        "strongly": ["markedly"],
        "period": ["quarter"],
        "went": ["travelled"],
        "city": ["town"],
        "storm": ["hurricane"],
        "officials": ["authorities"],
        "coast": ["shore"],
        "hit": ["struck"],
    }
)
TEXT = "Operating profit rose to EUR 13.1 mn, the company said; Finnish sales grew strongly!"
WORDS = TEXT.split()


def _config(methods, **kwargs) -> AugmentConfig:
    return AugmentConfig(methods=methods, **kwargs)


def _pieces(words):
    return [Piece(w, i) for i, w in enumerate(words)]


@pytest.mark.parametrize("seed", range(5))
def test_swap_keeps_every_word_and_changes_the_order(seed):
    new, reason = edit_pieces(_pieces(WORDS), "swap", 0.2, random.Random(seed))
    assert reason is None
    words = [p.text for p in new]
    assert Counter(words) == Counter(WORDS) and words != WORDS


@pytest.mark.parametrize("seed", range(5))
def test_delete_drops_words_and_keeps_the_rest_in_order(seed):
    new, _ = edit_pieces(_pieces(WORDS), "delete", 0.2, random.Random(seed))
    words = [p.text for p in new]
    assert 0 < len(words) < len(WORDS)
    it = iter(WORDS)
    assert all(w in it for w in words)  # a subsequence of the original


@pytest.mark.parametrize("seed", range(5))
def test_synonym_replaces_words_by_listed_synonyms_keeping_case_and_punctuation(seed):
    new, _ = edit_pieces(_pieces(WORDS), "synonym", 0.2, random.Random(seed), SYNONYMS)
    changed = [(a, p.text) for a, p in zip(WORDS, new, strict=True) if a != p.text]
    # 0.2 of 14 words: 3 edits, each on a word that has a synonym
    assert len(changed) == 3
    for old, replacement in changed:
        core, trail = old.rstrip(";!,."), old[len(old.rstrip(";!,.")) :]
        assert replacement.endswith(trail)  # "company," -> "firm,"
        assert replacement[: len(replacement) - len(trail)].lower() in SYNONYMS.neighbours(core)
        assert replacement[0].isupper() == core[0].isupper()


@pytest.mark.parametrize("seed", range(5))
def test_insert_adds_synonyms_of_words_already_there(seed):
    new, _ = edit_pieces(_pieces(WORDS), "insert", 0.2, random.Random(seed), SYNONYMS)
    inserted = [p.text for p in new if p.origin is None]
    assert len(inserted) == 3 and len(new) == len(WORDS) + 3
    assert [p.text for p in new if p.origin is not None] == WORDS
    allowed = {s for w in WORDS for s in SYNONYMS.neighbours(w.strip(";!,.").lower())}
    assert set(inserted) <= allowed


def test_one_word_texts_are_counted_not_silently_skipped(caplog):
    records = [
        {"text": "Hello", "label": "a"},
        {"text": "The firm grew strongly", "label": "b"},
    ]
    with caplog.at_level(logging.WARNING, logger="lepton_nlp.training.augment"):
        out, report = augment_records(records, "text", _config(["swap", "delete"], per_example=2))
    assert report.skipped["swap"]["too_short"] + report.skipped["delete"]["too_short"] == 2
    assert len(out) == 2 + report.added and report.added == 2
    assert "left unchanged (too_short: 1)" in caplog.text


def test_augmentation_that_produces_nothing_is_an_error():
    records = [{"text": "Hello", "label": "a"}, {"text": "Goodbye", "label": "b"}]
    with pytest.raises(DataError, match=r"produced no training record.*too_short"):
        augment_records(records, "text", _config(["swap", "delete"]))
    with pytest.raises(DataError, match="no_synonym"):
        augment_records(records, "text", _config(["synonym"]), synonyms=SYNONYMS)


def test_the_same_seed_gives_the_same_records_and_methods_share_the_copies():
    records = [{"text": f"{TEXT} number {i}", "label": "x"} for i in range(40)]
    config = _config(["synonym", "swap", "delete", "insert"], per_example=2, seed=3)
    first, report = augment_records(records, "text", config, synonyms=SYNONYMS)
    second, _ = augment_records(records, "text", config, synonyms=SYNONYMS)
    assert first == second and report.added == 80
    # methods taken in turn: a record's two copies by two neighbouring methods of the list
    order = config.methods
    by_record: dict[int, list[str]] = {}
    for index, method in report.sources:
        by_record.setdefault(index, []).append(method)
    for methods in by_record.values():
        a, b = sorted(order.index(m) for m in methods)
        assert (b - a) in (1, len(order) - 1)
    assert set(report.kept) == set(order) and min(report.kept.values()) >= 10
    assert first[:40] == records and all(r["label"] == "x" for r in first)


def test_dedup_drops_copies_equal_to_an_existing_record():
    records = [
        {"text": "alpha beta", "label": "a"},
        {"text": "Beta  alpha", "label": "a"},  # case and spacing do not make it new
        {"text": "gamma delta epsilon", "label": "b"},
    ]
    out, report = augment_records(records, "text", _config(["swap"]))
    assert report.dropped["duplicate"] == 2 and report.added == 1
    assert out[3]["text"] != records[2]["text"] and out[3]["label"] == "b"
    kept, report = augment_records(records, "text", _config(["swap"], dedup=False))
    assert report.added == 3 and [r["text"] for r in kept[3:5]] == ["beta alpha", "alpha Beta"]


# --- spans stay aligned ------------------------------------------------------------------

NER = {
    "tokens": ["John", "Smith", "went", "to", "the", "big", "city", "of", "New", "York", "in", "May", "with", "Acme", "Corp", "staff"],
    "tags": [
        "B-PER", "I-PER", "O", "O", "O", "O", "O", "O", "B-LOC", "I-LOC", "O", "B-MISC",
        "O", "B-ORG", "I-ORG", "O",
    ],
}  # fmt: skip


def _entities(record):
    return [(kind, record["tokens"][a:b]) for kind, a, b in spans_from_tags(record["tags"])]


@pytest.mark.parametrize("method", ["synonym", "insert", "swap", "delete"])
def test_ner_edits_keep_every_entity_and_its_tags(method):
    config = _config([method], per_example=30, probability=0.3, dedup=False)
    out, report = augment_records([NER], "tokens", config, synonyms=SYNONYMS)
    assert report.added == 30
    for record in out[1:]:
        assert len(record["tokens"]) == len(record["tags"])
        assert _entities(record) == _entities(NER)  # same entities, same order, same words
    assert any(r["tokens"] != NER["tokens"] for r in out[1:])
    if method == "insert":  # an inserted word never lands inside "New York" or "Acme Corp"
        assert all(" ".join(r["tokens"]).count("New York") == 1 for r in out[1:])


def _letters_apart(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbouring letters as one edit (small strings)."""
    rows = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


PLAIN_TEXT = {"text": "Fine words here", "label": "b"}


def test_typos_change_letters_inside_words_and_keep_the_rest():
    config = _config(["typos"], per_example=40, probability=0.1, dedup=False)
    out, report = augment_records([{"text": TEXT, "label": "positive"}], "text", config)
    assert report.added == 40 and all(r["label"] == "positive" for r in out[1:])
    budget = round(0.1 * len(WORDS))  # 2 character edits per copy
    for record in out[1:]:
        words = record["text"].split()
        assert len(words) == len(WORDS)  # words are never added, dropped or moved
        changed = [(a, b) for a, b in zip(WORDS, words, strict=True) if a != b]
        assert changed and sum(_letters_apart(a, b) for a, b in changed) <= budget
    # each copy takes one kind of edit: mistyped letters, swapped letters, or dropped letters
    lengths = {len(r["text"]) - len(TEXT) for r in out[1:]}
    assert {0, -budget} <= lengths <= {0, -1, -budget}
    again, _ = augment_records([{"text": TEXT, "label": "positive"}], "text", config)
    assert again == out  # seeded


def test_typos_keep_ner_tags_aligned_and_refuse_span_records():
    config = _config(["typos"], per_example=20, probability=0.2, dedup=False)
    out, report = augment_records([NER], "tokens", config)
    assert report.added == 20
    for record in out[1:]:
        assert record["tags"] == NER["tags"] and len(record["tokens"]) == len(NER["tokens"])
    assert any(r["tokens"] != NER["tokens"] for r in out[1:])
    with pytest.raises(ConfigError, match="mistyped letter inside an answer"):
        load_config(None, ["task=qa", "augment.methods=[typos]"])
    numbers = {"text": "2024 17.5 %", "label": "a"}  # no letter to change: counted, not copied
    out, report = augment_records([numbers, PLAIN_TEXT], "text", _config(["typos"], per_example=3))
    assert report.skipped["typos"] == Counter(too_short=3) and report.added == 3
    assert all(r["label"] == "b" for r in out[2:])
    with pytest.raises(DataError, match="produced no training record"):
        augment_records([numbers], "text", _config(["typos"]))


CONTEXT = "The  storm hit the coast of Florida\nnear (Miami) on Monday, officials said."
QA = {
    "id": "q1",
    "question": "Where did the storm hit?",
    "context": CONTEXT,
    # overlapping answers, one across a line break, one inside a word "(Miami)"
    "answers": {
        "text": ["Florida\nnear (Miami", "Miami", "coast"],
        "answer_start": [CONTEXT.index("Florida"), CONTEXT.index("Miami"), CONTEXT.index("coast")],
    },
}


def _answers_align(record) -> bool:
    answers = record["answers"]
    return all(
        record["context"][s : s + len(t)] == t
        for t, s in zip(answers["text"], answers["answer_start"], strict=True)
    )


@pytest.mark.parametrize("method", ["synonym", "insert", "swap", "delete"])
def test_qa_edits_leave_answers_verbatim_and_move_their_offsets(method):
    assert _answers_align(QA)
    config = _config([method], per_example=30, probability=0.4, dedup=False)
    out, report = augment_records([QA], "qa", config, synonyms=SYNONYMS)
    assert report.added == 30
    assert all(_answers_align(r) and r["question"] == QA["question"] for r in out[1:])
    assert any(r["answers"]["answer_start"] != QA["answers"]["answer_start"] for r in out[1:])


@pytest.mark.parametrize("method", ["synonym", "insert", "swap", "delete"])
def test_relation_edits_keep_both_arguments(method):
    text = "The storm hit the coast and officials said the damage came from the flood waters."
    record = {
        "text": text,
        "head": {"start": text.index("damage"), "end": text.index("damage") + 6},
        "tail": {"start": text.index("flood"), "end": text.index("flood") + 5},
        "label": "Cause-Effect(e2,e1)",
    }
    config = _config([method], per_example=20, probability=0.3, dedup=False)
    out, _ = augment_records([record], "relation", config, synonyms=SYNONYMS)
    for new in out[1:]:
        assert new["text"][new["head"]["start"] : new["head"]["end"]] == "damage"
        assert new["text"][new["tail"]["start"] : new["tail"]["end"]] == "flood"
        assert new["label"] == record["label"]


# --- label check -------------------------------------------------------------------------


class _Keywords:
    """A stand-in judge: negative when a text says 'fell', else positive."""

    class task:
        name = "classification"

    def predict(self, records):
        return [{"label": "negative" if "fell" in r["text"] else "positive"} for r in records]


def test_label_check_drops_copies_whose_prediction_flips():
    table = SynonymTable({"rose": ["fell"], "profit": ["earnings"]})
    records = [{"text": "profit rose", "label": "positive"}]
    config = _config(["synonym"], per_example=40, probability=0.5, dedup=False)
    config.label_check, config.label_check_model = True, "judge"
    out, report = augment_records(
        records, "text", config, synonyms=table, checker=_Keywords(), task_name="classification"
    )
    assert report.dropped["label_flip"] > 0
    assert report.dropped["label_flip"] + report.added == report.produced["synonym"] == 40
    assert all("fell" not in r["text"] for r in out)


def test_label_check_with_a_trained_artifact(tiny_artifact):
    from lepton_nlp.inference import Predictor

    records = [
        {"text": line.rsplit(",", 1)[0], "label": line.rsplit(",", 1)[1]}
        for line in (FIXTURES / "classification.csv").read_text().splitlines()[1:13]
    ]
    config = _config(
        ["swap", "delete"], per_example=2, label_check=True, label_check_model=str(tiny_artifact)
    )
    out, report = augment_records(records, "text", config, task_name="classification")
    judge = Predictor.from_artifact(tiny_artifact, backend="torch")
    kept = out[len(records) :]
    predicted = [p["label"] for p in judge.predict(kept)]
    originals = [p["label"] for p in judge.predict([records[i] for i, _ in report.sources])]
    assert predicted == originals  # every kept copy is judged as its original
    assert report.added + sum(report.dropped.values()) == sum(report.produced.values())
    with pytest.raises(ConfigError, match="is a classification model"):
        augment_records(records, "tokens", _config(["swap"], label_check=True,
                        label_check_model=str(tiny_artifact)), task_name="ner")  # fmt: skip


# --- generated text ----------------------------------------------------------------------


class _Translator:
    def __init__(self, table, calls):
        self.table, self.calls = table, calls

    def generate(self, texts):
        self.calls.append(list(texts))
        return [self.table.get(t, "") for t in texts]


def test_back_translation_goes_through_both_models_and_counts_failures():
    records = [
        {"text": "Sales grew.", "label": "pos"},
        {"text": "Profit fell.", "label": "neg"},
        {"text": "Same here.", "label": "neu"},
    ]
    calls = []
    forward = _Translator(
        {"Sales grew.": "Der Umsatz wuchs.", "Profit fell.": "", "Same here.": "Hier gleich."},
        calls,
    )
    backward = _Translator({"Der Umsatz wuchs.": 'Translation: "Revenue grew."', ".": "x",
                            "Hier gleich.": "same  here ."}, calls)  # fmt: skip
    config = _config(["back_translation"], translation_models=["fwd", "bwd"])
    out, report = augment_records(
        records, "text", config, generators={"back_translation": (forward, backward)}
    )
    assert calls[0] == [r["text"] for r in records]  # source -> pivot first
    assert calls[1] == ["Der Umsatz wuchs.", ".", "Hier gleich."]  # then back
    assert out[3:] == [{"text": "Revenue grew.", "label": "pos"}]
    # no pivot, and a round trip that changed nothing but spacing and case, are counted
    assert report.skipped["back_translation"] == {"empty": 1, "unchanged": 1}


def test_paraphrase_runs_the_llm_through_the_generation_task(tiny_causal):  # noqa: F811
    config = _config(["paraphrase"], llm_model=tiny_causal, max_new_tokens=8)
    generator = load_generator(tiny_causal, config, config.llm_prompt)
    texts = ["the cat sat on the red mat", "a man walks his dog"]
    outputs = generator.generate(texts)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    # The same seed gives the same paraphrases: an augmented run can be repeated.
    assert load_generator(tiny_causal, config, config.llm_prompt).generate(texts) == outputs


def test_paraphrases_keep_their_labels_and_echoes_are_counted():
    records = [{"text": "the cat sat on the red mat", "label": "a"},
               {"text": "a man walks his dog", "label": "b"},
               {"text": "rain again", "label": "c"}]  # fmt: skip
    calls = []
    llm = _Translator(
        {
            "the cat sat on the red mat": 'Paraphrase: "The cat sat on the red mat."',
            "a man walks his dog": "A man is walking his dog.",
        },
        calls,
    )
    out, report = augment_records(
        records, "text", _config(["paraphrase"]), generators={"paraphrase": llm}
    )
    assert calls == [[r["text"] for r in records]]  # one batch of every training text
    # The label prefix and quotes go; the echo of the input and the empty answer are counted.
    assert out[3:] == [{"text": "A man is walking his dog.", "label": "b"}]
    assert report.sources == [(1, "paraphrase")]
    assert report.skipped["paraphrase"] == {"unchanged": 1, "empty": 1}


def test_back_translation_refuses_a_model_that_does_not_translate(tiny_artifact):
    config = _config(["back_translation"], translation_models=[str(tiny_artifact)] * 2)
    with pytest.raises(ConfigError, match="needs a translation"):
        augment_records([{"text": "a b", "label": "x"}], "text", config)


# --- config ------------------------------------------------------------------------------


def test_config_rejects_bad_settings_with_a_fix():
    with pytest.raises(ConfigError, match="Did you mean 'synonym'"):
        AugmentConfig(methods=["synonyms"])
    with pytest.raises(ConfigError, match="translation_models"):
        AugmentConfig(methods=["back_translation"])
    with pytest.raises(ConfigError, match="label_check_model"):
        AugmentConfig(methods=["swap"], label_check=True)
    with pytest.raises(ConfigError, match=r"probability"):
        AugmentConfig(methods=["swap"], probability=0)
    with pytest.raises(ConfigError, match="Unknown config key 'augment.method'"):
        load_config(None, ["augment.method=[swap]"])
    with pytest.raises(ConfigError, match="cannot keep entity"):
        load_config(None, ["task=ner", "augment.methods=[paraphrase]"])
    with pytest.raises(ConfigError, match="target unfaithful"):
        load_config(None, ["task=summarization", "augment.methods=[swap]"])
    config = load_config(None, ["task=qa", "augment.methods=synonym,swap"])
    assert config.augment.methods == ["synonym", "swap"]


# --- a run ---------------------------------------------------------------------------------


def test_a_run_augments_training_only_and_records_the_counts(base_overrides, tmp_path):
    from lepton_nlp.cli import main
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import load_data

    out = tmp_path / "augmented.jsonl"
    args = [*classification_overrides(), *base_overrides]
    demo = str(ROOT / "configs" / "demo_finance.yaml")
    assert main(["augment", demo, *args, "--augment", "swap,delete", "-o", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written and {r["augment_method"] for r in written} == {"swap", "delete"}

    from lepton_nlp.training import train

    config = load_config(
        demo,
        [*args, "training.epochs=1", "evaluation.backend_check=false",
         "augment.methods=[swap,delete]", "augment.seed=1"],
    )  # fmt: skip
    plain, _ = load_data(config, get_task("classification"))
    result = train(config)
    report = result.metrics["augmentation"]
    saved = json.loads((result.artifact / "metrics.json").read_text())
    assert saved["augmentation"] == report
    n = len(plain["train"])  # only training records get copies
    assert report["original"] == n and report["train_after"] == n + report["added"]
    skipped = sum(sum(r.values()) for r in report["skipped"].values())
    assert report["added"] == n - skipped - sum(report["dropped"].values()) > 0
    assert result.metrics["validation"]["examples"] == len(plain["validation"])
    assert result.metrics["test"]["examples"] == len(plain["test"])


def test_continual_learning_refuses_augmentation_it_would_ignore(tmp_path):
    from lepton_nlp.training.continual import load_continual_config

    sequence = ROOT / "configs" / "continual_banking.yaml"
    with pytest.raises(ConfigError, match="does not augment"):
        load_continual_config(sequence, ["run.augment.methods=[swap]"])
