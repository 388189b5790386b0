"""The finance monitor's tables in the suite's database: articles with their scores, runs, alerts.

SQLite under ``LEPTON_HOME`` by default, PostgreSQL by ``LEPTON_DB_URL`` or an explicit URL
(:mod:`apps.common.database`). Exactly-once rests on two rules: an article and its scores
are written in the same transaction (:meth:`FinanceStore.save`), keyed by the article's id
(and unique by content hash), and a run asks :meth:`FinanceStore.known` before scoring, so a
re-run, or a run after a killed one, scores and stores only what is not there yet.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from apps.common.database import Base, Database, storable, utc_now
from apps.finance.alerts import Alert
from apps.finance.records import NewsArticle, ScoredArticle
from kg.schema import Extraction

__all__ = ["AlertRow", "ArticleRow", "FinanceStore", "RunRow", "ScoreRow"]

_CHUNK = 500  # ids per IN (...) query


class ArticleRow(Base):
    """One stored article (plain text, UTC time), written with its :class:`ScoreRow`."""

    __tablename__ = "finance_articles"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(String(2000), default="", index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[datetime] = mapped_column(DateTime, index=True)
    """Naive UTC (as every table of the suite keeps times)."""
    language: Mapped[str] = mapped_column(String(16), default="en")
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    notes_json: Mapped[str] = mapped_column(Text, default="[]")
    run_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    stored: Mapped[datetime] = mapped_column(DateTime, default=utc_now)

    def to_article(self) -> NewsArticle:
        return NewsArticle(
            id=self.id,
            source=self.source,
            title=self.title,
            body=self.body,
            published=self.published.replace(tzinfo=UTC),
            url=self.url,
            language=self.language,
            notes=tuple(json.loads(self.notes_json)),
        )


class ScoreRow(Base):
    """What the pipeline found in one article: the :class:`ScoredArticle` (less the article)."""

    __tablename__ = "finance_scores"

    article_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("finance_articles.id"), primary_key=True
    )
    sentiment: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(20))
    sentences: Mapped[int] = mapped_column(Integer, default=0)
    mentions: Mapped[int] = mapped_column(Integer, default=0)
    relations: Mapped[int] = mapped_column(Integer, default=0)
    topics_json: Mapped[str] = mapped_column(Text, default="[]")
    scored_json: Mapped[str] = mapped_column(Text)
    """``ScoredArticle.to_dict()`` without ``article`` (that is the article row)."""
    model_versions_json: Mapped[str] = mapped_column(Text, default="{}")
    timings_json: Mapped[str] = mapped_column(Text, default="{}")


class RunRow(Base):
    """One ``lepton-finance score`` run (or API call): what it read and what it did."""

    __tablename__ = "finance_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started: Mapped[datetime] = mapped_column(DateTime, default=utc_now)
    finished: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    """``running``, ``done``, ``failed`` or ``interrupted`` (its process died)."""
    pid: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str] = mapped_column(String(255), default="")
    engine: Mapped[str] = mapped_column(String(20), default="local")
    sources_json: Mapped[str] = mapped_column(Text, default="[]")
    summary_json: Mapped[str] = mapped_column(Text, default="{}")
    model_versions_json: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")


class AlertRow(Base):
    """One raised alert; ``key`` makes raising the same alert again a no-op."""

    __tablename__ = "finance_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(700), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    entity: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(500))
    day: Mapped[str] = mapped_column(String(10), index=True)
    value: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    z: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utc_now)
    webhook: Mapped[str] = mapped_column(String(20), default="")
    """``""`` (no webhook), ``pending``, ``sent`` or ``failed``."""
    webhook_error: Mapped[str] = mapped_column(Text, default="")

    def to_alert(self) -> Alert:
        return Alert(
            kind=self.kind,
            entity=self.entity,
            name=self.name,
            day=self.day,
            value=self.value,
            baseline=self.baseline,
            z=self.z,
            message=self.message,
            details=json.loads(self.details_json),
            id=self.id,
            webhook=self.webhook,
            webhook_error=self.webhook_error,
        )


def _json(data: Any) -> str:
    return storable(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str))


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FinanceStore:
    """Articles, scores, runs and alerts in the suite's database.

    Args:
        url: a database URL (``sqlite:///path.db``, ``postgresql+psycopg://...``); default
            ``LEPTON_DB_URL``, else SQLite under ``LEPTON_HOME``.

    Raises:
        StoreError: the database cannot be opened; the message says why and what to change.
    """

    def __init__(self, url: str | None = None):
        self.db = Database(url)
        self.url = self.db.url

    # -- articles and scores

    def known(self, articles: Sequence[NewsArticle]) -> dict[str, str]:
        """Which of ``articles`` are stored already: article id -> ``stored`` (same id),
        ``stored_url`` or ``stored_content`` (another id with that url or content hash)."""
        found: dict[str, str] = {}
        with self.db.connected() as session:
            for part in _chunks(list(articles)):
                ids = {a.id for a in part}
                urls = {a.url for a in part if a.url}
                hashes = {a.hash: a for a in part}
                conditions = [ArticleRow.id.in_(ids), ArticleRow.hash.in_(list(hashes))]
                if urls:
                    conditions.append(ArticleRow.url.in_(urls))
                rows = session.execute(
                    select(ArticleRow.id, ArticleRow.url, ArticleRow.hash).where(or_(*conditions))
                ).all()
                stored_ids = {r.id for r in rows}
                stored_urls = {r.url for r in rows if r.url}
                stored_hashes = {r.hash for r in rows}
                for article in part:
                    if article.id in stored_ids:
                        found[article.id] = "stored"
                    elif article.url and article.url in stored_urls:
                        found[article.id] = "stored_url"
                    elif article.hash in stored_hashes:
                        found[article.id] = "stored_content"
        return found

    def save(self, scored: Sequence[ScoredArticle], run_id: int | None = None) -> list[str]:
        """Store articles with their scores, all in one transaction.

        An article stored meanwhile (another process, same id or content) is left out, not
        doubled: on a clash the batch is retried without what is now stored.

        Returns:
            The ids stored by this call.
        """
        pending = list(scored)
        for _attempt in range(3):
            if not pending:
                return []
            try:
                with self.db.connected() as session, session.begin():
                    for item in pending:
                        session.add(self._article_row(item.article, run_id))
                    session.flush()  # articles before their scores (the foreign key)
                    for item in pending:
                        session.add(self._score_row(item))
                return [item.article.id for item in pending]
            except IntegrityError:
                known = self.known([item.article for item in pending])
                pending = [item for item in pending if item.article.id not in known]
        raise RuntimeError("articles kept clashing with concurrent writers; run again")

    @staticmethod
    def _article_row(article: NewsArticle, run_id: int | None) -> ArticleRow:
        return ArticleRow(
            id=article.id,
            source=storable(article.source[:500]),
            url=storable(article.url[:2000]),
            title=storable(article.title),
            body=storable(article.body),
            published=_naive(article.published),
            language=article.language,
            hash=article.hash,
            notes_json=_json(list(article.notes)),
            run_id=run_id,
        )

    @staticmethod
    def _score_row(item: ScoredArticle) -> ScoreRow:
        data = item.to_dict()
        data.pop("article")
        return ScoreRow(
            article_id=item.article.id,
            sentiment=float(item.sentiment),
            label=item.label,
            sentences=len(item.sentences),
            mentions=len(item.extraction.mentions),
            relations=len(item.extraction.relations),
            topics_json=_json(list(item.topics)),
            scored_json=_json(data),
            model_versions_json=_json(item.model_versions),
            timings_json=_json(item.timings),
        )

    def count(self) -> int:
        """Number of stored articles."""
        with self.db.connected() as session:
            return session.scalar(select(func.count()).select_from(ArticleRow)) or 0

    def article_ids(self) -> set[str]:
        with self.db.connected() as session:
            return set(session.scalars(select(ArticleRow.id)))

    def scored(
        self, ids: Iterable[str] | None = None, *, since: datetime | None = None
    ) -> Iterator[ScoredArticle]:
        """Stored articles with their scores, by publication time then id."""
        query = select(ArticleRow, ScoreRow).join(ScoreRow, ScoreRow.article_id == ArticleRow.id)
        if since is not None:
            query = query.where(ArticleRow.published >= _naive(since))
        query = query.order_by(ArticleRow.published, ArticleRow.id)
        wanted = None if ids is None else list(ids)
        with self.db.connected() as session:
            parts = [query] if wanted is None else [
                query.where(ArticleRow.id.in_(part)) for part in _chunks(wanted)
            ]  # fmt: skip
            for part in parts:
                for article_row, score_row in session.execute(part):
                    data = json.loads(score_row.scored_json)
                    data["article"] = article_row.to_article().to_dict()
                    yield ScoredArticle.from_dict(data)

    def extractions(self, ids: Iterable[str] | None = None) -> Iterator[Extraction]:
        """Stored articles' :class:`kg.Extraction`s (what the graph is built from): all, or
        those of ``ids``."""
        query = select(ScoreRow.scored_json)
        wanted = None if ids is None else list(ids)
        parts = [query] if wanted is None else [
            query.where(ScoreRow.article_id.in_(part)) for part in _chunks(wanted)
        ]  # fmt: skip
        with self.db.connected() as session:
            for part in parts:
                for text in session.scalars(part):
                    yield Extraction.from_dict(json.loads(text)["extraction"])

    def articles_table(self) -> list[dict[str, Any]]:
        """One flat row per stored article with its article-level scores (for exports)."""
        query = (
            select(ArticleRow, ScoreRow)
            .join(ScoreRow, ScoreRow.article_id == ArticleRow.id)
            .order_by(ArticleRow.published, ArticleRow.id)
        )
        rows = []
        with self.db.connected() as session:
            for a, s in session.execute(query):
                rows.append(
                    {
                        "id": a.id,
                        "source": a.source,
                        "url": a.url,
                        "title": a.title,
                        "body": a.body,
                        "published": a.published.replace(tzinfo=UTC).isoformat(),
                        "language": a.language,
                        "notes": ",".join(json.loads(a.notes_json)),
                        "sentiment": s.sentiment,
                        "label": s.label,
                        "topics": ",".join(json.loads(s.topics_json)),
                        "sentences": s.sentences,
                        "mentions": s.mentions,
                        "relations": s.relations,
                        "model_versions": s.model_versions_json,
                    }
                )
        return rows

    # -- runs

    def start_run(self, sources: Sequence[str], engine: str) -> int:
        """Record a run as started; runs of this host whose process died become ``interrupted``."""
        self.mark_interrupted()
        with self.db.connected() as session, session.begin():
            row = RunRow(
                pid=os.getpid(),
                host=socket.gethostname()[:255],
                engine=engine,
                sources_json=_json(list(sources)),
            )
            session.add(row)
            session.flush()
            return row.id

    def finish_run(
        self,
        run_id: int,
        summary: dict[str, Any],
        model_versions: dict[str, str] | None = None,
        *,
        status: str = "done",
        error: str = "",
    ) -> None:
        with self.db.connected() as session, session.begin():
            session.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(
                    finished=utc_now(),
                    status=status,
                    summary_json=_json(summary),
                    model_versions_json=_json(model_versions or {}),
                    error=storable(error),
                )
            )

    def mark_interrupted(self) -> int:
        """Mark ``running`` runs of this host whose process is gone as ``interrupted``."""
        host = socket.gethostname()[:255]
        with self.db.connected() as session, session.begin():
            rows = session.scalars(
                select(RunRow).where(RunRow.status == "running", RunRow.host == host)
            ).all()
            dead = [row for row in rows if not _alive(row.pid)]
            for row in dead:
                row.status = "interrupted"
                row.finished = utc_now()
            return len(dead)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.db.connected() as session:
            rows = session.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
            return [
                {
                    "id": r.id,
                    "started": r.started.replace(tzinfo=UTC).isoformat(),
                    "finished": r.finished.replace(tzinfo=UTC).isoformat() if r.finished else None,
                    "status": r.status,
                    "engine": r.engine,
                    "sources": json.loads(r.sources_json),
                    "summary": json.loads(r.summary_json),
                    "error": r.error,
                }
                for r in rows
            ]

    # -- alerts

    def add_alerts(
        self, alerts: Iterable[Alert], run_id: int | None = None, *, webhook: bool = False
    ) -> list[Alert]:
        """Store the alerts not raised before (by key); returns those, with their ids."""
        items = {alert.key: alert for alert in alerts}
        if not items:
            return []
        with self.db.connected() as session, session.begin():
            existing: set[str] = set()
            for part in _chunks(list(items)):
                existing.update(session.scalars(select(AlertRow.key).where(AlertRow.key.in_(part))))
            rows = [
                AlertRow(
                    key=key,
                    kind=alert.kind,
                    entity=alert.entity,
                    name=storable(alert.name[:500]),
                    day=alert.day,
                    value=alert.value,
                    baseline=alert.baseline,
                    z=alert.z,
                    message=storable(alert.message),
                    details_json=_json(alert.details),
                    run_id=run_id,
                    webhook="pending" if webhook else "",
                )
                for key, alert in items.items()
                if key not in existing
            ]
            session.add_all(rows)
            session.flush()
            return [row.to_alert() for row in rows]

    def alerts(
        self,
        *,
        kind: str | None = None,
        entity: str | None = None,
        since: str | None = None,
        limit: int | None = None,
        webhook: str | None = None,
    ) -> list[Alert]:
        """Stored alerts, newest day first (then kind, entity)."""
        query = select(AlertRow)
        if kind:
            query = query.where(AlertRow.kind == kind)
        if entity:
            query = query.where(AlertRow.entity == entity)
        if since:
            query = query.where(AlertRow.day >= since)
        if webhook is not None:
            query = query.where(AlertRow.webhook == webhook)
        query = query.order_by(AlertRow.day.desc(), AlertRow.kind, AlertRow.entity, AlertRow.id)
        if limit:
            query = query.limit(limit)
        with self.db.connected() as session:
            return [row.to_alert() for row in session.scalars(query)]

    def set_webhook(self, alert_id: int, status: str, error: str = "") -> None:
        with self.db.connected() as session, session.begin():
            session.execute(
                update(AlertRow)
                .where(AlertRow.id == alert_id)
                .values(webhook=status, webhook_error=storable(error[:2000]))
            )

    def clear_alerts(self) -> int:
        """Delete every alert (to raise them again with other thresholds)."""
        with self.db.connected() as session, session.begin():
            return session.execute(delete(AlertRow)).rowcount or 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
