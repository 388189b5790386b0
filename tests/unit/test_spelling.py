"""Spelling correction before a classifier (lepton_nlp.inference.spelling): the corrector's
rules, the run config switch, and the artifact that ships it to every Predictor."""

from __future__ import annotations

import json

import pytest

from lepton_nlp.config import load_config
from lepton_nlp.errors import ArtifactError, ConfigError
from lepton_nlp.inference.spelling import SPELLING_FILE, SpellingCorrector
from tests.conftest import ROOT, classification_overrides, ner_overrides, tiny_training

TEXTS = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn",
    "Net sales increased and operating profit improved",
    "The company reported a loss as sales fell",
    "profit profit profit sales",
    "of of of on on or",
]


def corrector(**kwargs) -> SpellingCorrector:
    """The cautious settings unless a test says otherwise: one edit, words of 3 or more."""
    return SpellingCorrector.from_texts(TEXTS, **{"max_distance": 1, "min_length": 3, **kwargs})


def test_a_mistyped_word_goes_back_to_the_training_word_and_keeps_its_case():
    c = corrector()
    # a swap of neighbours, a deleted letter, a neighbour key: one edit each
    assert c.correct("Operating porfit rose") == "Operating profit rose"
    assert c.correct("Operating prfit rose") == "Operating profit rose"
    assert c.correct("Operating prodit rose") == "Operating profit rose"
    assert c.correct("Porfit rose") == "Profit rose"
    assert c.correct("PORFIT ROSE") == "PROFIT ROSE"


def test_known_words_numbers_marks_and_short_words_stay_as_they_are():
    c = corrector()
    text = "Net sales fell, EUR 13.1 mn - of og: the company!"
    # "og" is one edit from "of" but shorter than min_length 3
    assert c.correct(text) == text
    assert corrector(min_length=2).correct("og") == "of"


def test_the_most_frequent_word_wins_and_two_edits_need_max_distance_2():
    c = corrector()
    # "sales" (2 in TEXTS + 1) against "fell"-like candidates: "salse" is one swap from sales
    assert c.correct("salse") == "sales"
    # two edits from "profit": left alone at distance 1, corrected at distance 2
    assert c.correct("pofiit") == "pofiit"
    assert corrector(max_distance=2).correct("pofiit") == "profit"


def test_a_word_the_model_knows_is_never_corrected_but_is_not_offered_either():
    # "profits" is not in the training texts: one edit from "profit" unless the model knows it
    assert corrector().correct("profits") == "profit"
    assert corrector(known_words=["profits"]).correct("profits") == "profits"
    # a model-only word is no correction target: "falk" is one edit from "fall" only
    assert corrector(known_words=["fall"]).correct("falk") == "falk"
    texts = [*TEXTS, "prices fall"]
    fall = SpellingCorrector.from_texts(texts, max_distance=1, min_length=3, known_words=["fall"])
    assert fall.correct("falk") == "fall"


def test_corrections_name_each_change_with_its_place_in_the_text():
    c = corrector()
    text = "Opearting porfit rose"
    changes = c.corrections(text)
    assert changes == [
        {"start": 0, "end": 9, "word": "Opearting", "correction": "Operating"},
        {"start": 10, "end": 16, "word": "porfit", "correction": "profit"},
    ]
    for change in changes:
        assert text[change["start"] : change["end"]] == change["word"]


def test_min_count_keeps_rare_training_words_from_being_offered():
    assert corrector(min_count=2).correct("improvd") == "improvd"  # "improved" is seen once
    assert corrector().correct("improvd") == "improved"


def test_save_and_load_give_the_same_corrections(tmp_path):
    c = corrector(max_distance=2, min_length=2, known_words=["prophit"])
    c.save(tmp_path)
    loaded = SpellingCorrector.load(tmp_path)
    assert loaded.settings() == c.settings()
    for text in ("porfit og pofiit prophit", "Salse FELL"):
        assert loaded.correct(text) == c.correct(text)
    assert SpellingCorrector.load(tmp_path / "elsewhere") is None


def test_a_broken_spelling_file_is_refused_with_how_to_fix_it(tmp_path):
    (tmp_path / SPELLING_FILE).write_text(json.dumps({"counts": {"a": 1}}), encoding="utf-8")
    with pytest.raises(ArtifactError, match="not a spelling vocabulary.*delete it"):
        SpellingCorrector.load(tmp_path)


def test_bad_settings_and_empty_vocabularies_are_refused():
    with pytest.raises(ConfigError, match="max_distance=3 must be 1 or 2"):
        corrector(max_distance=3)
    with pytest.raises(ConfigError, match="no word with a count"):
        SpellingCorrector.from_texts(["12 34", ""], max_distance=1, min_length=3)


def test_the_config_switch_checks_its_values_and_its_task():
    config = load_config(None, ["spelling.enabled=true"])
    assert config.spelling.enabled and config.spelling.max_distance == 2
    with pytest.raises(ConfigError, match="spelling.max_distance=5 must be 1 or 2"):
        load_config(None, ["spelling.max_distance=5"])
    with pytest.raises(ConfigError, match="Did you mean spelling.min_length"):
        load_config(None, ["spelling.min_lenght=2"])
    with pytest.raises(ConfigError, match="task=classification only.*spans"):
        load_config(None, ["task=ner", "spelling.enabled=true"])


@pytest.fixture(scope="module")
def spelling_run(tiny_model, tmp_path_factory):
    """A tiny classification run with spelling correction on: (artifact, train result)."""
    from lepton_nlp.training.trainer import train

    out = tmp_path_factory.mktemp("spelling") / "artifact"
    config = load_config(
        ROOT / "configs" / "demo_finance.yaml",
        [
            *classification_overrides(),
            *tiny_training(tiny_model),
            f"training.output_dir={out}",
            "training.epochs=2",
            "spelling.enabled=true",
            "evaluation.backend_check=false",
        ],
    )
    result = train(config)
    return result.artifact, result


@pytest.fixture
def model_texts(monkeypatch) -> list[str]:
    """The texts that reach the model (``predict_items``), in the order they arrive: what a
    prediction read, independent of whether a barely trained tiny model's scores move."""
    from lepton_nlp.inference import predictor as module

    seen: list[str] = []
    original = module.predict_items

    def recording(task, model, tokenizer, spec, items, *args, **kwargs):
        seen.extend(item["text"] for item in items)
        return original(task, model, tokenizer, spec, items, *args, **kwargs)

    monkeypatch.setattr(module, "predict_items", recording)
    return seen


def mistyped(words: list[str]) -> str:
    """The words with their third and fourth letters swapped (one edit each)."""
    return " ".join(w[:2] + w[3] + w[2] + w[4:] for w in words)


def test_a_run_with_spelling_ships_it_and_its_predictor_reads_corrected_text(
    spelling_run, model_texts
):
    from lepton_nlp.inference import Predictor

    artifact, result = spelling_run
    assert (artifact / SPELLING_FILE).is_file()
    figures = json.loads((artifact / "metrics.json").read_text(encoding="utf-8"))["spelling"]
    assert figures["max_distance"] == 2 and figures["words"] > 50
    assert "validation_words_corrected" in figures

    predictor = Predictor.from_artifact(artifact, backend="torch")
    assert predictor.spelling is not None and result.predictor.spelling is not None
    words = sorted(w for w, c in predictor.spelling.counts.items() if c > 0 and len(w) >= 7)[:5]
    clean, typed = " ".join(words), mistyped(words)
    assert typed != clean and predictor.spelling.correct(typed) == clean
    with_correction = predictor.predict([typed, {"text": typed}])
    assert model_texts == [clean, clean]
    assert with_correction[0] == with_correction[1] == predictor.predict([clean])[0]

    plain = Predictor.from_artifact(artifact, backend="torch", spelling=False)
    assert plain.spelling is None
    assert plain.predict([clean])[0] == predictor.predict([clean])[0]
    model_texts.clear()
    plain.predict([typed])
    assert model_texts == [typed]  # without the corrector the model reads what was typed


def test_predict_corrects_unless_told_not_to(spelling_run, tmp_path, model_texts):
    from lepton_nlp.cli import main
    from lepton_nlp.inference.spelling import SpellingCorrector

    artifact, _ = spelling_run
    counts = SpellingCorrector.load(artifact).counts
    words = sorted(w for w, c in counts.items() if c > 0 and len(w) >= 7)[:5]
    source = tmp_path / "in.txt"
    source.write_text(f"{' '.join(words)}\n{mistyped(words)}\n", encoding="utf-8")

    def scores(*flags: str) -> list[dict]:
        out = tmp_path / f"out{len(flags)}.jsonl"
        assert main(["predict", str(artifact), "-i", str(source), "-o", str(out), *flags]) == 0
        lines = out.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["scores"] for line in lines]

    corrected = scores()
    assert sorted(model_texts) == sorted([" ".join(words)] * 2)
    assert corrected[0] == corrected[1]  # the mistyped line reads as the clean one
    model_texts.clear()
    as_given = scores("--no-spelling")
    assert sorted(model_texts) == sorted([" ".join(words), mistyped(words)])
    assert as_given[0] == corrected[0]


def test_a_merged_artifact_keeps_its_spelling_vocabulary(spelling_run, tmp_path):
    from lepton_nlp.export import merge_artifact
    from lepton_nlp.inference import Predictor

    artifact, _ = spelling_run
    merged = merge_artifact(artifact, tmp_path / "merged")
    assert (merged / SPELLING_FILE).read_bytes() == (artifact / SPELLING_FILE).read_bytes()
    assert Predictor.from_artifact(merged, backend="torch").spelling is not None


def test_the_multi_adapter_server_corrects_for_the_adapters_that_ship_a_vocabulary(
    spelling_run, tiny_artifact, model_texts
):
    from lepton_nlp.inference.multi import MultiAdapterPredictor

    artifact, _ = spelling_run
    multi = MultiAdapterPredictor.from_artifacts({"spelled": artifact, "plain": tiny_artifact})
    spelled, plain = multi["spelled"], multi["plain"]
    assert plain.spelling is None and spelled.spelling is not None
    words = sorted(w for w, c in spelled.spelling.counts.items() if c > 0 and len(w) >= 7)[:5]
    assert multi.predict("spelled", [mistyped(words)]) == multi.predict(
        "spelled", [" ".join(words)]
    )
    assert model_texts == [" ".join(words)] * 2
    model_texts.clear()
    multi.predict("plain", [mistyped(words)])
    assert model_texts == [mistyped(words)]  # the adapter without a vocabulary reads it as given


def test_a_spelling_file_in_an_artifact_of_another_task_is_refused(tiny_model, tmp_path):
    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.training.trainer import train

    out = tmp_path / "ner"
    config = load_config(
        None,
        [
            *ner_overrides(),
            *tiny_training(tiny_model),
            f"training.output_dir={out}",
            "training.epochs=1",
            "evaluation.backend_check=false",
        ],
    )
    train(config)
    corrector().save(out)
    with pytest.raises(ArtifactError, match="ner artifact.*classification only"):
        SpellingCorrector.for_artifact(read_artifact(out))
