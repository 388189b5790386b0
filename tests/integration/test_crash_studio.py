"""SIGKILL a Studio training worker at several points; the next look marks the run failed.

The run is started as the Train page starts it (:func:`apps.studio.runs.start_run`, a real
worker process). The worker is killed right after it is spawned (the run still 'queued'),
once it reports 'running' (loading the model), and mid-training (a step reported). Each
time, the next look at the runs (``RunStore.active()``, which the pages call) shows the run
failed with the reason, never 'running' forever, and a new run can start.
"""

from __future__ import annotations

import os
import signal

import pytest
from conftest import tiny_config, wait_for

from tests.integration.crash_report import record

KILL_POINTS = ("spawned", "running", "training")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_worker_is_marked_failed(store, tiny_model, point):
    from apps.common.processes import pid_alive
    from apps.studio.runs import start_run

    run = start_run(store, tiny_config(tiny_model, epochs=30), f"killed-{point}", "classification")
    if point == "running":
        wait_for(lambda: store.get(run.id).status == "running", timeout=120, every=0.05)
    elif point == "training":
        wait_for(lambda: store.get(run.id).step >= 2, timeout=240, every=0.1)
    pid = store.get(run.id).pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), timeout=30, every=0.05)

    still_active = store.active()
    dead = store.get(run.id)
    record("studio_worker", runs_left_running=int(dead.status != "failed"))
    assert still_active == [], "a killed run still counts as training"
    assert dead.status == "failed"
    assert "worker died" in dead.error
    assert dead.finished is not None
    # A second look changes nothing, and the studio takes a new run.
    assert store.reap() == []
    assert store.get(run.id).status == "failed"
    again = start_run(store, tiny_config(tiny_model, epochs=1), f"after-{point}", "classification")
    os.kill(again.pid, signal.SIGKILL)
