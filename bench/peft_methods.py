"""Every PEFT method on Financial PhraseBank under one budget, side by side with full fine-tuning.

Each method trains in its own process (so peak memory is its own) on the same subset of the
FinBERT-protocol training split, for the same number of epochs, with its default learning
rate, no early stopping; scored on the same test split.

    python bench/peft_methods.py [--methods full,lora,...] [--train-samples 800] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, datasets_root, write_result

DEFAULT_METHODS = "full,lora,adalora,ia3,prompt,ptuning,loha,vera,ln_tuning"


def run_one(method: str, train_samples: int, epochs: float, out: Path) -> dict:
    from lepton_nlp.config import load_config
    from lepton_nlp.peft_methods import METHODS
    from lepton_nlp.training import train

    config = load_config(
        ROOT / "configs" / "classification_fpb.yaml",
        [
            f"peft.method={method}",
            "peft.r=16",
            "peft.alpha=32",
            "training.learning_rate=null",
            f"data.max_train_samples={train_samples}",
            f"training.epochs={epochs}",
            "training.eval_strategy=no",
            "training.early_stopping_patience=null",
            "training.scheduler=linear",
            "training.label_smoothing=0",
            "training.report_to=[none]",
            "data.validation_size=0",
            f"training.output_dir={out}",
            "training.progress=false",
        ],
    )
    result = train(config)
    m = result.metrics
    return {
        "test_accuracy": m["test"]["accuracy"],
        "test_macro_f1": m["test"]["macro_f1"],
        "trainable_parameters": m["train"]["trainable_parameters"],
        "trainable_percent": m["train"]["trainable_percent"],
        "peak_memory_mb": m["train"]["peak_memory_mb"],
        "train_samples_per_second": m["train"]["train_samples_per_second"],
        "train_seconds": m["train"]["train_seconds"],
        "learning_rate": METHODS[method].learning_rate,
        "adapter_mb": round(
            sum(p.stat().st_size for p in (result.artifact).rglob("*.safetensors")) / 2**20, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--train-samples", type=int, default=600)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    datasets_root()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                "RESULT "
                + json.dumps(run_one(args.one, args.train_samples, args.epochs, Path(tmp) / "a"))
            )
        return
    figures: dict = {
        "dataset": "financial_phrasebank Sentences_50Agree, FinBERT split (seed 42)",
        "train_samples": args.train_samples,
        "epochs": args.epochs,
    }
    for method in args.methods.split(","):
        print(f"== {method}", flush=True)
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                method,
                "--train-samples",
                str(args.train_samples),
                "--epochs",
                str(args.epochs),
            ],
            capture_output=True,
            text=True,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-2000:], file=sys.stderr)
            figures[f"{method}_error"] = (
                proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else "failed"
            )
            continue
        for key, value in json.loads(lines[-1][7:]).items():
            figures[f"{method}_{key}"] = value
        print(
            json.dumps({k: v for k, v in figures.items() if k.startswith(method + "_")}), flush=True
        )
    write_result("peft_methods", figures)


if __name__ == "__main__":
    main()
