"""Train one studio run in its own process: ``python -m apps.studio.worker RUN_ID``.

The worker reports progress, losses and metrics to the run store, honours the stop flag
(training ends after the current step; the best checkpoint is reloaded and saved), and
marks the run failed, with the reason, on any error.
"""

from __future__ import annotations

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

__all__ = ["StudioCallback", "main", "run_training", "spawn_worker"]


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
    """Train run ``run_id`` here and now, recording the outcome in ``store``."""
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    run = store.get(run_id)
    if run is None:
        raise SystemExit(f"No run {run_id} in {safe_url(store.url)}.")  # never the password
    store.update(run_id, status="running", started=utc_now(), pid=os.getpid(), error="")
    callback = StudioCallback(store, run_id)
    try:
        import yaml

        config = load_config(yaml.safe_load(run.config_yaml))
        result = train(config, callbacks=[callback])
        stopped = bool(store.get(run_id).stop_requested)
        store.update(
            run_id,
            status="stopped" if stopped else "completed",
            finished=utc_now(),
            metrics=result.metrics,
            history=callback.history,
            artifact_path=str(result.artifact) if result.artifact else "",
            progress=1.0 if not stopped else store.get(run_id).progress,
            eta_seconds=0.0,
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
