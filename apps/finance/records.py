"""The finance monitor's records: a normalised news article and what scoring found in it.

Ingest (:mod:`apps.finance.ingest`) turns feeds into :class:`NewsArticle`; the scoring
pipeline (:mod:`apps.finance.pipeline`) turns a batch of them into :class:`ScoredArticle`,
whose :attr:`ScoredArticle.extraction` is the :class:`kg.Extraction` the knowledge graph is
built from; the store (:mod:`apps.finance.store`) keeps both.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kg.schema import Extraction, format_time, parse_time

__all__ = ["NewsArticle", "ScoredArticle", "SentenceScore", "content_hash"]

_SPACE = re.compile(r"\s+")


def content_hash(title: str, body: str) -> str:
    """SHA-256 of the title and body with case and white space folded: the same story
    re-published under another id or url hashes the same."""
    text = _SPACE.sub(" ", f"{title}\n{body}").strip().lower()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewsArticle:
    """One article as ingest normalises it (plain text, UTC time, detected language).

    ``notes`` says what ingest changed or could not read (HTML stripped, body cut at the
    size limit, time zone assumed); an article that could not be used at all never
    becomes a ``NewsArticle`` (ingest counts it as skipped, with the reason).
    """

    id: str
    source: str
    title: str
    body: str
    published: datetime
    url: str = ""
    language: str = "en"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.published.tzinfo is None:
            raise ValueError(f"article {self.id!r}: published time must be time-zone aware")
        object.__setattr__(self, "published", self.published.astimezone(UTC))

    @property
    def hash(self) -> str:
        return content_hash(self.title, self.body)

    @property
    def text(self) -> str:
        """Title and body, as the pipeline splits into sentences."""
        return (
            f"{self.title}.\n{self.body}" if self.title and self.body else self.title or self.body
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["published"] = format_time(self.published)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewsArticle:
        values = dict(data)
        values["published"] = parse_time(values["published"], "published")
        values["notes"] = tuple(values.get("notes") or ())
        return cls(**values)


@dataclass(frozen=True)
class SentenceScore:
    """One sentence of an article with its sentiment (score = P(positive) - P(negative))."""

    index: int
    text: str
    start: int
    end: int
    label: str
    score: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class ScoredArticle:
    """What the pipeline found in one article, with the versions and timings that made it."""

    article: NewsArticle
    sentences: list[SentenceScore]
    sentiment: float
    label: str
    topics: list[str]
    extraction: Extraction
    model_versions: dict[str, str]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "article": self.article.to_dict(),
            "sentences": [asdict(s) for s in self.sentences],
            "sentiment": self.sentiment,
            "label": self.label,
            "topics": list(self.topics),
            "extraction": self.extraction.to_dict(),
            "model_versions": dict(self.model_versions),
            "timings": dict(self.timings),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoredArticle:
        return cls(
            article=NewsArticle.from_dict(data["article"]),
            sentences=[SentenceScore(**s) for s in data["sentences"]],
            sentiment=float(data["sentiment"]),
            label=str(data["label"]),
            topics=list(data["topics"]),
            extraction=Extraction.from_dict(data["extraction"]),
            model_versions=dict(data["model_versions"]),
            timings=dict(data["timings"]),
            notes=list(data.get("notes") or ()),
        )
