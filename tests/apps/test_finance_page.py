"""The Finance monitor page under AppTest: the stand-in scorer (no models) on the shipped sample
feed, uploads good and bad, what the CLI stored, and feed text kept escaped; one test scores
a few articles with the packaged models (integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "finance" / "sample_feed"
STANDIN = "tests.unit.finance_standins:make_scorer"


def _script(root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from apps import navigation

    navigation.run(default="finance")


def open_page() -> AppTest:
    page = AppTest.from_function(_script, args=(str(ROOT),), default_timeout=120)
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    return page


@pytest.fixture()
def standin(studio_home, monkeypatch):
    monkeypatch.setenv("LEPTON_FINANCE_SCORER", STANDIN)
    monkeypatch.delenv("LEPTON_FINANCE_PIPELINE_CONFIG", raising=False)
    monkeypatch.delenv("LEPTON_FINANCE_ALIASES", raising=False)
    return studio_home


@pytest.fixture()
def scored(standin) -> AppTest:
    """The page after scoring the shipped sample feed."""
    app = open_page()
    app.button(key="fin_score").click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    return app


def _texts(app: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "success")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(app, kind))


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _figures(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_an_empty_database_says_how_to_fill_it(standin):
    app = open_page()
    assert app.title[0].value == "Finance monitor"
    assert len(app.info) == 4  # one per tab after Score feeds
    assert all("No scored articles in the database yet" in i.value for i in app.info)
    assert "lepton-finance score" in app.info[0].value
    assert not app.get("plotly_chart") and not app.error


def test_scoring_the_sample_fills_every_tab(scored):
    from apps.finance.store import FinanceStore

    app = scored
    shown = _metrics(app)
    assert shown["Read"] == "217" and shown["New"] == "217"
    assert shown["Duplicates"] == "0" and shown["Skipped"] == "0"
    stored = FinanceStore()  # the suite's database (LEPTON_DB_URL)
    assert stored.count() == 217
    assert shown["New alerts"] == str(len(stored.alerts()))
    summary = app.dataframe[0].value
    assert list(summary["what"][:2]) == ["read", "new (scored and stored)"]
    assert "Done: 217 new article(s)" in app.get("progress")[0].proto.text

    # Sentiment over time: the three ORGs with most articles, a bar and a line each.
    series = app.multiselect(key="fin_series")
    assert len(series.value) == 3 and all(v.startswith("org:") for v in series.value)
    main = _figures(app)[0]["data"]
    assert [t["type"] for t in main] == ["bar", "scatter"] * 3
    assert main[1]["name"].endswith(": sentiment") and main[0]["yaxis"] == "y2"
    assert all(-1 <= y <= 1 for t in main[1::2] for y in t["y"])

    # Movers and alerts: the alerts table newest first, with the reason and the numbers.
    alerts = next(d.value for d in app.dataframe if "reason" in getattr(d.value, "columns", []))
    assert list(alerts.columns) == ["day", "kind", "entity", "value", "baseline", "z", "reason"]
    assert list(alerts["day"]) == sorted(alerts["day"], reverse=True)
    assert "sentiment shift" in set(alerts["kind"]) and "new relation" in set(alerts["kind"])
    falconer = alerts[
        (alerts["entity"] == "Falconer Biotech") & (alerts["kind"] == "sentiment shift")
    ]
    assert len(falconer) and falconer["reason"].iloc[0].startswith(
        "Sentiment on Falconer Biotech fell"
    )
    movers = next(d.value for d in app.dataframe if "change" in getattr(d.value, "columns", []))
    assert len(movers) == 10 and list(abs(movers["change"])) == sorted(
        abs(movers["change"]), reverse=True
    )
    assert (abs(movers["recent"] - movers["before"] - movers["change"]) < 0.002).all()

    # The graph: the network (ids as customdata), kg.io's HTML page, the picked entity's relations.
    network = _figures(app)[1]["data"]
    nodes = next(t for t in network if t.get("customdata"))
    assert app.selectbox(key="fin_entity").value in nodes["customdata"]
    page = app.get("iframe")[0].proto.srcdoc
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "Falconer Biotech" in page
    app.selectbox(key="fin_entity").set_value("org:dunmore-logistics").run()
    text = _texts(app)
    assert "Dunmore Logistics acquires Nordvik Shipping" in " ".join(e.label for e in app.expander)
    assert (
        "agreed to acquire Nordvik Shipping" in text and 'href="https://news.example.com/' in text
    )

    # The article view: sentences coloured by sentiment, entities marked.
    article = next(m.value for m in app.markdown if m.value.startswith('<div class="fin-article"'))
    assert 'class="fin-sentence"' in article and 'class="fin-entity"' in article


def test_scoring_again_adds_nothing_and_says_why(scored):
    app = scored
    app.button(key="fin_score").click().run()
    shown = _metrics(app)
    assert shown["New"] == "0" and shown["Duplicates"] == "217"
    reasons = app.dataframe[0].value
    assert ("duplicate", 217, "stored") in set(map(tuple, reasons.values.tolist()))


def test_picking_an_entity_in_the_graph_shows_its_series_and_relations(scored):
    app = scored
    app.selectbox(key="fin_entity").set_value("org:falconer-biotech").run()
    assert not app.exception
    series = _figures(app)[2]["data"]  # the entity panel's own series
    assert series[1]["name"] == "Falconer Biotech: sentiment"
    labels = [e.label for e in app.expander]
    assert any(label.startswith("Sorrel Therapeutics sues Falconer Biotech") for label in labels), (
        labels
    )
    # The network is drawn around the pick: it is outlined.
    nodes = next(t for t in _figures(app)[1]["data"] if t.get("customdata"))
    at = nodes["customdata"].index("org:falconer-biotech")
    assert nodes["marker"]["line"]["width"][at] == 4


def test_a_click_on_a_node_picks_it(scored):
    # AppTest cannot click inside a plotly chart: the chart's state is given what Streamlit
    # sends back when a node (Nordvik Shipping) is clicked in the browser.
    assert scored.selectbox(key="fin_entity").value != "org:nordvik-shipping"
    scored.session_state["fin_graph"] = {
        "selection": {"points": [{"customdata": "org:nordvik-shipping", "curve_number": 3}]}
    }
    scored.run()
    assert not scored.exception
    assert scored.selectbox(key="fin_entity").value == "org:nordvik-shipping"
    assert "Dunmore Logistics acquires Nordvik Shipping" in " ".join(
        e.label for e in scored.expander
    )
    # Picking another entity in the box afterwards wins over the old click.
    scored.selectbox(key="fin_entity").set_value("org:falconer-biotech").run()
    assert scored.selectbox(key="fin_entity").value == "org:falconer-biotech"


def test_an_upload_is_scored_and_a_bad_one_is_a_plain_message(standin, tmp_path):
    app = open_page()
    app.radio(key="fin_source").set_value("Upload a feed file").run()
    assert app.button(key="fin_score").disabled  # nothing to score yet
    lines = (SAMPLE / "market_brief.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    app.file_uploader(key="fin_upload").set_value(
        ("brief.jsonl", ("\n".join(lines) + "\n").encode(), "application/json")
    ).run()
    app.button(key="fin_score").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert _metrics(app)["New"] == "4"
    runs = next(d.value for d in app.dataframe if "sources" in getattr(d.value, "columns", []))
    assert runs["sources"].iloc[0] == "upload: brief.jsonl"

    app.file_uploader(key="fin_upload").set_value(("empty.csv", b"  \n", "text/csv")).run()
    app.button(key="fin_score").click().run()
    assert "empty" in app.error[0].value and not app.exception
    assert "New" not in _metrics(app)  # the summary of the run before is gone

    app.file_uploader(key="fin_upload").set_value(
        ("broken.xml", b"<rss><channel><item><title>x</title>", "application/xml")
    ).run()
    app.button(key="fin_score").click().run()
    assert not app.exception and not app.error
    shown = _metrics(app)
    assert shown["New"] == "0" and shown["Skipped"] == "1"
    assert "malformed feed" in set(app.dataframe[0].value["why"])
    warning = app.warning[0].value
    assert (
        warning.startswith("Nothing could be scored from this feed") and "malformed_feed" in warning
    )


def test_what_the_cli_stored_shows_up_on_the_page(standin, tmp_path):
    from apps.finance.cli import main

    feed = tmp_path / "brief.jsonl"
    lines = (SAMPLE / "market_brief.jsonl").read_text(encoding="utf-8").splitlines()[:30]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["score", str(feed), "--scorer", STANDIN, "--no-progress"]) == 0
    app = open_page()
    assert not app.info or "No scored articles" not in app.info[0].value
    runs = next(d.value for d in app.dataframe if "sources" in getattr(d.value, "columns", []))
    assert runs["new"].iloc[0] == 30 and str(feed) in runs["sources"].iloc[0]
    assert len(app.selectbox(key="fin_article").options) == 30


def test_feed_text_is_escaped_in_the_article_view(standin):
    from apps.finance.records import NewsArticle
    from apps.finance.store import FinanceStore
    from tests.unit.finance_standins import StandInScorer

    # Stored by another program: markup that ingest would have stripped, and a script url.
    evil = NewsArticle(
        id="evil",
        source="<b>wire</b>",
        title='Dunmore Logistics <img src=x onerror="alert(1)">',
        body="Dunmore Logistics shares rose <script>alert(2)</script> today.",
        published=datetime(2026, 9, 29, 8, tzinfo=UTC),
        url="javascript:alert(3)",
    )
    FinanceStore().save(StandInScorer().score([evil]))
    app = open_page()
    html_parts = "\n".join(m.value for m in app.markdown)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html_parts
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html_parts
    assert "<script>" not in html_parts and "<img" not in html_parts
    assert "javascript:" not in html_parts  # the url is not linked


@pytest.mark.integration
def test_the_packaged_models_score_a_few_articles(studio_home, monkeypatch, tmp_path):
    """The shipped pipeline (the relation model when it is shipped, patterns otherwise)."""
    monkeypatch.delenv("LEPTON_FINANCE_SCORER", raising=False)
    if not (ROOT / "data" / "models" / "finance-relations" / "lepton_artifact.json").is_file():
        config = tmp_path / "pipeline.yaml"
        config.write_text("pipeline:\n  relation_model: null\n", encoding="utf-8")
        monkeypatch.setenv("LEPTON_FINANCE_PIPELINE_CONFIG", str(config))
    app = open_page()
    app.radio(key="fin_source").set_value("Upload a feed file").run()
    lines = (SAMPLE / "market_brief.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    app.file_uploader(key="fin_upload").set_value(
        ("brief.jsonl", ("\n".join(lines) + "\n").encode(), "application/json")
    ).run()
    app.button(key="fin_score").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert _metrics(app)["New"] == "5"
    article = next(m.value for m in app.markdown if m.value.startswith('<div class="fin-article"'))
    assert 'class="fin-entity"' in article and 'data-label="positive"' in article
    assert app.get("iframe") and _figures(app)
