"""SQuAD v1.1 extractive QA on held-out articles: full fine-tuning against PEFT methods.

Only SQuAD's dev set is available offline, so it is split by article (configs/qa_squad.yaml:
``data.split_group: title``, seed 42): about 80% of the questions, as whole articles, train
(5% of them, also whole articles, for validation) and 20% test. The article lists and the
sampled question ids go to bench/results/qa_squad_articles.json. On a small CPU budget the
runs use a seeded sample of the training questions (``--train-samples``) and of the test
questions (``--test-samples``); every method sees the same samples. Each method trains in
its own process (so peak memory is its own).

    python bench/qa_squad.py [--methods full,lora] [--train-samples 3000] [--test-samples 1000]
        [--validation-samples 200] [--epochs 1] [key.sub=value ...]

Measured on two idle CPU cores: 5,000 questions for one epoch took 31 minutes a method
(3.2-3.3 windows/s training, 5 minutes to score 200 + 1,000 questions), so the defaults (3,000
questions) should take about 40 minutes for full fine-tuning and LoRA together (estimated
from that speed, not timed); ``--methods lora
--train-samples 0 --validation-samples 0 --test-samples 0 --epochs 2`` (every question: the
reported run) took 93 minutes.

EM and F1 are the official SQuAD v1.1 figures as fractions (0.65 = the script's 65.0).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, datasets_root, write_result

CONFIG = "configs/qa_squad.yaml"
#: Learning rates for the budget here (a few thousand questions, 1-2 epochs); other methods
#: take lepton-nlp's default for the method.
LEARNING_RATES = {"full": 1e-4, "lora": 1e-3}
REFERENCE = {
    "target_test_f1": 0.65,
    "reference_distilbert_full_squad_f1": 0.870,
    "reference_minilm_l6_squad2_f1": 0.756,
}


def _sample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    if not n or n >= len(records):
        return list(records)
    return random.Random(seed).sample(records, n)


def prepare_data(args: argparse.Namespace, folder: Path) -> dict:
    """Split by article as the config says, sample, write JSON Lines files; return the facts."""
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    config = load_config(ROOT / CONFIG)
    task = get_task("qa")
    splits = load_splits(config.data, task.record_kind, task.read_records)
    seed = config.data.split_seed
    sizes = {
        "train": args.train_samples,
        "validation": args.validation_samples,
        "test": args.test_samples,
    }
    used = {}
    for name, records in splits.items():
        used[name] = _sample(records, sizes[name], seed)
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for record in used[name]:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    articles = {
        "dataset": config.data.train,
        "split": f"data.split_group=title, test_size={config.data.test_size}, "
        f"validation_size={config.data.validation_size}, split_seed={seed}",
        **{
            f"{name}_articles": sorted({r["title"] for r in records})
            for name, records in splits.items()
        },
        **{f"{name}_questions_available": len(records) for name, records in splits.items()},
        **{f"{name}_question_ids": [r["id"] for r in used[name]] for name in used},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "qa_squad_articles.json").write_text(
        json.dumps(articles, indent=1) + "\n", encoding="utf-8"
    )
    return {
        "dataset": "SQuAD v1.1 dev, split by article (seed 42)",
        **{f"{name}_articles": len(articles[f"{name}_articles"]) for name in splits},
        **{f"{name}_questions_available": len(records) for name, records in splits.items()},
        **{f"{name}_questions_used": len(used[name]) for name in used},
    }


def run_one(method: str, folder: Path, args: argparse.Namespace) -> dict:
    """Train and score one method on the prepared files (runs in its own process)."""
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    learning_rate = LEARNING_RATES.get(method)
    overrides = [
        "data.format=jsonl",
        f"data.train={folder / 'train.jsonl'}",
        f"data.validation={folder / 'validation.jsonl'}",
        f"data.test={folder / 'test.jsonl'}",
        "data.test_size=0",
        "data.validation_size=0",
        f"peft.method={method}",
        f"training.learning_rate={learning_rate if learning_rate else 'null'}",
        f"training.epochs={args.epochs}",
        f"training.output_dir={folder / method}",
        "training.report_to=[none]",
        "training.progress=false",
        *args.overrides,
    ]
    config = load_config(ROOT / CONFIG, overrides)
    started = time.perf_counter()
    result = train(config)
    m = result.metrics
    return {
        "test_f1": m["test"]["f1"],
        "test_exact_match": m["test"]["exact_match"],
        "validation_f1": m.get("validation", {}).get("f1"),
        "validation_exact_match": m.get("validation", {}).get("exact_match"),
        "learning_rate": config.training.learning_rate,
        "epochs": m["train"]["epochs"],
        "steps": m["train"]["steps"],
        "best_checkpoint_step": m["train"]["best_checkpoint_step"],
        "train_windows_per_second": m["train"]["train_samples_per_second"],
        "train_seconds": m["train"]["train_seconds"],
        "run_seconds": round(time.perf_counter() - started, 1),
        "trainable_parameters": m["train"]["trainable_parameters"],
        "trainable_percent": m["train"]["trainable_percent"],
        "peak_memory_mb": m["train"]["peak_memory_mb"],
        "adapter_mb": round(
            sum(p.stat().st_size for p in result.artifact.rglob("*.safetensors")) / 2**20, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="full,lora", help="comma-separated PEFT methods")
    parser.add_argument("--train-samples", type=int, default=3000, help="0: all")
    parser.add_argument("--validation-samples", type=int, default=200, help="0: all")
    parser.add_argument("--test-samples", type=int, default=1000, help="0: all")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="config overrides, key.sub=value")
    args = parser.parse_args()
    datasets_root()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, Path(args.data), args)), flush=True)
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="qa_squad_") as tmp:
        folder = Path(tmp)
        figures: dict = {
            "config": CONFIG,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            **prepare_data(args, folder),
            "epochs_requested": args.epochs,
            "methods": ",".join(methods),
            "overrides": " ".join(args.overrides),
            "articles_file": "bench/results/qa_squad_articles.json",
        }
        print(json.dumps(figures), flush=True)
        for method in methods:
            print(f"== {method}", flush=True)
            command = [sys.executable, __file__, "--one", method, "--data", str(folder)]
            command += ["--epochs", str(args.epochs), *args.overrides]
            proc = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stderr[-3000:], file=sys.stderr)
                figures[f"{method}_error"] = (
                    proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else "failed"
                )
                continue
            for key, value in json.loads(lines[-1][7:]).items():
                figures[f"{method}_{key}"] = value
            print(
                json.dumps({k: v for k, v in figures.items() if k.startswith(method + "_")}),
                flush=True,
            )

    # Choices use validation F1 only; the test figures are reported for what was chosen.
    def validation_f1(method: str) -> float:
        return figures.get(f"{method}_validation_f1") or 0.0

    peft = [m for m in methods if m != "full" and f"{m}_test_f1" in figures]
    if peft:
        best = max(peft, key=validation_f1)
        figures["best_peft_method"] = best
        figures["best_peft_test_f1"] = figures[f"{best}_test_f1"]
        figures["best_peft_test_exact_match"] = figures[f"{best}_test_exact_match"]
    scored = [m for m in methods if f"{m}_test_f1" in figures]
    chosen = max(scored, key=validation_f1) if scored else None
    figures["chosen_method"] = chosen
    figures["chosen_on"] = "validation_f1"
    figures["chosen_test_f1"] = figures[f"{chosen}_test_f1"] if chosen else None
    figures["meets_target"] = (
        bool(chosen) and figures["chosen_test_f1"] >= REFERENCE["target_test_f1"]
    )
    write_result("qa_squad", {**figures, **REFERENCE})


if __name__ == "__main__":
    main()
