"""Shared by the benchmark scripts: run a config, write flat figures to bench/results/<name>.json."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
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

    from lepton_nlp.inference.int8_check import cpu_description

    cpu = f"{platform.processor() or platform.machine()}, {cpu_description()}"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, torch threads {torch.get_num_threads()}"


def flatten(prefix: str, values: dict) -> dict:
    return {
        f"{prefix}_{k}": v
        for k, v in values.items()
        if isinstance(v, int | float | str | type(None))
    }


def latency_figures(latencies: list[float], errors: dict[str, int]) -> dict:
    """Error counts and p50/p95/p99 in ms of request latencies (seconds), as the load
    benchmarks report them."""
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "errors": sum(errors.values()),
        "error_kinds": ",".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "none",
        "p50_ms": round(quantiles[49] * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
        "p99_ms": round(quantiles[98] * 1000, 1),
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
    """Train the config (with overrides), then record validation/test and training figures.

    ``--restarts N`` in ``overrides`` trains N times with seeds ``training.seed``,
    ``training.seed + 1``, ... (each into ``<output_dir>-seed<S>``) and keeps the run with the
    best validation ``training.metric_for_best``: random restarts chosen on validation data
    (as BERT did for its small GLUE tasks). The test figures of every restart are recorded
    too, so nobody has to trust the choice blind; only validation chooses.
    """
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train
    from lepton_nlp.training.trainer import greater_is_better

    restarts, overrides = _pop_restarts(overrides)
    datasets_root()
    os.chdir(ROOT)  # relative paths in configs (runs/, data/) are from the repository root
    # A benchmark rerun replaces its own run folder (runs/<name>); later overrides still win.
    config = load_config(ROOT / config_path, ["training.overwrite=true", *overrides])
    metric = config.training.metric_for_best
    runs = []
    for i in range(restarts):
        run_config = config
        if restarts > 1:
            seed = config.training.seed + i
            run_config = load_config(
                ROOT / config_path,
                [
                    "training.overwrite=true",
                    *overrides,
                    f"training.seed={seed}",
                    f"training.output_dir={config.training.output_dir}-seed{seed}",
                ],
            )
        runs.append((run_config, train(run_config)))
        reported = runs[-1][1].metrics.get("validation", {})
        if restarts > 1 and metric not in reported:  # known after the first run: stop there
            sys.exit(
                f"--restarts chooses on validation {metric}, which the final evaluation does "
                f"not report: set training.metric_for_best to one of {sorted(reported)} (and "
                "give the config validation data)."
            )
    sign = 1 if greater_is_better(metric) else -1
    chosen_config, result = max(
        runs, key=lambda run: sign * run[1].metrics.get("validation", {}).get(metric, 0.0)
    )
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
    if restarts > 1:
        figures["restarts"] = restarts
        figures["restart_chosen_on"] = f"validation_{metric}"
        figures["restart_chosen_seed"] = chosen_config.training.seed
        for run_config, run in runs:
            for split in ("validation", "test"):
                for key in (metric, "accuracy"):
                    if key in run.metrics.get(split, {}):
                        figures[f"seed{run_config.training.seed}_{split}_{key}"] = run.metrics[
                            split
                        ][key]
    write_result(name, figures)
    return figures


def _pop_restarts(overrides: list[str]) -> tuple[int, list[str]]:
    """Take ``--restarts N`` (or ``--restarts=N``) out of the override list."""
    rest, restarts, args = [], 1, iter(overrides)
    for arg in args:
        if arg == "--restarts" or arg.startswith("--restarts="):
            value = arg.partition("=")[2] or next(args, "")
            if not value.isdigit() or int(value) < 1:
                sys.exit(f"--restarts takes a whole number of runs >= 1, not {value!r}.")
            restarts = int(value)
        else:
            rest.append(arg)
    return restarts, rest


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

    from lepton_nlp.inference.zero_shot import generate_zero_shot

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
