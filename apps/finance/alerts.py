"""Alerts from the knowledge graph: sentiment shifts, volume spikes, new strong relations.

Per entity (resolved by :mod:`kg`, so "Northwind", "Northwind Holdings Inc." and "$NWND"
count as one), the daily series are the number of articles naming it and the mean
entity-level sentiment of its mentions. A day is flagged when its value stands out against
the trailing window before it (a z-score, with a floor on the spread so that a quiet series
does not flag noise); a typed relation is flagged the first time it is seen with enough
confidence. Thresholds live in :class:`AlertConfig`.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from kg import KnowledgeGraph
from kg.schema import (
    EDGE_CONFIDENCE,
    EDGE_COUNT,
    EDGE_EVIDENCE,
    EDGE_FIRST_SEEN,
    EDGE_KIND,
    EDGE_TYPE,
    EVIDENCE_ARTICLE,
    EVIDENCE_SENTENCE,
    KIND_RELATION,
    NODE_NAME,
    NODE_TYPE,
    RELATION_TYPES,
)
from lepton_nlp.config import build_dataclass, read_yaml_file

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertConfig",
    "DayPoint",
    "detect_alerts",
    "entity_series",
    "post_webhook",
    "series_table",
]

ALERT_KINDS = ("sentiment_shift", "volume_spike", "new_relation")


@dataclass(frozen=True)
class AlertConfig:
    """When to raise an alert (YAML keys of the same names; a typo is an error)."""

    window_days: int = 14
    """Trailing window of the volume series, in calendar days before the day tested."""
    sentiment_window_days: int = 30
    """Trailing window of the sentiment series, in calendar days before the day tested; longer
    than the volume's, as a company in the news once a week has few days with sentiment."""
    entity_types: list[str] = field(default_factory=lambda: ["ORG"])
    """Entity types whose series are watched."""
    sentiment_z: float = 2.5
    """|z| of a day's mean sentiment against the window's days that flags a shift."""
    sentiment_min_change: float = 0.4
    """...and the least absolute change from the window's mean (sentiment is in [-1, 1])."""
    sentiment_min_std: float = 0.15
    """Floor on the window's standard deviation (a steady series must not flag noise)."""
    sentiment_min_history: int = 4
    """Days with mentions in the sentiment window needed before a shift can be flagged."""
    sentiment_min_mentions: int = 3
    """Mentions on the day needed for its mean to count."""
    volume_z: float = 3.0
    """z of a day's article count against the window (zeros included) that flags a spike."""
    volume_min_articles: int = 4
    """...and the least number of articles that day."""
    volume_min_std: float = 1.0
    """Floor on the window's standard deviation of daily article counts."""
    volume_min_history: int = 7
    """Calendar days of data (since the first stored article) needed before a spike counts."""
    relation_min_confidence: float = 0.6
    """Highest evidence confidence a new relation needs."""
    relation_min_evidence: int = 1
    """Evidence sentences a new relation needs."""
    relation_types: list[str] = field(
        default_factory=lambda: [t for t in RELATION_TYPES if t != "other"]
    )
    """Relation types that raise ``new_relation`` alerts."""
    webhook_url: str = ""
    """POST every new alert here as JSON (empty: no webhook)."""
    webhook_timeout: float = 5.0
    """Seconds to wait for the webhook; a failure is recorded on the alert, not fatal."""

    def __post_init__(self) -> None:
        for name in ("window_days", "sentiment_window_days"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, got {getattr(self, name)}")
        unknown = [t for t in self.relation_types if t not in RELATION_TYPES]
        if unknown:
            raise ValueError(
                f"relation_types: {unknown[0]!r} is not a relation type; use some of "
                f"{', '.join(RELATION_TYPES)}"
            )
        for name in ("sentiment_z", "volume_z", "webhook_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AlertConfig:
        """Build from a mapping; unknown keys are errors naming the nearest valid key."""
        return build_dataclass(cls, dict(data or {}), "alerts")

    @classmethod
    def from_file(cls, path: str | Path) -> AlertConfig:
        """Read a YAML file of these keys (an ``alerts:`` section, or the keys at the top)."""
        tree = read_yaml_file(path, "Alert config")
        return cls.from_dict(tree.get("alerts", tree) if isinstance(tree, dict) else tree)


@dataclass
class Alert:
    """One alert. ``key`` identifies it: raising it again changes nothing."""

    kind: str
    entity: str
    name: str
    day: str
    value: float
    baseline: float | None
    z: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    webhook: str = ""
    webhook_error: str = ""

    @property
    def key(self) -> str:
        if self.kind == "new_relation":
            d = self.details
            return f"new_relation:{d['head']}|{d['type']}|{d['tail']}"
        return f"{self.kind}:{self.entity}:{self.day}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.key
        return data


@dataclass(frozen=True)
class DayPoint:
    """One UTC day of an entity's series."""

    day: str
    articles: int
    mentions: int
    sentiment: float | None
    """Mean entity-level sentiment of the day's mentions; None on a day without any."""


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _span(kg: KnowledgeGraph) -> tuple[date, date] | None:
    extractions = kg.extractions
    if not extractions:
        return None
    return extractions[0].article.published.date(), extractions[-1].article.published.date()


def entity_series(
    kg: KnowledgeGraph, entity: str, *, start: date | None = None, end: date | None = None
) -> list[DayPoint]:
    """An entity's daily article count and mean sentiment, every calendar day from ``start``
    to ``end`` (default: the first and last day of the whole graph).

    Raises:
        KgError: no such entity (close names are suggested).
    """
    node = kg.find(entity)
    articles: dict[date, set[str]] = defaultdict(set)
    scores: dict[date, list[float]] = defaultdict(list)
    for article, mention in kg.mentions(node):
        day = article.published.date()
        articles[day].add(article.id)
        scores[day].append(mention.score)
    if start is None or end is None:
        span = _span(kg)
        if span is None:
            return []
        start, end = start or span[0], end or span[1]
    return [
        DayPoint(
            day.isoformat(),
            len(articles.get(day, ())),
            len(scores.get(day, ())),
            math.fsum(scores[day]) / len(scores[day]) if scores.get(day) else None,
        )
        for day in _days(start, end)
    ]


def _watched(kg: KnowledgeGraph, types: Iterable[str]) -> list[str]:
    wanted = set(types)
    return sorted(n for n, d in kg.graph.nodes(data=True) if d[NODE_TYPE] in wanted)


def series_table(kg: KnowledgeGraph, types: Iterable[str] = ("ORG",)) -> list[dict[str, Any]]:
    """Every watched entity's series as flat rows (entity, name, type, day, articles,
    mentions, sentiment), days with articles only."""
    rows: list[dict[str, Any]] = []
    span = _span(kg)
    if span is None:
        return rows
    for node in _watched(kg, types):
        data = kg.graph.nodes[node]
        for point in entity_series(kg, node, start=span[0], end=span[1]):
            if point.articles:
                rows.append(
                    {"entity": node, "name": data[NODE_NAME], "type": data[NODE_TYPE]}
                    | asdict(point)
                )
    return rows


def _z(value: float, window: list[float], floor: float) -> tuple[float, float]:
    mean = math.fsum(window) / len(window)
    spread = statistics.pstdev(window) if len(window) > 1 else 0.0
    return (value - mean) / max(spread, floor), mean


def _series_alerts(node: str, name: str, series: list[DayPoint], c: AlertConfig) -> list[Alert]:
    found = []
    for i, point in enumerate(series):
        past = series[max(0, i - c.window_days) : i]
        before = series[max(0, i - c.sentiment_window_days) : i]
        if (
            point.sentiment is not None
            and point.mentions >= c.sentiment_min_mentions
            and len(history := [p.sentiment for p in before if p.sentiment is not None])
            >= c.sentiment_min_history
        ):
            z, mean = _z(point.sentiment, history, c.sentiment_min_std)
            change = point.sentiment - mean
            if abs(z) >= c.sentiment_z and abs(change) >= c.sentiment_min_change:
                way = "fell" if change < 0 else "rose"
                found.append(
                    Alert(
                        kind="sentiment_shift",
                        entity=node,
                        name=name,
                        day=point.day,
                        value=round(point.sentiment, 4),
                        baseline=round(mean, 4),
                        z=round(z, 3),
                        message=(
                            f"Sentiment on {name} {way} to {point.sentiment:+.2f} on {point.day} "
                            f"({point.mentions} mentions) from {mean:+.2f} on {len(history)} "
                            f"days of the previous {c.sentiment_window_days} (z={z:+.1f})"
                        ),
                        details={
                            "mentions": point.mentions,
                            "articles": point.articles,
                            "history_days": len(history),
                        },
                    )
                )
        if i >= c.volume_min_history and point.articles >= c.volume_min_articles:
            counts = [float(p.articles) for p in past]
            z, mean = _z(float(point.articles), counts, c.volume_min_std)
            if z >= c.volume_z:
                found.append(
                    Alert(
                        kind="volume_spike",
                        entity=node,
                        name=name,
                        day=point.day,
                        value=float(point.articles),
                        baseline=round(mean, 4),
                        z=round(z, 3),
                        message=(
                            f"{point.articles} articles on {name} on {point.day}, against "
                            f"{mean:.1f} a day over the previous {len(past)} days (z={z:+.1f})"
                        ),
                        details={"mentions": point.mentions},
                    )
                )
    return found


def detect_alerts(kg: KnowledgeGraph, config: AlertConfig | None = None) -> list[Alert]:
    """Every alert the graph's series and relations call for, oldest day first.

    The same graph gives the same alerts (each with a stable ``key``): the store keeps each
    once, so calling this after every run raises only what is new.
    """
    c = config or AlertConfig()
    span = _span(kg)
    if span is None:
        return []
    found: list[Alert] = []
    for node in _watched(kg, c.entity_types):
        name = kg.graph.nodes[node][NODE_NAME]
        series = entity_series(kg, node, start=span[0], end=span[1])
        found.extend(_series_alerts(node, name, series, c))
    graph = kg.graph
    for head, tail, _key, data in graph.edges(keys=True, data=True):
        if data[EDGE_KIND] != KIND_RELATION or data[EDGE_TYPE] not in c.relation_types:
            continue
        if data[EDGE_CONFIDENCE] < c.relation_min_confidence:
            continue
        if data[EDGE_COUNT] < c.relation_min_evidence:
            continue
        first = data[EDGE_EVIDENCE][0]
        head_name, tail_name = graph.nodes[head][NODE_NAME], graph.nodes[tail][NODE_NAME]
        kind = data[EDGE_TYPE]
        found.append(
            Alert(
                kind="new_relation",
                entity=head,
                name=head_name,
                day=data[EDGE_FIRST_SEEN][:10],
                value=round(data[EDGE_CONFIDENCE], 4),
                baseline=None,
                z=None,
                message=(
                    f"New relation: {head_name} {kind.replace('_', ' ')} {tail_name} "
                    f"(confidence {data[EDGE_CONFIDENCE]:.2f}, {data[EDGE_COUNT]} sentence(s)): "
                    f"{first[EVIDENCE_SENTENCE]!r}"
                ),
                details={
                    "head": head,
                    "tail": tail,
                    "type": kind,
                    "tail_name": tail_name,
                    "evidence": data[EDGE_COUNT],
                    "article_id": first[EVIDENCE_ARTICLE],
                    "sentence": first[EVIDENCE_SENTENCE],
                },
            )
        )
    return sorted(found, key=lambda a: (a.day, a.kind, a.entity, a.key))


def post_webhook(url: str, alert: Alert, timeout: float = 5.0) -> tuple[bool, str]:
    """POST one alert as JSON (``{"text": message, "alert": {...}}``, which Slack-style
    webhooks read too).

    Returns:
        (delivered, why not): a timeout, a refused connection or a non-2xx answer is a
        failure to record, never an exception.
    """
    import httpx

    payload = {"text": alert.message, "alert": alert.to_dict()}
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
    except httpx.TimeoutException:
        return False, f"no answer within {timeout:g} s"
    except httpx.HTTPError as error:
        return False, f"{type(error).__name__}: {error}"[:500]
    if response.is_success:
        return True, ""
    return False, f"HTTP {response.status_code}: {response.text[:200]}"
