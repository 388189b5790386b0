"""Shared by the benchmark scripts: run a config, write flat figures to bench/results/<name>.json."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

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
