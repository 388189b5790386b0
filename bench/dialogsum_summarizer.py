"""The support bot's handoff summarizer: train, score and card data/models/dialogsum-summarizer.

Trains ``configs/summarization_support_handoff.yaml`` (``configs/summarization_dialogsum.yaml``'s
recipe) on a seeded sample of DialogSum dev, then scores the shipped artifact, loaded with
``Predictor.from_artifact`` as a user loads it, on the first ``--test-samples`` test dialogues
(three human summaries each; ROUGE takes the best), as bench/summarization_dialogsum.py does,
beside the lead-2 baseline on the same dialogues. The scores go into the artifact's
metrics.json (``test``) and model card, with the licence terms of DialogSum.

    python bench/dialogsum_summarizer.py [--train-samples 200] [--epochs 1] [--test-samples 50]
        [--output data/models/dialogsum-summarizer] [key.sub=value ...]

Writes bench/results/dialogsum_summarizer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import ROOT, datasets_root, flatten, write_result

NAME = "dialogsum_summarizer"
CONFIG = "configs/summarization_support_handoff.yaml"
TEST_FILE = "${LEPTON_DATASETS}/dialogsum/dialogsum.test.jsonl"

LICENCE = [
    "## Licence and data",
    "",
    "Trained on DialogSum (Chen et al. 2021), licensed CC BY-NC-SA 4.0: this adapter is a "
    "derivative of it, for **non-commercial use only**, shared under the same licence. Only "
    "the LoRA adapter weights (and the base model's tokenizer files) are in this folder; no "
    "DialogSum text is redistributed. Training and scoring read DialogSum from "
    "`LEPTON_DATASETS`. The base model, SmolLM2-135M-Instruct, is Apache-2.0.",
    "",
    "DialogSum holds everyday two-person dialogues, not this bank's conversations; check "
    "summaries of real support chats before relying on them, and keep a human reading them.",
    "",
]


def arguments() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, help="DialogSum dev dialogues (seeded)")
    parser.add_argument("--epochs", type=float, help="training epochs")
    parser.add_argument("--test-samples", type=int, default=50, help="first N test dialogues")
    parser.add_argument("--output", default="data/models/dialogsum-summarizer")
    return parser.parse_known_args()


def main() -> None:
    import yaml

    from lepton_nlp.artifacts import model_card, read_artifact
    from lepton_nlp.config import expand_path, load_config
    from lepton_nlp.evaluation.generation import generation_metrics, lead_baseline
    from lepton_nlp.inference import Predictor
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training import train

    args, extra = arguments()
    datasets_root()
    os.chdir(ROOT)
    overrides = [
        f"training.output_dir={args.output}",
        "training.overwrite=true",
        "training.progress=false",
        "training.threads=2",
        *([f"data.max_train_samples={args.train_samples}"] if args.train_samples else []),
        *([f"training.epochs={args.epochs}"] if args.epochs else []),
        *extra,
    ]
    config = load_config(ROOT / CONFIG, overrides)
    task = get_task(config.task)
    records = task.read_records(config.data, expand_path(TEST_FILE))[: args.test_samples]
    references = [r["target"] for r in records]
    figures: dict = {
        "config": CONFIG,
        "overrides": " ".join(overrides),
        "test_file": TEST_FILE,
        "test_examples": len(records),
        "rouge": "F-measure, best of the references per example; BLEU/chrF use all references",
    }
    lead = [lead_baseline(r["source"], 2) for r in records]
    figures.update(flatten("lead2", generation_metrics(lead, references)))

    result = train(config)
    artifact = Path(result.artifact)
    figures.update(flatten("train", result.metrics["train"]))

    started = time.perf_counter()
    predictor = Predictor.from_artifact(artifact)  # as shipped: offline base, merged adapter
    tuned = predictor.evaluate(records)
    figures["test_seconds"] = round(time.perf_counter() - started, 1)
    figures.update(flatten("test", tuned))
    figures["adapter_mb"] = round(
        sum(p.stat().st_size for p in (artifact / "adapter").rglob("*")) / 2**20, 2
    )

    metrics_file = artifact / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    metrics["test"] = {k: round(v, 6) for k, v in tuned.items()}
    metrics["test_data"] = f"the first {len(records)} dialogues of {TEST_FILE}"
    metrics["lead2_baseline"] = {
        k: round(v, 6) for k, v in generation_metrics(lead, references).items()
    }
    metrics_file.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    saved = yaml.safe_load((artifact / "config.yaml").read_text(encoding="utf-8"))
    sizes = {"train": _train_size(config), "test": len(records)}
    card = model_card(saved, read_artifact(artifact).spec, metrics, sizes)
    prompt = config.task_options.prompt
    card = card.replace(prompt, prompt.replace("\n", "\\n"))  # one line in the card's table
    lines = card.split("\n")
    at = next((i for i, line in enumerate(lines) if line == "## Intended use and limits"), 0)
    lines[at:at] = [
        f"Test: the first {len(records)} DialogSum test dialogues (three references each, "
        f"ROUGE with stemming, best reference), as `bench/summarization_dialogsum.py` scores "
        f"them; the lead-2 baseline (the first two turns) on the same dialogues: ROUGE-L "
        f"{metrics['lead2_baseline']['rougeL']:.4f}. Figures and command: "
        f"`bench/results/{NAME}.json`.",
        "",
        *LICENCE,
    ]
    (artifact / "README.md").write_text("\n".join(lines), encoding="utf-8")
    figures["artifact"] = str(artifact)
    write_result(NAME, figures)


def _train_size(config) -> int:
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    task = get_task(config.task)
    return len(load_splits(config.data, task.record_kind, task.read_records)["train"])


if __name__ == "__main__":
    main()
