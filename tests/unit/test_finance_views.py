"""apps/finance/views.py: what the finance page shows, computed without Streamlit."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from apps.finance import views
from apps.finance.alerts import Alert
from apps.finance.monitor import FinanceMonitor, RunSummary
from apps.finance.records import NewsArticle, ScoredArticle, SentenceScore
from kg import Article, Extraction, KnowledgeGraph, Mention, Relation
from tests.unit.finance_standins import ALIASES, StandInScorer


def _article(i: int, title: str, body: str, day: int, url: str = "") -> NewsArticle:
    return NewsArticle(
        id=f"a{i}",
        source="test",
        title=title,
        body=body,
        published=datetime(2026, 9, day, 9, tzinfo=UTC),
        url=url or f"https://news.example.com/{i}",
    )


ARTICLES = [
    _article(1, "Dunmore Logistics agreed to acquire Nordvik Shipping",
             "Dunmore Logistics agreed to acquire Nordvik Shipping for $1 billion. "
             "Shares of Nordvik Shipping jumped.", 1),
    _article(2, "Nordvik Shipping shares soar", "Shares of Nordvik Shipping rose again.", 2),
    _article(3, "Falconer Biotech warned", "Falconer Biotech warned on sales. Shares fell.", 2),
    _article(4, "Nordvik Shipping profit", "Nordvik Shipping profit grew.", 4),
]  # fmt: skip


@pytest.fixture(scope="module")
def monitor(tmp_path_factory) -> FinanceMonitor:
    folder = tmp_path_factory.mktemp("views")
    monitor = FinanceMonitor(f"sqlite:///{folder / 'f.db'}", StandInScorer, aliases=ALIASES)
    monitor.process(ARTICLES)
    return monitor


@pytest.fixture(scope="module")
def kg(monitor) -> KnowledgeGraph:
    return monitor.graph.kg


def test_summary_rows_count_new_duplicates_and_skipped_by_reason():
    summary = RunSummary(
        read=10,
        new=6,
        duplicates={"stored": 2, "duplicate_url": 1},
        skipped={"empty": 1},
        partial={"html_stripped": 3},
    )
    rows = [(r["what"], r["articles"], r["why"]) for r in views.summary_rows(summary)]
    assert rows == [
        ("read", 10, ""),
        ("new (scored and stored)", 6, ""),
        ("duplicate", 1, "duplicate url"),
        ("duplicate", 2, "stored"),
        ("skipped", 1, "empty"),
        ("processed in part", 3, "html stripped"),
    ]
    assert ("skipped", 0, "") in [
        (r["what"], r["articles"], r["why"]) for r in views.summary_rows(RunSummary())
    ]


def test_entity_choices_most_articles_first(kg):
    choices = views.entity_choices(kg)
    assert choices[0].name == "Nordvik Shipping" and choices[0].articles == 3
    assert [c.articles for c in choices] == sorted((c.articles for c in choices), reverse=True)
    assert choices[0].label == "Nordvik Shipping (ORG, 3 articles)"
    assert {c.type for c in views.entity_choices(kg, types=["ORG"])} == {"ORG"}


def test_series_rows_every_day_and_the_figure_draws_them(kg):
    rows = views.series_rows(kg, ["Nordvik Shipping", "NRDV"])  # a name and its ticker
    days = [r["day"] for r in rows]
    assert days[:4] == ["2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"]
    assert len(rows) == 8  # the same entity twice: asked twice
    day3 = rows[2]
    assert day3["articles"] == 0 and day3["sentiment"] is None
    assert rows[0]["articles"] == 1 and rows[0]["sentiment"] is not None
    figure = views.sentiment_figure(views.series_rows(kg, ["org:nordvik-shipping"]))
    bars, line = figure.data
    assert bars.type == "bar" and list(bars.y) == [1, 1, 0, 1]
    assert line.type == "scatter" and list(line.x) == ["2026-09-01", "2026-09-02", "2026-09-04"]


def test_alert_rows_newest_first_with_the_reason():
    alerts = [
        Alert("volume_spike", "org:a", "A", "2026-09-01", 5.0, 1.0, 4.0, "5 articles on A"),
        Alert("sentiment_shift", "org:b", "B", "2026-09-03", -0.6, 0.2, -3.1, "B fell"),
        Alert("new_relation", "org:c", "C", "2026-09-02", 0.9, None, None, "C acquires D"),
    ]
    rows = views.alert_rows(alerts)
    assert [r["day"] for r in rows] == ["2026-09-03", "2026-09-02", "2026-09-01"]
    assert rows[0] == {
        "day": "2026-09-03",
        "kind": "sentiment shift",
        "entity": "B",
        "value": -0.6,
        "baseline": 0.2,
        "z": -3.1,
        "reason": "B fell",
    }


def test_relation_rows_read_both_ways_with_evidence_and_links(kg):
    (head,) = views.relation_rows(kg, "Dunmore Logistics")
    assert head["reads"] == "Dunmore Logistics acquires Nordvik Shipping"
    assert head["confidence"] == 0.9 and head["sentences"] == 2  # title and body
    quote = head["evidence"][0]
    assert quote["url"] == "https://news.example.com/1" and quote["published"] == "2026-09-01"
    assert "agreed to acquire Nordvik Shipping" in quote["sentence"]
    tail = views.relation_rows(kg, "Nordvik Shipping")
    assert [r["reads"] for r in tail] == ["Dunmore Logistics acquires Nordvik Shipping"]
    assert tail[0]["direction"] == "in"
    assert views.relation_rows(kg, "Falconer Biotech") == []


def test_network_figure_carries_node_ids_and_a_click_picks_one(kg):
    figure = views.network_figure(kg, focus="org:nordvik-shipping")
    nodes = next(t for t in figure.data if t.customdata is not None)
    drawn = {n for n, d in kg.graph.nodes(data=True) if d["type"] in views.NETWORK_TYPES}
    assert set(nodes.customdata) == drawn and drawn
    at = list(nodes.customdata).index("org:nordvik-shipping")
    assert nodes.marker.line.width[at] == 4
    assert {t.name for t in figure.data} >= {"acquires", "entities"}
    click = {"selection": {"points": [{"customdata": "org:falconer-biotech", "x": 0.1}]}}
    assert views.picked_entity(click) == "org:falconer-biotech"
    assert views.picked_entity({"selection": {"points": [{"customdata": ["org:x"]}]}}) == "org:x"
    assert views.picked_entity({"selection": {"points": [{"x": 1}]}}) is None
    assert views.picked_entity(None) is None


def test_graph_html_is_kg_exports_page(kg):
    page = views.graph_html(kg)
    assert page.startswith("<!DOCTYPE html>") and "Nordvik Shipping" in page and "<svg" in page


def test_article_rows_newest_first_and_by_entity(monitor, kg):
    rows = views.article_rows(monitor.store)
    assert [r["id"] for r in rows] == ["a4", "a2", "a3", "a1"]
    assert rows[0]["published"] == "2026-09-04 09:00"
    ids = {a.id for a, _ in kg.mentions("Falconer Biotech")}
    assert [r["id"] for r in views.article_rows(monitor.store, ids=ids)] == ["a3"]


def _scored(title: str, body: str, url: str = "") -> ScoredArticle:
    article = _article(9, title, body, 5, url=url or "https://x.example/9")
    text = article.text
    first_end = text.index("\n")
    sentences = [
        SentenceScore(0, text[:first_end], 0, first_end, "negative", -0.9),
        SentenceScore(1, text[first_end + 1 :], first_end + 1, len(text), "positive", 0.5),
    ]
    mentions = [
        Mention("a9", "Acme <Corp>", "ORG", 0, sentences[0].text, -0.9, -0.7),
        Mention("a9", "Acme <Corp>", "ORG", 1, sentences[1].text, 0.5),
        Mention("a9", "Bo & Co", "ORG", 1, sentences[1].text, 0.5),
    ]
    extraction = Extraction(
        Article("a9", "test", title, article.published, 0.0, article.url),
        tuple(mentions),
        (Relation("a9", "Acme <Corp>", "Bo & Co", "supplies", 0.8, sentences[1].text, 0.5, 1),),
    )
    return ScoredArticle(article, sentences, -0.2, "neutral", [], extraction, {}, {})


def test_article_html_colours_sentences_marks_entities_and_escapes_everything():
    scored = _scored(
        'Acme <Corp> warns <img src=x onerror="alert(1)">',
        "Acme <Corp> said Bo & Co <script>alert(2)</script> grew.",
    )
    out = views.article_html(scored)
    assert "<img" not in out and "<script" not in out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in out
    assert out.count('class="fin-sentence"') == 2
    assert 'data-label="negative"' in out and "rgba(220,38,38,0.46)" in out  # -0.9: strong red
    assert 'data-label="positive"' in out and "rgba(22,163,74,0.31)" in out
    assert out.count('class="fin-entity"') == 3  # Acme twice, Bo & Co once
    assert 'title="ORG, sentiment towards it -0.70"' in out  # the entity-level score
    assert ">Acme &lt;Corp&gt;<sup" in out and ">Bo &amp; Co<sup" in out
    assert "<br>" in out  # the title's line break
    text = html.unescape(
        __import__("re").sub(r"<sup[^>]*>[^<]*</sup>|<[^>]+>", "", out.replace("<br>", "\n"))
    )
    assert text == scored.article.text  # nothing lost or doubled


def test_safe_link_links_only_web_urls():
    assert views.safe_link("https://a.example/x?a=1&b=2", "A <b>") == (
        '<a href="https://a.example/x?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer">A &lt;b&gt;</a>'
    )
    assert views.safe_link("javascript:alert(1)", "Title") == "Title"
    assert views.safe_link('https://a.example/"onmouseover=x', "t").count('"') == 6
    assert views.safe_link("", "<t>") == "&lt;t&gt;"


def test_stage_upload_refuses_what_ingest_cannot_read(tmp_path):
    path = views.stage_upload("../../feed.jsonl", b'{"title": "x"}\n', tmp_path)
    assert path == tmp_path / "feed.jsonl" and path.read_bytes() == b'{"title": "x"}\n'
    with pytest.raises(views.UploadError, match="is not a feed file.*RSS/Atom"):
        views.stage_upload("notes.docx", b"x", tmp_path)
    with pytest.raises(views.UploadError, match="empty"):
        views.stage_upload("feed.csv", b" \n", tmp_path)
    with pytest.raises(views.UploadError, match="not a text file"):
        views.stage_upload("feed.csv", b"PK\x03\x04\x00\x00", tmp_path)
    with pytest.raises(views.UploadError, match="not a Parquet file"):
        views.stage_upload("feed.parquet", b"title,body\n", tmp_path)


def test_scorer_factory_from_the_settings(tmp_path, monkeypatch):
    from apps.finance.monitor import default_scorer

    assert views.scorer_factory() is default_scorer
    made = views.scorer_factory("tests.unit.finance_standins:make_scorer")()
    assert isinstance(made, StandInScorer)
    with pytest.raises(ValueError, match="MODULE:CALLABLE"):
        views.scorer_factory("nocolon")
    with pytest.raises(ValueError, match="is not a file"):
        views.scorer_factory("", str(tmp_path / "missing.yaml"))
    config = tmp_path / "pipeline.yaml"
    config.write_text("pipeline:\n  relation_modle: null\n", encoding="utf-8")
    with pytest.raises(Exception, match="relation_model"):  # the typo, with the key meant
        views.scorer_factory("", str(config))()
    monkeypatch.delenv(views.ALIASES_ENV, raising=False)
    assert views.aliases_setting() == str(views.SHIPPED_ALIASES)
    monkeypatch.setenv(views.ALIASES_ENV, "mine.yaml")
    assert views.aliases_setting() == "mine.yaml"


def test_shown_source_hides_machine_folders(tmp_path):
    assert views.shown_source(str(views.SAMPLE_FEED)) == "data/finance/sample_feed"
    staged = tmp_path / f"{views.UPLOAD_FOLDER_PREFIX}x1" / "feed.xml"
    assert views.shown_source(str(staged)) == "upload: feed.xml"
    assert views.shown_source("https://a.example/feed") == "https://a.example/feed"


def test_evidence_html_escapes_sentences_dates_and_titles():
    out = views.evidence_html(
        [
            {
                "sentence": "<script>alert(1)</script> sued",
                "published": "2024-03-01<b>",
                "confidence": 0.9,
                "sentiment": -0.5,
                "url": "javascript:alert(2)",
                "title": "<img src=x onerror=alert(3)>",
                "article_id": "a1",
            }
        ]
    )
    assert "<script>" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;" in out and "href" not in out  # a javascript: url is not linked
    assert out.startswith('<ul class="fin-evidence"><li>') and "confidence 0.90" in out
