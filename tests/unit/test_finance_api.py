"""The finance HTTP routes, mounted on the core server as `lepton-nlp serve --routes` does."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from apps.finance import api
from apps.finance.monitor import FinanceMonitor
from lepton_nlp.serve.app import load_router
from tests.unit.finance_standins import ALIASES, StandInScorer
from tests.unit.test_finance_ingest import RSS


@pytest.fixture
def client(tmp_path):
    monitor = FinanceMonitor(f"sqlite:///{tmp_path / 'f.db'}", StandInScorer, aliases=ALIASES)
    app = FastAPI()
    app.include_router(load_router("apps.finance.api:router"))
    app.dependency_overrides[api.get_monitor] = lambda: monitor
    with TestClient(app) as client:
        client.monitor = monitor
        yield client


ARTICLES = [
    {"id": "x1", "title": "Dunmore Logistics agreed to acquire Nordvik Shipping",
     "body": "<p>Dunmore Logistics agreed to acquire Nordvik Shipping for $1.4 billion.</p>",
     "published": "2026-09-29T08:00:00+02:00"},
    {"id": "x2", "title": "Nordvik shares soar", "body": "Shares of Nordvik Shipping jumped 31%.",
     "published": "Tue, 29 Sep 2026 10:00:00 GMT"},
    {"id": "x3", "title": "", "body": "", "published": "2026-09-29"},
]  # fmt: skip


def test_score_stores_once_and_reports_what_was_skipped(client):
    response = client.post("/finance/score", json={"articles": ARTICLES})
    assert response.status_code == 200, response.text
    data = response.json()
    assert [s["id"] for s in data["scored"]] == ["x1", "x2"]
    assert data["summary"]["new"] == 2 and data["summary"]["skipped"] == {"empty": 1}
    assert data["summary"]["partial"] == {"html_stripped": 1}
    first = data["scored"][0]
    assert first["relations"][0]["type"] == "acquires"
    assert {m["text"] for m in first["mentions"]} >= {"Dunmore Logistics", "Nordvik Shipping"}
    again = client.post("/finance/score", json={"articles": ARTICLES[:2]}).json()
    assert again["scored"] == [] and again["summary"]["duplicates"] == {"stored": 2}
    assert client.monitor.store.count() == 2


def test_score_a_posted_feed(client):
    data = client.post("/finance/score", json={"feed": RSS}).json()
    assert [s["id"] for s in data["scored"]] == ["a1", "a2"]


def test_bad_requests(client):
    assert client.post("/finance/score", json={}).status_code == 422
    many = {"articles": [{"title": "t", "body": "b"}] * (api.MAX_ARTICLES + 1)}
    assert client.post("/finance/score", json=many).status_code == 413
    assert client.get("/finance/alerts", params={"kind": "nope"}).status_code == 422
    missing = client.get("/finance/entities/Nobody%20Inc/series")
    assert missing.status_code == 404 and "no entity" in missing.json()["detail"]


def test_alerts_series_and_neighbours(client):
    client.post("/finance/score", json={"articles": ARTICLES})
    alerts = client.get("/finance/alerts", params={"kind": "new_relation"}).json()
    assert [(a["name"], a["details"]["type"]) for a in alerts] == [
        ("Dunmore Logistics", "acquires")
    ]
    series = client.get("/finance/entities/NRDV/series").json()  # a ticker finds the company
    assert series["name"] == "Nordvik Shipping"
    assert series["series"] == [
        {
            "day": "2026-09-29",
            "articles": 2,
            "mentions": 4,
            "sentiment": series["series"][0]["sentiment"],
        }
    ]
    near = client.get("/finance/entities/Dunmore/neighbours", params={"direction": "out"}).json()
    assert [(n["name"], n["relation"]) for n in near["neighbours"]] == [
        ("Nordvik Shipping", "acquires")
    ]


def test_the_graph_follows_articles_other_processes_store(client, tmp_path):
    client.post("/finance/score", json={"articles": ARTICLES[:1]})
    other = FinanceMonitor(client.monitor.store.url, StandInScorer, aliases=ALIASES)
    other.process([a for a in api.articles_from_rows([ARTICLES[1]], "elsewhere")])
    series = client.get("/finance/entities/Nordvik Shipping/series").json()
    assert series["series"][0]["articles"] == 2
