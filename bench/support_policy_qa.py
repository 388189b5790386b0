"""Policy QA for the support bot: SQuAD first, then the bank's own questions, by document.

Builds data/models/support-policy-qa in four steps, every choice made on validation data:

1. SQuAD stage: ``configs/qa_squad.yaml`` on a seeded sample of ``--squad-samples`` of its
   questions (any article: nothing is held out, as no SQuAD figure is reported here) for
   ``--squad-epochs``. This adapter alone is the baseline.
2. The baseline scored on the policy validation and test documents of
   ``configs/qa_support_policies.yaml`` (split by document, so test documents are unseen).
3. Candidates on the policy training documents, each with early stopping on the validation
   documents: the SQuAD adapter continued at each ``--learning-rates`` value, and the plain
   MiniLM at the first. The best validation F1 wins (its best epoch is kept).
4. The final fit: the winner's start and learning rate for its best number of epochs on
   training + validation documents (``data.train_on_validation=true``), into ``--output``.
   Test figures come from the two held-out documents, which nothing above has seen.

The run config has no key for starting from an existing adapter, so the SQuAD adapter is
loaded into the new LoRA model through a trainer callback before the first step (same base,
method, rank and target modules; the QA head too).

    python bench/support_policy_qa.py [--squad-samples 2000] [--squad-epochs 1]
        [--learning-rates 3e-4,1e-3] [--output data/models/support-policy-qa]

Writes bench/results/support_policy_qa.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from common import ROOT, datasets_root, flatten, write_result
from transformers import TrainerCallback

NAME = "support_policy_qa"
CONFIG = "configs/qa_support_policies.yaml"
SQUAD_CONFIG = "configs/qa_squad.yaml"
WORK = ROOT / "runs" / "support_qa"
QUIET = ["training.progress=false", "training.report_to=[none]", "training.threads=2"]
FINAL = ["training.progress=false", "training.threads=2"]  # keeps its TensorBoard logs


class StartFromAdapter(TrainerCallback):
    """Load a saved LoRA adapter (and its head) into the model before the first step."""

    def __init__(self, folder: str | Path):
        self.folder = str(folder)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        weights = load_peft_weights(self.folder)
        result = set_peft_model_state_dict(model, weights)
        ours = [k for k in result.missing_keys if "lora_" in k or "modules_to_save" in k]
        if result.unexpected_keys or ours:
            raise RuntimeError(
                f"{self.folder} does not fit this model: unexpected {result.unexpected_keys[:5]}, "
                f"missing {ours[:5]}; train with the same base, method, rank and targets."
            )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-samples", type=int, default=2000)
    parser.add_argument("--squad-epochs", type=float, default=1.0)
    parser.add_argument("--learning-rates", default="3e-4,1e-3")
    parser.add_argument("--epochs", type=int, default=6, help="most epochs of a candidate")
    parser.add_argument("--output", default="data/models/support-policy-qa")
    return parser.parse_args()


def squad_stage(args: argparse.Namespace) -> tuple[Path, dict]:
    """Train (or reuse, when the same run already finished) the SQuAD-only adapter."""
    from lepton_nlp.artifacts import is_artifact
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    folder = WORK / f"squad{args.squad_samples}"
    overrides = [
        f"name=squad-qa-{args.squad_samples}",
        f"data.max_train_samples={args.squad_samples}",
        "data.test_size=0",
        "data.validation_size=0",
        f"training.epochs={args.squad_epochs}",
        f"training.output_dir={folder}",
        "evaluation.backend_check=false",
        *QUIET,
    ]
    if is_artifact(folder):
        import yaml

        done = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
        if (
            done["data"]["max_train_samples"] == args.squad_samples
            and done["training"]["epochs"] == args.squad_epochs
        ):
            print(f"reusing the SQuAD stage in {folder}")
            return folder, json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    config = load_config(ROOT / SQUAD_CONFIG, [*overrides, "training.overwrite=true"])
    return folder, train(config).metrics


def finished_run(folder: Path, rate: float, epochs: int) -> dict | None:
    """The metrics of a candidate that an interrupted run already finished, if any."""
    import yaml

    from lepton_nlp.artifacts import is_artifact

    if not is_artifact(folder):
        return None
    done = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))["training"]
    if done["learning_rate"] != rate or done["epochs"] != epochs:
        return None
    print(f"reusing the finished candidate in {folder}")
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def epoch_of_best(metrics: dict) -> int:
    """The epoch whose evaluation produced the kept checkpoint (the last when none was kept)."""
    step = metrics["train"].get("best_checkpoint_step") or metrics["train"]["steps"]
    for entry in metrics["history"]:
        if "eval_loss" in entry and entry["step"] == step:
            return max(1, round(entry["epoch"]))
    return max(1, round(metrics["train"]["epochs"]))


def main() -> None:
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.inference import Predictor
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training import train

    args = arguments()
    datasets_root()
    os.chdir(ROOT)  # the configs name data/ and runs/ from the repository root
    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict = {"config": CONFIG, "squad_config": SQUAD_CONFIG}

    squad, squad_metrics = squad_stage(args)
    figures["squad_train_samples"] = args.squad_samples
    figures["squad_epochs"] = args.squad_epochs
    figures.update(flatten("squad_stage_train", squad_metrics["train"]))

    task = get_task("qa")
    base = load_config(ROOT / CONFIG)
    splits = load_splits(base.data, task.record_kind, task.read_records)
    for name, records in splits.items():
        figures[f"policy_{name}_questions"] = len(records)
        figures[f"policy_{name}_documents"] = sorted({r["title"] for r in records})

    baseline = Predictor.from_artifact(squad)
    for split in ("validation", "test"):
        scores = baseline.evaluate(splits[split])
        figures.update(flatten(f"baseline_squad_only_{split}", scores))

    rates = [float(x) for x in args.learning_rates.split(",")]
    candidates = [("squad", rate) for rate in rates] + [("minilm", rates[-1])]
    results = []
    for start, rate in candidates:
        label = f"{start}_lr{rate:g}"
        config = load_config(
            ROOT / CONFIG,
            [
                f"training.learning_rate={rate}",
                f"training.epochs={args.epochs}",
                f"training.output_dir={WORK / label}",
                "training.overwrite=true",
                "evaluation.backend_check=false",
                *QUIET,
            ],
        )
        callbacks = [StartFromAdapter(squad / "adapter")] if start == "squad" else []
        run = finished_run(WORK / label, rate, args.epochs) or train(config, callbacks).metrics
        best_epoch = epoch_of_best(run)
        results.append((run["validation"]["f1"], start, rate, best_epoch))
        figures[f"candidate_{label}_best_epoch"] = best_epoch
        figures.update(flatten(f"candidate_{label}_validation", run["validation"]))
        figures.update(flatten(f"candidate_{label}_test", run["test"]))
        figures[f"candidate_{label}_train_seconds"] = run["train"]["train_seconds"]

    _, start, rate, epochs = max(results)
    figures.update(chosen_start=start, chosen_learning_rate=rate, chosen_epochs=epochs)
    start_text = (
        f"a LoRA adapter first trained on {args.squad_samples} SQuAD v1.1 questions "
        f"({args.squad_epochs:g} epoch; CC BY-SA 4.0), then"
        if start == "squad"
        else "the plain MiniLM,"
    )
    config = load_config(
        ROOT / CONFIG,
        [
            f"training.learning_rate={rate}",
            f"training.epochs={epochs}",
            f"training.output_dir={args.output}",
            "training.overwrite=true",
            "data.train_on_validation=true",
            *FINAL,
        ],
    )
    config = dataclasses.replace(
        config,
        description=(
            f"{config.description} Trained from {start_text} on the policy questions of "
            f"seven documents (training and validation); tested on two unseen documents."
        ),
    )
    callbacks = [StartFromAdapter(squad / "adapter")] if start == "squad" else []
    final = train(config, callbacks=callbacks)
    figures.update(flatten("test", final.metrics["test"]))
    figures.update(flatten("train", final.metrics["train"]))
    note_training(final.artifact, figures, args)
    figures["artifact"] = str(final.artifact)
    write_result(NAME, figures)


def note_training(artifact: Path, figures: dict, args: argparse.Namespace) -> None:
    """Add the SQuAD stage, the choice and the baseline to the model card and metrics.json."""
    f = figures
    lines = [
        "## How it was trained",
        "",
        f"1. SQuAD stage: `{SQUAD_CONFIG}` (LoRA r=16 as here) on a seeded sample of "
        f"{args.squad_samples} SQuAD v1.1 dev questions, {args.squad_epochs:g} epoch.",
        f"2. Policy stage: `{CONFIG}`, split by document (seed 42): training "
        f"{', '.join(f['policy_train_documents'])} ({f['policy_train_questions']} questions), "
        f"validation {', '.join(f['policy_validation_documents'])} "
        f"({f['policy_validation_questions']}), test {', '.join(f['policy_test_documents'])} "
        f"({f['policy_test_questions']}).",
        f"3. Chosen on validation F1: start from {f['chosen_start']}, learning rate "
        f"{f['chosen_learning_rate']:g}, {f['chosen_epochs']} epochs; then the final fit on "
        "training + validation documents. The test documents were never trained on or chosen on.",
        "",
        f"Baseline on the same test documents, the SQuAD-only adapter of step 1: exact match "
        f"{f['baseline_squad_only_test_exact_match']:.4f}, F1 {f['baseline_squad_only_test_f1']:.4f}. "
        "Figures and commands: `bench/results/support_policy_qa.json`.",
        "",
        "The policy documents describe a fictional bank; answers are only as right as the "
        "section the bot passes in as context.",
        "",
    ]
    card = artifact / "README.md"
    text = card.read_text(encoding="utf-8").split("\n")
    at = next((i for i, line in enumerate(text) if line == "## Intended use and limits"), len(text))
    text[at:at] = lines
    card.write_text("\n".join(text), encoding="utf-8")
    metrics_file = artifact / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    metrics["baseline_squad_only"] = {
        split: {k: f[f"baseline_squad_only_{split}_{k}"] for k in ("exact_match", "f1", "examples")}
        for split in ("validation", "test")
    }
    metrics["squad_stage"] = {
        "train_samples": args.squad_samples,
        "epochs": args.squad_epochs,
        "train_seconds": f.get("squad_stage_train_train_seconds"),
    }
    metrics_file.write_text(json.dumps(metrics, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
