"""Train one studio run in its own process: ``python -m apps.studio.worker RUN_ID``.

The worker reports progress, losses and metrics to the run store, honours the stop flag
(training ends after the current step; the best checkpoint is reloaded and saved), and
marks the run failed, with the reason, on any error.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from transformers import TrainerCallback

from apps.common.database import StoreError, safe_url, utc_now
from apps.common.paths import ROOT, data_home
from apps.studio.store import RunStore

__all__ = [
    "StudioCallback",
    "continual_metrics",
    "hpo_outcome",
    "main",
    "run_training",
    "spawn_worker",
]

log = logging.getLogger(__name__)


class StudioCallback(TrainerCallback):
    """Write progress and logs of a Trainer to the run store; stop when the store asks."""

    def __init__(self, store: RunStore, run_id: int, every_seconds: float = 1.0):
        self.store = store
        self.run_id = run_id
        self.every = every_seconds
        self.history: list[dict] = []
        self._last = 0.0
        self._start = time.monotonic()

    def _report(self, state, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        total = max(state.max_steps or 0, 1)
        step = state.global_step
        elapsed = now - self._start
        eta = elapsed / step * (total - step) if step else None
        self.store.update(
            self.run_id,
            step=step,
            total_steps=total,
            progress=min(step / total, 1.0),
            eta_seconds=eta,
            history=self.history,
        )

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()
        self._report(state, force=True)

    def on_step_end(self, args, state, control, **kwargs):
        self._report(state)
        run = self.store.get(self.run_id)
        if run is not None and run.stop_requested:
            # Save and evaluate now, so the best checkpoint includes the work done so far.
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            entry = {"step": state.global_step, "epoch": state.epoch}
            entry.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
            self.history.append(entry)
            # Evaluations are shown at once; training losses at most once a second.
            self._report(state, force=any(k.startswith("eval_") for k in logs))

    def on_train_end(self, args, state, control, **kwargs):
        self._report(state, force=True)


def run_training(store: RunStore, run_id: int) -> None:
    """Run job ``run_id`` here and now (a training run, a hyper-parameter search, a
    continual sequence or a few-shot run: :func:`apps.studio.methods.job_of`), recording
    the outcome in ``store``."""
    import yaml

    from apps.studio.methods import job_of

    run = store.get(run_id)
    if run is None:
        raise SystemExit(f"No run {run_id} in {safe_url(store.url)}.")  # never the password
    store.update(run_id, status="running", started=utc_now(), pid=os.getpid(), error="")
    callback = StudioCallback(store, run_id)
    try:
        tree = yaml.safe_load(run.config_yaml)
        job = job_of(tree)
        if job == "hpo":
            outcome = _search(store, run_id, tree)
        elif job == "continual":
            outcome = _sequence(store, run_id, tree)
        elif job == "fewshot":
            outcome = _fewshot(store, run_id, tree)
        else:
            outcome = _train(tree, callback)
        stopped = bool(store.get(run_id).stop_requested)
        fields = {
            "progress": 1.0 if not stopped else store.get(run_id).progress,
            "history": callback.history,
            **outcome,
            "eta_seconds": 0.0,
        }
        store.update(
            run_id, status="stopped" if stopped else "completed", finished=utc_now(), **fields
        )
    except _StoppedEarly as error:
        store.update(
            run_id, status="stopped", finished=utc_now(), error=str(error), eta_seconds=0.0
        )
    except BaseException as error:
        message = f"{type(error).__name__}: {error}".strip()
        if isinstance(error, KeyboardInterrupt | SystemExit):
            message = "The training process was interrupted (signal). Start the run again."
        store.update(
            run_id,
            status="failed",
            finished=utc_now(),
            error=message,
            history=callback.history,
        )
        traceback.print_exc()
        if not isinstance(error, Exception):
            raise


def _train(tree: dict, callback: StudioCallback) -> dict:
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    result = train(load_config(tree), callbacks=[callback])
    return {
        "metrics": result.metrics,
        "artifact_path": str(result.artifact) if result.artifact else "",
    }


class _StoppedEarly(Exception):
    """A job stopped on request before it had anything to keep."""


class _Watch:
    """While a search or a sequence runs: report its progress every ``every`` seconds, and
    on a stop request interrupt it (Ctrl-C in the main thread: the search keeps its finished
    trials and reports; a sequence keeps nothing, which the run's record says)."""

    def __init__(self, store: RunStore, run_id: int, progress, every: float = 1.0):
        self.store, self.run_id, self.progress, self.every = store, run_id, progress, every
        self.stopped = threading.Event()
        self.interrupted = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="studio-watch", daemon=True)

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.tick()
            except Exception:  # a busy database now and then: the next tick tries again
                log.warning("run %s: progress update failed; retrying", self.run_id, exc_info=True)

    def tick(self) -> None:
        fields = self.progress()
        if fields:
            self.store.update(self.run_id, **fields)
        run = self.store.get(self.run_id)
        if run is not None and run.stop_requested and not self.interrupted:
            self.interrupted = True
            _thread.interrupt_main()

    def __enter__(self) -> _Watch:
        # A stop requested before the job began stops it now, as Ctrl-C would, not after the
        # first interval (a short job could finish before that and be kept).
        run = self.store.get(self.run_id)
        if run is not None and run.stop_requested:
            self.interrupted = True
            raise KeyboardInterrupt
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def hpo_outcome(folder: Path, trials: int, seconds: float) -> dict:
    """What a search's ``leaderboard.json`` says so far, as run-store fields: progress in
    finished trials, and ``metrics`` with the best trial's validation figures and ``hpo``
    (the leaderboard, the baseline trial's value, the best config)."""
    path = folder / "leaderboard.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # being written this instant: the next look reads it
        return {}
    counts = record.get("trials") or {}
    finished = int(counts.get("complete", 0)) + int(counts.get("pruned", 0))
    best = record.get("best") or {}
    metric = record.get("metric")
    baseline = next((r for r in record.get("leaderboard", []) if r.get("baseline")), None)
    summary = {
        "metric": metric,
        "trials": trials,
        "finished": finished,
        "best_trial": best.get("trial"),
        "best_value": best.get(metric),
        "best_params": best.get("params") or {},
        "baseline_value": baseline.get(metric) if baseline else None,
        "best_config": record.get("best_config"),
        "leaderboard": record.get("leaderboard", []),
        "output_dir": str(folder),
    }
    metrics: dict = {"hpo": summary, "train": {"train_seconds": round(seconds, 1)}}
    if best.get("validation"):
        metrics["validation"] = best["validation"]
    eta = seconds / finished * (trials - finished) if finished else None
    return {
        "metrics": metrics,
        "step": finished,
        "total_steps": trials,
        "progress": min(finished / max(trials, 1), 1.0),
        "eta_seconds": eta,
    }


def _search(store: RunStore, run_id: int, tree: dict) -> dict:
    """A hyper-parameter search (``lepton-nlp hpo``); the best trial's model is the run's."""
    from lepton_nlp.config import load_config
    from lepton_nlp.training.hpo import run_study

    config = load_config(json.loads(json.dumps(tree)))
    folder = Path(config.hpo.output_dir or f"{config.training.output_dir}-hpo")
    started = time.monotonic()

    def progress() -> dict:
        return hpo_outcome(folder, config.hpo.trials, time.monotonic() - started)

    watch = _Watch(store, run_id, progress)
    try:
        with watch:
            run_study(tree, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        if not watch.interrupted:
            raise
    outcome = progress()
    if not outcome.get("metrics", {}).get("validation"):
        raise RuntimeError(
            "The search finished no trial, so there is no model to keep. Start it again with "
            "more time, or look at the trials' logs in " + str(folder / "trials") + "."
        )
    best = outcome["metrics"]["hpo"]["best_trial"]
    artifact = folder / "trials" / f"trial-{best:04d}"
    outcome["artifact_path"] = (
        str(artifact) if (artifact / "lepton_artifact.json").is_file() else ""
    )
    return outcome


def continual_metrics(result: dict) -> dict:
    """A continual sequence's result as run metrics: per split its summary (average accuracy,
    forgetting, backward transfer), and ``continual`` with the forgetting matrices."""
    metrics: dict = {
        "continual": {
            "method": result.get("method"),
            "tasks": result.get("tasks"),
            "matrix": {s: result[s]["matrix"] for s in ("validation", "test") if s in result},
        },
        "train": {"train_seconds": result.get("seconds")},
    }
    for split in ("validation", "test"):
        if split in result:
            metrics[split] = {k: v for k, v in result[split].items() if k != "matrix"}
    return metrics


class _StepLog(logging.Handler):
    """Counts the sequence's finished steps from the core's one log line per step."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps = 0

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("step ") and record.args:
            self.steps = max(self.steps, int(record.args[0]))


def _sequence(store: RunStore, run_id: int, tree: dict) -> dict:
    """A continual sequence (``lepton-nlp continual``): the forgetting matrix is the result."""
    from lepton_nlp.training.continual import load_continual_config, run_config

    config = load_continual_config(tree)
    total = len(config.tasks)
    steps = _StepLog()
    logger = logging.getLogger("lepton_nlp.training.continual")
    logger.addHandler(steps)
    level = logger.level
    logger.setLevel(logging.INFO)
    started = time.monotonic()

    def progress() -> dict:
        done = steps.steps
        elapsed = time.monotonic() - started
        return {
            "step": done,
            "total_steps": total,
            "progress": done / total,
            "eta_seconds": elapsed / done * (total - done) if done else None,
        }

    try:
        with _Watch(store, run_id, progress):
            result = run_config(config)
    except KeyboardInterrupt:
        if store.get(run_id).stop_requested:
            raise _StoppedEarly(
                "Stopped on request: a continual sequence keeps its figures only once every "
                "task is learnt, so nothing was kept."
            ) from None
        raise
    finally:
        logger.removeHandler(steps)
        logger.setLevel(level)
    return {**progress(), "metrics": continual_metrics(result), "artifact_path": ""}


def fewshot_metrics(report: dict) -> dict:
    """A few-shot run's report as run metrics: the validation and test figures, the fit
    time, and ``fewshot`` with what the run learnt from."""
    metrics: dict = {split: report[split] for split in ("validation", "test") if split in report}
    metrics["train"] = {"train_seconds": (report.get("seconds") or {}).get("fit")}
    metrics["fewshot"] = {
        key: report.get(key)
        for key in ("method", "shots", "seed", "examples", "labels", "eval_records")
    }
    return metrics


def _fewshot(store: RunStore, run_id: int, tree: dict) -> dict:
    """A few-shot run (``lepton-nlp fewshot``); SetFit and LoRA leave a model, the LLM
    approaches and label similarity their figures only."""
    from lepton_nlp.artifacts import is_artifact
    from lepton_nlp.config import load_config
    from lepton_nlp.training.prompts import FewShotRunner

    config = load_config(json.loads(json.dumps(tree)))
    folder = Path(config.training.output_dir)
    try:
        with _Watch(store, run_id, dict):  # no steps to count: the bar waits, Stop works
            result = FewShotRunner(config).run(output_dir=folder, overwrite=True)
    except KeyboardInterrupt:
        if store.get(run_id).stop_requested:
            raise _StoppedEarly(
                "Stopped on request: a few-shot run keeps nothing until it has scored its examples."
            ) from None
        raise
    return {
        "step": 1,
        "total_steps": 1,
        "metrics": fewshot_metrics(result.report),
        "artifact_path": str(folder) if is_artifact(folder) else "",
    }


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def spawn_worker(run_id: int, log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached worker process for ``run_id`` (it outlives the page); returns its pid.

    A background thread waits for the process, so it is reaped as soon as it ends.
    """
    environment = {**os.environ, **(env or {})}
    environment["HF_HUB_OFFLINE"] = "1"
    environment.setdefault("TOKENIZERS_PARALLELISM", "false")
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "apps.studio.worker", str(run_id)],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    # The page process is the worker's parent: wait for it in the background, so a finished
    # worker is reaped at once instead of staying a zombie until the suite stops.
    threading.Thread(target=process.wait, name=f"reap-worker-{run_id}", daemon=True).start()
    return process.pid


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m apps.studio.worker RUN_ID", file=sys.stderr)
        return 2
    os.environ["HF_HUB_OFFLINE"] = "1"
    signal.signal(signal.SIGTERM, _terminate)
    data_home()
    try:
        store = RunStore()
        store.reap()
        run_training(store, int(argv[0]))
    except StoreError as error:
        # Nowhere to record the failure: say it in the run's log; the pages mark the run
        # failed once they see this process gone.
        print(f"Run {argv[0]} cannot be trained: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
