"""SemEval-2010 Task 8 relations, official train/test: full fine-tuning versus LoRA, same model.

Scores are the task's official macro-F1 ((9+1)-way, direction taken into account, Other
left out) and plain accuracy. Both methods train from ``configs/relation_semeval2010.yaml``;
full fine-tuning takes its own learning rate (``--full-lr``).

python bench/relation_semeval2010.py [--methods full,lora] [--train-samples N] [--epochs E]
    [--test-samples N] [--full-lr LR] [--runs-dir runs] [key.sub=value ...]

``--train-samples`` takes a seeded, label-stratified sample of the training sentences
(``data.max_train_samples``); ``--test-samples`` scores the first N sentences of the
official test file only. Both are written into the result, so a reduced run says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import ROOT, datasets_root, flatten, write_result

NAME = "relation_semeval2010"
CONFIG = "configs/relation_semeval2010.yaml"
REFERENCE = {
    "reference_rbert_macro_f1": 0.8925,  # Wu & He 2019, BERT-large
    "reference_crcnn_macro_f1": 0.841,  # dos Santos et al. 2015
    "target_macro_f1": 0.80,
}
KEPT = ("macro_f1", "micro_f1", "accuracy", "macro_precision", "macro_recall", "examples")


def _arguments() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="full,lora", help="comma-separated PEFT methods")
    parser.add_argument("--train-samples", type=int, default=None, help="training sentences")
    parser.add_argument("--epochs", type=float, default=None, help="epochs (config: 5)")
    parser.add_argument("--test-samples", type=int, default=None, help="first N test sentences")
    parser.add_argument("--full-lr", type=float, default=1e-4, help="learning rate of full FT")
    parser.add_argument("--runs-dir", default="runs", help="folder of the artifacts")
    return parser.parse_known_args()


def _run(method: str, args: argparse.Namespace, extra: list[str]) -> dict:
    from lepton_nlp.config import load_config
    from lepton_nlp.data.semeval import read_semeval
    from lepton_nlp.training import train

    overrides = [
        f"peft.method={method}",
        f"training.output_dir={args.runs_dir}/{NAME}_{method}",
        "training.overwrite=true",
    ]
    if method == "full":
        overrides.append(f"training.learning_rate={args.full_lr}")
    if args.train_samples:
        overrides.append(f"data.max_train_samples={args.train_samples}")
    if args.epochs:
        overrides.append(f"training.epochs={args.epochs}")
    if args.test_samples:
        overrides.append("data.test=null")  # scored below on the subset instead
    overrides += extra
    config = load_config(ROOT / CONFIG, overrides)
    started = time.perf_counter()
    result = train(config)
    test = result.metrics.get("test", {})
    if args.test_samples:
        from lepton_nlp.config import expand_path

        records = read_semeval(
            expand_path(load_config(ROOT / CONFIG).data.test), config.data.encoding
        )
        test = result.predictor.evaluate(records[: args.test_samples])
    train_figures = result.metrics["train"]
    figures = {
        **{f"test_{k}": round(test[k], 6) for k in KEPT if k in test},
        **{
            f"validation_{k}": v
            for k, v in result.metrics.get("validation", {}).items()
            if k in KEPT
        },
        **{
            k: v
            for k, v in flatten("train", train_figures).items()
            if k
            in (
                "train_trainable_parameters",
                "train_trainable_percent",
                "train_train_seconds",
                "train_train_samples_per_second",
                "train_epochs",
                "train_steps",
                "train_peak_memory_mb",
            )
        },
        "learning_rate": config.training.learning_rate,
        "train_examples": _train_size(config),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "artifact": str(result.artifact),
    }
    print(f"== {method}: {figures}", flush=True)
    return {f"{method}_{k}": v for k, v in figures.items()}


def _train_size(config) -> int:
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    task = get_task(config.task)
    return len(load_splits(config.data, task.record_kind, task.read_records)["train"])


def main() -> None:
    args, extra = _arguments()
    datasets_root()
    os.chdir(ROOT)  # relative paths in the config (runs/) are from the repository root
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    figures: dict = {
        "config": CONFIG,
        "dataset": "SemEval-2010 Task 8, official TRAIN_FILE (10% held out for validation) "
        "and TEST_FILE_FULL",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "methods": ",".join(methods),
        "train_samples": args.train_samples or "all",
        "test_samples": args.test_samples or "all",
        "epochs": args.epochs or "config",
        "overrides": " ".join(extra),
    }
    for method in methods:
        figures.update(_run(method, args, extra))
    scored = [m for m in methods if f"{m}_test_macro_f1" in figures]
    peft = [m for m in scored if m != "full"]
    if peft:  # the best PEFT method is chosen on validation, never on test
        best = max(peft, key=lambda m: figures.get(f"{m}_validation_macro_f1") or 0.0)
        figures["best_peft_method"] = best
        figures["best_peft_test_macro_f1"] = figures[f"{best}_test_macro_f1"]
    if "full" in scored:
        figures["full_test_macro_f1_minus_best_peft"] = (
            round(figures["full_test_macro_f1"] - figures["best_peft_test_macro_f1"], 6)
            if peft
            else None
        )
    figures.update(REFERENCE)
    write_result(NAME, figures)


if __name__ == "__main__":
    sys.exit(main())
