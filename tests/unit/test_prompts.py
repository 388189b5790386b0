"""Prompt learning and few-shot classification (lepton_nlp.training.prompts, `lepton-nlp fewshot`).

The LLM scorer is checked against a brute-force log-likelihood of prompt + word on a tiny
Llama built here (nothing downloaded); the runner's methods run end to end on the tiny BERT
of conftest and the fixture CSV.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import FIXTURES, tiny_training

from lepton_nlp.cli import main
from lepton_nlp.config import ConfigError, config_to_dict, load_config
from lepton_nlp.errors import ArtifactError
from lepton_nlp.training.prompts import (
    FewShotRunner,
    LabelScorer,
    PromptTemplate,
    SetFitClassifier,
    Verbalizer,
    calibrate,
    contrastive_pairs,
    eval_sample,
    example_similarity,
    label_words,
    nearest,
    sample_shots,
    top_labels,
    word_token_ids,
)
from tests.unit.test_generation import tiny_causal  # noqa: F401  (a fixture)


def _brute_force(model, tokenizer, prompt: str, word: str) -> float:
    """log p(word | prompt): the whole sequence in one unpadded pass, no cache."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    word_ids = word_token_ids(tokenizer, word)
    ids = torch.tensor([prompt_ids + word_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(prompt_ids) - 1
    return float(sum(logp[start + t, tok] for t, tok in enumerate(word_ids)))


def test_scorer_gives_each_word_its_log_likelihood_after_its_prompt(tiny_causal):  # noqa: F811
    scorer = LabelScorer(tiny_causal, batch_rows=5)  # several batches, rows split unevenly
    prompts = ["the market", "profit rose as sales grew and the bank", "a dog", "rates"]
    words = ["closed lower", "raised", "runs on the beach", "positive"]
    ids = [word_token_ids(scorer.tokenizer, w) for w in words]
    assert len({len(i) for i in ids}) > 1  # words of different token lengths
    candidates = [ids, ids[:2], ids[1:], ids]
    got = scorer.score_words(prompts, candidates)
    for prompt, cands, values in zip(prompts, candidates, got, strict=True):
        picked = [words[ids.index(c)] for c in cands]
        want = [_brute_force(scorer.model, scorer.tokenizer, prompt, w) for w in picked]
        np.testing.assert_allclose(values, want, atol=1e-4)


def test_label_score_pools_its_words_and_a_shortlist_leaves_others_out(tiny_causal):  # noqa: F811
    scorer = LabelScorer(tiny_causal)
    verbalizer = Verbalizer.build(
        ["down", "up"], {"down": ["closed lower", "negative"], "up": "positive"}
    )
    prompt = "the market"
    scores = scorer.score([prompt, prompt], verbalizer, shortlists=[[0, 1], [1]])
    down = [
        _brute_force(scorer.model, scorer.tokenizer, prompt, w) for w in verbalizer.words["down"]
    ]
    up = _brute_force(scorer.model, scorer.tokenizer, prompt, "positive")
    assert scores[0, 0] == pytest.approx(math.log(np.mean(np.exp(down))), abs=1e-4)
    assert scores[0, 1] == pytest.approx(up, abs=1e-4)
    assert scores[1, 0] == -math.inf and scores[1, 1] == pytest.approx(up, abs=1e-4)


def test_contextual_calibration_removes_the_content_free_bias():
    # The model prefers label 0 everywhere; after "N/A" it gives label 0 0.9.
    scores = np.log(np.array([[0.6, 0.4], [0.95, 0.05]]))
    content_free = np.log(np.array([[0.9, 0.1]]))
    calibrated = calibrate(scores, content_free)
    assert scores.argmax(axis=1).tolist() == [0, 0]
    assert calibrated.argmax(axis=1).tolist() == [1, 0]  # 0.6/0.9 < 0.4/0.1; 0.95/0.9 > 0.05/0.1
    np.testing.assert_allclose(calibrated[0], np.log([0.6 / 0.9, 0.4 / 0.1]))
    # Several content-free inputs: their probabilities are averaged.
    two = np.log(np.array([[0.8, 0.2], [1.0 - 1e-12, 1e-12]]))
    np.testing.assert_allclose(calibrate(scores, two)[0], np.log([0.6 / 0.9, 0.4 / 0.1]))
    with pytest.raises(ValueError, match="one content-free row per text"):
        calibrate(scores, content_free, paired=True)


def test_template_renders_demonstrations_then_the_text():
    template = PromptTemplate("Classify.", "Query: {text}\nIntent:")
    prompt = template.render("my {card}  is   lost", [("where is it", "card arrival")])
    assert prompt == (
        "Classify.\n\nQuery: where is it\nIntent: card arrival\n\nQuery: my {card} is lost\nIntent:"
    )
    with pytest.raises(ValueError, match="no \\{text\\} placeholder"):
        PromptTemplate(input_format="Query:")


def test_verbalizer_names_labels_by_their_words_unless_told():
    assert label_words("card_arrival") == "card arrival"
    assert label_words("getSpareCard") == "get spare card"
    verbalizer = Verbalizer.build(["card_arrival", "lost"], {"lost": ["lost card", "stolen"]})
    assert verbalizer.words == {"card_arrival": ("card arrival",), "lost": ("lost card", "stolen")}
    assert verbalizer.first_word("lost") == "lost card"
    with pytest.raises(ValueError, match="labels the data does not have: \\['lots'\\]"):
        Verbalizer.build(["card_arrival", "lost"], {"lots": "x"})


def test_shots_are_k_per_class_seeded_and_nested():
    records = [{"text": f"t{i}", "label": "ab"[i % 2] if i < 40 else "c"} for i in range(43)]
    four = sample_shots(records, 4, seed=1)
    assert Counter(r["label"] for r in four) == {"a": 4, "b": 4, "c": 3}  # c has only 3
    assert sample_shots(records, 4, seed=1) == four
    assert sample_shots(records, 4, seed=2) != four
    eight = sample_shots(records, 8, seed=1)
    assert all(r in eight for r in four)
    sample = eval_sample(records[:40], 10, seed=0)
    assert len(sample) == 10 and Counter(r["label"] for r in sample) == {"a": 5, "b": 5}


def test_contrastive_pairs_pair_same_labels_positive_and_others_negative():
    texts = [f"t{i}" for i in range(9)]
    labels = ["x", "y", "z"] * 3
    owner = dict(zip(texts, labels, strict=True))
    pairs = contrastive_pairs(texts, labels, iterations=2, seed=0)
    assert len(pairs) == 2 * 2 * 9
    for a, b, target in pairs:
        assert a != b and (owner[a] == owner[b]) == (target == 1.0)
    capped = contrastive_pairs(texts, labels, iterations=2, seed=0, max_pairs=10)
    assert Counter(t for _, _, t in capped) == {1.0: 5, 0.0: 5}


def test_similarities_pick_nearest_examples_and_labels():
    texts = np.array([[1.0, 0.0], [0.0, 1.0]])
    examples = np.array([[0.0, 1.0], [0.8, 0.6], [1.0, 0.0]])
    scores = example_similarity(texts, examples, ["b", "a", "a"], ["a", "b", "c"])
    np.testing.assert_allclose(scores[:, :2], [[1.0, 0.0], [0.6, 1.0]])
    assert np.isneginf(scores[:, 2]).all()
    assert top_labels(scores, 2) == [[0, 1], [1, 0]]
    assert nearest(texts, examples, 2) == [[1, 2], [1, 0]]  # most similar last


def test_prompting_config_rejects_typos_and_other_tasks():
    with pytest.raises(ConfigError, match="Did you mean prompting.shots"):
        load_config({"prompting": {"shot": 4}})
    with pytest.raises(ConfigError, match="Did you mean 'in-context'"):
        load_config({"prompting": {"method": "in-contxt"}})
    with pytest.raises(ConfigError, match="no \\{text\\} placeholder"):
        load_config({"prompting": {"llm": {"template": "Label:"}}})
    with pytest.raises(ConfigError, match="task=classification only"):
        load_config({"task": "ner", "prompting": {}})


def _config(tiny_model, tmp_path, *extra):
    return load_config(
        None,
        [
            *tiny_training(tiny_model),
            "task=classification",
            "data.format=csv",
            f"data.train={FIXTURES / 'classification.csv'}",
            "data.test_size=0.25",
            "training.epochs=2",
            "training.eval_strategy=no",
            "training.early_stopping_patience=null",
            f"training.output_dir={tmp_path / 'out'}",
            "prompting.shots=4",
            *extra,
        ],
    )


def test_lora_run_leaves_an_artifact_and_a_report(tiny_model, tmp_path, capsys):
    runner = FewShotRunner(_config(tiny_model, tmp_path))
    result = runner.run("lora", seed=3)
    report = json.loads((tmp_path / "out" / "fewshot.json").read_text())
    assert report["method"] == "lora" and report["examples"] == 8 and report["seed"] == 3
    assert report["test"]["accuracy"] == result.report["test"]["accuracy"]
    assert len(result.predictions["test"]) == report["eval_records"]["test"] == 12
    # A normal artifact: the Predictor loads it and agrees with the report.
    from lepton_nlp.inference import Predictor

    predictor = Predictor.from_artifact(tmp_path / "out", backend="torch")
    texts = [r["text"] for r in runner.eval_splits["test"]]
    assert [p["label"] for p in predictor.predict(texts)] == result.predictions["test"]
    with pytest.raises(ArtifactError, match="--overwrite"):
        runner.run("lora", seed=3)
    # The artifact names the run's data, not the deleted sample file: eval without --data
    # re-creates the same test split and finds the report's accuracy.
    assert main(["eval", str(tmp_path / "out"), "--backend", "torch"]) == 0
    printed = capsys.readouterr().out
    scored = json.loads(printed[printed.rindex("\n{") :])
    assert scored["accuracy"] == pytest.approx(report["test"]["accuracy"])


def test_setfit_run_leaves_an_artifact_the_predictor_serves(tiny_model, tmp_path):
    runner = FewShotRunner(_config(tiny_model, tmp_path, "prompting.setfit.max_pairs=16"))
    result = runner.run("setfit")
    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.inference import Predictor

    info = read_artifact(tmp_path / "out")
    assert info.peft_method == "full" and info.spec.options == {"pooling": "mean-normalized"}
    predictor = Predictor.from_artifact(tmp_path / "out", backend="torch")
    texts = [r["text"] for r in runner.eval_splits["test"]]
    assert [p["label"] for p in predictor.predict(texts)] == result.predictions["test"]
    assert json.loads((tmp_path / "out" / "fewshot.json").read_text())["method"] == "setfit"
    assert info.metrics["test"] == result.report["test"]  # the artifact carries its figures


@pytest.mark.parametrize("labels", [("neg", "pos"), ("a", "b", "c")])
def test_setfit_artifact_gives_the_heads_probabilities(tiny_model, tmp_path, labels):
    from lepton_nlp.inference import Predictor

    with (FIXTURES / "classification.csv").open(encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)][:24]
    targets = [labels[i % len(labels)] for i in range(len(texts))]
    settings = load_config({"prompting": {"setfit": {"max_pairs": 8}}}).prompting.setfit
    classifier = SetFitClassifier.train(tiny_model, texts, targets, settings, seed=0)
    # A weakly regularised head fits these arbitrary labels confidently, so the comparison
    # below is between clearly different probabilities (the cross-validated C may choose a
    # nearly uniform head here, whose probabilities would differ by less than the check).
    from sklearn.linear_model import LogisticRegression

    classifier.head = LogisticRegression(C=1e4, max_iter=5000).fit(
        classifier.embed(texts), [classifier.labels.index(t) for t in targets]
    )
    config = load_config(None, [*tiny_training(tiny_model), "task=classification"])
    classifier.write_artifact(tmp_path / "art", config_to_dict(config), {"train": len(texts)})
    predictor = Predictor.from_artifact(tmp_path / "art", backend="torch", packing=False)
    served = np.array([[p["scores"][label] for label in labels] for p in predictor.predict(texts)])
    # The head's own probabilities, to the 6 decimals the Predictor reports; not uniform.
    expected = classifier.scores(texts)
    assert np.abs(served - expected).max() < 2e-5
    assert expected.max(axis=1).min() > 1 / len(labels) + 0.1
    packed = Predictor.from_artifact(tmp_path / "art", backend="torch")
    assert [p["label"] for p in packed.predict(texts)] == classifier.predict(texts)


def test_llm_methods_score_every_label_with_a_tiny_llama(tiny_model, tiny_causal, tmp_path):  # noqa: F811
    runner = FewShotRunner(
        _config(
            tiny_model,
            tmp_path,
            f"prompting.llm.model={tiny_causal}",
            "prompting.llm.demonstrations=2",
        )
    )
    zero = runner.run("zero-shot", output_dir="")
    icl = runner.run("in-context", output_dir="")
    assert zero.output is None and not (tmp_path / "out").exists()
    assert set(zero.predictions["test"]) | set(icl.predictions["test"]) <= {"negative", "positive"}
    assert zero.report["examples"] == 8 and icl.report["llm"] == tiny_causal


def test_cli_fewshot_label_similarity(tiny_model, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\n", encoding="utf-8")
    args = [
        "fewshot",
        str(config),
        "--method",
        "label-similarity",
        "--output",
        str(tmp_path / "ls"),
        f"model.name={tiny_model}",
        "data.format=csv",
        f"data.train={FIXTURES / 'classification.csv'}",
        "data.test_size=0.25",
    ]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "label-similarity" and "accuracy" in printed["test"]
    assert main(args) == 2  # the report is there: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
