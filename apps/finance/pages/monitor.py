"""Finance monitor page: score a feed, sentiment over time, movers and alerts, the graph, articles.

A view only: the monitor (:class:`apps.finance.monitor.FinanceMonitor`) scores and stores,
:mod:`apps.finance.views` computes what is shown. The database is the suite's
(``LEPTON_DB_URL``, else SQLite under ``LEPTON_HOME``), so what ``lepton-finance score``
stored there shows up here too.
"""

from __future__ import annotations

import html
import os
import tempfile
import threading
from typing import Any

import pandas as pd
import streamlit as st

from apps.common.database import StoreError, database_url, shown_database
from apps.common.paths import shown_path
from apps.finance import views
from apps.finance.alerts import ALERT_KINDS
from apps.finance.monitor import FinanceMonitor, RunSummary
from kg import KgError, KnowledgeGraph

__all__ = ["render"]

SUMMARY = "fin_last_summary"
EMPTY = (
    "No scored articles in the database yet. Score the sample feed or a feed file on the "
    "**Score feeds** tab, or run `lepton-finance score FEED` with the same database."
)
SOURCES = ("The sample feed shipped with the project", "Upload a feed file")


@st.cache_resource(show_spinner=False)
def _monitor(url: str, scorer: str, pipeline_config: str, aliases: str) -> FinanceMonitor:
    return FinanceMonitor(
        url, views.scorer_factory(scorer, pipeline_config), aliases=aliases or None
    )


@st.cache_resource(show_spinner=False)
def _scoring_lock() -> threading.Lock:
    return threading.Lock()  # one run at a time per process: the models are not re-entrant


def get_monitor() -> FinanceMonitor:
    """The monitor of the suite's database (built once per process); a database or setting
    that cannot be used stops the page with why."""
    try:
        return _monitor(
            database_url(),
            os.environ.get(views.SCORER_ENV, ""),
            os.environ.get(views.PIPELINE_CONFIG_ENV, ""),
            views.aliases_setting(),
        )
    except (StoreError, KgError, ValueError, OSError) as error:
        st.error(f"The finance monitor cannot start: {error}")
        st.stop()


# --- scoring -------------------------------------------------------------------------------


def _score_tab(monitor: FinanceMonitor) -> None:
    st.caption(
        f"Articles are stored in the suite's database ({shown_database(monitor.store.url)}); "
        "articles stored before, by this page or by `lepton-finance score`, are not scored again."
    )
    source = st.radio("Feed", SOURCES, key="fin_source", horizontal=True)
    upload = None
    if source == SOURCES[1]:
        upload = st.file_uploader(
            "RSS/Atom, JSONL, CSV or Parquet (one article per item or row: title, body, "
            "published, url...)",
            type=[s.lstrip(".") for s in views.UPLOAD_SUFFIXES],
            key="fin_upload",
        )
    else:
        st.caption(
            f"`{shown_path(views.SAMPLE_FEED)}`: 217 articles over six weeks about invented "
            "companies, from two RSS feeds and a JSONL file, with a lawsuit, an acquisition "
            "and new partnerships planted in it."
        )
    if st.button(
        "Score", key="fin_score", type="primary", disabled=source == SOURCES[1] and not upload
    ):
        _score(monitor, upload)
    summary = st.session_state.get(SUMMARY)
    if summary is not None:
        _show_summary(summary)
    runs = monitor.store.runs(limit=5)
    if runs:
        st.markdown("**Recent runs** (this page, the CLI and the HTTP API)")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "run": r["id"],
                        "started (UTC)": r["started"][:19].replace("T", " "),
                        "status": r["status"],
                        "sources": ", ".join(views.shown_source(x) for x in r["sources"]),
                        "new": r["summary"].get("new", 0),
                        "alerts": r["summary"].get("alerts", 0),
                    }
                    for r in runs
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def _score(monitor: FinanceMonitor, upload: Any) -> None:
    st.session_state.pop(SUMMARY, None)  # an earlier run's summary is not this one's
    with tempfile.TemporaryDirectory(prefix=views.UPLOAD_FOLDER_PREFIX) as folder:
        if upload is None:
            source = views.SAMPLE_FEED
        else:
            try:
                source = views.stage_upload(upload.name, upload.getvalue(), folder)
            except views.UploadError as error:
                st.error(str(error))
                return
        bar = st.progress(0.0, text="Reading the feed...")

        def progress(done: int, total: int) -> None:
            if done == 0:
                text = f"{total} new article(s): loading the scoring models (once) and scoring..."
            else:
                text = f"Scored {done} of {total} new article(s)"
            bar.progress(done / total if total else 1.0, text=text)

        try:
            with _scoring_lock():
                summary = monitor.run([source], batch_size=16, progress=progress)
        except Exception as error:  # shown as a message, never a stack trace
            bar.empty()
            st.error(f"Scoring stopped: {type(error).__name__}: {error}")
            return
        bar.progress(1.0, text=f"Done: {summary.new} new article(s) in {summary.seconds:.1f} s")
    st.session_state[SUMMARY] = summary


def _show_summary(summary: RunSummary) -> None:
    cols = st.columns(5)
    cols[0].metric("Read", summary.read)
    cols[1].metric("New", summary.new)
    cols[2].metric("Duplicates", sum(summary.duplicates.values()))
    cols[3].metric("Skipped", sum(summary.skipped.values()))
    cols[4].metric("New alerts", summary.alerts)
    st.dataframe(pd.DataFrame(views.summary_rows(summary)), hide_index=True, width="stretch")
    if summary.new:
        st.caption(
            f"{summary.sentences} sentences, {summary.mentions} entity mentions and "
            f"{summary.relations} relations found; {summary.entities} entities in the graph; "
            f"{summary.articles_per_second:.1f} articles/s."
        )
    if summary.new == 0 and not summary.duplicates and summary.problems:
        st.warning("Nothing could be scored from this feed: " + "; ".join(summary.problems[:3]))
    elif summary.problems:
        with st.expander(f"What was skipped and why ({len(summary.problems)})"):
            st.text("\n".join(summary.problems))


# --- sentiment, movers, alerts ---------------------------------------------------------------


def _label_of(choices: list[views.EntityChoice]) -> dict[str, str]:
    return {c.id: c.label for c in choices}


def _sentiment_tab(kg: KnowledgeGraph) -> None:
    choices = views.entity_choices(kg)
    if not choices:
        st.info("No companies or people were found in the stored articles.")
        return
    labels = _label_of(choices)
    if "fin_series" not in st.session_state:
        st.session_state["fin_series"] = [c.id for c in choices if c.type == "ORG"][:3]
    picked = st.multiselect(
        "Entities (most articles first)",
        list(labels),
        format_func=labels.get,
        key="fin_series",
        max_selections=6,
    )
    picked = [p for p in picked if p in labels]
    if not picked:
        st.info("Pick one or more entities to see their sentiment over time.")
        return
    st.plotly_chart(
        views.sentiment_figure(views.series_rows(kg, picked)),
        key="fin_series_chart",
        theme=None,  # plotly's own: Streamlit's theme moves the legend onto the dates
        width="stretch",
    )
    st.caption(
        "Lines: the mean entity-level sentiment of a day's mentions (P(positive) - P(negative) "
        "of the clause about the entity), left axis. Bars: articles naming it that day, right "
        "axis. Hover for the numbers."
    )


def _alerts_tab(monitor: FinanceMonitor, kg: KnowledgeGraph) -> None:
    st.subheader("Top movers")
    cols = st.columns(2)
    days = cols[0].number_input("Recent days", 1, 60, 7, key="fin_mover_days")
    trailing = cols[1].number_input("Against the days before", 2, 180, 28, key="fin_mover_trailing")
    movers = views.mover_rows(kg, days=int(days), trailing=int(trailing))
    if movers:
        st.dataframe(
            pd.DataFrame(movers),
            hide_index=True,
            width="stretch",
            column_config={"change": st.column_config.NumberColumn(format="%+.3f")},
        )
    else:
        st.info(
            f"No entity has 2 mentions or more both in the last {days} days and the {trailing} "
            "before."
        )
    st.subheader("Alerts")
    kind = st.selectbox(
        "Kind",
        ["all", *ALERT_KINDS],
        key="fin_alert_kind",
        format_func=lambda k: k.replace("_", " "),
    )
    alerts = monitor.store.alerts(kind=None if kind == "all" else kind, limit=500)
    if not alerts:
        st.info("No alerts stored" + ("." if kind == "all" else f" of kind {kind}."))
        return
    st.dataframe(
        pd.DataFrame(views.alert_rows(alerts)),
        hide_index=True,
        width="stretch",
        column_config={
            "reason": st.column_config.TextColumn(width="large"),
            "z": st.column_config.NumberColumn(format="%+.2f"),
        },
    )
    st.caption(
        "Newest day first. Sentiment shift: a day's mean sentiment (value) against the mean "
        "of the days before (baseline); volume spike: a day's articles against the daily "
        "mean; new relation: its confidence. z: how many spreads away."
    )


# --- the graph --------------------------------------------------------------------------------


def _graph_tab(kg: KnowledgeGraph) -> None:
    choices = views.entity_choices(kg, types=None)
    labels = _label_of(choices)
    clicked = views.picked_entity(st.session_state.get("fin_graph"))
    if clicked in labels and clicked != st.session_state.get("fin_graph_clicked"):
        st.session_state["fin_graph_clicked"] = clicked
        st.session_state["fin_entity"] = clicked  # a click on a node picks it in the box
    if st.session_state.get("fin_entity") not in labels:
        st.session_state["fin_entity"] = choices[0].id
    entity = st.selectbox(
        "Entity (or click a node in the graph)",
        list(labels),
        format_func=labels.get,
        key="fin_entity",
    )
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(
            views.network_figure(kg, focus=entity),
            key="fin_graph",
            on_select="rerun",
            selection_mode="points",
            width="stretch",
        )
        st.caption(
            "The most mentioned companies and people, and the picked entity with its "
            "neighbours (outlined). Node colour: sentiment (red -1, yellow 0, green +1); size: "
            "mentions; coloured lines: typed relations; grey: named together. Click a node "
            "to pick it; scroll to zoom."
        )
    with right:
        _entity_panel(kg, entity)
    with st.expander("The whole graph as one offline page (kg.io's HTML export)"):
        st.caption("Click an entity there to list its relations; drag to pan, scroll to zoom.")
        # kg.io escapes every text of the data; its script is the project's own
        st.iframe(views.graph_html(kg), height=640)


def _entity_panel(kg: KnowledgeGraph, entity: str) -> None:
    data = kg.graph.nodes[entity]
    st.markdown(f"#### {html.escape(data['name'])}", unsafe_allow_html=True)
    st.caption(
        f"{data['type']} · {data['mention_count']} mentions in {data['article_count']} "
        f"articles · sentiment {data['sentiment']:+.2f} · seen {data['first_seen'][:10]} to "
        f"{data['last_seen'][:10]}"
    )
    st.plotly_chart(
        views.sentiment_figure(views.series_rows(kg, [entity])).update_layout(
            height=230, showlegend=False
        ),
        key="fin_entity_series",
        theme=None,
        width="stretch",
    )
    rows = views.relation_rows(kg, entity)
    if not rows:
        st.info("No typed relation found for this entity yet.")
        return
    st.markdown("**Relations** (typed, with their evidence)")
    for row in rows:
        head = (
            f"{row['reads']} · confidence {row['confidence']:.2f} · {row['sentences']} sentence(s)"
        )
        with st.expander(head):
            st.markdown(views.evidence_html(row["evidence"]), unsafe_allow_html=True)


# --- articles --------------------------------------------------------------------------------


def _articles_tab(monitor: FinanceMonitor, kg: KnowledgeGraph) -> None:
    choices = views.entity_choices(kg)
    labels = {"": "any entity", **_label_of(choices)}
    about = st.selectbox(
        "Articles naming", list(labels), format_func=labels.get, key="fin_article_entity"
    )
    ids = None
    if about:
        ids = sorted({article.id for article, _ in kg.mentions(about)})
    rows = views.article_rows(monitor.store, ids=ids)
    if not rows:
        st.info("No stored article names this entity.")
        return
    shown = {
        r[
            "id"
        ]: f"{r['published'][:10]} · {r['title'] or r['id']} ({r['label']} {r['sentiment']:+.2f})"
        for r in rows
    }
    if st.session_state.get("fin_article") not in shown:
        st.session_state["fin_article"] = rows[0]["id"]
    picked = st.selectbox(
        "Article (newest first)", list(shown), format_func=shown.get, key="fin_article"
    )
    scored = next(monitor.store.scored([picked]), None)
    if scored is None:
        st.warning("This article is no longer in the database.")
        return
    article = scored.article
    st.markdown(
        f"#### {views.safe_link(article.url, article.title or article.id)}",
        unsafe_allow_html=True,
    )
    counts = views.sentence_counts(scored)
    cols = st.columns(4)
    cols[0].metric(f"Article sentiment ({scored.label})", f"{scored.sentiment:+.2f}")
    cols[1].metric(
        "Sentences +/=/-", f"{counts['positive']}/{counts['neutral']}/{counts['negative']}"
    )
    cols[2].metric("Entities", len({m.text for m in scored.extraction.mentions}))
    cols[3].metric("Relations", len(scored.extraction.relations))
    st.caption(
        f"{article.source} · {article.published:%Y-%m-%d %H:%M} UTC · topics: "
        f"{', '.join(scored.topics) or 'none'}. Sentences: green positive, red negative, grey "
        "neutral (stronger colour, stronger score; hover for the score). Entities are "
        "underlined with their type."
    )
    st.markdown(views.article_html(scored), unsafe_allow_html=True)
    if scored.extraction.mentions:
        with st.expander("Entities in this article"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "entity": m.text,
                            "type": m.type,
                            "sentence": m.sentence_index + 1,
                            "sentiment towards it": round(m.score, 3),
                        }
                        for m in scored.extraction.mentions
                    ]
                ),
                hide_index=True,
                width="stretch",
            )


# --- the page ------------------------------------------------------------------------------


def render() -> None:
    st.title("Finance monitor")
    st.write(
        "News sentiment per company: score a feed, follow how the news about each entity "
        "moves, see the alerts it raised, explore who is related to whom, and read an article "
        "with its entities and the sentiment of each sentence."
    )
    monitor = get_monitor()
    tabs = st.tabs(["Score feeds", "Sentiment", "Movers and alerts", "Graph", "Articles"])
    with tabs[0]:
        _score_tab(monitor)
    try:
        monitor.graph.sync(monitor.store)  # what the CLI or another session stored meanwhile
        kg = monitor.graph.kg
    except (StoreError, KgError) as error:
        for tab in tabs[1:]:
            tab.error(f"The stored articles cannot be read: {error}")
        return
    if kg.graph.number_of_nodes() == 0:
        stored = monitor.store.count()
        for tab in tabs[1:]:
            if stored:
                tab.info(f"No entities were found in the {stored} stored article(s).")
            else:
                tab.info(EMPTY)
        return
    with tabs[1]:
        _sentiment_tab(kg)
    with tabs[2]:
        _alerts_tab(monitor, kg)
    with tabs[3]:
        _graph_tab(kg)
    with tabs[4]:
        _articles_tab(monitor, kg)
