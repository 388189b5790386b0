"""Comparing studio runs: one row per run, what differs between two, and a method's effect
against its plain twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apps.studio import methods
from apps.studio.methods import Method
from apps.studio.store import Run

__all__ = [
    "FINISHED",
    "baseline_config",
    "diff_runs",
    "effects",
    "is_plain_twin",
    "methods_of",
    "metric_deltas",
    "runs_table",
    "settings_of",
]

FINISHED = ("completed", "stopped")
"""Statuses of a run whose figures can be compared."""


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
    "peft.method": "PEFT",
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
        used = methods_of(run)
        row["method"] = ", ".join(m.label for m in used) or "plain"
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


# --- a method's effect: the run against its plain twin -------------------------------------


def settings_of(run: Run) -> dict[str, Any]:
    """The run's settings as flat keys, every default filled in (:func:`methods.flat_settings`)."""
    return methods.flat_settings(yaml.safe_load(run.config_yaml) or {})


def methods_of(run: Run) -> list[Method]:
    """The methods ``run`` used (empty: a plain run)."""
    return methods.methods_used(settings_of(run))


def is_plain_twin(with_method: dict[str, Any], plain: dict[str, Any], method: Method) -> bool:
    """Whether settings ``plain`` are those of ``with_method`` without ``method``.

    The rule: ``plain`` does not use the method, and the two agree on every setting the
    method does not own (task, data and its split, base model, max tokens, PEFT settings,
    seed, epochs, batch size...; :data:`methods.NOT_SETTINGS` such as the name and output
    folder never count). A setting one of them lacks counts as different.
    """
    if method.uses(plain) or not method.uses(with_method):
        return False
    keys = set(with_method) | set(plain)
    missing = object()
    return all(
        with_method.get(key, missing) == plain.get(key, missing)
        for key in keys
        if not method.owns_key(key)
    )


def effects(run: Run, runs: list[Run]) -> list[tuple[Method, Run | None]]:
    """For each method ``run`` used, its plain twin among ``runs``: the newest finished run
    that :func:`is_plain_twin` accepts, or None when there is none yet."""
    mine = settings_of(run)
    candidates = [
        (other, settings_of(other))
        for other in sorted(runs, key=lambda r: r.id, reverse=True)
        if other.id != run.id and other.status in FINISHED and other.metrics
    ]
    return [
        (
            method,
            next((o for o, flat in candidates if is_plain_twin(mine, flat, method)), None),
        )
        for method in methods.methods_used(mine)
    ]


LOWER_IS_BETTER = ("loss", "forgetting", "seconds", "ter")
"""Metrics (name parts) for which a lower value is better."""


def _figures(run: Run) -> dict[tuple[str, str], float]:
    figures = {}
    metrics = run.metrics
    for split in ("validation", "test"):
        for key, value in (metrics.get(split) or {}).items():
            if (
                key == "examples"
                or key.startswith("f1_")
                or key.endswith(("_runtime", "_per_second", "epoch"))
                or isinstance(value, bool)
                or not isinstance(value, int | float)
            ):
                continue
            figures[split, key] = float(value)
    seconds = (metrics.get("train") or {}).get("train_seconds")
    if isinstance(seconds, int | float):
        figures["cost", "train seconds"] = float(seconds)
    return figures


def metric_deltas(run: Run, baseline: Run) -> list[dict[str, Any]]:
    """The figures both runs have (validation and test metrics, training seconds), each
    with ``change`` = run - baseline and whether that change is for the ``better``."""
    mine, theirs = _figures(run), _figures(baseline)
    rows = []
    for split, metric in (k for k in mine if k in theirs):
        change = mine[split, metric] - theirs[split, metric]
        lower = any(part in metric for part in LOWER_IS_BETTER)
        rows.append(
            {
                "split": split,
                "metric": metric,
                "baseline": round(theirs[split, metric], 4),
                "run": round(mine[split, metric], 4),
                "change": round(change, 4),
                "better": None if change == 0 else (change < 0) == lower,
            }
        )
    return rows


def baseline_config(run: Run, method: Method) -> tuple[str, str]:
    """``(config YAML, name)`` of ``run``'s plain twin: the run's config without ``method``.

    Raises:
        apps.studio.errors.StudioError: the core refuses the plain config (its message says why).
    """
    from apps.studio.runconfig import checked_job

    plain = checked_job(methods.plain_tree(yaml.safe_load(run.config_yaml), method.name))
    if "name" in plain:
        plain["name"] = f"{run.name}-plain"
    elif "run" in plain:
        plain["run"]["name"] = f"{run.name}-plain"
    return yaml.safe_dump(plain, sort_keys=False), f"{run.name}-plain"
