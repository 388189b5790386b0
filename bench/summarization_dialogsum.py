"""DialogSum summarization: fine-tuned model against zero-shot SmolLM2 and a lead baseline.

Trains on DialogSum dev, scores the first ``--test-samples`` test dialogues (three human
summaries each; ROUGE takes the best reference per dialogue). Baselines run in the same
script on the same dialogues: the zero-shot instruct model with the same prompt, and the
first two turns of the dialogue.

python bench/summarization_dialogsum.py [--train-samples N] [--test-samples 50]
    [--epochs E | --max-steps S] [--family causal|encoder-decoder] [key.sub=value ...]
"""

from __future__ import annotations

import argparse
import os

from common import (
    ROOT,
    add_generation_arguments,
    budget_overrides,
    datasets_root,
    flatten,
    tuned_figures,
    write_result,
    zero_shot_figures,
)

NAME = "summarization_dialogsum"
CONFIG = "configs/summarization_dialogsum.yaml"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Measured by the issue on the first 50 test dialogues (best of three references).
REFERENCE = {
    "reference_zero_shot_smollm2_rougeL": 0.177,
    "reference_lead2_rougeL": 0.202,
    "reference_human_rougeL": 0.460,
    "target_rougeL_margin": 0.05,
}


def arguments() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generation_arguments(parser)
    parser.add_argument("--test-samples", type=int, default=50, help="first N test dialogues")
    parser.add_argument("--lead-turns", type=int, default=2, help="turns of the lead baseline")
    return parser.parse_known_args()


def overrides_from(args: argparse.Namespace, extra: list[str]) -> list[str]:
    out = [*budget_overrides(args), "data.test=null"]  # the test subset is scored below
    if args.family == "encoder-decoder":
        # A warm-started MiniLM encoder-decoder; its new cross-attention must train.
        out += [f"model.name={MINILM}", "peft.method=full", "task_options.prompt='{source}'"]
    return out + extra


def main() -> None:
    from lepton_nlp.config import expand_path, load_config
    from lepton_nlp.evaluation.generation import generation_metrics, lead_baseline
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training import train

    args, extra = arguments()
    datasets_root()
    os.chdir(ROOT)
    overrides = overrides_from(args, extra)
    config = load_config(ROOT / CONFIG, overrides)
    task = get_task(config.task)
    test_file = load_config(ROOT / CONFIG).data.test
    records = task.read_records(config.data, expand_path(test_file))[: args.test_samples]
    figures: dict = {
        "config": CONFIG,
        "overrides": " ".join(overrides),
        "base_model": config.model.name,
        "family": config.task_options.family,
        "peft_method": config.peft.method,
        "test_examples": len(records),
        "rouge": "F-measure, best of the references per example; BLEU/chrF use all references",
    }

    lead = [lead_baseline(r["source"], args.lead_turns) for r in records]
    figures.update(
        flatten(f"lead{args.lead_turns}", generation_metrics(lead, records_refs(records)))
    )

    if not args.no_zero_shot:
        figures.update(zero_shot_figures("summarization", SMOLLM2, config, records))

    result = train(config)
    tuned, scored = tuned_figures(result, records)
    figures.update(scored)
    best_baseline = max(
        figures.get(f"lead{args.lead_turns}_rougeL", 0.0), figures.get("zero_shot_rougeL", 0.0)
    )
    figures["test_rougeL_over_best_baseline"] = round(tuned["rougeL"] - best_baseline, 4)
    figures["target_met"] = tuned["rougeL"] >= best_baseline + REFERENCE["target_rougeL_margin"]
    figures.update(REFERENCE)
    figures["artifact"] = str(result.artifact)
    write_result(NAME, figures)


def records_refs(records: list[dict]) -> list:
    return [r["target"] for r in records]


if __name__ == "__main__":
    main()
