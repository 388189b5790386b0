"""The finance store on a real PostgreSQL server: exactly-once, clashes, UTC times.

Reuses the throwaway cluster of test_store_postgres (skips, saying why, without PostgreSQL's
server binaries).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_store_postgres import postgres_server  # noqa: F401 - the module's cluster fixture

from apps.finance.monitor import FinanceMonitor
from apps.finance.store import FinanceStore
from tests.unit.finance_standins import ALIASES, StandInScorer
from tests.unit.test_finance_store import SAMPLE, article


@pytest.fixture
def pg_url(postgres_server) -> str:  # noqa: F811 - the fixture imported above
    return postgres_server.new_database()


def test_a_rerun_adds_nothing_on_postgresql(pg_url, tmp_path):
    feed = SAMPLE / "market_brief.jsonl"
    graph = tmp_path / "graph.json"
    first = FinanceMonitor(pg_url, StandInScorer, aliases=ALIASES, graph_path=graph)
    summary = first.run([feed], batch_size=10)
    assert summary.new == 78 and summary.alerts > 0
    second = FinanceMonitor(pg_url, StandInScorer, aliases=ALIASES, graph_path=graph).run([feed])
    assert second.new == 0 and second.alerts == 0 and second.duplicates == {"stored": 78}
    stored = {s.article.id: s.to_dict() for s in first.store.scored()}
    assert len(stored) == 78


def test_clashing_writers_and_utc_times_on_postgresql(pg_url):
    one, two = FinanceStore(pg_url), FinanceStore(pg_url)
    scorer = StandInScorer()
    one.save(scorer.score([article(1)]))
    assert two.save(scorer.score([article(1), article(2)])) == ["a2"]
    (back,) = [s for s in one.scored() if s.article.id == "a1"]
    # the server's time zone is far from UTC; the stored time must not move
    assert back.article.published == datetime(2024, 3, 2, 9, tzinfo=UTC)
    assert one.known([article(2)]) == {"a2": "stored"}
