"""Ingest: every format into NewsArticle, odd input skipped or kept in part with the reason."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyarrow import parquet

from apps.finance.ingest import (
    IngestConfig,
    IngestReport,
    articles_from_feed,
    html_to_text,
    iter_articles,
    parse_published,
)
from lepton_nlp.errors import ConfigError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "finance" / "sample_feed"

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Test Wire</title>
<pubDate>Tue, 05 Mar 2024 09:30:00 GMT</pubDate>
<item><guid>a1</guid><title>Northwind profit &amp; sales rise</title>
<link>https://example.com/a1</link>
<description>&lt;p&gt;Northwind Holdings said &lt;b&gt;profit&lt;/b&gt; rose.&lt;/p&gt;&lt;script&gt;track()&lt;/script&gt;&lt;p&gt;Shares gained 4%.&lt;/p&gt;</description>
<pubDate>Tue, 05 Mar 2024 09:30:00 EST</pubDate></item>
<item><guid>a2</guid><title>Contoso expands its cloud business</title>
<description>Contoso opened two new data centres in Oslo this week.</description></item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Wire</title>
<updated>2024-03-06T10:00:00Z</updated>
<entry><id>urn:atom:1</id><title>Fabrikam wins large contract</title>
<link href="https://example.com/atom1"/><updated>2024-03-06T08:15:00+01:00</updated>
<content type="html">&lt;div&gt;Fabrikam won a contract worth $40 million.&lt;/div&gt;</content></entry>
</feed>
"""


def read(sources, **config):
    report = IngestReport()
    articles = list(iter_articles(sources, IngestConfig(**config), report))
    return articles, report


def test_rss_html_is_stripped_and_times_are_utc(tmp_path):
    (tmp_path / "wire.xml").write_text(RSS)
    articles, report = read([tmp_path / "wire.xml"])
    first, second = articles
    assert (
        first.id == "a1" and first.source == "Test Wire" and first.url == "https://example.com/a1"
    )
    assert first.title == "Northwind profit & sales rise"
    assert first.body == "Northwind Holdings said profit rose.\nShares gained 4%."
    assert "track()" not in first.body and "html_stripped" in first.notes
    assert first.published == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)  # 09:30 EST
    # no date of its own: the feed's, said so
    assert second.published == datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
    assert second.notes == ("date_from_feed",)
    assert report.partial == {"html_stripped": 1, "date_from_feed": 1}


def test_atom_jsonl_csv_parquet_and_a_folder(tmp_path):
    folder = tmp_path / "feeds"
    (folder / "sub").mkdir(parents=True)
    (folder / "atom.atom").write_text(ATOM)
    rows = [
        {"id": "j1", "title": "Litware raises guidance", "body": "Litware raised its outlook.",
         "published": "March 5, 2024 9:30 AM PST", "source": "Brief"},
        {"guid": "j2", "headline": "Proseware hires 200", "text": "Proseware will hire 200 staff.",
         "date": 1709631000},
    ]  # fmt: skip
    (folder / "brief.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "sub" / "table.csv").write_text(
        "id,title,body,published,url\n"
        'c1,Trey Research cuts costs,"Trey Research will close a lab, it said.",'
        "05.03.2024 14:00 CET,https://example.com/c1\n"
    )
    table = pa.table(
        {
            "id": ["p1"],
            "title": ["Woodgrove Bank opens branch"],
            "body": ["Woodgrove Bank opened a branch in Lyon."],
            "published": [datetime(2024, 3, 7, 12, 0, tzinfo=UTC)],
        }
    )
    parquet.write_table(table, folder / "sub" / "data.parquet")
    (folder / "README.md").write_text("not a feed")
    (folder / ".hidden.jsonl").write_text("{}\n")
    articles, report = read([folder])
    by_id = {a.id: a for a in articles}
    assert set(by_id) == {"urn:atom:1", "j1", "j2", "c1", "p1"}
    assert by_id["urn:atom:1"].published == datetime(2024, 3, 6, 7, 15, tzinfo=UTC)
    assert by_id["urn:atom:1"].body == "Fabrikam won a contract worth $40 million."
    assert by_id["j1"].published == datetime(2024, 3, 5, 17, 30, tzinfo=UTC)
    assert by_id["j1"].source == "Brief" and by_id["j2"].source == "brief"
    assert by_id["j2"].published == datetime(2024, 3, 5, 9, 30, tzinfo=UTC)  # epoch seconds
    assert by_id["c1"].published == datetime(2024, 3, 5, 13, 0, tzinfo=UTC)  # day first, CET
    assert by_id["c1"].url == "https://example.com/c1"
    assert by_id["p1"].published == datetime(2024, 3, 7, 12, 0, tzinfo=UTC)
    assert report.ignored_files == 1 and report.sources == 4 and not report.skipped


@pytest.mark.parametrize(
    ("value", "expected", "notes"),
    [
        ("2024-03-05T09:30:00+01:00", datetime(2024, 3, 5, 8, 30, tzinfo=UTC), ()),
        ("Tue, 05 Mar 2024 09:30:00 -0500", datetime(2024, 3, 5, 14, 30, tzinfo=UTC), ()),
        ("2024/03/05 10:00 +0900", datetime(2024, 3, 5, 1, 0, tzinfo=UTC), ()),
        ("5 March 2024 18:00 JST", datetime(2024, 3, 5, 9, 0, tzinfo=UTC), ()),
        ("1709631000000", datetime(2024, 3, 5, 9, 30, tzinfo=UTC), ()),
        ("2024-03-05 09:30", datetime(2024, 3, 5, 9, 30, tzinfo=UTC), ("timezone_assumed",)),
    ],
)
def test_odd_time_formats_and_zones(value, expected, notes):
    assert parse_published(value) == (expected, notes, "")


@pytest.mark.parametrize("value", ["yesterday", "", None, "31/31/2024", "99999999999999999"])
def test_unreadable_times_say_why(value):
    moment, _, why = parse_published(value)
    assert moment is None and why


def test_bad_records_are_skipped_with_reasons_and_the_run_goes_on(tmp_path):
    lines = [
        json.dumps({"id": "ok1", "title": "Northwind buys a rival", "body": "Northwind bought it.",
                    "published": "2024-03-05T09:00:00Z"}),
        "{not json",
        "[1, 2]",
        json.dumps({"id": "e1", "title": " ", "body": "<p> </p>", "published": "2024-03-05"}),
        json.dumps({"id": "d1", "title": "No date", "body": "Contoso grew sales strongly.",
                    "published": "sometime soon"}),
        json.dumps({"id": "fr", "title": "Les résultats de la société",
                    "body": "La société a annoncé que les ventes sont en hausse pour le trimestre "
                    "et que les bénéfices de l'entreprise ont augmenté.",
                    "published": "2024-03-05T09:00:00Z"}),
        json.dumps({"id": "ok2", "title": "Fabrikam shares rise", "body": "Shares rose 3%.",
                    "published": "2024-03-06T09:00:00Z"}),
    ]  # fmt: skip
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    articles, report = read([tmp_path / "mixed.jsonl"])
    assert [a.id for a in articles] == ["ok1", "ok2"]
    assert report.read == 7 and report.articles == 2
    assert report.skipped == {"bad_record": 2, "empty": 1, "no_date": 1, "language": 1}
    reasons = {p.where: p.reason for p in report.problems}
    assert reasons == {
        "line 2": "bad_record",
        "line 3": "bad_record",
        "line 4": "empty",
        "line 5": "no_date",
        "line 6": "language",
    }
    assert "detected fr" in next(p.detail for p in report.problems if p.reason == "language")


def test_all_languages_are_kept_when_asked(tmp_path):
    row = {"id": "de", "title": "Die Firma meldet Gewinn",
           "body": "Die Firma hat einen höheren Gewinn gemeldet, und die Aktie ist gestiegen.",
           "published": "2024-03-05T09:00:00Z"}  # fmt: skip
    (tmp_path / "de.jsonl").write_text(json.dumps(row) + "\n")
    assert read([tmp_path / "de.jsonl"])[0] == []
    (article,), _ = read([tmp_path / "de.jsonl"], languages=[])
    assert article.language == "de"


def test_duplicates_by_id_url_and_content(tmp_path):
    base = {"title": "Contoso wins deal", "body": "Contoso won a deal.", "published": "2024-03-05"}
    rows = [
        {"id": "1", "url": "https://e.com/1", **base},
        {"id": "1", "url": "https://e.com/other", "title": "Another", "body": "Other text here.",
         "published": "2024-03-05"},
        {"id": "2", "url": "https://e.com/1", "title": "Same url", "body": "Same url, new text.",
         "published": "2024-03-05"},
        {"id": "3", "url": "https://e.com/3", **base, "title": "CONTOSO  wins deal"},
        {"id": "4", "url": "https://e.com/4", "title": "New", "body": "A new story about Litware.",
         "published": "2024-03-06"},
    ]  # fmt: skip
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    # the same file twice: everything in the second copy is a duplicate too
    articles, report = read([tmp_path / "a.jsonl", tmp_path / "a.jsonl"])
    assert [a.id for a in articles] == ["1", "4"]
    assert report.duplicates == {"duplicate_id": 4, "duplicate_url": 2, "duplicate_content": 2}


def test_a_5_mb_article_is_kept_in_part(tmp_path):
    body = "<p>" + "Northwind sold more turbines this year. " * 130_000 + "</p>"
    assert len(body) > 5_000_000
    row = {"id": "big", "title": "Long", "body": body, "published": "2024-03-05T09:00:00Z"}
    (tmp_path / "big.jsonl").write_text(json.dumps(row) + "\n")
    start = time.perf_counter()
    (article,), report = read([tmp_path / "big.jsonl"], max_chars=50_000)
    assert time.perf_counter() - start < 30
    assert len(article.body) <= 50_000 and article.body.endswith("year.")
    assert article.notes == ("html_stripped", "truncated")
    assert report.partial == {"html_stripped": 1, "truncated": 1}


def test_malformed_feeds(tmp_path):
    (tmp_path / "broken.xml").write_text("<rss><channel><title>x</title><item><title>oops")
    (tmp_path / "garbage.rss").write_bytes(b"\x00\x01 this is not xml at all")
    cut = RSS.replace("</channel></rss>", "<item><title>Broken & bad</title><descr")
    (tmp_path / "cut.xml").write_text(cut)
    articles, report = read(sorted(tmp_path.iterdir()))
    # broken and cut feeds keep the entries read before the error (the cut one's last entry
    # has only its title); the garbage one has none
    assert [a.id for a in articles[:2]] == ["a1", "a2"]
    assert [a.title for a in articles[2:]] == ["Broken & bad"]
    assert report.partial["malformed_feed"] == 2
    assert report.skipped == {"malformed_feed": 1, "empty": 1}  # garbage; "oops" is too short
    garbage = next(p for p in report.problems if p.source == "garbage")
    assert garbage.reason == "malformed_feed" and garbage.detail


def test_missing_file_and_a_feed_url_that_does_not_answer(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    (tmp_path / "ok.xml").write_text(RSS)
    start = time.perf_counter()
    articles, report = read(
        [f"http://127.0.0.1:{port}/feed.xml", tmp_path / "missing.xml", tmp_path / "ok.xml"],
        timeout=0.5,
    )
    assert time.perf_counter() - start < 10
    server.close()
    assert [a.id for a in articles] == ["a1", "a2"]  # the run went on
    assert report.skipped == {"unreadable_source": 2}
    details = {p.source.split("/")[-1]: p.detail for p in report.problems}
    assert details["feed.xml"].startswith("no answer within 0.5 s")
    assert details["missing.xml"] == "no such file or folder"


def test_feed_url_is_read_over_http(tmp_path):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):
            body = RSS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        articles, report = read([f"http://127.0.0.1:{httpd.server_port}/news"])
    finally:
        httpd.shutdown()
    assert [a.id for a in articles] == ["a1", "a2"] and not report.skipped


def test_feed_text_and_html_helpers():
    report = IngestReport()
    assert [a.id for a in articles_from_feed(RSS, "posted", report=report)] == ["a1", "a2"]
    text, had_html = html_to_text("<div>One<br/>two &amp; <style>x{}</style>three</div>")
    assert (text, had_html) == ("One\ntwo & three", True)
    assert html_to_text("AT&T shares <rose> 5%") == ("AT&T shares <rose> 5%", False)


def test_config_rejects_typos():
    with pytest.raises(ConfigError, match="Did you mean ingest.max_chars"):
        IngestConfig.from_dict({"max_char": 10})
    with pytest.raises(ConfigError, match="timeout must be positive"):
        IngestConfig.from_dict({"timeout": 0})


def test_the_sample_feed_reads_cleanly():
    articles, report = read([SAMPLE])
    assert 150 <= len(articles) <= 300
    assert not report.skipped and not report.duplicates
    assert {a.source for a in articles} == {"Harbour Street Wire", "Ledger Daily", "Market Brief"}
    assert report.partial == {"html_stripped": sum(a.source == "Ledger Daily" for a in articles)}
    days = {a.published.date() for a in articles}
    assert (max(days) - min(days)).days >= 35
