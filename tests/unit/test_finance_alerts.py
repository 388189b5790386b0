"""Alerts: per-entity series from the graph, z-score shifts, volume spikes, new relations, webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from apps.finance.alerts import (
    AlertConfig,
    detect_alerts,
    entity_series,
    post_webhook,
    series_table,
)
from apps.finance.monitor import FinanceMonitor
from kg import Article, Extraction, KnowledgeGraph, Mention, Relation
from lepton_nlp.errors import ConfigError
from tests.unit.finance_standins import StandInScorer

START = datetime(2024, 3, 1, 9, tzinfo=UTC)
ALIASES = {"Northwind Holdings Inc.": {"aliases": ["Northwind"], "tickers": ["NWND"]}}
# Steady, mildly varying sentiment: the baseline of Northwind's series.
STEADY = [0.3, 0.1, 0.4, 0.2, 0.35, 0.15, 0.3, 0.25, 0.2, 0.4, 0.1, 0.3, 0.2, 0.3]


def extraction(aid, day, mentions, relations=()):
    published = START + timedelta(days=day)
    return Extraction(
        Article(aid, "wire", f"story {aid}", published, 0.0),
        tuple(
            Mention(aid, text, kind, i, f"sentence {i} of {aid}", score)
            for i, (text, kind, score) in enumerate(mentions)
        ),
        tuple(Relation(aid, *r) for r in relations),
    )


def history():
    """Northwind: 20 calm days (one article a day, written three ways), then a collapse on day
    20; Contoso: one article every other day, then 8 on day 16; relations on day 12."""
    items = []
    surfaces = ["Northwind Holdings Inc.", "Northwind", "$NWND"]
    for day in range(20):
        score = STEADY[day % len(STEADY)]
        items.append(
            extraction(
                f"n{day}", day, [(surfaces[day % 3], "ORG", score), ("Northwind", "ORG", score)]
            )
        )
    for i in range(3):
        items.append(
            extraction(f"crash{i}", 20, [("Northwind", "ORG", -0.8), ("$NWND", "ORG", -0.9)])
        )
    for day in range(0, 23, 2):
        items.append(extraction(f"c{day}", day, [("Contoso", "ORG", 0.1)]))
    for i in range(8):
        items.append(extraction(f"spike{i}", 16, [("Contoso", "ORG", 0.2)]))
    deal = "Northwind agreed to acquire Contoso."
    items.append(
        extraction(
            "deal",
            12,
            [("Northwind", "ORG", 0.5), ("Contoso", "ORG", 0.5), ("Jane Roe", "PERSON", 0.0)],
            [
                ("Northwind", "Contoso", "acquires", 0.93, deal, 0.5),
                ("Jane Roe", "Northwind", "executive_of", 0.4, deal, 0.0),  # weak
                ("Contoso", "Northwind", "other", 0.99, deal, 0.5),  # untyped
            ],
        )
    )  # fmt: skip
    return items


@pytest.fixture(scope="module")
def kg():
    return KnowledgeGraph.build(history(), ALIASES)


def test_series_resolve_aliases_and_fill_the_calendar(kg):
    series = entity_series(kg, "$NWND")  # any surface finds the entity
    assert len(series) == 23  # every day from the graph's first to its last
    assert [p.articles for p in series[:20]] == [1] * 12 + [2] + [1] * 7  # + the deal article
    assert series[0].mentions == 2 and series[0].sentiment == pytest.approx(0.3)
    assert series[20].articles == 3 and series[20].sentiment == pytest.approx(-0.85)
    assert series[21].articles == 0 and series[21].sentiment is None
    table = series_table(kg)
    assert {r["name"] for r in table} == {"Northwind Holdings Inc.", "Contoso"}
    assert all(r["articles"] > 0 for r in table)


def test_the_planted_shift_spike_and_relation_are_flagged_and_nothing_else(kg):
    alerts = detect_alerts(kg, AlertConfig())
    found = {(a.kind, a.name, a.day) for a in alerts}
    assert found == {
        ("sentiment_shift", "Northwind Holdings Inc.", "2024-03-21"),
        ("volume_spike", "Contoso", "2024-03-17"),
        ("new_relation", "Northwind Holdings Inc.", "2024-03-13"),
    }
    shift = next(a for a in alerts if a.kind == "sentiment_shift")
    assert shift.z < -2.5 and shift.value == pytest.approx(-0.85)
    assert shift.baseline == pytest.approx(sum(STEADY) / len(STEADY), abs=0.05)
    relation = next(a for a in alerts if a.kind == "new_relation")
    assert relation.details["type"] == "acquires" and relation.details["tail_name"] == "Contoso"
    # the same graph gives the same alerts, keys included (the store keeps each once)
    assert [a.key for a in detect_alerts(kg, AlertConfig())] == [a.key for a in alerts]


def test_thresholds_come_from_the_config(kg):
    loose = AlertConfig(relation_min_confidence=0.3, sentiment_z=100, volume_z=100)
    kinds = {(a.kind, a.details.get("type")) for a in detect_alerts(kg, loose)}
    assert kinds == {("new_relation", "acquires"), ("new_relation", "executive_of")}
    none = AlertConfig(relation_types=["sues"], volume_min_articles=50, sentiment_min_change=2)
    assert detect_alerts(kg, none) == []


def test_config_rejects_typos_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean alerts.window_days"):
        AlertConfig.from_dict({"window_day": 7})
    with pytest.raises(ConfigError, match="relation_types: 'acquire' is not a relation type"):
        AlertConfig.from_dict({"relation_types": ["acquire"]})
    path = tmp_path / "alerts.yaml"
    path.write_text("alerts:\n  window_days: 7\n  sentiment_z: 3\n")
    config = AlertConfig.from_file(path)
    assert config.window_days == 7 and config.sentiment_z == 3.0


class _Hook(BaseHTTPRequestHandler):
    received: list = []  # noqa: RUF012 - shared with the test
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.received, _Hook.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_webhook_delivery_and_failures_are_recorded_not_fatal(kg, hook):
    alert = detect_alerts(kg)[0]
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    assert post_webhook(url, alert) == (True, "")
    assert _Hook.received[0]["alert"]["key"] == alert.key
    assert _Hook.received[0]["text"] == alert.message
    _Hook.status = 500
    sent, why = post_webhook(url, alert)
    assert not sent and why.startswith("HTTP 500")
    sent, why = post_webhook("http://127.0.0.1:9/refused", alert, timeout=1)
    assert not sent and "ConnectError" in why


def test_a_run_posts_new_alerts_and_records_a_dead_webhook(tmp_path, hook):
    from tests.unit.test_finance_store import SAMPLE

    url = f"http://127.0.0.1:{hook.server_port}/hook"
    monitor = FinanceMonitor(
        f"sqlite:///{tmp_path / 'f.db'}",
        StandInScorer,
        alert_config=AlertConfig(webhook_url=url),
    )
    summary = monitor.run([SAMPLE / "market_brief.jsonl"])
    assert summary.alerts > 0 and summary.webhook_failures == 0
    assert len(_Hook.received) == summary.alerts
    assert {a.webhook for a in monitor.store.alerts()} == {"sent"}
    # a webhook that refuses: the run finishes, each failure is on its alert
    dead = FinanceMonitor(
        monitor.store,
        StandInScorer,
        alert_config=AlertConfig(webhook_url="http://127.0.0.1:9/x", webhook_timeout=1),
    )
    summary = dead.run([SAMPLE / "ledger_daily.xml"])
    failed = monitor.store.alerts(webhook="failed")
    assert summary.webhook_failures == len(failed) > 0
    assert all("ConnectError" in a.webhook_error for a in failed)
