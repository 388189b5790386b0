"""The finance store: articles with their scores in one transaction, exactly once; runs; alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from apps.finance.alerts import Alert
from apps.finance.ingest import iter_articles
from apps.finance.monitor import FinanceMonitor
from apps.finance.records import NewsArticle
from apps.finance.store import FinanceStore
from kg import KnowledgeGraph
from kg.io import canonical_dump, load_json
from tests.unit.finance_standins import ALIASES, StandInScorer

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "finance" / "sample_feed"


@pytest.fixture(scope="module")
def sample_articles() -> list[NewsArticle]:
    return list(iter_articles([SAMPLE]))


@pytest.fixture
def store(tmp_path) -> FinanceStore:
    return FinanceStore(f"sqlite:///{tmp_path / 'finance.db'}")


def article(i: int, **changes) -> NewsArticle:
    base = NewsArticle(
        id=f"a{i}",
        source="test",
        title=f"Contoso story {i}",
        body=f"Contoso Pharmaceuticals said sales rose {i}% this quarter.",
        published=datetime(2024, 3, 1 + i % 20, 9, tzinfo=UTC),
        url=f"https://example.com/{i}",
    )
    return replace(base, **changes)


def test_save_then_known_by_id_url_and_content(store):
    scorer = StandInScorer()
    assert store.save(scorer.score([article(1), article(2)])) == ["a1", "a2"]
    assert store.count() == 2
    again = [
        article(1),  # same id
        article(3, url="https://example.com/2"),  # another id, a stored url
        article(4, url="", title="Contoso story 1", body=article(1).body),  # stored content
        article(5),  # new
    ]
    assert store.known(again) == {"a1": "stored", "a3": "stored_url", "a4": "stored_content"}


def test_scores_round_trip(store, sample_articles):
    scored = StandInScorer().score(sample_articles[:20])
    store.save(scored)
    back = {s.article.id: s for s in store.scored()}
    assert len(back) == 20
    for item in scored:
        assert back[item.article.id].to_dict() == item.to_dict()
    assert {e.id for e in store.extractions()} == {s.article.id for s in scored}
    rows = store.articles_table()
    assert [r["id"] for r in rows] == sorted(back, key=lambda i: (back[i].article.published, i))


def test_a_batch_is_one_transaction(store, monkeypatch):
    scored = StandInScorer().score([article(i) for i in range(1, 6)])
    real = FinanceStore._score_row

    def failing(item):
        if item.article.id == "a4":
            raise RuntimeError("disk full")
        return real(item)

    monkeypatch.setattr(FinanceStore, "_score_row", staticmethod(failing))
    with pytest.raises(RuntimeError, match="disk full"):
        store.save(scored)
    assert store.count() == 0  # neither the articles nor the scores of the batch
    monkeypatch.setattr(FinanceStore, "_score_row", staticmethod(real))
    assert len(store.save(scored)) == 5


def test_a_concurrent_writer_does_not_double_an_article(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    first, second = FinanceStore(url), FinanceStore(url)
    scorer = StandInScorer()
    first.save(scorer.score([article(1)]))
    # `second` decided to store a1 before `first` committed it: the clash is resolved
    assert second.save(scorer.score([article(1), article(2)])) == ["a2"]
    assert first.count() == 2


def test_runs_and_interrupted_runs(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    run_id = store.start_run(["feed.xml"], "local")
    from sqlalchemy import update

    from apps.finance.store import RunRow

    with store.db.connected() as session, session.begin():
        session.execute(
            update(RunRow).where(RunRow.id == run_id).values(pid=int(dead.stdout))
        )  # as if that process had died mid-run
    mine = store.start_run(["feed.xml"], "local")
    runs = {r["id"]: r for r in store.runs()}
    assert runs[run_id]["status"] == "interrupted" and runs[mine]["status"] == "running"
    store.finish_run(mine, {"new": 3})
    assert store.runs()[0]["status"] == "done" and store.runs()[0]["summary"] == {"new": 3}


def test_alerts_are_stored_once_by_key(store):
    alert = Alert("volume_spike", "org:contoso", "Contoso", "2024-03-05", 9.0, 1.0, 4.2, "spike")
    (stored,) = store.add_alerts([alert], webhook=True)
    assert stored.id is not None and stored.webhook == "pending"
    assert store.add_alerts([alert]) == []
    store.set_webhook(stored.id, "failed", "HTTP 500")
    (back,) = store.alerts(kind="volume_spike")
    assert (back.webhook, back.webhook_error) == ("failed", "HTTP 500")
    assert store.alerts(entity="org:other") == []


def test_a_rerun_adds_nothing_and_the_graph_equals_a_rebuild(tmp_path, sample_articles):
    monitor = FinanceMonitor(f"sqlite:///{tmp_path / 'f.db'}", StandInScorer, aliases=ALIASES)
    first = monitor.run([SAMPLE], batch_size=16)
    assert first.new == len(sample_articles) and first.alerts > 0
    assert first.stage_seconds["score"] >= 0 and first.graph_path.endswith("f.graph.json")
    again = FinanceMonitor(f"sqlite:///{tmp_path / 'f.db'}", StandInScorer, aliases=ALIASES)
    second = again.run([SAMPLE], batch_size=16)
    assert second.new == 0 and second.alerts == 0
    assert second.duplicates == {"stored": len(sample_articles)}
    assert again._scorer is None  # nothing new: the models were never loaded
    rebuilt = KnowledgeGraph.build(monitor.store.extractions(), ALIASES)
    saved = load_json(tmp_path / "f.graph.json")
    assert canonical_dump(saved) == canonical_dump(rebuilt) == canonical_dump(monitor.graph.kg)
    runs = monitor.store.runs()
    assert [r["status"] for r in runs] == ["done", "done"]
    assert json.loads(json.dumps(runs[1]["summary"]))["new"] == len(sample_articles)
