"""The finance scoring pipeline with the shipped models, on sentences written for these tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def article(id: str, body: str, title: str = ""):
    from apps.finance.records import NewsArticle

    return NewsArticle(id=id, source="test", title=title, body=body, published=WHEN)


@pytest.fixture(scope="module")
def pipeline():
    from apps.finance.pipeline import FinancePipeline

    return FinancePipeline()


@pytest.mark.parametrize(
    ("text", "up", "down"),
    [
        (
            "Brightwater Energy raised its full-year forecast, while Lumen Grid cut its outlook "
            "after a costly outage.",
            "Brightwater Energy",
            "Lumen Grid",
        ),
        (
            "Shares of Nimbus Data collapsed after the fraud allegations, but Pinecrest Software "
            "jumped 9% on record orders.",
            "Pinecrest Software",
            "Nimbus Data",
        ),
    ],
)
def test_two_companies_of_opposite_news_get_opposite_signs(pipeline, text, up, down):
    result = pipeline.score([article("opp", text)])[0]
    scores = {m.text: m.entity_sentiment for m in result.extraction.mentions}
    assert scores[up] > 0 > scores[down], scores


def test_acquisition_is_found_with_its_direction(pipeline):
    result = pipeline.score([article("acq", "Northwind agreed to acquire Contoso.")])[0]
    relations = [(r.head, r.type, r.tail) for r in result.extraction.relations]
    assert ("Northwind", "acquires", "Contoso") in relations
    assert "m&a" in result.topics
    assert set(result.model_versions) == {"pipeline", "sentiment", "spacy", "ner", "relations"}


def test_relation_model_reads_direction_without_the_patterns(pipeline):
    from apps.finance.relations import read_prediction

    text = "Contoso has agreed to be bought by Northwind for $300 million."
    item = {
        "text": text,
        "head": {"start": 0, "end": 7, "type": "ORG"},
        "tail": {"start": 35, "end": 44, "type": "ORG"},
    }
    found = read_prediction(0, 1, pipeline.relation.predict([item])[0])
    assert found is not None
    assert (found.head, found.type, found.tail) == (1, "acquires", 0)


def test_executive_and_ticker_entities(pipeline):
    text = (
        "Northwind Holdings Inc. (NASDAQ: NWND) said its chief executive, Jane Okafor, "
        "would step down in June."
    )
    result = pipeline.score([article("ent", text)])[0]
    types = {m.text: m.type for m in result.extraction.mentions}
    assert types["NASDAQ: NWND"] == "TICKER"
    assert types["Northwind Holdings Inc."] == "ORG"
    assert types["Jane Okafor"] == "PERSON"


def test_scored_extractions_build_a_graph(pipeline):
    from kg import KnowledgeGraph

    results = pipeline.score(
        [
            article("g1", "Northwind agreed to acquire Contoso for $1.2 billion."),
            article("g2", "Contoso shares jumped after the Northwind offer."),
        ]
    )
    graph = KnowledgeGraph.build([r.extraction for r in results])
    assert graph.graph.number_of_nodes() >= 2
