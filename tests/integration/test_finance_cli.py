"""lepton-finance as a real process: exactly-once under re-runs and SIGKILL, exports, planted alerts.

The exactly-once tests drive the scoring stand-in (tests/unit/finance_standins.py: no models,
deterministic, slowed per batch so a run can be killed in the middle); the last tests run
the real scoring pipeline with the shipped models.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.finance.monitor import FinanceMonitor
from apps.finance.store import FinanceStore
from kg.schema import SYMMETRIC_RELATIONS
from tests.unit.finance_standins import ALIASES, StandInScorer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "finance" / "sample_feed"
FEED = SAMPLE / "market_brief.jsonl"
STAND_IN = "tests.unit.finance_standins:make_scorer"


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The command in this process (cheaper than a process where that is not the point)."""
    from apps.finance.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def cli(*args: str, delay: float = 0.0, wait: bool = True):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LEPTON_TEST_SCORER_DELAY=str(delay))
    env.setdefault("HF_HUB_OFFLINE", "1")
    command = [sys.executable, "-m", "apps.finance.cli", *args]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def score(db: str, *extra: str, delay: float = 0.0, wait: bool = True):
    args = ["score", str(FEED), "--db", db, "--aliases", str(ALIASES), "--scorer", STAND_IN]
    return cli(*args, "--batch-size", "6", "--no-progress", *extra, delay=delay, wait=wait)


def snapshot(store: FinanceStore) -> dict[str, str]:
    """Article id -> everything stored about it (article and scores), as JSON."""
    return {s.article.id: json.dumps(s.to_dict(), sort_keys=True) for s in store.scored()}


def kill_when(process: subprocess.Popen, store: FinanceStore, stored: int) -> int:
    """SIGKILL the run once ``stored`` articles are committed (0: once its run is recorded,
    while it still reads the feed); returns how many articles were stored then."""
    runs = len(store.runs(limit=100))
    deadline = time.monotonic() + 240
    while store.count() < stored or len(store.runs(limit=100)) == runs:
        assert process.poll() is None, f"the run ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "the run stored too little in 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return store.count()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The reference: one uninterrupted run, in this process."""
    folder = tmp_path_factory.mktemp("clean")
    monitor = FinanceMonitor(f"sqlite:///{folder / 'f.db'}", StandInScorer, aliases=ALIASES)
    summary = monitor.run([FEED], batch_size=6)
    keys = {a.key for a in monitor.store.alerts()}
    return snapshot(monitor.store), keys, summary


def test_sigkill_at_several_points_then_a_rerun_loses_and_doubles_nothing(tmp_path, clean):
    expected, alert_keys, _ = clean
    db = f"sqlite:///{tmp_path / 'f.db'}"
    store = FinanceStore(db)
    total = len(expected)
    seen = []
    # killed after its first batches, then mid-run, then before its first commit
    for stored in (6, total // 2, 0):
        process = score(db, delay=0.4, wait=False)
        seen.append(kill_when(process, store, stored))
        assert process.returncode == -signal.SIGKILL
    assert 0 < seen[0] < seen[1] == seen[2] < total  # the kills did land in the middle
    done = score(db, "--json")
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout)
    assert last["new"] == total - seen[-1] and last["duplicates"] == {"stored": seen[-1]}
    # nothing lost, nothing doubled, every article stored exactly as the clean run stored it
    assert store.count() == total
    assert snapshot(store) == expected
    assert {a.key for a in store.alerts()} == alert_keys
    statuses = [r["status"] for r in store.runs()]
    assert statuses == ["done", "interrupted", "interrupted", "interrupted"]
    # and re-running the same feed adds nothing
    again = score(db, "--json")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["new"], rerun["alerts"], rerun["duplicates"]) == (0, 0, {"stored": total})
    assert snapshot(store) == expected


def test_the_ray_engine_stores_what_the_local_engine_does(tmp_path, clean):
    pytest.importorskip("ray")
    expected, alert_keys, _ = clean
    db = f"sqlite:///{tmp_path / 'f.db'}"
    done = score(db, "--engine", "ray", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["engine"] == "ray"
    store = FinanceStore(db)
    assert snapshot(store) == expected
    assert {a.key for a in store.alerts()} == alert_keys


def test_summary_alerts_and_exports(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'f.db'}"
    code, out, _ = run_main(capsys, "score", str(FEED), "--db", db, "--aliases", str(ALIASES),
                            "--scorer", STAND_IN, "--no-progress")  # fmt: skip
    assert code == 0
    assert "78 read, 78 new" in out and "sentences" in out
    assert "articles/s" in out and "alerts:" in out
    code, out, _ = run_main(capsys, "alerts", "--db", db, "--json")
    alerts = json.loads(out)
    kinds = {a["kind"] for a in alerts}
    assert alerts and kinds <= {"sentiment_shift", "volume_spike", "new_relation"}
    import pyarrow.parquet as pq

    for what, fmt, check in [
        ("articles", "parquet", lambda p: pq.read_table(p).num_rows == 78),
        ("series", "csv", lambda p: "Nordvik Shipping" in p.read_text()),
        ("alerts", "jsonl", lambda p: len(p.read_text().splitlines()) == len(alerts)),
        ("graph", "graphml", lambda p: "<graphml" in p.read_text()),
        ("graph", "html", lambda p: "<svg" in p.read_text()),
    ]:
        out_path = tmp_path / f"{what}.{fmt}"
        extra = ["--aliases", str(ALIASES)] if what in ("series", "graph") else []
        args = ["export", "--what", what, "--format", fmt, "-o", str(out_path), "--db", db]
        code, _, err = run_main(capsys, *args, *extra)
        assert code == 0, err
        assert check(out_path), (what, fmt)
    args = ["export", "--what", "graph", "--format", "csv", "-o", str(tmp_path / "x"), "--db", db]
    code, _, err = run_main(capsys, *args)
    assert code == 2 and "graphml, json, html" in err


def test_bad_arguments_are_reported_plainly(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'f.db'}"
    code, _, err = run_main(
        capsys, "score", str(FEED), "--db", "nosuchdb://x", "--scorer", STAND_IN
    )
    assert code == 1 and "not a kind of database" in err
    code, _, err = run_main(capsys, "score", str(FEED), "--db", db, "--scorer", "nope")
    assert code == 1 and "MODULE:CALLABLE" in err
    code, out, err = run_main(capsys, "score", str(tmp_path / "missing.xml"), "--db", db,
                              "--scorer", STAND_IN, "--show-problems", "--no-progress")  # fmt: skip
    assert code == 0 and "unreadable_source 1" in out
    assert "no such file or folder" in err


# --- the real pipeline ---------------------------------------------------------------------


@pytest.mark.integration
def test_cli_scores_a_few_articles_with_the_real_pipeline(tmp_path):
    few = tmp_path / "few.jsonl"
    few.write_text("".join(FEED.read_text().splitlines(keepends=True)[:4]))
    db = f"sqlite:///{tmp_path / 'f.db'}"
    args = ["score", str(few), "--db", db, "--aliases", str(ALIASES), "--json", "--no-progress"]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["new"] == 4 and summary["sentences"] >= 8 and summary["mentions"] >= 4
    assert {"pipeline", "sentiment", "spacy"} <= set(summary["model_versions"])
    again = json.loads(cli(*args).stdout)
    assert again["new"] == 0 and again["duplicates"] == {"stored": 4}


@pytest.mark.integration
def test_the_sample_feed_raises_the_planted_alerts(tmp_path):
    monitor = FinanceMonitor(f"sqlite:///{tmp_path / 'f.db'}", aliases=ALIASES)
    summary = monitor.run([SAMPLE], batch_size=64)
    assert summary.new == summary.read and not summary.skipped
    alerts = monitor.store.alerts()
    planted = json.loads((ROOT / "data" / "finance" / "sample_planted.json").read_text())
    kg = monitor.graph.kg
    missing = []
    for want in planted:
        if want["kind"] == "new_relation":
            head, tail = kg.find(want["head"]), kg.find(want["tail"])
            ways = {(head, want["type"], tail)}
            if want["type"] in SYMMETRIC_RELATIONS:  # stored once, from the smaller id
                ways.add((tail, want["type"], head))
            hit = any(
                a.kind == "new_relation"
                and (a.details["head"], a.details["type"], a.details["tail"]) in ways
                for a in alerts
            )
        else:
            node = kg.find(want["entity"])
            hit = any(
                a.kind == want["kind"] and a.entity == node and a.day in want["days"]
                and (want.get("direction") != "down" or a.value < a.baseline)
                for a in alerts
            )  # fmt: skip
        if not hit:
            missing.append(want)
    assert not missing, f"planted alerts not raised: {missing}"
