"""The FAQ encoder's tune step (``lepton-support tune-faq``) on a tiny sentence encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apps.support import cli
from apps.support.answers import ENCODER_ENV, AnswerFinder, faq_encoder_name, load_faq
from apps.support.faq_tuning import (
    TUNING_FILE,
    FaqTuneSettings,
    read_tuning,
    training_pairs,
    tune_faq_encoder,
)
from lepton_nlp.config import ConfigError
from lepton_nlp.embeddings import SentenceEmbedder

#: (question, answer, paraphrases): each paraphrase shares words with its own question only.
FAQ = [
    (
        "How do I activate my new card?",
        "Open the app and scan the code on the letter to switch the card on.",
        ["activate the new card how"],
    ),
    (
        "Why was my transfer declined?",
        "Transfers are refused when the balance is too low or the payee details are wrong.",
        ["transfer declined why"],
    ),
    (
        "What is the exchange rate for dollars?",
        "We use the interbank rate on weekdays and add a small markup at weekends.",
        ["dollars exchange rate"],
    ),
    (
        "How long does a top up by bank transfer take?",
        "A bank top up usually lands within two working days.",
        ["top up take how long"],
    ),
    (
        "Can I get a refund for a payment?",
        "Ask the merchant first; if they refuse, open a dispute in the app within 120 days.",
        ["refund for payment"],
    ),
    (
        "Where can I see my PIN?",
        "Your PIN is shown in the app under Card settings after you log in.",
        ["see PIN where"],
    ),
]


def _write_faq(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faq.jsonl"
    lines = [
        json.dumps({"id": f"faq-{i:03d}", "question": q, "answer": a, "paraphrases": p})
        for i, (q, a, p) in enumerate(FAQ, 1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "out_of_scope.txt").write_text("what is the weather\ntell me a joke\n")
    return path


def _margins(embedder: SentenceEmbedder) -> np.ndarray:
    """Each paraphrase's cosine to its own answer minus its best cosine to another answer."""
    paraphrases = embedder.encode([p for _, _, ps in FAQ for p in ps])
    answers = embedder.encode([a for _, a, _ in FAQ])
    sims = paraphrases @ answers.T
    own = np.diag(sims)
    others = np.where(np.eye(len(FAQ), dtype=bool), -np.inf, sims).max(axis=1)
    return own - others


FAST = {"epochs": 8, "learning_rate": 2e-3, "batch_size": 6, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def tuned(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kb")
    faq = _write_faq(folder)
    settings = FaqTuneSettings(base_model=tiny_model, **FAST)
    result = tune_faq_encoder(faq, folder.parent / "encoder", settings)
    return folder, result


def test_tuning_moves_paraphrases_towards_their_answers(tiny_model, tuned):
    _, result = tuned
    before = _margins(SentenceEmbedder(tiny_model))
    after = _margins(SentenceEmbedder(str(result.output)))
    # The paraphrases were never trained on; their questions were.
    assert after.mean() > before.mean() + 0.05
    assert (after > before).sum() >= len(FAQ) - 1


def test_the_folder_describes_itself_and_the_bot_searches_the_faq_with_it(tiny_model, tuned):
    folder, result = tuned
    record = read_tuning(result.output)
    assert record == result.record
    assert record["base_model"] == tiny_model
    assert record["settings"]["epochs"] == FAST["epochs"]
    assert record["tuned_on"]["faq"] == str(folder / "faq.jsonl")
    assert len(record["tuned_on"]["sha256"]) == 64
    assert record["tuned_on"]["pairs"] == {"question-answer": len(FAQ), "question-question": 0}
    assert record["steps"] == FAST["epochs"] and record["train_seconds"] >= 0
    assert (result.output / "modules.json").is_file()

    base = SentenceEmbedder(tiny_model)
    finder = AnswerFinder.from_folder(
        folder, policy_qa=None, embedder=base, encoder=str(result.output)
    )
    assert finder.model_name == str(result.output)
    assert finder.sections_model_name == tiny_model and finder.embedder is base
    # The FAQ index holds the tuned encoder's vectors: scores are its cosines, not the base's
    # (an entry: 0.8 x the mean of its question and answer cosines + 0.2 x its BM25 share).
    question = FAQ[1][2][0]
    [[(entry_id, score), *_]] = finder.faq_ranking([question], k=3)
    lexical = 0.2 * float(finder.lexical.scores(question)[1])

    def entry_score(vectors) -> float:
        return 0.8 * float(vectors[0] @ vectors[1] + vectors[0] @ vectors[2]) / 2 + lexical

    tuned_vectors = finder.faq_embedder.encode([question, FAQ[1][0], FAQ[1][1]])
    assert entry_id == "faq-002" and score == pytest.approx(entry_score(tuned_vectors), abs=1e-5)
    base_vectors = base.encode([question, FAQ[1][0], FAQ[1][1]])
    assert abs(entry_score(base_vectors) - score) > 1e-3
    # The FAQ threshold was fitted for this encoder (no thresholds.json was made with it).
    assert finder.thresholds.details["model"] == str(result.output)


def test_cli_tunes_and_prints_the_record(tiny_model, tmp_path, capsys):
    faq = _write_faq(tmp_path / "kb")
    out = tmp_path / "enc"
    argv = ["tune-faq", "--faq", str(faq), "--out", str(out), "--base-model", tiny_model]
    argv += ["--epochs", "1", "--batch-size", "4", "--symmetric", "--quiet"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output"] == str(out) and printed["settings"]["symmetric"] is True
    assert "doc_to_query" in printed["loss"]
    assert json.loads((out / TUNING_FILE).read_text())["settings"]["batch_size"] == 4
    # A second run into the same folder refuses unless told to replace it.
    assert cli.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0


def test_bad_faq_files_and_settings_are_refused_clearly(tiny_model, tmp_path, capsys):
    bad = tmp_path / "faq.jsonl"
    bad.write_text(
        json.dumps({"id": "a", "question": "q?", "answer": "x"})
        + "\n"
        + json.dumps({"id": "b", "question": "where?"})
        + "\n"
    )
    with pytest.raises(ValueError, match=r"line 2: missing or empty field\(s\) answer"):
        tune_faq_encoder(bad, tmp_path / "out", FaqTuneSettings(base_model=tiny_model))
    assert not (tmp_path / "out").exists()
    argv = ["tune-faq", "--out", str(tmp_path / "o"), "--base-model", tiny_model, "--quiet"]
    assert cli.main([*argv, "--faq", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert cli.main([*argv, "--faq", str(tmp_path / "missing.jsonl")]) == 2
    assert "No FAQ file" in capsys.readouterr().err
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"id": "a", "question": "q?", "answer": "x"}) + "\n")
    with pytest.raises(ValueError, match="at least 2"):
        tune_faq_encoder(one, tmp_path / "out", FaqTuneSettings(base_model=tiny_model))
    with pytest.raises(ConfigError, match="learning_rate"):
        FaqTuneSettings.from_dict({"learning_rat": 1e-4})
    with pytest.raises(ConfigError, match="question-answer"):
        FaqTuneSettings(pairs="questions")


def test_pairs_group_questions_that_share_an_answer(tmp_path):
    faq = _write_faq(tmp_path)
    entries = load_faq(faq)
    twin = entries[0].__class__("x", "Activation of a card?", entries[0].answer + "  ")
    by_kind = training_pairs([*entries, twin], "question-answer+question-question")
    assert len(by_kind["question-answer"]) == len(FAQ) + 1
    assert by_kind["question-question"] == [(FAQ[0][0], "Activation of a card?")]
    assert training_pairs(entries)["question-question"] == []
    assert all(p not in str(by_kind) for _, _, ps in FAQ for p in ps)


def test_encoder_name_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(ENCODER_ENV, raising=False)
    assert faq_encoder_name() == "sentence-transformers/all-MiniLM-L6-v2"
    monkeypatch.setenv(ENCODER_ENV, "runs/faq-encoder")
    assert faq_encoder_name() == "runs/faq-encoder"
    assert faq_encoder_name("other") == "other"


def test_the_default_settings_are_the_ones_chosen_on_validation():
    """`tune-faq` without options applies what bench/support_faq_tuning.py chose on the
    project's FAQ paraphrases (and bench/support_faq.py applies to bank_faqs)."""
    record = json.loads(
        (Path(__file__).resolve().parents[2] / "bench/results/support_faq_tuning.json").read_text()
    )
    defaults = FaqTuneSettings()
    assert {k: getattr(defaults, k) for k in record["chosen"]} == record["chosen"]
