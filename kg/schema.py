"""Extraction records that the finance app stores and hands to `kg`, and the graph's attribute names.

The finance app scores an article (sentences, sentiment, entities, relations) and keeps
the result as one `Extraction` per article: an `Article`, its `Mention`s and its
`Relation`s. Each has `to_dict`/`from_dict` producing and reading plain JSON-able dicts,
so the app can store them in SQL (one JSON column or one row each) and pass them back.
`kg` builds its graph from these records and never writes them.

Sentiment is always P(positive) - P(negative), a float in [-1, 1]; confidence is a
probability in [0, 1]; times are time-zone-aware and kept in UTC.

The attribute names of the graph's nodes and edges are the `NODE_*`, `EDGE_*` and
`EVIDENCE_*` constants below; code reading the graph should use them rather than strings.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, date, datetime, time
from typing import Any

from kg.errors import KgError

__all__ = [
    "EDGE_ARTICLES",
    "EDGE_CONFIDENCE",
    "EDGE_COUNT",
    "EDGE_EVIDENCE",
    "EDGE_FIRST_SEEN",
    "EDGE_KIND",
    "EDGE_LAST_SEEN",
    "EDGE_SENTIMENT",
    "EDGE_TYPE",
    "ENTITY_TYPES",
    "ENTITY_TYPE_SYNONYMS",
    "EVIDENCE_ARTICLE",
    "EVIDENCE_CONFIDENCE",
    "EVIDENCE_PUBLISHED",
    "EVIDENCE_SENTENCE",
    "EVIDENCE_SENTIMENT",
    "KIND_CO_MENTION",
    "KIND_RELATION",
    "NODE_ALIASES",
    "NODE_ARTICLE_COUNT",
    "NODE_FIRST_SEEN",
    "NODE_LAST_SEEN",
    "NODE_MENTION_COUNT",
    "NODE_NAME",
    "NODE_REGISTERED",
    "NODE_SENTIMENT",
    "NODE_SENTIMENT_BY_DAY",
    "NODE_TICKERS",
    "NODE_TYPE",
    "RELATION_TYPES",
    "SYMMETRIC_RELATIONS",
    "Article",
    "Extraction",
    "Mention",
    "Relation",
    "check_entity_type",
    "format_time",
    "parse_time",
]

# --- vocabularies -------------------------------------------------------------------------

ENTITY_TYPES: tuple[str, ...] = (
    "ORG",
    "PERSON",
    "GPE",
    "LOC",
    "PRODUCT",
    "EVENT",
    "TICKER",
    "MONEY",
    "MISC",
)
"""Entity types a `Mention` may carry (spaCy-style names)."""

ENTITY_TYPE_SYNONYMS: dict[str, str] = {
    "PER": "PERSON",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
    "COMPANY": "ORG",
    "LOCATION": "LOC",
}
"""Other spellings accepted for `ENTITY_TYPES` (the core's NER labels say PER), read as these."""

RELATION_TYPES: tuple[str, ...] = (
    "acquires",
    "invests_in",
    "partners_with",
    "competes_with",
    "supplies",
    "sues",
    "subsidiary_of",
    "executive_of",
    "other",
)
"""Relation types, read head -> tail ("Northwind acquires Contoso"; "Jane Okafor executive_of
Northwind"). Anything the extractor cannot place is `other`."""

SYMMETRIC_RELATIONS: frozenset[str] = frozenset({"partners_with", "competes_with"})
"""Relations that read the same both ways; the graph stores them once, from the smaller node id."""

# --- node attributes ----------------------------------------------------------------------

NODE_TYPE = "type"
"""str: the entity type (one of `ENTITY_TYPES`; a ticker linked to its company is an ORG)."""
NODE_NAME = "name"
"""str: display name (the registered name, else the fullest surface seen)."""
NODE_ALIASES = "aliases"
"""list[str]: every surface text that resolved to the entity, sorted."""
NODE_TICKERS = "tickers"
"""list[str]: ticker symbols linked to the entity, sorted (empty for most)."""
NODE_REGISTERED = "registered"
"""bool: whether the user's alias table defines the entity."""
NODE_FIRST_SEEN = "first_seen"
"""str: publication time (ISO 8601, UTC, seconds) of the first article mentioning it."""
NODE_LAST_SEEN = "last_seen"
"""str: publication time of the latest article mentioning it."""
NODE_MENTION_COUNT = "mention_count"
"""int: number of mentions over all articles."""
NODE_ARTICLE_COUNT = "article_count"
"""int: number of articles mentioning it."""
NODE_SENTIMENT = "sentiment"
"""float: mean sentiment of its mentions (entity-level where given, else the sentence's)."""
NODE_SENTIMENT_BY_DAY = "sentiment_by_day"
"""dict[str, dict]: UTC day ("2024-03-01") -> {"mean": float, "n": int}, the daily series."""

# --- edge attributes ----------------------------------------------------------------------

EDGE_KIND = "kind"
"""str: `KIND_RELATION` or `KIND_CO_MENTION`."""
KIND_RELATION = "relation"
"""A typed relation, directed head -> tail; its key in the MultiDiGraph is its type."""
KIND_CO_MENTION = "co_mention"
"""Two entities named in the same sentence; undirected in meaning, stored once from the smaller
node id to the larger, under the key "co_mention"."""
EDGE_TYPE = "type"
"""str: relation type (relations only)."""
EDGE_EVIDENCE = "evidence"
"""list[dict]: relations only; one item per supporting sentence with the `EVIDENCE_*` keys,
sorted by publication time, then article id, then sentence."""
EDGE_COUNT = "count"
"""int: relations: number of evidence items; co-mentions: number of shared sentences."""
EDGE_CONFIDENCE = "confidence"
"""float: relations only; the highest confidence among its evidence."""
EDGE_SENTIMENT = "sentiment"
"""float: relations only; mean sentiment of its evidence sentences."""
EDGE_ARTICLES = "articles"
"""dict[str, int]: co-mentions only; article id -> number of sentences naming both."""
EDGE_FIRST_SEEN = "first_seen"
"""str: publication time (ISO 8601, UTC) of the earliest supporting article."""
EDGE_LAST_SEEN = "last_seen"
"""str: publication time of the latest supporting article."""

EVIDENCE_ARTICLE = "article_id"
EVIDENCE_SENTENCE = "sentence"
EVIDENCE_PUBLISHED = "published"
EVIDENCE_CONFIDENCE = "confidence"
EVIDENCE_SENTIMENT = "sentiment"


# --- checks shared by the records ---------------------------------------------------------


def format_time(moment: datetime) -> str:
    """The graph's time format: ISO 8601 in UTC to the second, so strings sort as times."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: Any, what: str = "time", *, end_of_day: bool = False) -> datetime:
    """Read a time-zone-aware moment from a datetime, a date or an ISO 8601 string.

    Args:
        value: an aware `datetime`, a `date` (midnight UTC, or the day's last microsecond with
            `end_of_day`), or an ISO string with an offset ("2024-03-01T09:30:00Z", "+01:00")
            or a bare day ("2024-03-01").
        what: how error messages name the value.
        end_of_day: read a bare day as its end rather than its start.

    Returns:
        The moment in UTC.

    Raises:
        KgError: the value is not a time, or is a naive datetime.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise KgError(
                f"{what}: {value!r} is not an ISO 8601 time; write e.g. '2024-03-01T09:30:00Z'"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise KgError(
                f"{what}: {value.isoformat()!r} has no time zone; give an aware datetime "
                "(datetime(..., tzinfo=UTC)) or an ISO string with an offset ('Z', '+00:00')"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.max if end_of_day else time.min, tzinfo=UTC)
    raise KgError(
        f"{what}: expected a datetime or an ISO 8601 string, got {type(value).__name__} {value!r}"
    )


def _text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise KgError(f"{what}: expected a string, got {type(value).__name__} {value!r}")
    if not allow_empty and not value.strip():
        raise KgError(f"{what}: is empty; give the text as extracted")
    return value.strip()


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KgError(f"{what}: expected a number in [{low:g}, {high:g}], got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        hint = " (sentiment is P(positive) - P(negative))" if low < 0 else ""
        raise KgError(f"{what}: {number!r} is outside [{low:g}, {high:g}]{hint}")
    return number


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KgError(f"{what}: expected a sentence index (an int >= 0), got {value!r}")
    return value


def check_entity_type(value: Any, what: str) -> str:
    """An entity type in its canonical spelling, or a :class:`KgError` naming ``what``."""
    if not isinstance(value, str):
        raise KgError(f"{what}: expected an entity type string, got {value!r}")
    name = value.strip().upper()
    name = ENTITY_TYPE_SYNONYMS.get(name, name)
    if name not in ENTITY_TYPES:
        near = difflib.get_close_matches(name, ENTITY_TYPES, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise KgError(
            f"{what}: unknown entity type {value!r}; {hint}use one of {', '.join(ENTITY_TYPES)}"
        )
    return name


def _relation_type(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise KgError(f"{what}: expected a relation type string, got {value!r}")
    name = value.strip().lower().replace("-", "_").replace(" ", "_")
    if name not in RELATION_TYPES:
        near = difflib.get_close_matches(name, RELATION_TYPES, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise KgError(
            f"{what}: relation type {value!r} is not in the vocabulary; {hint}use one of "
            f"{', '.join(RELATION_TYPES)} ('other' for anything else)"
        )
    return name


def _fields_of(cls: type, data: Any, what: str, *, optional: Iterable[str] = ()) -> dict:
    """Check a dict's keys against a dataclass: typos name the nearest key, gaps are listed."""
    if not isinstance(data, Mapping):
        raise KgError(f"{what}: expected a dict (JSON object), got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = [key for key in data if key not in names]
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(str(key), names, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"valid keys: {', '.join(names)}"
        raise KgError(f"{what}: unknown key {key!r}; {hint}")
    required = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in optional
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise KgError(f"{what}: missing {', '.join(repr(m) for m in missing)} (needs {required})")
    return dict(data)


# --- the records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Article:
    """One scored news article.

    Attributes:
        id: stable id the finance app gives the article (e.g. a hash of its URL).
        source: feed or publisher name.
        title: headline.
        published: publication time, time-zone-aware; kept in UTC.
        sentiment: article-level sentiment in [-1, 1].
        url: link to the article ("" when there is none).
    """

    id: str
    source: str
    title: str
    published: datetime
    sentiment: float
    url: str = ""

    def __post_init__(self) -> None:
        where = f"article {self.id!r}"
        object.__setattr__(self, "id", _text(self.id, "article id"))
        object.__setattr__(self, "source", _text(self.source, f"{where}: source"))
        object.__setattr__(self, "title", _text(self.title, f"{where}: title", allow_empty=True))
        object.__setattr__(self, "url", _text(self.url, f"{where}: url", allow_empty=True))
        object.__setattr__(self, "published", parse_time(self.published, f"{where}: published"))
        object.__setattr__(
            self, "sentiment", _number(self.sentiment, f"{where}: sentiment", -1.0, 1.0)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Article:
        """Read an article from `to_dict`'s form (published as an ISO string with an offset)."""
        what = f"article {data.get('id')!r}" if isinstance(data, Mapping) else "article"
        return cls(**_fields_of(cls, data, what))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; `published` as ISO 8601 with its UTC offset."""
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "published": self.published.isoformat(),
            "sentiment": self.sentiment,
            "url": self.url,
        }


@dataclass(frozen=True)
class Mention:
    """One entity mention in a sentence of an article.

    Attributes:
        article_id: the article's id.
        text: the surface text as written ("Northwind Holdings Inc.", "$NWND", "Ms Okafor").
        type: entity type, one of `ENTITY_TYPES` (PER, ORGANIZATION, LOCATION also read).
        sentence_index: position of the sentence in the article, from 0.
        sentence: the sentence's text.
        sentiment: the sentence's sentiment in [-1, 1].
        entity_sentiment: sentiment towards this entity in [-1, 1], when the scorer gives one;
            the graph's sentiment series use it in place of the sentence's.
    """

    article_id: str
    text: str
    type: str
    sentence_index: int
    sentence: str
    sentiment: float
    entity_sentiment: float | None = None

    def __post_init__(self) -> None:
        where = f"mention {self.text!r} of article {self.article_id!r}"
        object.__setattr__(self, "article_id", _text(self.article_id, f"{where}: article_id"))
        object.__setattr__(self, "text", _text(self.text, f"{where}: text"))
        object.__setattr__(self, "type", check_entity_type(self.type, f"{where}: type"))
        _index(self.sentence_index, f"{where}: sentence_index")
        object.__setattr__(self, "sentence", _text(self.sentence, f"{where}: sentence"))
        object.__setattr__(
            self, "sentiment", _number(self.sentiment, f"{where}: sentiment", -1.0, 1.0)
        )
        if self.entity_sentiment is not None:
            value = _number(self.entity_sentiment, f"{where}: entity_sentiment", -1.0, 1.0)
            object.__setattr__(self, "entity_sentiment", value)

    @property
    def score(self) -> float:
        """The sentiment the graph records for this mention: entity-level when given."""
        return self.sentiment if self.entity_sentiment is None else self.entity_sentiment

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], article_id: str | None = None) -> Mention:
        """Read a mention; inside an `Extraction`, `article_id` may be left out of the dict."""
        what = f"mention {data.get('text')!r}" if isinstance(data, Mapping) else "mention"
        values = _fields_of(cls, data, what, optional=["article_id"] if article_id else [])
        values.setdefault("article_id", article_id)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "article_id": self.article_id,
            "text": self.text,
            "type": self.type,
            "sentence_index": self.sentence_index,
            "sentence": self.sentence,
            "sentiment": self.sentiment,
            "entity_sentiment": self.entity_sentiment,
        }


@dataclass(frozen=True)
class Relation:
    """One typed relation between two mentions of the same article.

    Attributes:
        article_id: the article's id.
        head: surface text of the head entity; must be the `text` of a mention in the article.
        tail: surface text of the tail entity; likewise.
        type: one of `RELATION_TYPES`, read head -> tail.
        confidence: the extractor's probability for the relation, in [0, 1].
        sentence: the sentence stating it.
        sentiment: that sentence's sentiment in [-1, 1].
        sentence_index: position of the sentence in the article, when known.
    """

    article_id: str
    head: str
    tail: str
    type: str
    confidence: float
    sentence: str
    sentiment: float
    sentence_index: int | None = None

    def __post_init__(self) -> None:
        where = f"relation {self.head!r} -> {self.tail!r} of article {self.article_id!r}"
        object.__setattr__(self, "article_id", _text(self.article_id, f"{where}: article_id"))
        object.__setattr__(self, "head", _text(self.head, f"{where}: head"))
        object.__setattr__(self, "tail", _text(self.tail, f"{where}: tail"))
        object.__setattr__(self, "type", _relation_type(self.type, f"{where}: type"))
        object.__setattr__(
            self, "confidence", _number(self.confidence, f"{where}: confidence", 0.0, 1.0)
        )
        object.__setattr__(self, "sentence", _text(self.sentence, f"{where}: sentence"))
        object.__setattr__(
            self, "sentiment", _number(self.sentiment, f"{where}: sentiment", -1.0, 1.0)
        )
        if self.sentence_index is not None:
            _index(self.sentence_index, f"{where}: sentence_index")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], article_id: str | None = None) -> Relation:
        """Read a relation; inside an `Extraction`, `article_id` may be left out of the dict."""
        what = "relation"
        if isinstance(data, Mapping):
            what = f"relation {data.get('head')!r} -> {data.get('tail')!r}"
        values = _fields_of(cls, data, what, optional=["article_id"] if article_id else [])
        values.setdefault("article_id", article_id)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "article_id": self.article_id,
            "head": self.head,
            "tail": self.tail,
            "type": self.type,
            "confidence": self.confidence,
            "sentence": self.sentence,
            "sentiment": self.sentiment,
            "sentence_index": self.sentence_index,
        }


@dataclass(frozen=True)
class Extraction:
    """Everything the finance app extracted from one article: the unit `kg` adds.

    Attributes:
        article: the article.
        mentions: its entity mentions (a list is accepted and kept as a tuple).
        relations: its relations; each head and tail is the text of one of `mentions`.
    """

    article: Article
    mentions: tuple[Mention, ...] = ()
    relations: tuple[Relation, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.article, Article):
            raise KgError(
                f"extraction: article must be an Article, got {type(self.article).__name__}; "
                "use Extraction.from_dict for dicts"
            )
        aid = self.article.id
        object.__setattr__(self, "mentions", tuple(self.mentions))
        object.__setattr__(self, "relations", tuple(self.relations))
        for i, item in enumerate(self.mentions):
            if not isinstance(item, Mention):
                raise KgError(
                    f"article {aid!r}: mention {i} is a {type(item).__name__}, not a Mention"
                )
            if item.article_id != aid:
                raise KgError(
                    f"article {aid!r}: mention {i} ({item.text!r}) belongs to article "
                    f"{item.article_id!r}; put it in that article's Extraction"
                )
        surfaces = {m.text for m in self.mentions}
        for i, item in enumerate(self.relations):
            if not isinstance(item, Relation):
                raise KgError(
                    f"article {aid!r}: relation {i} is a {type(item).__name__}, not a Relation"
                )
            if item.article_id != aid:
                raise KgError(
                    f"article {aid!r}: relation {i} ({item.head!r} -> {item.tail!r}) belongs to "
                    f"article {item.article_id!r}; put it in that article's Extraction"
                )
            for role, surface in (("head", item.head), ("tail", item.tail)):
                if surface not in surfaces:
                    near = difflib.get_close_matches(surface, sorted(surfaces), n=1)
                    hint = f" (closest: {near[0]!r})" if near else ""
                    raise KgError(
                        f"article {aid!r}: relation {i} {item.type}: {role} {surface!r} is not the "
                        f"text of any mention in the article{hint}; add a Mention with that text "
                        "or use the mention's exact text"
                    )

    @property
    def id(self) -> str:
        """The article's id."""
        return self.article.id

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Extraction:
        """Read `{"article": {...}, "mentions": [...], "relations": [...]}`.

        Mentions and relations may leave out `article_id`; it is taken from the article.

        Raises:
            KgError: a key is missing or unknown, or a value is out of range.
        """
        values = _fields_of(cls, data, "extraction")
        article = Article.from_dict(values["article"])
        mentions = values.get("mentions", [])
        relations = values.get("relations", [])
        for name, items in (("mentions", mentions), ("relations", relations)):
            if not isinstance(items, list | tuple):
                raise KgError(
                    f"article {article.id!r}: {name} must be a list, got {type(items).__name__}"
                )
        return cls(
            article=article,
            mentions=tuple(Mention.from_dict(m, article.id) for m in mentions),
            relations=tuple(Relation.from_dict(r, article.id) for r in relations),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict that `from_dict` reads back equal."""
        return {
            "article": self.article.to_dict(),
            "mentions": [m.to_dict() for m in self.mentions],
            "relations": [r.to_dict() for r in self.relations],
        }
