"""The suite's SQLite files run in write-ahead-log mode: cheap commits, nothing committed lost."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from apps.common.database import Database, StoreError

#: ``PRAGMA synchronous`` answers a number: 1 NORMAL, 2 FULL.
SYNCHRONOUS = {"NORMAL": 1, "FULL": 2}


def _pragmas(database: Database) -> tuple[str, int]:
    with database.engine.connect() as connection:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        sync = connection.execute(text("PRAGMA synchronous")).scalar()
    return mode, sync


@pytest.mark.parametrize("setting", [None, "full", "NORMAL"])
def test_a_sqlite_file_is_in_wal_mode_with_the_chosen_flushing(tmp_path, monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv("LEPTON_SQLITE_SYNCHRONOUS", raising=False)
    else:
        monkeypatch.setenv("LEPTON_SQLITE_SYNCHRONOUS", setting)
    database = Database(f"sqlite:///{tmp_path / 'suite.db'}")
    mode, sync = _pragmas(database)
    assert mode == "wal"
    assert sync == SYNCHRONOUS[(setting or "NORMAL").upper()]


def test_a_committed_row_is_there_for_a_new_engine(tmp_path, monkeypatch):
    monkeypatch.delenv("LEPTON_SQLITE_SYNCHRONOUS", raising=False)
    from apps.support.store import SupportStore

    url = f"sqlite:///{tmp_path / 'suite.db'}"
    first = SupportStore(url)
    first.add_event("alice", "user", {"text": "hello"})
    first.database.engine.dispose()  # as a restarted process would find the file
    again = SupportStore(url)
    assert [e["data"]["text"] for e in again.events_of("alice")] == ["hello"]


def test_a_wrong_flushing_setting_says_what_to_write(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(StoreError, match="NORMAL .* or FULL"):
        Database(f"sqlite:///{tmp_path / 'suite.db'}")


def test_an_in_memory_database_is_left_as_it_is(monkeypatch):
    monkeypatch.setenv("LEPTON_SQLITE_SYNCHRONOUS", "sometimes")  # not even read
    database = Database("sqlite:///:memory:")
    assert _pragmas(database)[0] == "memory"


def test_stores_opened_at_once_on_a_new_file_all_open(tmp_path):
    # Four browser sessions at once (tests/apps/test_concurrent_sessions.py): the support and
    # recommender pages each created the tables of a new file, and one failed with
    # "table ... already exists" (the check and the CREATE were not under one lock).
    import threading

    from apps.finance.store import FinanceStore
    from apps.recommender.store import RecommenderStore
    from apps.support.store import SupportStore

    errors = []
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'suite{trial}.db'}"
        start = threading.Barrier(6)

        def open_store(kind, url=url, start=start):
            start.wait()
            try:
                kind(url)
            except Exception as error:
                errors.append(repr(error))

        threads = [
            threading.Thread(target=open_store, args=(kind,))
            for kind in (SupportStore, RecommenderStore, FinanceStore) * 2
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    with Database(f"sqlite:///{tmp_path / 'suite0.db'}").engine.connect() as connection:
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master"))}
    assert {"support_conversations", "rec_events"} <= tables
