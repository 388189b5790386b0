"""SIGKILL a process in the middle of a burst of event writes; the SQLite database stays whole.

A child process writes events one transaction at a time to the support store and to the
recommender's event store, printing each event's number once its write has returned (the
acknowledgement a client would get). The parent kills it with SIGKILL after a varying number
of acknowledgements, then checks: the file passes ``PRAGMA integrity_check``, is in WAL mode,
holds every acknowledged event exactly once, and writing the whole burst again (a client
retrying) adds the missing events without duplicating any (the recommender's keyed events).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.crash_report import record

ROOT = Path(__file__).resolve().parents[2]
#: Acknowledged writes after which the writer is killed.
KILL_AFTER = (1, 7, 40)
BURST = 120

WRITER = """
import sys
from apps.{module} import {cls}
store = {cls}(sys.argv[1])
{setup}
for n in range(int(sys.argv[2])):
    {write}
    print(n, flush=True)
"""

SUPPORT = WRITER.format(
    module="support.store",
    cls="SupportStore",
    setup="",
    write='store.add_event("customer", "user", {"n": n, "text": "x" * (n % 50)})',
)
RECOMMENDER = WRITER.format(
    module="recommender.store",
    cls="RecommenderStore",
    setup="from apps.recommender.interactions import Interactions",
    write=(
        'store.add_events(Interactions(["u%d" % (n % 7)], ["i%d" % n], ["view"], [1.7e9 + n], '
        '[float("nan")]), event_ids=["e%d" % n])'
    ),
)


def _burst(script: str, url: str, kill_after: int | None) -> list[int]:
    """Run the writer; kill it after ``kill_after`` acknowledgements. The acknowledged numbers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, url, str(BURST)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    acked = []
    for line in process.stdout:
        acked.append(int(line))
        if kill_after is not None and len(acked) >= kill_after:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=120)
    if kill_after is None:
        assert process.returncode == 0, process.stderr.read().decode()[-2000:]
    else:
        assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    return acked


def _check_file(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    return db


@pytest.mark.parametrize("kill_after", KILL_AFTER)
def test_support_events_survive_a_kill(tmp_path, kill_after):
    path = tmp_path / "support.db"
    acked = _burst(SUPPORT, f"sqlite:///{path}", kill_after)
    db = _check_file(path)
    stored = [json.loads(d)["n"] for (d,) in db.execute("SELECT data_json FROM support_events")]
    db.close()
    lost, duplicated = len(set(acked) - set(stored)), len(stored) - len(set(stored))
    record("support_event_log", acknowledged=len(acked), lost=lost, duplicated=duplicated)
    assert lost == 0, "an acknowledged event was lost"
    assert duplicated == 0, "an event was stored twice"
    assert stored == sorted(stored)
    # The store opens and takes writes again after the crash.
    from apps.support.store import SupportStore

    store = SupportStore(f"sqlite:///{path}")
    store.add_event("customer", "user", {"n": -1})
    assert store.events_of("customer")[-1]["data"] == {"n": -1}


@pytest.mark.parametrize("kill_after", KILL_AFTER)
def test_recommender_events_survive_a_kill_and_a_retry(tmp_path, kill_after):
    path = tmp_path / "rec.db"
    url = f"sqlite:///{path}"
    acked = _burst(RECOMMENDER, url, kill_after)
    db = _check_file(path)
    items = [item for (item,) in db.execute("SELECT item_id FROM rec_events")]
    db.close()
    lost = len({f"i{n}" for n in acked} - set(items))
    duplicated = len(items) - len(set(items))
    # The client retries the whole burst: the missing events arrive, none twice.
    _burst(RECOMMENDER, url, None)
    db = _check_file(path)
    items = [item for (item,) in db.execute("SELECT item_id FROM rec_events")]
    db.close()
    missing_after_retry = len({f"i{n}" for n in range(BURST)} - set(items))
    duplicated_after_retry = len(items) - len(set(items))
    record(
        "recommender_event_store",
        acknowledged=len(acked),
        lost=lost,
        duplicated=duplicated,
        missing_after_retry=missing_after_retry,
        duplicated_after_retry=duplicated_after_retry,
    )
    assert lost == 0, "an acknowledged event was lost"
    assert duplicated == 0, "an event was stored twice"
    assert missing_after_retry == 0 and duplicated_after_retry == 0
