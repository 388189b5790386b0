"""What the finance page shows, computed without Streamlit: tables, figures and escaped HTML.

The page (:mod:`apps.finance.pages.monitor`) only lays these out. Everything here reads the
monitor's store and knowledge graph (:mod:`apps.finance.monitor`, :mod:`kg.query`); text
that came from a feed or an upload is passed through :func:`html.escape` before it is put
into any HTML this module returns.
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from apps.common.paths import ROOT, shown_path
from apps.finance.alerts import Alert, entity_series
from apps.finance.ingest import FEED_SUFFIXES
from apps.finance.monitor import RunSummary, ScorerFactory, default_scorer, load_scorer_factory
from apps.finance.records import ScoredArticle
from apps.finance.store import ArticleRow, FinanceStore, ScoreRow
from kg import KnowledgeGraph
from kg import io as kg_io
from kg.query import evidence, neighbours, projection, top_movers
from kg.schema import (
    EDGE_KIND,
    KIND_CO_MENTION,
    NODE_ARTICLE_COUNT,
    NODE_MENTION_COUNT,
    NODE_NAME,
    NODE_SENTIMENT,
    NODE_TYPE,
)

__all__ = [
    "ALIASES_ENV",
    "NETWORK_TYPES",
    "PIPELINE_CONFIG_ENV",
    "SAMPLE_FEED",
    "SCORER_ENV",
    "SHIPPED_ALIASES",
    "UPLOAD_FOLDER_PREFIX",
    "UPLOAD_SUFFIXES",
    "EntityChoice",
    "UploadError",
    "alert_rows",
    "aliases_setting",
    "article_html",
    "article_rows",
    "entity_choices",
    "graph_html",
    "mover_rows",
    "network_figure",
    "picked_entity",
    "relation_rows",
    "safe_link",
    "scorer_factory",
    "sentence_counts",
    "sentiment_figure",
    "series_rows",
    "shown_source",
    "stage_upload",
    "summary_rows",
]

SAMPLE_FEED = ROOT / "data" / "finance" / "sample_feed"
"""The feed the project ships: 217 articles over six weeks about invented companies."""
SHIPPED_ALIASES = ROOT / "data" / "finance" / "aliases.yaml"
"""The alias table of the sample's companies (names, aliases, tickers)."""

SCORER_ENV = "LEPTON_FINANCE_SCORER"
"""``module:callable`` building the scorer (tests and demos inject stand-ins)."""
PIPELINE_CONFIG_ENV = "LEPTON_FINANCE_PIPELINE_CONFIG"
"""A YAML file of :class:`apps.finance.pipeline.FinancePipelineConfig` keys."""
ALIASES_ENV = "LEPTON_FINANCE_ALIASES"
"""The alias table (as the HTTP API reads it); default :data:`SHIPPED_ALIASES`."""

UPLOAD_SUFFIXES = (*FEED_SUFFIXES, ".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")
"""File endings the page takes (what :mod:`apps.finance.ingest` reads)."""


UPLOAD_FOLDER_PREFIX = "lepton-finance-upload-"
"""Uploads are staged in a temporary folder whose name starts so."""


class UploadError(ValueError):
    """An uploaded file the page cannot score; the message says why and what would do."""


# --- settings ----------------------------------------------------------------------------


def scorer_factory(spec: str = "", pipeline_config: str = "") -> ScorerFactory:
    """The scorer the page uses: ``spec`` (``module:callable``) when given, else the shipped
    pipeline with the settings of the YAML file ``pipeline_config`` (or its defaults).

    Raises:
        ValueError: ``spec`` cannot be loaded, or ``pipeline_config`` is not a file.
    """
    if spec:
        return load_scorer_factory(spec)
    if pipeline_config:
        path = Path(pipeline_config).expanduser()
        if not path.is_file():
            raise ValueError(
                f"{PIPELINE_CONFIG_ENV}={pipeline_config!r} is not a file; point it at a YAML "
                "file of pipeline settings, or unset it for the shipped models"
            )
        return _ConfiguredScorer(str(path))
    return default_scorer


@dataclass(frozen=True)
class _ConfiguredScorer:
    """``default_scorer(config)`` as a picklable zero-argument factory."""

    config: str

    def __call__(self) -> Any:
        return default_scorer(self.config)


def aliases_setting() -> str:
    """The alias table the page resolves entities with: ``LEPTON_FINANCE_ALIASES``, else the
    shipped one."""
    return os.environ.get(ALIASES_ENV) or str(SHIPPED_ALIASES)


def stage_upload(name: str, data: bytes, folder: str | Path) -> Path:
    """Write an uploaded feed to ``folder`` under its own name, for the ingest to read.

    Raises:
        UploadError: the file is empty, binary where text is expected, or of a kind ingest
            does not read.
    """
    clean = Path(name).name or "upload"
    suffix = Path(clean).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadError(
            f"{clean!r} is not a feed file the monitor reads; upload RSS/Atom "
            f"({', '.join(FEED_SUFFIXES)}), JSONL, CSV or Parquet"
        )
    if not data.strip():
        raise UploadError(f"{clean!r} is empty; upload a feed with at least one article")
    if suffix not in (".parquet", ".pq") and b"\x00" in data[:4096]:
        raise UploadError(
            f"{clean!r} is not a text file (it holds binary data); RSS/Atom, JSONL and CSV "
            "feeds are text, Parquet files end in .parquet"
        )
    if suffix in (".parquet", ".pq") and not data.startswith(b"PAR1"):
        raise UploadError(f"{clean!r} is not a Parquet file (no PAR1 header)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / clean
    path.write_bytes(data)
    return path


def shown_source(source: str) -> str:
    """A run's source as the page shows it: ``upload: NAME`` for a file uploaded to the
    page, a path without this machine's folders (:func:`apps.common.paths.shown_path`), a
    URL as it is."""
    if source.startswith(("http://", "https://")):
        return source
    path = Path(source)
    if path.parent.name.startswith(UPLOAD_FOLDER_PREFIX):
        return f"upload: {path.name}"
    return shown_path(path)


# --- a run's summary -----------------------------------------------------------------------


def summary_rows(summary: RunSummary) -> list[dict[str, Any]]:
    """What a run did, as rows of (what, articles, why): new, duplicates and skipped ones by
    reason, and those processed in part."""
    rows: list[dict[str, Any]] = [
        {"what": "read", "articles": summary.read, "why": ""},
        {"what": "new (scored and stored)", "articles": summary.new, "why": ""},
    ]
    for title, counts in (
        ("duplicate", summary.duplicates),
        ("skipped", summary.skipped),
        ("processed in part", summary.partial),
    ):
        if not counts:
            rows.append({"what": title, "articles": 0, "why": ""})
        for reason, count in sorted(counts.items()):
            rows.append({"what": title, "articles": count, "why": reason.replace("_", " ")})
    return rows


# --- entities and their series -------------------------------------------------------------


@dataclass(frozen=True)
class EntityChoice:
    """An entity as the pickers offer it."""

    id: str
    name: str
    type: str
    articles: int
    mentions: int
    sentiment: float

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type}, {self.articles} articles)"


def entity_choices(
    kg: KnowledgeGraph, types: Iterable[str] | None = ("ORG", "PERSON", "TICKER", "PRODUCT")
) -> list[EntityChoice]:
    """The graph's entities (of ``types``; all when None), most articles first, then name."""
    wanted = None if types is None else set(types)
    found = [
        EntityChoice(
            node,
            data[NODE_NAME],
            data[NODE_TYPE],
            data[NODE_ARTICLE_COUNT],
            data[NODE_MENTION_COUNT],
            data[NODE_SENTIMENT],
        )
        for node, data in kg.graph.nodes(data=True)
        if wanted is None or data[NODE_TYPE] in wanted
    ]
    return sorted(found, key=lambda e: (-e.articles, -e.mentions, e.name.casefold(), e.id))


def series_rows(kg: KnowledgeGraph, entities: Sequence[str]) -> list[dict[str, Any]]:
    """Daily rows (entity, name, day, articles, mentions, sentiment) of each entity, every
    calendar day of the graph's span (sentiment None on a day without mentions)."""
    rows = []
    for entity in entities:
        node = kg.find(entity)
        name = kg.graph.nodes[node][NODE_NAME]
        for point in entity_series(kg, node):
            rows.append(
                {
                    "entity": node,
                    "name": name,
                    "day": point.day,
                    "articles": point.articles,
                    "mentions": point.mentions,
                    "sentiment": point.sentiment,
                }
            )
    return rows


_PALETTE = ("#2563eb", "#db2777", "#ea580c", "#16a34a", "#7c3aed", "#0891b2", "#ca8a04")


def sentiment_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """A plotly figure of :func:`series_rows`: each entity's daily mean sentiment as a line
    (left axis, -1 to 1) over its daily article count as bars (right axis)."""
    import plotly.graph_objects as go

    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_entity[row["entity"]].append(row)
    figure = go.Figure()
    for i, points in enumerate(by_entity.values()):
        colour = _PALETTE[i % len(_PALETTE)]
        name = points[0]["name"]
        figure.add_bar(
            x=[p["day"] for p in points],
            y=[p["articles"] for p in points],
            name=f"{name}: articles",
            marker_color=colour,
            opacity=0.28,
            yaxis="y2",
            legendgroup=name,
            hovertemplate="%{x}: %{y} article(s)<extra>" + html.escape(name) + "</extra>",
        )
        scored = [p for p in points if p["sentiment"] is not None]
        figure.add_scatter(
            x=[p["day"] for p in scored],
            y=[round(p["sentiment"], 3) for p in scored],
            customdata=[p["mentions"] for p in scored],
            name=f"{name}: sentiment",
            mode="lines+markers",
            line={"color": colour, "width": 2},
            legendgroup=name,
            hovertemplate="%{x}: sentiment %{y:+.2f} over %{customdata} mention(s)<extra>"
            + html.escape(name)
            + "</extra>",
        )
    figure.update_layout(
        barmode="group",
        height=460,
        margin={"l": 70, "r": 60, "t": 20, "b": 110},
        yaxis={"title": "mean entity sentiment", "range": [-1.05, 1.05], "zeroline": True},
        yaxis2={
            "title": "articles",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": "d",
            "tickmode": "auto",
            "nticks": 5,
        },
        legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
        hovermode="closest",
    )
    return figure


# --- movers and alerts -------------------------------------------------------------------


def mover_rows(
    kg: KnowledgeGraph, *, days: int = 7, trailing: int = 28, top: int = 10
) -> list[dict[str, Any]]:
    """Entities whose mean sentiment over the last ``days`` moved most against the
    ``trailing`` days before (:func:`kg.query.top_movers`)."""
    return [
        {
            "entity": m.name,
            "type": m.type,
            "change": round(m.change, 3),
            "recent": round(m.recent, 3),
            "before": round(m.baseline, 3),
            "recent mentions": m.recent_n,
            "mentions before": m.baseline_n,
        }
        for m in top_movers(kg, days=days, trailing=trailing, top=top)
    ]


def alert_rows(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    """Alerts as table rows, newest day first: the kind, who, the numbers and the reason."""
    rows = [
        {
            "day": a.day,
            "kind": a.kind.replace("_", " "),
            "entity": a.name,
            "value": a.value,
            "baseline": a.baseline,
            "z": a.z,
            "reason": a.message,
        }
        for a in alerts
    ]
    return sorted(rows, key=lambda r: r["day"], reverse=True)  # stable: the store's order ties


# --- relations and the graph ---------------------------------------------------------------


def _articles(kg: KnowledgeGraph) -> dict[str, Any]:
    return {x.article.id: x.article for x in kg.extractions}


def relation_rows(kg: KnowledgeGraph, entity: str) -> list[dict[str, Any]]:
    """The typed relations of an entity, most evidence first: the relation read as a sentence
    part (``acquires Nordvik Shipping`` / ``is acquired by``...), its confidence, and each
    evidence sentence with the article's title, date and url."""
    node = kg.find(entity)
    articles = _articles(kg)
    quotes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in evidence(kg, node, include_mentions=False):
        article = articles.get(item.article_id)
        quotes[(item.relation or "", item.other or "")].append(
            {
                "sentence": item.sentence,
                "published": item.published[:10],
                "confidence": item.confidence,
                "sentiment": item.sentiment,
                "article_id": item.article_id,
                "title": article.title if article else "",
                "url": article.url if article else "",
            }
        )
    rows = []
    for n in neighbours(kg, node):
        if n.direction == "in":
            reads = f"{n.name} {n.relation.replace('_', ' ')} {kg.graph.nodes[node][NODE_NAME]}"
        else:
            reads = f"{kg.graph.nodes[node][NODE_NAME]} {n.relation.replace('_', ' ')} {n.name}"
        rows.append(
            {
                "relation": n.relation,
                "direction": n.direction,
                "other": n.name,
                "other_id": n.entity,
                "reads": reads,
                "confidence": n.confidence,
                "sentences": n.count,
                "evidence": quotes.get((n.relation, n.entity), []),
            }
        )
    return rows


NETWORK_TYPES = ("ORG", "PERSON", "PRODUCT")
"""Entity types the network draws (places and amounts would crowd it)."""


def network_figure(
    kg: KnowledgeGraph,
    *,
    focus: str | None = None,
    max_nodes: int = 30,
    types: Iterable[str] = NETWORK_TYPES,
) -> Any:
    """A plotly network of the most mentioned entities of ``types`` (and ``focus`` with its
    neighbours): typed relations as coloured lines, co-mentions as faint grey ones; node
    size by mentions, colour by sentiment. Each node carries its id in ``customdata`` so a
    click on it can select it."""
    import networkx as nx
    import plotly.graph_objects as go

    graph = kg.graph
    wanted = set(types)
    ranked = sorted(
        (n for n, d in graph.nodes(data=True) if d[NODE_TYPE] in wanted),
        key=lambda n: (-graph.nodes[n][NODE_MENTION_COUNT], n),
    )
    shown = set(ranked[:max_nodes])
    if focus and focus in graph:
        shown.add(focus)
        shown.update(
            n for n in nx.all_neighbors(graph, focus) if graph.nodes[n][NODE_TYPE] in wanted
        )
    simple = projection(kg).subgraph(sorted(shown))
    positions = _layout(simple) if shown else {}
    typed: dict[str, list[tuple[str, str]]] = defaultdict(list)
    co: list[tuple[str, str]] = []
    for u, v, data in graph.subgraph(shown).edges(data=True):
        if data[EDGE_KIND] == KIND_CO_MENTION:
            co.append((u, v))
        else:
            typed[data["type"]].append((u, v))
    figure = go.Figure()

    def lines(pairs: list[tuple[str, str]]) -> tuple[list, list]:
        xs, ys = [], []
        for u, v in pairs:
            xs += [positions[u][0], positions[v][0], None]
            ys += [positions[u][1], positions[v][1], None]
        return xs, ys

    xs, ys = lines(co)
    figure.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": "#cbd5e1", "width": 1},
        hoverinfo="skip",
        name="named together",
    )
    for i, (kind, pairs) in enumerate(sorted(typed.items())):
        xs, ys = lines(pairs)
        figure.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": _PALETTE[i % len(_PALETTE)], "width": 2.5},
            hoverinfo="skip",
            name=kind.replace("_", " "),
        )
    nodes = sorted(shown)
    data = [graph.nodes[n] for n in nodes]
    figure.add_scatter(
        x=[positions[n][0] for n in nodes],
        y=[positions[n][1] for n in nodes],
        mode="markers+text",
        text=[d[NODE_NAME] for d in data],
        textposition="top center",
        customdata=nodes,
        hovertext=[
            f"{d[NODE_NAME]} ({d[NODE_TYPE]}): {d[NODE_MENTION_COUNT]} mentions, "
            f"sentiment {d[NODE_SENTIMENT]:+.2f}"
            for d in data
        ],
        hoverinfo="text",
        marker={
            "size": [8 + 3 * math.sqrt(d[NODE_MENTION_COUNT]) for d in data],
            "color": [d[NODE_SENTIMENT] for d in data],
            "colorscale": "RdYlGn",
            "cmin": -1,
            "cmax": 1,
            "line": {
                "width": [4 if n == focus else 1 for n in nodes],
                "color": ["#111827" if n == focus else "#ffffff" for n in nodes],
            },
        },
        name="entities",
        showlegend=False,
    )
    figure.update_layout(
        height=560,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend={"orientation": "h", "y": -0.02},
        clickmode="event+select",
        dragmode="pan",
    )
    return figure


def _layout(graph: Any) -> dict[str, Any]:
    """Kamada-Kawai positions with entities of unconnected groups kept one step beyond the
    longest path apart (networkx would put them 10^6 apart, squeezing each group to a dot)."""
    import networkx as nx

    hops = {n: dict(d) for n, d in nx.all_pairs_shortest_path_length(graph)}
    far = max((h for d in hops.values() for h in d.values()), default=0) + 1
    distance = {u: {v: hops[u].get(v, far) for v in graph} for u in graph}
    return nx.kamada_kawai_layout(graph, dist=distance)


def picked_entity(selection: Any) -> str | None:
    """The entity id a click on :func:`network_figure` picked (Streamlit's selection state),
    or None when no node was clicked."""
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or ():
        custom = point.get("customdata")
        if isinstance(custom, list):  # plotly may hand it back as a one-item list
            custom = custom[0] if custom else None
        if isinstance(custom, str) and custom:
            return custom
    return None


def graph_html(kg: KnowledgeGraph, *, title: str = "Finance monitor: knowledge graph") -> str:
    """The graph as :func:`kg.io.export_html` writes it (self-contained, every text escaped)."""
    with tempfile.TemporaryDirectory(prefix="lepton-finance-graph-") as folder:
        path = kg_io.export_html(kg, Path(folder) / "graph.html", title=title, max_nodes=120)
        return path.read_text(encoding="utf-8")


# --- articles ------------------------------------------------------------------------------


def article_rows(
    store: FinanceStore, *, ids: Iterable[str] | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Stored articles (of ``ids``, all when None), newest first: id, day, source, title,
    sentiment and label."""
    query = (
        select(
            ArticleRow.id,
            ArticleRow.published,
            ArticleRow.source,
            ArticleRow.title,
            ScoreRow.sentiment,
            ScoreRow.label,
        )
        .join(ScoreRow, ScoreRow.article_id == ArticleRow.id)
        .order_by(ArticleRow.published.desc(), ArticleRow.id)
    )
    if ids is not None:
        query = query.where(ArticleRow.id.in_(list(ids)))
    with store.db.connected() as session:
        found = session.execute(query.limit(limit)).all()
    return [
        {
            "id": r.id,
            "published": r.published.strftime("%Y-%m-%d %H:%M"),
            "source": r.source,
            "title": r.title,
            "sentiment": round(r.sentiment, 3),
            "label": r.label,
        }
        for r in found
    ]


_LABEL_COLOURS = {"positive": "22,163,74", "negative": "220,38,38"}
_TYPE_COLOURS = {
    "ORG": "#1d4ed8",
    "PERSON": "#7c3aed",
    "TICKER": "#0f766e",
    "GPE": "#b45309",
    "LOC": "#b45309",
    "MONEY": "#4b5563",
    "PRODUCT": "#be185d",
}


def _sentence_style(label: str, score: float) -> str:
    rgb = _LABEL_COLOURS.get(label)
    if rgb is None:
        return "background:rgba(148,163,184,0.12)"
    return f"background:rgba({rgb},{0.12 + 0.38 * min(abs(score), 1.0):.2f})"


def _highlighted(text: str, mentions: Sequence[Any]) -> str:
    """``text`` escaped, with every occurrence of the mentions' surfaces marked (longest
    surface first; a span already marked is not marked again)."""
    taken: list[tuple[int, int, Any]] = []
    for mention in sorted(mentions, key=lambda m: (-len(m.text), m.text)):
        for hit in re.finditer(rf"(?<!\w){re.escape(mention.text)}(?!\w)", text):
            if all(hit.end() <= a or hit.start() >= b for a, b, _ in taken):
                taken.append((hit.start(), hit.end(), mention))
    out, pos = [], 0
    for start, end, mention in sorted(taken, key=lambda t: t[0]):
        out.append(html.escape(text[pos:start]))
        colour = _TYPE_COLOURS.get(mention.type, "#374151")
        score = mention.score
        tip = f"{mention.type}, sentiment towards it {score:+.2f}"
        out.append(
            f'<mark class="fin-entity" title="{html.escape(tip)}" style="background:none;'
            f'color:{colour};font-weight:600;border-bottom:2px solid {colour};padding:0 1px">'
            f"{html.escape(text[start:end])}"
            f'<sup style="font-size:0.65em;margin-left:2px">{html.escape(mention.type)}</sup>'
            "</mark>"
        )
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def article_html(scored: ScoredArticle) -> str:
    """The article's text as HTML: each sentence coloured by its sentiment (green positive,
    red negative, grey neutral; stronger for a stronger score; its label and score on
    hover), entities marked with their type. Every text is escaped."""
    text = scored.article.text
    by_sentence: dict[int, list[Any]] = defaultdict(list)
    for mention in scored.extraction.mentions:
        by_sentence[mention.sentence_index].append(mention)
    parts, pos = [], 0
    for sentence in sorted(scored.sentences, key=lambda s: (s.start, s.index)):
        inside = 0 <= sentence.start < sentence.end <= len(text) and sentence.start >= pos
        if inside:
            parts.append(html.escape(text[pos : sentence.start]))
            body, pos = text[sentence.start : sentence.end], sentence.end
        else:  # offsets that do not fit the text: show the sentence as scored
            body = f" {sentence.text}"
        tip = f"{sentence.label} {sentence.score:+.2f}"
        parts.append(
            f'<span class="fin-sentence" data-label="{html.escape(sentence.label)}" '
            f'title="{html.escape(tip)}" style="{_sentence_style(sentence.label, sentence.score)};'
            f'border-radius:3px;padding:1px 0">{_highlighted(body, by_sentence[sentence.index])}'
            "</span>"
        )
    if pos < len(text) and any(
        0 <= s.start < s.end <= len(text) for s in scored.sentences
    ):  # the tail after the last sentence
        parts.append(html.escape(text[pos:]))
    elif not scored.sentences:
        parts.append(html.escape(text))
    return (
        '<div class="fin-article" style="line-height:1.9;font-size:1rem">'
        + "".join(parts).replace("\n", "<br>")
        + "</div>"
    )


def evidence_html(evidence: list[dict[str, Any]]) -> str:
    """A relation's evidence as an HTML list: each sentence quoted, with its date, confidence,
    sentiment and a link to its article; every text escaped (links through :func:`safe_link`)."""
    items = "".join(
        f"<li>“{html.escape(q['sentence'])}” <small>({html.escape(q['published'])}, "
        f"confidence {q['confidence']:.2f}, sentiment {q['sentiment']:+.2f}; "
        f"{safe_link(q['url'], q['title'] or q['article_id'])})</small></li>"
        for q in evidence
    )
    return f'<ul class="fin-evidence">{items}</ul>'


def safe_link(url: str, text: str) -> str:
    """An HTML link to ``url`` showing ``text``, both escaped; only http(s) urls are linked
    (a ``javascript:`` or ``data:`` url from a feed is shown as plain text)."""
    shown = html.escape(text or url)
    if not re.match(r"(?i)^https?://[^\s]+$", url or ""):
        return shown
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{shown}</a>'


def sentence_counts(scored: ScoredArticle) -> dict[str, int]:
    """How many of the article's sentences are positive, neutral and negative."""
    counts = Counter(s.label for s in scored.sentences)
    return {label: counts.get(label, 0) for label in ("positive", "neutral", "negative")}
