"""The finance monitor's scored articles as the recommender's catalogue (issue 21, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.finance.ingest import iter_articles
from apps.finance.store import FinanceStore
from apps.recommender.articles import catalogue_from_finance
from apps.recommender.errors import RecommenderError
from tests.unit.finance_standins import StandInScorer

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "finance" / "sample_feed"


@pytest.fixture(scope="module")
def finance_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('finance') / 'finance.db'}"
    articles = list(iter_articles([SAMPLE]))[:40]
    FinanceStore(url).save(StandInScorer().score(articles))
    return url


def test_scored_articles_become_items_with_their_topics_and_scores(finance_db):
    catalogue = catalogue_from_finance(finance_db, max_chars=200)
    rows = FinanceStore(finance_db).articles_table()
    assert len(catalogue) == len(rows) == 40
    first = catalogue.get(rows[0]["id"])
    assert first.title == rows[0]["title"]
    assert first.description == rows[0]["body"][:200]
    assert first.categories == [t for t in rows[0]["topics"].split(",") if t]
    assert first.metadata["sentiment"] == rows[0]["sentiment"]
    assert first.metadata["published"] == rows[0]["published"]


def test_an_empty_finance_database_says_to_score_a_feed_first(tmp_path):
    with pytest.raises(RecommenderError, match="lepton-finance score"):
        catalogue_from_finance(f"sqlite:///{tmp_path / 'empty.db'}")


def test_cli_recommends_unread_articles_from_reading_history(finance_db, tmp_path, capsys):
    from apps.recommender.cli import main

    ids = [item.id for item in catalogue_from_finance(finance_db)]
    # Readers 0-5 read articles 0-19 in overlapping windows; "reader" read 0-4.
    reads = [
        {"user_id": f"r{u}", "item_id": ids[i], "timestamp": 1_700_000_000 + i}
        for u in range(6)
        for i in range(u * 2, u * 2 + 10)
    ] + [{"user_id": "reader", "item_id": ids[i], "timestamp": 1_700_000_000} for i in range(5)]
    events = tmp_path / "reads.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in reads) + "\n")
    out = tmp_path / "news"
    args = ["train", "--finance-db", finance_db, "--events", str(events), "--out", str(out)]
    assert main([*args, "--model", "als", "--set", "factors=4", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", "reader", "--k", "5", "--no-db", "--json"]) == 0
    printed = capsys.readouterr().out
    found = json.loads(printed[printed.index("[") :])
    recommended = [r["item"] for r in found]
    assert all(r["title"] and r["reasons"] for r in found)
    assert len(recommended) == 5 and set(recommended) <= set(ids)
    assert not set(recommended) & set(ids[:5])  # nothing already read
    # Two catalogues at once, or no history, are refused with a plain message.
    assert main([*args[:3], "--catalogue", "x.jsonl", "--out", str(tmp_path / "y")]) == 2
    assert "one catalogue" in capsys.readouterr().err
    assert main(["train", "--finance-db", finance_db, "--out", str(tmp_path / "z")]) == 2
    assert "reading history" in capsys.readouterr().err
