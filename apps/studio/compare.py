"""Comparing studio runs: one row per run, and what differs between two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apps.studio.store import Run

__all__ = ["diff_runs", "runs_table"]


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_TABLE_CONFIG = {
    "model.name": "base model",
    "peft.method": "method",
    "peft.r": "r",
    "training.epochs": "epochs",
    "training.learning_rate": "learning rate",
    "training.batch_size": "batch",
}


def runs_table(runs: list[Run]) -> list[dict]:
    """One row per run: config, status, metrics, time and trainable parameters."""
    rows = []
    for run in runs:
        config = _flat(yaml.safe_load(run.config_yaml) or {})
        metrics = run.metrics
        row: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "task": run.task,
            "status": run.status,
        }
        for split in ("validation", "test"):
            for key, value in (metrics.get(split) or {}).items():
                if key != "examples" and not key.startswith("f1_"):
                    row[f"{split} {key}"] = round(float(value), 4)
        row.update({label: config.get(key) for key, label in _TABLE_CONFIG.items()})
        if "/" in str(row.get("base model")) and Path(str(row["base model"])).is_dir():
            row["base model"] = Path(str(row["base model"])).name  # a local folder: its name
        train = metrics.get("train") or {}
        row["train seconds"] = train.get("train_seconds")
        row["trainable params"] = train.get("trainable_parameters")
        if run.artifact_path and not Path(run.artifact_path, "lepton_artifact.json").is_file():
            row["status"] = f"{run.status} (model folder deleted)"
        row["created"] = run.created.strftime("%Y-%m-%d %H:%M") if run.created else ""
        rows.append(row)
    return rows


def diff_runs(a: Run, b: Run) -> list[dict]:
    """Settings and results that differ between two runs (``name``, ``run A``, ``run B``)."""
    flat_a = _flat(yaml.safe_load(a.config_yaml) or {})
    flat_b = _flat(yaml.safe_load(b.config_yaml) or {})
    flat_a.update(_flat({k: v for k, v in a.metrics.items() if k != "history"}, "metrics."))
    flat_b.update(_flat({k: v for k, v in b.metrics.items() if k != "history"}, "metrics."))
    rows = []
    # Settings first, then results.
    for key in sorted(set(flat_a) | set(flat_b), key=lambda k: (k.startswith("metrics."), k)):
        # Not what tells two runs apart: where they wrote, timings, the int8 check's notes.
        if (
            key in ("training.output_dir", "name")
            or key.startswith("metrics.backends.")
            or key.endswith(("train_seconds", "samples_per_second", "peak_memory_mb"))
        ):
            continue
        va, vb = flat_a.get(key), flat_b.get(key)
        if va != vb:
            rows.append(
                {"setting": key, f"#{a.id} {a.name}": _show(va), f"#{b.id} {b.name}": _show(vb)}
            )
    return rows


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
