"""Shared by the benchmark scripts: run a config, write flat figures to bench/results/<name>.json."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def datasets_root() -> Path:
    """LEPTON_DATASETS (default ../shared/datasets); exits with a clear message when absent."""
    root = Path(os.environ.get("LEPTON_DATASETS", ROOT.parent / "shared" / "datasets"))
    if not root.is_dir():
        sys.exit(
            f"Datasets folder {root} not found: set LEPTON_DATASETS to the shared datasets folder."
        )
    os.environ["LEPTON_DATASETS"] = str(root)
    return root


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, torch threads {torch.get_num_threads()}"


def flatten(prefix: str, values: dict) -> dict:
    return {
        f"{prefix}_{k}": v
        for k, v in values.items()
        if isinstance(v, int | float | str | type(None))
    }


def write_result(name: str, figures: dict) -> Path:
    """Write ``bench/results/<name>.json``: figures plus command, machine and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        **figures,
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))
    return path


def run_config_benchmark(
    name: str, config_path: str, overrides: list[str], reference: dict
) -> dict:
    """Train the config (with overrides), then record validation/test and training figures."""
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    datasets_root()
    os.chdir(ROOT)  # relative paths in configs (runs/, data/) are from the repository root
    # A benchmark rerun replaces its own run folder (runs/<name>); later overrides still win.
    config = load_config(ROOT / config_path, ["training.overwrite=true", *overrides])
    result = train(config)
    m = result.metrics
    figures = {
        "config": config_path,
        "overrides": " ".join(overrides),
        "task": config.task,
        "base_model": config.model.name,
        "peft_method": config.peft.method,
        **flatten("test", m.get("test", {})),
        **flatten("validation", m.get("validation", {})),
        **flatten("train", m["train"]),
        **reference,
        "artifact": str(result.artifact),
    }
    write_result(name, figures)
    return figures


# --- generation benchmarks (summarization, translation) ----------------------------------


def add_generation_arguments(parser: Any) -> None:
    """The budget and baseline flags every generation benchmark takes."""
    parser.add_argument("--train-samples", type=int, help="train on N examples (seeded)")
    parser.add_argument("--epochs", type=float, help="training epochs")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides epochs)")
    parser.add_argument(
        "--family", choices=["causal", "seq2seq", "encoder-decoder"], help="model family"
    )
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the zero-shot baseline")


def budget_overrides(args: Any) -> list[str]:
    """Config overrides for --train-samples, --epochs, --max-steps and --family."""
    out = ["training.overwrite=true"]
    if args.train_samples:
        out.append(f"data.max_train_samples={args.train_samples}")
    if args.epochs:
        out.append(f"training.epochs={args.epochs}")
    if args.max_steps:
        out.append(f"training.max_steps={args.max_steps}")
    if args.family:
        out.append(f"task_options.family={args.family}")
    return out


def zero_shot_figures(
    task: str, model: str, config: Any, records: list[dict], prompt: str | None = None
) -> dict:
    """The instruct ``model`` with no training, same options and records: ``zero_shot_*``."""
    import dataclasses
    import time

    from lepton_nlp.tasks.generation import generate_zero_shot

    started = time.perf_counter()
    options = dataclasses.asdict(config.task_options) | {"family": "causal"}
    if prompt is not None:
        options["prompt"] = prompt
    _, metrics = generate_zero_shot(
        task,
        model,
        records,
        options,
        max_length=config.model.max_length,
        batch_size=config.evaluation.batch_size,
    )
    return flatten("zero_shot", metrics) | {
        "zero_shot_seconds": round(time.perf_counter() - started, 1)
    }


def tuned_figures(result: Any, records: list[dict]) -> tuple[dict, dict]:
    """Score a training result's predictor on ``records``: (test metrics, flat figures)."""
    import time

    started = time.perf_counter()
    tuned = result.predictor.evaluate(records)
    figures = {"test_seconds": round(time.perf_counter() - started, 1)}
    figures.update(flatten("test", tuned))
    figures.update(flatten("validation", result.metrics.get("validation", {})))
    figures.update(flatten("train", result.metrics["train"]))
    return tuned, figures
