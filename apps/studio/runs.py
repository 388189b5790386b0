"""Studio runs: starting one in its worker, its name, its curves, the records it was tested on."""

from __future__ import annotations

from pathlib import Path

import yaml

from apps.common.paths import data_home
from apps.studio.errors import StudioError
from apps.studio.methods import set_output_dir
from apps.studio.reports import format_metric
from apps.studio.store import Run, RunStore

__all__ = [
    "STEP_WORDS",
    "continual_table",
    "evaluation_note",
    "finished_models",
    "format_eta",
    "hpo_summary",
    "job_of",
    "leaderboard_table",
    "loss_curves",
    "missing_artifacts",
    "progress_text",
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
    config = set_output_dir(yaml.safe_load(config_yaml), folder / "artifact")
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


def finished_models(store: RunStore) -> dict[str, str]:
    """``{"#id name": model folder}`` of the finished runs whose model folder is complete,
    newest first (what a run can start from)."""
    return {
        f"#{r.id} {r.name}": r.artifact_path
        for r in store.list()
        if r.status in ("completed", "stopped")
        and r.artifact_path
        and Path(r.artifact_path, "lepton_artifact.json").is_file()
    }


def missing_artifacts(store: RunStore) -> list[Run]:
    """Finished runs whose model folder has been deleted or moved since."""
    return [
        r
        for r in store.list()
        if r.status in ("completed", "stopped")
        and r.artifact_path
        and not Path(r.artifact_path, "lepton_artifact.json").is_file()
    ]


def job_of(run: Run) -> str:
    """What ran the run: ``train``, ``hpo``, ``continual`` or ``fewshot``
    (:func:`apps.studio.methods.job_of`)."""
    from apps.studio.methods import job_of as job_of_tree

    return job_of_tree(yaml.safe_load(run.config_yaml) or {})


STEP_WORDS = {"train": "step", "hpo": "trial", "continual": "task", "fewshot": "step"}
"""What one unit of a job's progress is called on the Train page."""


def progress_text(run: Run, job: str) -> str:
    """The live run's progress line: ``step 12 of 40 - about 30 s left`` (trials of a
    search, tasks of a sequence)."""
    if run.status == "stopping":
        if job == "continual":
            return "stopping: a sequence stopped early keeps nothing..."
        if job == "fewshot":
            return "stopping: a few-shot run stopped early keeps nothing..."
        if job == "hpo":
            return "stopping: the finished trials and the best model so far are kept..."
        return "stopping after this step; the best checkpoint will be kept..."
    if not run.total_steps:
        return {
            "train": "starting: loading data and model...",
            "hpo": "first trial running (the settings as given)...",
            "continual": "learning the first task...",
            "fewshot": "learning from the examples, then scoring the evaluation texts...",
        }[job]
    word = STEP_WORDS[job]
    done = run.step if job == "train" else f"{run.step} finished"
    return f"{word} {done} of {run.total_steps} - about {format_eta(run.eta_seconds)} left"


def hpo_summary(run: Run) -> dict | None:
    """A search's figures so far (``metrics.hpo``: leaderboard, best and baseline trials)."""
    return run.metrics.get("hpo")


def leaderboard_table(summary: dict) -> list[dict]:
    """The search's leaderboard as table rows: rank, trial (``0*``: the settings as given),
    state, the metric, the drawn values, seconds."""
    metric = summary.get("metric")
    rows = []
    for row in summary.get("leaderboard") or []:
        shown = {k: v for k, v in row.items() if k not in ("baseline", "evaluations")}
        shown["trial"] = f"{row['trial']}{'*' if row.get('baseline') else ''}"
        if isinstance(shown.get(metric), float):
            shown[metric] = round(shown[metric], 4)
        rows.append(shown)
    return rows


def continual_table(run: Run, split: str = "test") -> list[dict]:
    """The forgetting matrix of a continual run: one row per step, one column per task
    (its accuracy on ``split`` after that step; empty for tasks not learnt yet)."""
    figures = run.metrics.get("continual") or {}
    tasks = figures.get("tasks") or []
    matrix = (figures.get("matrix") or {}).get(split) or []
    return [
        {
            "after learning": tasks[i],
            **{
                task: (None if v is None else round(v, 3))
                for task, v in zip(tasks, row, strict=False)
            },
        }
        for i, row in enumerate(matrix)
    ]
