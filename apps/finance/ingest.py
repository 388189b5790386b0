"""Read news feeds into :class:`NewsArticle`: RSS/Atom files or URLs, JSONL, CSV, Parquet, folders.

Every source is read as far as it can be; what cannot be used is skipped with a reason and
the run goes on:

- a source that cannot be read (a missing file, a URL that does not answer within the
  timeout) or a feed so malformed that no entry can be read: ``unreadable_source`` /
  ``malformed_feed``; a feed that is malformed after some entries keeps those entries;
- a record that is not a JSON object, or a row without text: ``bad_record`` / ``empty``;
- an article without a usable publication time (its own, else its feed's): ``no_date``;
- an article not in ``IngestConfig.languages``: ``language``;
- the same article again, by id, url or content hash: ``duplicate_id`` / ``duplicate_url`` /
  ``duplicate_content`` (counted apart from the skipped ones).

What ingest changed in an article it kept is in :attr:`NewsArticle.notes` and counted:
``html_stripped``, ``truncated`` (a body over ``max_chars``), ``timezone_assumed`` (a time
without a zone, read as UTC), ``date_from_feed``. :class:`IngestReport` holds the counts.
"""

from __future__ import annotations

import csv
import email.utils
import hashlib
import html
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from apps.common.language import detect_language
from apps.finance.records import NewsArticle
from lepton_nlp.config import build_dataclass

__all__ = [
    "DUPLICATE_REASONS",
    "FEED_SUFFIXES",
    "SKIP_REASONS",
    "Deduplicator",
    "IngestConfig",
    "IngestReport",
    "Problem",
    "articles_from_feed",
    "articles_from_rows",
    "html_to_text",
    "iter_articles",
    "parse_published",
]

SKIP_REASONS = (
    "unreadable_source",
    "malformed_feed",
    "bad_record",
    "empty",
    "no_date",
    "language",
)
"""Why an article (or a whole source) was not used."""
DUPLICATE_REASONS = ("duplicate_id", "duplicate_url", "duplicate_content")
"""Why an article was dropped as one seen before (in this run; the store adds ``stored``)."""

FEED_SUFFIXES = (".xml", ".rss", ".atom", ".feed", ".rdf")
_TABLE_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_FIELDS = {
    "id": ("id", "guid", "article_id", "uuid"),
    "title": ("title", "headline"),
    "body": ("body", "text", "content", "article", "summary", "description"),
    "url": ("url", "link", "href"),
    "published": (
        "published",
        "published_at",
        "pubdate",
        "date",
        "datetime",
        "time",
        "timestamp",
        "updated",
        "created_at",
    ),
    "source": ("source", "publisher", "feed"),
}
_MAX_ID = 200


@dataclass(frozen=True)
class IngestConfig:
    """How feeds are read (YAML keys of the same names; a typo is an error)."""

    max_chars: int = 100_000
    """A body longer than this is cut here (the article is kept, noted ``truncated``)."""
    min_chars: int = 10
    """Title and body shorter than this together (after stripping HTML) are ``empty``."""
    languages: list[str] = field(default_factory=lambda: ["en"])
    """Languages kept (codes from :func:`apps.common.language.detect_language`); ``[]`` keeps all."""
    timeout: float = 10.0
    """Seconds to wait for a feed URL to answer (each of connect and read)."""
    max_download_bytes: int = 50 * 2**20
    """A feed URL's body is cut here."""
    problems_kept: int = 200
    """How many skipped items :class:`IngestReport` keeps with their details (all are counted)."""

    def __post_init__(self) -> None:
        if self.max_chars < 100:
            raise ValueError(f"max_chars must be at least 100, got {self.max_chars}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive (seconds), got {self.timeout}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> IngestConfig:
        """Build from a mapping; unknown keys are errors naming the nearest valid key."""
        return build_dataclass(cls, dict(data or {}), "ingest")


@dataclass(frozen=True)
class Problem:
    """One thing ingest skipped: which source, where in it, why (a reason code), and details."""

    source: str
    where: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        where = f" {self.where}" if self.where else ""
        return f"{self.source}{where}: {self.reason} ({self.detail})"


@dataclass
class IngestReport:
    """Counts of one ingest: records read, articles kept, skipped and duplicates by reason."""

    sources: int = 0
    read: int = 0
    """Records met (feed entries, JSON lines, rows), good or bad."""
    articles: int = 0
    """Articles handed on (new to this run)."""
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    partial: Counter[str] = field(default_factory=Counter)
    """Articles kept with a change, by note (``html_stripped``, ``truncated``...)."""
    problems: list[Problem] = field(default_factory=list)
    ignored_files: int = 0
    """Files in folders with a suffix ingest does not read (README.md...)."""

    def skip(self, problem: Problem, keep: int = 200) -> None:
        self.skipped[problem.reason] += 1
        if len(self.problems) < keep:
            self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "read": self.read,
            "articles": self.articles,
            "skipped": dict(sorted(self.skipped.items())),
            "duplicates": dict(sorted(self.duplicates.items())),
            "partial": dict(sorted(self.partial.items())),
            "ignored_files": self.ignored_files,
            "problems": [str(p) for p in self.problems],
        }


# --- text -------------------------------------------------------------------------------------

_TAG_NAMES = (
    "a|abbr|article|aside|b|blockquote|body|br|caption|cite|code|dd|div|dl|dt|em|figcaption|"
    "figure|font|footer|h[1-6]|head|header|hr|html|i|iframe|img|li|link|meta|nav|noscript|ol|p|"
    "picture|pre|q|s|script|section|small|source|span|strong|style|sub|sup|svg|table|tbody|td|"
    "template|tfoot|th|thead|time|title|tr|u|ul|video"
)
# Known HTML tags only, so "AT&T" or "<rose>" in plain text is not taken for markup.
_TAG = re.compile(
    rf"</?(?:{_TAG_NAMES})(?:\s[^<>]*)?/?>|<!--|&(?:amp|lt|gt|quot|apos|nbsp|#\d{{2,6}}|#x[0-9a-f]{{2,5}});",
    re.IGNORECASE,
)
# fmt: off
_BLOCKS = frozenset([
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "section", "article", "blockquote", "pre", "header", "footer", "figure", "figcaption", "hr",
    "dd", "dt",
])
# fmt: on
_HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "iframe", "svg"})
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


class _TextOf(HTMLParser):
    """Text of an HTML fragment: blocks on their own lines, scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _INLINE_SPACE.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def html_to_text(text: str) -> tuple[str, bool]:
    """Plain text of a string that may hold HTML, and whether it did.

    Tags go (block elements end a line; scripts, styles and comments vanish with their
    content), entities are decoded, white space is folded.
    """
    if not _TAG.search(text):
        return _tidy(text), False
    parser = _TextOf()
    parser.feed(text)
    parser.close()
    return _tidy(html.unescape("".join(parser.parts))), True


# --- time -------------------------------------------------------------------------------------

# fmt: off
_ZONE_HOURS = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2,
    "EEST": 3, "MSK": 3, "IST": 5.5, "SGT": 8, "HKT": 8, "JST": 9, "KST": 9, "AEST": 10,
    "AEDT": 11, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
    "PDT": -7,
}
# fmt: on
_ZONES = {name: timezone(timedelta(hours=h), name) for name, h in _ZONE_HOURS.items()}


def parse_published(value: Any) -> tuple[datetime | None, tuple[str, ...], str]:
    """A publication time in UTC from what feeds and tables hold.

    Reads aware and naive datetimes, dates, epoch seconds or milliseconds, ISO 8601, RFC 822
    (``Tue, 05 Mar 2024 09:30:00 -0500``) and the free forms dateutil reads
    (``March 5, 2024 9:30 AM EST``, ``05.03.2024 14:00 CET``), with common zone abbreviations.

    Returns:
        (time or None, notes, why it could not be read): a time without a zone is read as
        UTC with the note ``timezone_assumed``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, (), "no publication time"
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) / (1000 if abs(value) > 1e11 else 1)
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None, (), f"epoch time {value!r} is out of range"
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
            return parse_published(float(text))
        for reader in (_iso, _free_form, _rfc822):
            moment = reader(text)
            if moment is not None:
                break
        if moment is None:
            return None, (), f"cannot read the time {text[:60]!r}"
    else:
        return None, (), f"a {type(value).__name__} is not a time"
    notes: tuple[str, ...] = ()
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment, notes = moment.replace(tzinfo=UTC), ("timezone_assumed",)
    if not 1970 <= moment.year <= 2200:
        return None, (), f"the time {moment.isoformat()} is out of range"
    return moment.astimezone(UTC), notes, ""


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None


def _rfc822(text: str) -> datetime | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # parsedate reads "-0000" as "zone unknown": naive, which the caller notes as assumed.
    return moment


def _free_form(text: str) -> datetime | None:
    from dateutil import parser

    try:
        return parser.parse(text, tzinfos=_ZONES, dayfirst="." in text)
    except (ValueError, OverflowError, parser.ParserError):
        return None


# --- records -> articles ----------------------------------------------------------------------


def _pick(row: Mapping[str, Any], name: str) -> Any:
    lowered = {str(k).lower(): v for k, v in row.items()}
    for key in _FIELDS[name]:
        value = lowered.get(key)
        if value is not None and not (isinstance(value, float) and value != value):
            return value
    return None


def _short_id(value: str) -> str:
    value = value.strip()
    if len(value) <= _MAX_ID:
        return value
    return "sha1:" + hashlib.sha1(value.encode("utf-8")).hexdigest()


class _Builder:
    """Turns one raw record into an article or a reason, with the config's rules."""

    def __init__(self, config: IngestConfig, report: IngestReport):
        self.config = config
        self.report = report

    def build(
        self,
        *,
        source: str,
        where: str,
        raw_id: Any,
        title: Any,
        body: Any,
        url: Any,
        published: Any,
        fallback_published: Any = None,
    ) -> NewsArticle | None:
        config, report = self.config, self.report
        notes: list[str] = []
        texts = []
        for value in (title, body):
            text = "" if value is None else str(value)
            text, stripped = html_to_text(text) if text else ("", False)
            if stripped and "html_stripped" not in notes:
                notes.append("html_stripped")
            texts.append(text)
        title_text, body_text = texts
        title_text = " ".join(title_text.split())
        if len(body_text) > config.max_chars:
            cut = body_text.rfind(" ", 0, config.max_chars)
            body_text = body_text[: cut if cut > config.max_chars // 2 else config.max_chars]
            notes.append("truncated")
        if len(title_text) + len(body_text) < config.min_chars:
            report.skip(Problem(source, where, "empty", "no text"), config.problems_kept)
            return None
        moment, time_notes, why = parse_published(published)
        if moment is None and fallback_published is not None:
            moment, time_notes, _ = parse_published(fallback_published)
            if moment is not None:
                time_notes = (*time_notes, "date_from_feed")
        if moment is None:
            report.skip(Problem(source, where, "no_date", why), config.problems_kept)
            return None
        notes.extend(time_notes)
        language = detect_language(f"{title_text}\n{body_text}")
        if config.languages and language not in config.languages:
            detail = f"detected {language}; kept: {', '.join(config.languages)}"
            report.skip(Problem(source, where, "language", detail), config.problems_kept)
            return None
        url_text = "" if url is None else str(url).strip()
        if not re.match(r"(?i)https?://\S+$", url_text):
            url_text = ""  # an RSS guid read as a permalink, a file name: not a link
        if raw_id is None or not str(raw_id).strip():
            basis = url_text or f"{source}\n{title_text}\n{moment.isoformat()}\n{body_text[:200]}"
            article_id = "sha1:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()
        else:
            article_id = _short_id(str(raw_id))
        report.partial.update(notes)
        return NewsArticle(
            id=article_id,
            source=source,
            title=title_text,
            body=body_text,
            published=moment,
            url=url_text,
            language=language,
            notes=tuple(notes),
        )


def _feed_records(
    data: bytes, name: str, builder: _Builder, report: IngestReport
) -> Iterator[NewsArticle]:
    import feedparser

    parsed = feedparser.parse(data)
    entries = parsed.get("entries") or []
    keep = builder.config.problems_kept
    if parsed.get("bozo") and not entries:
        detail = str(parsed.get("bozo_exception") or "not an RSS or Atom feed")
        report.skip(Problem(name, "", "malformed_feed", detail[:200]), keep)
        return
    if parsed.get("bozo"):
        # Entries before the error were read: keep them, and say the feed was cut.
        report.partial["malformed_feed"] += 1
        if len(report.problems) < keep:
            error = str(parsed.get("bozo_exception"))[:160]
            detail = f"kept the {len(entries)} entries read before: {error}"
            report.problems.append(Problem(name, "", "malformed_feed", detail))
    feed = parsed.get("feed") or {}
    source = str(feed.get("title") or name).strip() or name
    feed_time = feed.get("updated") or feed.get("published")
    for number, entry in enumerate(entries, 1):
        report.read += 1
        content = entry.get("content") or []
        body = content[0].get("value") if content else None
        body = body or entry.get("summary") or entry.get("description")
        published = entry.get("published") or entry.get("updated") or entry.get("created")
        parsed_time = entry.get("published_parsed") or entry.get("updated_parsed")
        if parsed_time is not None and parse_published(published)[0] is None:
            # feedparser reads some forms (old RFC 822 zones, W3C variants) that others miss.
            published = datetime(*parsed_time[:6], tzinfo=UTC)
        article = builder.build(
            source=source,
            where=f"entry {number}",
            raw_id=entry.get("id") or entry.get("link"),
            title=entry.get("title"),
            body=body,
            url=entry.get("link"),
            published=published,
            fallback_published=feed_time,
        )
        if article is not None:
            yield article


def _row_records(
    rows: Iterable[tuple[str, Any]], name: str, builder: _Builder, report: IngestReport
) -> Iterator[NewsArticle]:
    keep = builder.config.problems_kept
    for where, row in rows:
        report.read += 1
        if isinstance(row, str):  # the reason a line could not be read
            report.skip(Problem(name, where, "bad_record", row), keep)
            continue
        if not isinstance(row, Mapping):
            detail = f"expected an object with title/body fields, got {type(row).__name__}"
            report.skip(Problem(name, where, "bad_record", detail), keep)
            continue
        source = _pick(row, "source")
        article = builder.build(
            source=str(source).strip() if source else name,
            where=where,
            raw_id=_pick(row, "id"),
            title=_pick(row, "title"),
            body=_pick(row, "body"),
            url=_pick(row, "url"),
            published=_pick(row, "published"),
        )
        if article is not None:
            yield article


def _jsonl_rows(data: bytes) -> Iterator[tuple[str, Any]]:
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith("["):  # a JSON array of objects
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            yield "array", f"not valid JSON ({error.msg} at line {error.lineno})"
            return
        for i, item in enumerate(items, 1):
            yield f"item {i}", item
        return
    for number, line in enumerate(io.StringIO(text), 1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as error:
            yield f"line {number}", f"not valid JSON ({error.msg} at column {error.colno})"


def _csv_rows(data: bytes) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for number, row in enumerate(reader, 1):
            if None in row:  # more cells than the header names
                row = {k: v for k, v in row.items() if k is not None}
            yield f"row {number}", row
    except csv.Error as error:
        yield f"row {reader.line_num}", f"not valid CSV ({error})"


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    from pyarrow import parquet

    number = 0
    for batch in parquet.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield f"row {number}", row


# --- sources ----------------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _kind(name: str, head: bytes) -> str:
    suffix = Path(name.split("?")[0]).suffix.lower()
    if suffix in FEED_SUFFIXES:
        return "feed"
    if suffix in _TABLE_SUFFIXES:
        return _TABLE_SUFFIXES[suffix]
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if first.startswith((b"{", b"[")):
        return "jsonl"
    if first.startswith(b"<"):
        return "feed"
    return "csv"


def _fetch(url: str, config: IngestConfig) -> bytes:
    import httpx

    with httpx.stream(
        "GET",
        url,
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=True,
        headers={"User-Agent": "lepton-finance/0.1 (+feed reader)"},
    ) as response:
        response.raise_for_status()
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= config.max_download_bytes:
                break
    return b"".join(chunks)[: config.max_download_bytes]


def _why_unreachable(error: Exception, config: IngestConfig) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {config.timeout:g} s ({type(error).__name__})"
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return f"{type(error).__name__}: {error}"[:200]


def _expand(sources: Iterable[str | Path], report: IngestReport) -> Iterator[str]:
    readable = {*FEED_SUFFIXES, *_TABLE_SUFFIXES}
    for source in sources:
        text = str(source)
        if _is_url(text):
            yield text
            continue
        path = Path(text)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                if child.suffix.lower() in readable:
                    yield str(child)
                else:
                    report.ignored_files += 1
        else:
            yield text


def _read_source(source: str, config: IngestConfig, report: IngestReport) -> Iterator[NewsArticle]:
    builder = _Builder(config, report)
    report.sources += 1
    try:
        if _is_url(source):
            data = _fetch(source, config)
            path = None
        else:
            path = Path(source)
            with open(path, "rb") as stream:
                head = stream.read(64)
            data = None
    except Exception as error:
        if not _is_url(source) and not Path(source).exists():
            detail = "no such file or folder"
        else:
            detail = _why_unreachable(error, config)
        report.skip(Problem(source, "", "unreadable_source", detail), config.problems_kept)
        return
    kind = _kind(source, data[:64] if data is not None else head)
    if kind == "parquet":
        if data is not None:
            rows: Iterable[tuple[str, Any]] = _parquet_bytes_rows(data)
        else:
            rows = _parquet_rows(path)
        name = Path(source).stem if path else source
        yield from _guard(_row_records(rows, name, builder, report), source, config, report)
        return
    if data is None:
        data = path.read_bytes()
    name = path.stem if path else source
    if kind == "feed":
        yield from _guard(_feed_records(data, name, builder, report), source, config, report)
    elif kind == "jsonl":
        rows = _jsonl_rows(data)
        yield from _guard(_row_records(rows, name, builder, report), source, config, report)
    else:
        rows = _csv_rows(data)
        yield from _guard(_row_records(rows, name, builder, report), source, config, report)


def _parquet_bytes_rows(data: bytes) -> Iterator[tuple[str, Any]]:
    from pyarrow import parquet

    table = parquet.read_table(io.BytesIO(data))
    for number, row in enumerate(table.to_pylist(), 1):
        yield f"row {number}", row


def _guard(
    articles: Iterator[NewsArticle], source: str, config: IngestConfig, report: IngestReport
) -> Iterator[NewsArticle]:
    """Yield what a reader gives until it fails; a failure ends that source, not the run."""
    try:
        yield from articles
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"[:200]
        report.skip(Problem(source, "", "unreadable_source", detail), config.problems_kept)


def articles_from_rows(
    rows: Iterable[Mapping[str, Any]],
    source: str,
    config: IngestConfig | None = None,
    report: IngestReport | None = None,
) -> list[NewsArticle]:
    """Articles from records already in memory (the HTTP API), by the rules files follow;
    duplicates among them are dropped and counted."""
    config = config or IngestConfig()
    report = report if report is not None else IngestReport()
    builder = _Builder(config, report)
    numbered = ((f"item {i}", row) for i, row in enumerate(rows, 1))
    return _unique(_row_records(numbered, source, builder, report), report)


def articles_from_feed(
    data: bytes | str,
    source: str,
    config: IngestConfig | None = None,
    report: IngestReport | None = None,
) -> list[NewsArticle]:
    """Articles from the text of an RSS or Atom feed (the HTTP API)."""
    config = config or IngestConfig()
    report = report if report is not None else IngestReport()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _unique(_feed_records(raw, source, _Builder(config, report), report), report)


def _unique(articles: Iterable[NewsArticle], report: IngestReport) -> list[NewsArticle]:
    seen, kept = Deduplicator(), []
    for article in articles:
        reason = seen.reason(article)
        if reason is None:
            kept.append(article)
        else:
            report.duplicates[reason] += 1
    report.articles += len(kept)
    return kept


class Deduplicator:
    """Drops an article whose id, url or content hash was seen before (first one wins)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.urls: set[str] = set()
        self.hashes: set[str] = set()

    def reason(self, article: NewsArticle) -> str | None:
        """Why ``article`` is a duplicate, or None (then it is remembered)."""
        if article.id in self.ids:
            return "duplicate_id"
        if article.url and article.url in self.urls:
            return "duplicate_url"
        digest = article.hash
        if digest in self.hashes:
            return "duplicate_content"
        self.ids.add(article.id)
        if article.url:
            self.urls.add(article.url)
        self.hashes.add(digest)
        return None


def iter_articles(
    sources: Iterable[str | Path],
    config: IngestConfig | None = None,
    report: IngestReport | None = None,
) -> Iterator[NewsArticle]:
    """The articles of files, folders (read recursively, sorted) and feed URLs, in order.

    Args:
        sources: paths of RSS/Atom, JSONL (or a JSON array), CSV or Parquet files, folders
            of them, or http(s) feed URLs.
        config: reading rules (defaults: :class:`IngestConfig`).
        report: filled with the counts as articles are read (pass one to read it after).

    Yields:
        Each new article once; duplicates, unreadable sources and unusable records are
        counted in ``report`` and skipped.
    """
    config = config or IngestConfig()
    report = report if report is not None else IngestReport()
    seen = Deduplicator()
    for source in _expand(sources, report):
        for article in _read_source(source, config, report):
            reason = seen.reason(article)
            if reason is not None:
                report.duplicates[reason] += 1
                continue
            report.articles += 1
            yield article
