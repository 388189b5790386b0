"""Integration: the packaged SmolLM2-135M-Instruct fine-tuned for summarization, a few steps."""

from __future__ import annotations

import json

import pytest

from lepton_nlp.config import load_config
from lepton_nlp.hub import SMOLLM2
from lepton_nlp.inference import Predictor
from lepton_nlp.tasks import TaskSpec, get_task
from lepton_nlp.training import train

pytestmark = pytest.mark.integration

DIALOGUES = [
    (
        "#Person1#: Is the bank open today?\n#Person2#: Yes, until five.",
        "The bank is open until five.",
    ),
    ("#Person1#: Can I pay by card?\n#Person2#: Sorry, cash only.", "#Person2# only takes cash."),
    ("#Person1#: When does the train leave?\n#Person2#: At nine.", "The train leaves at nine."),
    (
        "#Person1#: Do you like the new office?\n#Person2#: It is too cold.",
        "#Person2# finds the office cold.",
    ),
]


def test_smollm2_prompt_uses_its_chat_template():
    from transformers import AutoTokenizer

    from lepton_nlp.hub import resolve_model

    task = get_task("summarization")
    spec = TaskSpec(labels=[], max_length=128, extra={"options": {"family": "auto"}})
    tokenizer = task.prepare_tokenizer(AutoTokenizer.from_pretrained(resolve_model(SMOLLM2)), spec)
    assert spec.extra["family"] == "causal" and tokenizer.padding_side == "left"
    (feature,) = task.encode([{"source": DIALOGUES[0][0], "target": "x"}], tokenizer, spec)
    prompt = [
        i for i, label in zip(feature["input_ids"], feature["labels"], strict=True) if label == -100
    ]
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
    assert feature["labels"][-1] == tokenizer.eos_token_id


def test_smollm2_lora_few_steps_round_trip(tmp_path):
    data = tmp_path / "dialogues.jsonl"
    data.write_text(
        "\n".join(json.dumps({"dialogue": d, "summary": s}) for d, s in DIALOGUES), encoding="utf-8"
    )
    config = load_config(
        None,
        [
            "task=summarization",
            "data.format=jsonl",
            f"data.train={data}",
            "data.source_column=dialogue",
            "data.target_column=summary",
            f"model.name={SMOLLM2}",
            "model.max_length=96",
            "peft.method=lora",
            "peft.r=4",
            f"training.output_dir={tmp_path / 'artifact'}",
            "training.max_steps=2",
            "training.batch_size=2",
            "training.eval_strategy=no",
            "training.early_stopping_patience=null",
            "training.progress=false",
            "training.report_to=[none]",
            "task_options.max_new_tokens=12",
            "task_options.system_prompt=You are a helpful assistant.",
        ],
    )
    result = train(config)
    sources = [DIALOGUES[0][0], DIALOGUES[2][0]]
    before = result.predictor.predict(sources)
    after = Predictor.from_artifact(result.artifact, batch_size=2).predict(sources)
    assert [p["generated_text"] for p in before] == [p["generated_text"] for p in after]
    assert all(p["generated_text"].strip() for p in after)
    assert result.metrics["train"]["steps"] == 2
