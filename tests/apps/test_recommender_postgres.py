"""The recommender's event store on SQLite and on a real PostgreSQL server (the throwaway
cluster of test_store_postgres; skipped, saying why, without PostgreSQL's binaries)."""

from __future__ import annotations

from test_store_postgres import BOTH, db_url, postgres_server  # noqa: F401 (fixtures)

from apps.recommender.interactions import Event, Interactions
from apps.recommender.store import RecommenderStore


@BOTH
def test_events_are_stored_once_and_read_back_in_time_order(db_url):  # noqa: F811
    first = RecommenderStore(db_url)
    second = RecommenderStore(db_url)  # another process's view of the same database
    batch = Interactions.from_events(
        [
            Event("u1", "b", "rating", 20.0, 4.0),
            Event("u1", "a", "click", 10.0),
            Event("u2", "a\x00", "view", 5.0),  # PostgreSQL text cannot hold NUL
        ]
    )
    assert first.add_events(batch) == {"added": 3, "duplicates": 0}
    assert second.add_events(batch) == {"added": 0, "duplicates": 3}
    assert second.add_events(batch, ["k1", None, None]) == {"added": 1, "duplicates": 2}
    events = first.events("u1")
    assert events.items.tolist() == ["a", "b", "b"] and events.ratings[1] == 4.0
    assert first.count() == 4
    first.set_profile("u1", interests=["jazz", "space"], attributes={"age": 31})
    second.set_profile("u1", interests=["jazz"])  # attributes kept
    assert first.profile("u1") == {"interests": ["jazz"], "attributes": {"age": 31}}
    assert first.profile("nobody") is None
