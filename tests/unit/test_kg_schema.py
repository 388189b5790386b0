"""kg.schema: extraction records read and written as JSON-able dicts, bad input refused clearly."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kg import Article, Extraction, KgError, Mention, Relation
from kg.schema import parse_time

NEWS = Path(__file__).resolve().parents[1] / "fixtures" / "kg_news.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines()]


def _article(**changes) -> dict:
    data = {
        "id": "x1",
        "source": "Wire",
        "title": "T",
        "published": "2024-03-01T09:30:00Z",
        "sentiment": 0.2,
    }
    data.update(changes)
    return data


def test_fixture_round_trips_through_dicts_and_json():
    for row in _rows():
        extraction = Extraction.from_dict(row)
        data = extraction.to_dict()
        assert Extraction.from_dict(json.loads(json.dumps(data))) == extraction
        assert data["article"]["published"].endswith("+00:00")


def test_published_is_kept_in_utc():
    article = Article.from_dict(_article(published="2024-03-01T11:30:00+02:00"))
    assert article.published == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert article.published.utcoffset() == timedelta(0)
    other = Article(
        "x", "s", "t", datetime(2024, 3, 1, 4, 30, tzinfo=timezone(timedelta(hours=-5))), 0
    )
    assert other.published == article.published
    assert isinstance(other.sentiment, float)


@pytest.mark.parametrize(
    "value",
    ["2024-03-01T09:30:00", datetime(2024, 3, 1, 9, 30)],
    ids=["naive-string", "naive-datetime"],
)
def test_naive_times_are_refused(value):
    with pytest.raises(KgError, match=r"no time zone.*'Z'"):
        Article.from_dict(_article(published=value))


def test_parse_time_reads_days_and_ends_of_days():
    assert parse_time("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    end = parse_time(date(2024, 3, 1), end_of_day=True)
    assert end.date() == date(2024, 3, 1) and end.hour == 23
    with pytest.raises(KgError, match="not an ISO 8601 time"):
        parse_time("yesterday")


def test_missing_and_misspelt_keys_are_named():
    data = _article()
    del data["published"]
    with pytest.raises(KgError, match=r"article 'x1': missing 'published'"):
        Article.from_dict(data)
    with pytest.raises(KgError, match=r"unknown key 'sentimnet'; did you mean 'sentiment'"):
        Article.from_dict({**_article(), "sentimnet": 0.1})
    with pytest.raises(KgError, match=r"mention 'Northwind': missing 'sentence_index'"):
        Mention.from_dict(
            {"text": "Northwind", "type": "ORG", "sentence": "s", "sentiment": 0}, article_id="a"
        )
    with pytest.raises(KgError, match="expected a dict"):
        Extraction.from_dict(["not", "a", "dict"])


def test_relation_type_outside_the_vocabulary_is_refused_with_a_suggestion():
    with pytest.raises(
        KgError, match=r"'aquires' is not in the vocabulary; did you mean 'acquires'"
    ):
        Relation("a", "X", "Y", "aquires", 0.9, "X buys Y.", 0.1)
    with pytest.raises(KgError, match="'other' for anything else"):
        Relation("a", "X", "Y", "merges_with_spaceships", 0.9, "X buys Y.", 0.1)
    assert Relation("a", "X", "Y", "Invests In", 0.9, "s", 0.1).type == "invests_in"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sentiment", 1.5, r"sentiment: 1\.5 is outside \[-1, 1\].*P\(positive\) - P\(negative\)"),
        ("sentiment", float("nan"), "outside"),
        ("sentiment", "0.3", "expected a number"),
        ("confidence", 1.2, r"confidence: 1\.2 is outside \[0, 1\]"),
        ("confidence", True, "expected a number"),
    ],
)
def test_scores_out_of_range_are_refused(field, value, message):
    values = {"head": "X", "tail": "Y", "type": "sues", "confidence": 0.5, "sentence": "s"}
    values["sentiment"] = 0.0
    values[field] = value
    with pytest.raises(KgError, match=message):
        Relation.from_dict(values, article_id="a")


def test_entity_types_accept_ner_spellings_and_refuse_others():
    assert Mention("a", "Jane", "PER", 0, "Jane spoke.", 0).type == "PERSON"
    assert Mention("a", "Oslo", "location", 0, "In Oslo.", 0).type == "LOC"
    with pytest.raises(KgError, match=r"unknown entity type 'ORGG'; did you mean 'ORG'"):
        Mention("a", "X", "ORGG", 0, "X.", 0)
    with pytest.raises(KgError, match="sentence index"):
        Mention("a", "X", "ORG", -1, "X.", 0)
    with pytest.raises(KgError, match="text: is empty"):
        Mention("a", "  ", "ORG", 0, "X.", 0)


def test_extraction_checks_that_parts_belong_together():
    article = Article.from_dict(_article())
    mention = Mention("x1", "Northwind", "ORG", 0, "Northwind sued Contoso.", -0.4)
    other = Mention("x1", "Contoso", "ORG", 0, "Northwind sued Contoso.", -0.4)
    with pytest.raises(KgError, match=r"mention 0 \('Northwind'\) belongs to article 'zz'"):
        Extraction(article, [Mention("zz", "Northwind", "ORG", 0, "s", 0)])
    relation = Relation("x1", "Northwind", "Contosso", "sues", 0.9, "Northwind sued Contoso.", -0.4)
    with pytest.raises(KgError, match=r"tail 'Contosso' is not the text of any mention.*'Contoso'"):
        Extraction(article, [mention, other], [relation])
    good = Extraction(article, [mention, other], [replace(relation, tail="Contoso")])
    assert good.id == "x1" and isinstance(good.mentions, tuple)


def test_nested_records_may_leave_out_the_article_id():
    row = _rows()[0]
    assert all("article_id" not in item for item in (*row["mentions"], *row["relations"]))
    extraction = Extraction.from_dict(row)
    assert {m.article_id for m in extraction.mentions} == {row["article"]["id"]}
    assert extraction.mentions[0].score == extraction.mentions[0].sentiment
