"""Studio runs: starting one in its worker, its name, its curves, the records it was tested on."""

from __future__ import annotations

from pathlib import Path

import yaml

from apps.common.paths import data_home
from apps.studio.errors import StudioError
from apps.studio.reports import format_metric
from apps.studio.store import Run, RunStore

__all__ = [
    "evaluation_note",
    "format_eta",
    "loss_curves",
    "missing_artifacts",
    "run_records",
    "start_run",
    "unique_run_name",
]


def unique_run_name(store: RunStore, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a run of that name exists already."""
    taken = {run.name for run in store.list()}
    if name not in taken:
        return name
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"


def evaluation_note(history: list[dict]) -> str | None:
    """A line for a run evaluated once so far (a single point is no curve): its scores."""
    evaluations = [e for e in history if any(k.startswith("eval_") for k in e)]
    if len(evaluations) != 1:
        return None
    entry = evaluations[0]
    scores = ", ".join(
        f"{key[5:]} {format_metric(key[5:], float(value))}"
        for key, value in entry.items()
        if key.startswith("eval_") and not key.endswith(("_runtime", "_per_second", "epoch"))
    )
    epoch = entry.get("epoch")
    when = f"epoch {epoch:g}, step {entry.get('step', 0)}" if epoch else f"step {entry['step']}"
    return (
        f"One evaluation so far ({when}): {scores}. The curves need a second epoch; "
        "until then each value is one dot."
    )


def start_run(store: RunStore, config_yaml: str, name: str, task: str) -> Run:
    """Record a run and start its worker process.

    Raises:
        StudioError: another run is still training (two at once would share the same CPU
            cores and both crawl), the message naming it; or a run of this name exists
            (names tell runs apart on every page), the message offering a free one.
    """
    from apps.studio.worker import spawn_worker

    name = name.strip()
    if not name:
        raise StudioError("Give the run a name (it tells runs apart on every page).")
    same = next((run for run in store.list() if run.name == name), None)
    if same is not None:
        raise StudioError(
            f"A run named '{name}' already exists (#{same.id}, {same.status}). Choose another "
            f"name, e.g. '{unique_run_name(store, name)}'."
        )
    busy = store.active()
    if busy:
        other = busy[0]
        raise StudioError(
            f"Run #{other.id} '{other.name}' is still training ({other.status}). Wait for it to "
            "finish, or stop it, then start this one."
        )
    run = store.create(name=name, task=task, config_yaml=config_yaml)
    folder = data_home() / "runs" / f"run-{run.id}"
    config = yaml.safe_load(config_yaml)
    config["training"]["output_dir"] = str(folder / "artifact")
    log_path = folder / "worker.log"
    store.update(
        run.id, config_yaml=yaml.safe_dump(config, sort_keys=False), log_path=str(log_path)
    )
    pid = spawn_worker(run.id, log_path)
    return store.update(run.id, pid=pid)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating..."
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def loss_curves(history: list[dict]) -> list[dict]:
    """Rows ``{step, series, value}``: ``training loss``, ``validation loss`` and the validation
    metrics (``validation accuracy``...; the per-label F1s are left to the results table)."""
    rows = []
    for entry in history:
        for key, value in entry.items():
            if key == "loss":
                series = "training loss"
            elif key.startswith("eval_") and not (
                key.endswith(("_runtime", "_per_second")) or key.startswith("eval_f1_")
            ):
                if key == "eval_epoch":
                    continue
                series = f"validation {key[5:]}"
            else:
                continue
            rows.append({"step": entry.get("step", 0), "series": series, "value": float(value)})
    return rows


def run_records(config_yaml: str, split: str = "test") -> list[dict]:
    """The records of one split of a run, re-created from its config (same seed, same split)."""
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    config = load_config(yaml.safe_load(config_yaml))
    task = get_task(config.task)
    return load_splits(config.data, task.record_kind, getattr(task, "read_records", None))[split]


def missing_artifacts(store: RunStore) -> list[Run]:
    """Finished runs whose model folder has been deleted or moved since."""
    return [
        r
        for r in store.list()
        if r.status in ("completed", "stopped")
        and r.artifact_path
        and not Path(r.artifact_path, "lepton_artifact.json").is_file()
    ]
