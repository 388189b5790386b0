"""The finance monitor over HTTP: score posted articles or a feed, list alerts, entity series and
neighbours. A FastAPI router mounted on the core server by name (the core never imports apps)::

    lepton-nlp serve --routes apps.finance.api:router
    lepton-finance serve

The monitor is built on first use (:func:`get_monitor`): the database of ``LEPTON_DB_URL``
(else SQLite under ``LEPTON_HOME``), the alias table of ``LEPTON_FINANCE_ALIASES`` when set,
the shipped models; tests and embedding apps replace it with :func:`set_monitor` or
``app.dependency_overrides[get_monitor]``. Scored articles are stored exactly as a CLI run
stores them (a run row, one transaction per batch, alerts raised after).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from apps.finance.alerts import ALERT_KINDS, entity_series
from apps.finance.ingest import IngestReport, articles_from_feed, articles_from_rows
from apps.finance.monitor import FinanceMonitor
from kg import KgError
from kg.query import neighbours

__all__ = ["MAX_ARTICLES", "MAX_FEED_BYTES", "get_monitor", "router", "set_monitor"]

#: Most articles one request may post.
MAX_ARTICLES = 500
#: Largest feed text one request may post, in bytes.
MAX_FEED_BYTES = 20 * 2**20

router = APIRouter(prefix="/finance", tags=["finance"])

_lock = threading.Lock()
_score_lock = threading.Lock()
_monitor: FinanceMonitor | None = None


def set_monitor(monitor: FinanceMonitor | None) -> None:
    """Use ``monitor`` for every request (None: build the real one on the next request)."""
    global _monitor
    _monitor = monitor


def get_monitor() -> FinanceMonitor:
    """The monitor, built once (database from ``LEPTON_DB_URL``, aliases from
    ``LEPTON_FINANCE_ALIASES``)."""
    global _monitor
    with _lock:
        if _monitor is None:
            try:
                _monitor = FinanceMonitor(aliases=os.environ.get("LEPTON_FINANCE_ALIASES") or None)
            except RuntimeError as error:
                raise HTTPException(503, str(error)) from None
        return _monitor


Monitor = Annotated[FinanceMonitor, Depends(get_monitor)]


class ArticleIn(BaseModel):
    id: str | None = Field(None, description="Stable id; derived from the url or text if absent.")
    title: str = ""
    body: str = Field("", description="Plain text or HTML (stripped).")
    published: str | None = Field(
        None, description="Publication time (ISO 8601, RFC 822, epoch seconds...)."
    )
    url: str = ""
    source: str = "api"


class ScoreRequest(BaseModel):
    articles: list[ArticleIn] = Field(default_factory=list)
    feed: str | None = Field(None, description="The text of an RSS or Atom feed.")


def _scored_out(item: Any) -> dict[str, Any]:
    return {
        "id": item.article.id,
        "title": item.article.title,
        "published": item.article.published.isoformat(),
        "sentiment": item.sentiment,
        "label": item.label,
        "topics": list(item.topics),
        "sentences": [{"text": s.text, "label": s.label, "score": s.score} for s in item.sentences],
        "mentions": [m.to_dict() for m in item.extraction.mentions],
        "relations": [r.to_dict() for r in item.extraction.relations],
    }


@router.post("/score", summary="Score posted articles and/or a feed; store what is new")
async def score(request: ScoreRequest, monitor: Monitor) -> dict[str, Any]:
    if not request.articles and not request.feed:
        raise HTTPException(422, "send 'articles' (a list of {title, body, ...}) or 'feed'")
    if len(request.articles) > MAX_ARTICLES:
        raise HTTPException(
            413, f"{len(request.articles)} articles; post at most {MAX_ARTICLES} per request"
        )
    if request.feed is not None and len(request.feed.encode("utf-8")) > MAX_FEED_BYTES:
        raise HTTPException(413, f"the feed is over {MAX_FEED_BYTES // 2**20} MB")
    report = IngestReport()
    config = monitor.ingest_config
    rows = [a.model_dump() for a in request.articles]
    articles = articles_from_rows(rows, "api", config, report) if rows else []
    if request.feed is not None:
        report.sources += 1
        articles += articles_from_feed(request.feed, "api-feed", config, report)

    def work() -> tuple[Any, list[Any]]:
        with _score_lock:  # one writer at a time; the models are not re-entrant
            return monitor.process(articles)

    summary, scored = await run_in_threadpool(work)
    data = summary.to_dict()
    data["read"] = report.read
    data["skipped"] = dict(sorted(report.skipped.items()))
    data["partial"] = dict(sorted(report.partial.items()))
    data["problems"] = [str(p) for p in report.problems]
    return {"summary": data, "scored": [_scored_out(s) for s in scored]}


@router.get("/alerts", summary="Stored alerts, newest day first")
def alerts(
    monitor: Monitor,
    kind: Annotated[str | None, Query(description=", ".join(ALERT_KINDS))] = None,
    entity: str | None = None,
    since: Annotated[str | None, Query(description="First day, YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if kind is not None and kind not in ALERT_KINDS:
        raise HTTPException(422, f"kind {kind!r}: use one of {', '.join(ALERT_KINDS)}")
    found = monitor.store.alerts(kind=kind, entity=entity, since=since, limit=limit)
    return [a.to_dict() for a in found]


def _graph(monitor: FinanceMonitor) -> Any:
    graph = monitor.graph
    graph.sync(monitor.store)  # articles other processes stored since
    return graph.kg


@router.get("/entities/{entity}/series", summary="An entity's daily articles and sentiment")
def series(entity: str, monitor: Monitor) -> dict[str, Any]:
    kg = _graph(monitor)
    try:
        node = kg.find(entity)
        points = entity_series(kg, node)
    except KgError as error:
        raise HTTPException(404, str(error)) from None
    data = kg.graph.nodes[node]
    return {
        "entity": node,
        "name": data["name"],
        "type": data["type"],
        "series": [asdict(p) for p in points if p.articles],
    }


@router.get("/entities/{entity}/neighbours", summary="Entities related to one, with evidence")
def entity_neighbours(
    entity: str,
    monitor: Monitor,
    relation: str | None = None,
    direction: Annotated[str, Query(description="out, in or any")] = "any",
    co_mentions: bool = False,
) -> dict[str, Any]:
    kg = _graph(monitor)
    try:
        node = kg.find(entity)
        found = neighbours(
            kg, node, relation=relation, direction=direction, co_mentions=co_mentions
        )
    except KgError as error:
        status = 404 if "no entity" in str(error) else 422
        raise HTTPException(status, str(error)) from None
    return {"entity": node, "neighbours": [asdict(n) for n in found]}
