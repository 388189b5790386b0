"""Does training-data augmentation help, and by how much, with little data? FPB and BANKING77.

    nice -n 10 python bench/augmentation_lowdata.py [--datasets fpb,banking77]
        [--fractions 0.1,0.25,1.0] [--seeds 42,43] [--methods synonym,insert,swap,delete]

For each dataset and fraction of its training split (a fixed stratified subsample, the same
for every run), MiniLM + LoRA is fine-tuned twice per seed on the same records: plain, and
with ``augment.methods`` switched on (``augment.per_example`` copies of each record). Both
runs of a pair take the same number of optimizer steps (the plain run cycles its smaller
set more often), so a gain is the augmented records' doing, not more training. Nothing is
chosen on test: the settings are fixed in advance (the shipped configs' learning rates and
LoRA rank, no early stopping, the last step kept) and the test split is a fixed stratified
subsample, scored once per run. ``--budget-seconds`` skips a cell whose time, estimated from
the runs so far, would pass the CPU budget: it is listed under ``not_run`` with the estimate.
Writes bench/results/augmentation_lowdata.json after every run (a cut-short run keeps what
it measured); ``--resume`` with the same options keeps its runs and trains only the missing
ones (cells ``not_run`` before, or a cell's second seed), so the grid can be filled over
several sessions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, datasets_root, write_result

NAME = "augmentation_lowdata"

DATASETS = {
    # config, overrides that rebuild its splits without the final-fit merge, settings
    "fpb": (
        "configs/classification_fpb.yaml",
        ["data.train_on_validation=false"],
        {"learning_rate": 4e-4, "batch_size": 16, "label_smoothing": 0.1, "pooling": "mean"},
    ),
    "banking77": (
        "configs/classification_banking77.yaml",
        [],
        {"learning_rate": 1e-3, "batch_size": 32, "label_smoothing": 0.1, "pooling": "cls"},
    ),
}


def _stratified(records: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed stratified subsample of ``n`` records (all of them when n >= len)."""
    if n >= len(records):
        return list(records)
    from sklearn.model_selection import train_test_split

    labels = [r["label"] for r in records]
    keep, _ = train_test_split(records, train_size=n, stratify=labels, random_state=seed)
    return keep


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in records),
        encoding="utf-8",
    )


def _run_config(dataset: str, folder: Path, steps: int, seed: int, augment: dict, out: Path):
    from lepton_nlp.config import load_config

    _, _, settings = DATASETS[dataset]
    tree = {
        "task": "classification",
        "data": {
            "format": "jsonl",
            "train": str(folder / "train.jsonl"),
            "test": str(folder / "test.jsonl"),
        },
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "max_length": 64},
        "task_options": {"pooling": settings["pooling"]},
        "peft": {"method": "lora", "r": 32, "alpha": 64, "dropout": 0.1},
        "training": {
            "output_dir": str(out),
            "overwrite": True,
            "epochs": 1.0,
            "max_steps": steps,
            "batch_size": settings["batch_size"],
            "learning_rate": settings["learning_rate"],
            "scheduler": "cosine",
            "warmup_ratio": 0.1,
            "label_smoothing": settings["label_smoothing"],
            "eval_strategy": "no",
            "early_stopping_patience": None,
            "metric_for_best": "macro_f1",
            "seed": seed,
            "progress": False,
            "report_to": ["none"],
            "threads": 1,
        },
        "evaluation": {"backend_check": False},
        "augment": augment,
    }
    return load_config(tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="fpb,banking77")
    parser.add_argument("--fractions", default="0.1,0.25,1.0")
    parser.add_argument(
        "--seeds", default="42,43", help="training seeds of the smallest fraction, comma-separated"
    )
    parser.add_argument(
        "--seeds-larger",
        default="42",
        help="seeds of the larger fractions (a 25%% cell costs 2.5 times a 10%% one)",
    )
    parser.add_argument("--methods", default="synonym,insert,swap,delete")
    parser.add_argument("--per-example", type=int, default=1)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument(
        "--epochs",
        type=float,
        default=3.0,
        help="passes over the AUGMENTED set (both arms: the same steps)",
    )
    parser.add_argument(
        "--test-samples", type=int, default=600, help="fixed stratified test subsample"
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=0,
        help="skip a cell whose estimated time (from the runs so far) would pass this; "
        "listed in not_run with the estimate (0: no budget)",
    )
    parser.add_argument(
        "--label-check-cell",
        default="",
        help="e.g. fpb:0.1: one more arm there, "
        "augmented + label_check judged by that seed's plain model",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs of bench/results/augmentation_lowdata.json and run only the missing "
        "ones (its settings must be these; not_run is recomputed)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    datasets_root()
    os.chdir(ROOT)
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.training import train

    methods = [m for m in args.methods.split(",") if m]
    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds_larger = [int(s) for s in args.seeds_larger.split(",")]
    work = Path(tempfile.mkdtemp(prefix="lepton-augment-bench-"))
    figures: dict = {
        "benchmark": NAME,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "peft": "lora r=32 alpha=64",
        "max_length": 64,
        "augment_methods": methods,
        "augment_per_example": args.per_example,
        "augment_probability": args.probability,
        "augment_synonyms": "embedding (MiniLM input-embedding neighbours)",
        "epochs_over_augmented_set": args.epochs,
        "protocol": "same records, seeds and optimizer steps for plain and augmented; fixed "
        "settings, last step kept, nothing chosen on validation or test; test = fixed "
        "stratified subsample scored once per run",
        "threads": 1,
        "cells": [],
        "not_run": [],
    }
    started = time.perf_counter()
    check_cell = args.label_check_cell
    from lepton_nlp.tasks import get_task

    pools, tests = {}, {}
    for dataset in args.datasets.split(","):
        config_path, overrides, _ = DATASETS[dataset]
        base = load_config(ROOT / config_path, overrides)
        splits = load_splits(base.data, get_task("classification").record_kind)
        pools[dataset] = splits["train"]
        tests[dataset] = _stratified(splits["test"], args.test_samples, 0)
        figures[f"{dataset}_train_pool"] = len(splits["train"])
        figures[f"{dataset}_test_full"] = len(splits["test"])
        figures[f"{dataset}_test_scored"] = len(tests[dataset])
    if args.resume:
        figures = _resumed(figures)
    done = {
        (c["dataset"], c["fraction"], r["seed"], r["arm"])
        for c in figures["cells"]
        for r in c["runs"]
    }
    cost = {"seconds": 0.0, "samples": 0}  # measured wall seconds per training sample pass
    # Order: the smallest fraction first, and there the first seed of every dataset before
    # the second: what the question is about runs before the budget ends.
    jobs = []
    for f_rank, fraction in enumerate(fractions):
        run_seeds = seeds if f_rank == 0 else seeds_larger
        for s_rank, seed in enumerate(run_seeds):
            for dataset in pools:
                jobs.append((fraction, dataset, seed, s_rank == 0))
    cells: dict[tuple[str, float], dict] = {
        (c["dataset"], c["fraction"]): c for c in figures["cells"]
    }
    try:
        for fraction, dataset, seed, first_seed in jobs:
            pool, test = pools[dataset], tests[dataset]
            n = max(1, round(fraction * len(pool)))
            batch = DATASETS[dataset][2]["batch_size"]
            steps = max(1, math.ceil(n * (1 + args.per_example) / batch * args.epochs))
            arms = [("plain", {}), ("augmented", {"methods": methods})]
            if first_seed and check_cell == f"{dataset}:{fraction:g}":
                arms.append(("augmented+label_check", {"methods": methods}))
            arms = [(arm, a) for arm, a in arms if (dataset, fraction, seed, arm) not in done]
            if not arms:
                continue
            rate = cost["seconds"] / cost["samples"] if cost["samples"] else 0.1
            estimate = len(arms) * (steps * batch * rate + 20)
            elapsed = time.perf_counter() - started
            if args.budget_seconds and elapsed + estimate > args.budget_seconds:
                figures["not_run"].append(
                    {
                        "dataset": dataset,
                        "fraction": fraction,
                        "train": n,
                        "steps": steps,
                        "seed": seed,
                        "estimated_seconds": round(estimate),
                        "reason": f"over the budget: {round(elapsed)} s spent of "
                        f"--budget-seconds {args.budget_seconds:g} (wall clock, shared CPU)",
                    }
                )
                write_result(NAME, figures)
                continue
            folder = work / f"{dataset}-{fraction}"
            if not folder.is_dir():
                folder.mkdir(parents=True)
                _write_jsonl(folder / "train.jsonl", _stratified(pool, n, 0))
                _write_jsonl(folder / "test.jsonl", test)
            if (dataset, fraction) not in cells:
                cells[dataset, fraction] = {
                    "dataset": dataset,
                    "fraction": fraction,
                    "train": n,
                    "steps": steps,
                    "runs": [],
                }
                figures["cells"].append(cells[dataset, fraction])
            cell = cells[dataset, fraction]
            plain_artifact = None
            if any(arm.endswith("label_check") for arm, _ in arms) and arms[0][0] != "plain":
                arms.insert(0, ("plain", {}))  # the label check's judge: trained again
            for arm, augment in arms:
                augment = dict(augment)
                if augment:
                    augment.update(
                        per_example=args.per_example, probability=args.probability, seed=seed
                    )
                if arm.endswith("label_check"):
                    augment.update(label_check=True, label_check_model=str(plain_artifact))
                out = work / "runs" / f"{dataset}-{fraction}-{seed}-{arm}"
                config = _run_config(dataset, folder, steps, seed, augment, out)
                t0 = time.perf_counter()
                result = train(config)
                seconds = time.perf_counter() - t0
                cost["seconds"] += seconds
                cost["samples"] += steps * batch
                test_metrics = result.metrics["test"]
                augmentation = result.metrics.get("augmentation")
                run = {
                    "seed": seed,
                    "arm": arm,
                    "test_accuracy": round(test_metrics["accuracy"], 4),
                    "test_macro_f1": round(test_metrics["macro_f1"], 4),
                    "train_records": n + (augmentation or {}).get("added", 0),
                    "train_seconds": result.metrics["train"]["train_seconds"],
                    "seconds": round(seconds, 1),
                }
                if augmentation:
                    run["augmentation"] = augmentation
                if (dataset, fraction, seed, arm) not in done:
                    cell["runs"].append(run)
                    done.add((dataset, fraction, seed, arm))
                print(json.dumps({"dataset": dataset, "fraction": fraction, **run}), flush=True)
                if arm == "plain":
                    plain_artifact = out
                _summarise(cell)
                figures["elapsed_seconds"] = round(time.perf_counter() - started, 1)
                write_result(NAME, figures)
            for arm, _ in arms:
                shutil.rmtree(
                    work / "runs" / f"{dataset}-{fraction}-{seed}-{arm}", ignore_errors=True
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    figures["complete"] = True
    write_result(NAME, figures)


#: Settings a resumed run must share with the runs it keeps.
RESUME_KEYS = (
    "augment_methods",
    "augment_per_example",
    "augment_probability",
    "epochs_over_augmented_set",
    "base_model",
    "peft",
    "max_length",
)


def _resumed(figures: dict) -> dict:
    """``figures`` with the cells of the earlier result; refused when its settings differ."""
    path = ROOT / "bench" / "results" / f"{NAME}.json"
    if not path.is_file():
        sys.exit(f"--resume: no {path} to resume.")
    earlier = json.loads(path.read_text(encoding="utf-8"))
    differ = [k for k in RESUME_KEYS if earlier.get(k) != figures[k]]
    for dataset in ("fpb", "banking77"):
        key = f"{dataset}_test_scored"
        if key in figures and key in earlier and earlier[key] != figures[key]:
            differ.append(key)
    if differ:
        sys.exit(
            f"--resume: {path.name} was measured with other settings ({', '.join(differ)}); "
            "give the same options, or start afresh without --resume."
        )
    commands = [*earlier.get("earlier_commands", []), earlier["command"]]
    return {**figures, "cells": earlier["cells"], "earlier_commands": commands}


def _summarise(cell: dict) -> None:
    """Mean per arm and the paired (same seed) difference augmented - plain."""
    by_arm: dict[str, dict[int, dict]] = {}
    for run in cell["runs"]:
        by_arm.setdefault(run["arm"], {})[run["seed"]] = run
    plain = by_arm.get("plain", {})
    for arm, runs in by_arm.items():
        for metric in ("test_accuracy", "test_macro_f1"):
            values = [r[metric] for r in runs.values()]
            cell[f"{arm}_{metric}_mean"] = round(statistics.mean(values), 4)
            if arm != "plain":
                deltas = [r[metric] - plain[s][metric] for s, r in runs.items() if s in plain]
                if deltas:
                    cell[f"{arm}_minus_plain_{metric}"] = [round(d, 4) for d in deltas]
                    cell[f"{arm}_minus_plain_{metric}_mean"] = round(statistics.mean(deltas), 4)


if __name__ == "__main__":
    main()
