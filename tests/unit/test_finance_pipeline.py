"""The finance scoring pipeline's mechanism on a tiny sentiment model and spaCy's small pipeline.

The tiny classifier (``tiny_artifact``: negative/positive, 2 layers) scores nonsense, but the
mechanism does not depend on quality: batching across articles, which sentence an entity's
score comes from, the clause rule, the relation patterns, tickers, topics and the config.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.finance.entities import EntitySpan, find_tickers, harmonize_types, merge_entities
from apps.finance.records import NewsArticle
from apps.finance.relations import FoundRelation, combine, model_inputs, pattern_relations
from apps.finance.sentences import load_spacy, parse_texts
from apps.finance.sentiment import article_sentiment, entity_clause, score_value
from apps.finance.topics import article_topics
from lepton_nlp.errors import ConfigError

WHEN = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def article(id: str, body: str, title: str = "", language: str = "en") -> NewsArticle:
    return NewsArticle(
        id=id, source="test", title=title, body=body, published=WHEN, language=language
    )


ARTICLES = [
    article(
        "a1",
        "Northwind Holdings Inc. (NASDAQ: NWND) agreed to acquire Contoso for $1.2 billion. "
        "Northwind's profit soared while Contoso posted a heavy loss.",
        title="Northwind to buy Contoso",
    ),
    article("a2", "Fabrikam shares fell after the recall. Litware was bought by Tailspin Toys."),
    article("a3", "The kettle boils quickly and switches off reliably."),
    article("a4", "Jane Okafor, chief executive of Proseware, said sales rose in Oslo."),
]


@pytest.fixture(scope="module")
def pipeline(tiny_artifact):
    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig

    config = FinancePipelineConfig(
        sentiment_model=str(tiny_artifact),
        ner_model=None,
        relation_model=None,
        backend="torch",
        chunk_articles=3,
    )
    return FinancePipeline(config)


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


def sentence_of(nlp, text: str):
    return parse_texts(nlp, [text])[0][0]


# --- the pipeline -------------------------------------------------------------------------


def test_batching_across_articles_equals_one_by_one(pipeline):
    together = pipeline.score(ARTICLES)
    alone = [pipeline.score([a])[0] for a in ARTICLES]
    assert [r.article.id for r in together] == ["a1", "a2", "a3", "a4"]
    for a, b in zip(together, alone, strict=True):
        assert [s.text for s in a.sentences] == [s.text for s in b.sentences]
        for x, y in zip(a.sentences, b.sentences, strict=True):
            assert x.label == y.label
            assert x.score == pytest.approx(y.score, abs=1e-4)
        assert a.sentiment == pytest.approx(b.sentiment, abs=1e-4)
        assert [(m.text, m.type, m.sentence_index) for m in a.extraction.mentions] == [
            (m.text, m.type, m.sentence_index) for m in b.extraction.mentions
        ]
        for m, n in zip(a.extraction.mentions, b.extraction.mentions, strict=True):
            assert (m.entity_sentiment is None) == (n.entity_sentiment is None)
            if m.entity_sentiment is not None:
                assert m.entity_sentiment == pytest.approx(n.entity_sentiment, abs=1e-4)
        assert [r.to_dict() for r in a.extraction.relations] == [
            r.to_dict() for r in b.extraction.relations
        ]


def test_progress_counts_every_article_once(pipeline):
    seen: list[int] = []
    pipeline.score(ARTICLES, progress=seen.append)
    assert seen == [3, 1]  # chunks of 3


def test_scored_article_carries_sentences_versions_and_timings(pipeline):
    result = pipeline.score(ARTICLES[:1])[0]
    assert result.sentences[0].text.startswith("Northwind to buy Contoso")
    for s in result.sentences:
        assert result.article.text[s.start : s.end] == s.text
        assert s.score == pytest.approx(score_value(s.probabilities))
    assert set(result.model_versions) == {"pipeline", "sentiment", "spacy"}
    assert "(torch)" in result.model_versions["sentiment"]
    assert set(result.timings) >= {"parse", "sentiment", "entities", "relations", "total"}
    assert result.timings["total"] > 0
    assert result.extraction.article.sentiment == result.sentiment
    # round trip through the record the store keeps
    from apps.finance.records import ScoredArticle

    assert ScoredArticle.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_article_score_is_title_weighted_mean_of_sentences(pipeline):
    result = pipeline.score(ARTICLES[:1])[0]
    scores = [s.score for s in result.sentences]
    weights = [pipeline.config.title_weight] + [1.0] * (len(scores) - 1)
    expected = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
    assert result.sentiment == pytest.approx(expected, abs=1e-5)


def test_entity_sentiment_comes_from_the_mentioning_sentence(pipeline):
    result = pipeline.score(
        [article("e1", "Fabrikam shares fell sharply after the recall. Sales rose at home.")]
    )[0]
    (fabrikam,) = [m for m in result.extraction.mentions if m.text == "Fabrikam"]
    first = result.sentences[0]
    assert fabrikam.sentence_index == 0
    assert fabrikam.entity_sentiment == pytest.approx(first.score, abs=1e-6)
    assert result.sentiment != pytest.approx(first.score, abs=1e-6)


def keyword_sentiment(texts):
    """A stand-in for the sentiment model that reads words, so tests see which text it got."""
    out = []
    for text in texts:
        up, down = "soared" in text, "loss" in text
        positive = 0.8 if up and not down else 0.1 if down and not up else 0.3
        negative = 0.8 if down and not up else 0.1 if up and not down else 0.3
        scores = {"negative": negative, "neutral": 1 - positive - negative, "positive": positive}
        out.append({"label": max(scores, key=scores.get), "score": 0.8, "scores": scores})
    return out


def test_entity_sentiment_scores_the_clause_of_each_company(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline.sentiment, "predict", keyword_sentiment)
    text = "Northwind's profit soared while Contoso posted a heavy loss."
    result = pipeline.score([article("e2", text)])[0]
    scores = {m.text: m.entity_sentiment for m in result.extraction.mentions}
    assert result.sentences[0].score == pytest.approx(0.0)  # both words: the sentence is mixed
    assert scores == {"Northwind": pytest.approx(0.7), "Contoso": pytest.approx(-0.7)}


def test_a_ticker_beside_its_company_does_not_stop_the_split(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline.sentiment, "predict", keyword_sentiment)
    text = "Northwind Holdings Inc. (NASDAQ: NWND) soared while Contoso posted a heavy loss."
    result = pipeline.score([article("e4", text)])[0]
    scores = {m.text: m.entity_sentiment for m in result.extraction.mentions}
    assert scores == {
        "Northwind Holdings Inc.": pytest.approx(0.7),
        "NASDAQ: NWND": pytest.approx(0.7),
        "Contoso": pytest.approx(-0.7),
    }


def test_clauses_off_gives_the_sentence_score(tiny_artifact):
    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig

    plain = FinancePipeline(
        FinancePipelineConfig(
            sentiment_model=str(tiny_artifact),
            ner_model=None,
            relation_model=None,
            entity_clauses=False,
        )
    )
    result = plain.score([article("e3", "Northwind's profit soared while Contoso lost money.")])[0]
    sentence = result.sentences[0].score
    mentions = result.extraction.mentions
    assert len(mentions) == 2
    assert [m.entity_sentiment for m in mentions] == [pytest.approx(sentence)] * 2


def test_bad_input_is_noted_not_fatal(pipeline):
    long_body = "Northwind sells kettles. " * 2000
    results = pipeline.score(
        [
            article("n1", "Northwind verkauft Wasserkocher.", language="de"),
            article("n2", long_body),
            article("n3", "   "),
        ]
    )
    assert results[0].sentences == [] and "language 'de'" in results[0].notes[0]
    assert "max_chars" in results[1].notes[0]
    assert results[1].sentences[-1].end <= pipeline.config.max_chars
    assert results[2].sentences == [] and results[2].label == "neutral"
    assert results[2].sentiment == 0.0


# --- config -------------------------------------------------------------------------------


def test_config_rejects_typos_with_a_suggestion():
    from apps.finance.pipeline import FinancePipelineConfig

    with pytest.raises(ConfigError, match="Did you mean finance.pipeline.batch_size"):
        FinancePipelineConfig.from_dict({"batch_sise": 8})
    with pytest.raises(ConfigError, match="relation_threshold"):
        FinancePipelineConfig.from_dict({"relation_threshold": 2.0})
    assert FinancePipelineConfig.from_dict({"ner_model": None}).ner_model is None


def test_missing_artifact_says_what_to_give(tmp_path):
    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig

    with pytest.raises(ConfigError, match="relation_model=.* not an artifact folder"):
        FinancePipeline(FinancePipelineConfig(relation_model=str(tmp_path / "nowhere")))


# --- parts --------------------------------------------------------------------------------


def test_article_sentiment_weights_the_title():
    probs = [{"negative": 0.0, "neutral": 0.0, "positive": 1.0}, {"negative": 1.0}]
    score, label, _ = article_sentiment(probs, has_title=True, title_weight=3.0)
    assert score == pytest.approx(0.5)
    assert label == "positive"
    assert article_sentiment(probs, has_title=False)[0] == pytest.approx(0.0)
    assert article_sentiment([], has_title=False) == (0.0, "neutral", {})


def test_entity_clause_splits_contrasting_clauses(nlp):
    text = "Northwind's profit soared while Contoso posted a heavy loss."
    s = sentence_of(nlp, text)
    north, contoso = (0, 9), (text.index("Contoso"), text.index("Contoso") + 7)
    assert entity_clause(s.span, north, [contoso]) == "Northwind's profit soared"
    assert entity_clause(s.span, contoso, [north]) == "Contoso posted a heavy loss"
    assert entity_clause(s.span, north, []) is None


def test_entity_clause_keeps_a_shared_clause_whole(nlp):
    text = "Northwind agreed to acquire Contoso."
    s = sentence_of(nlp, text)
    assert entity_clause(s.span, (0, 9), [(28, 35)]) is None


def test_tickers_by_pattern():
    text = "Northwind Holdings (NASDAQ: NWND) rose; $CTSO fell and NYSE:FBK was flat."
    assert [t.text for t in find_tickers(text)] == ["NASDAQ: NWND", "$CTSO", "NYSE:FBK"]


def test_merge_prefers_core_types_for_names_and_drops_spans_inside_tickers():
    text = "Contoso (NASDAQ: CTSO) hired Jane Okafor."
    spacy = [
        EntitySpan(0, 7, "Contoso", "PERSON", ("spacy",)),
        EntitySpan(9, 15, "NASDAQ", "ORG", ("spacy",)),
        EntitySpan(29, 40, "Jane Okafor", "PERSON", ("spacy",)),
    ]
    core = [EntitySpan(0, 7, "Contoso", "ORG", ("core",))]
    merged = merge_entities(text, spacy, core)
    assert [(e.text, e.type) for e in merged] == [
        ("Contoso", "ORG"),
        ("NASDAQ: CTSO", "TICKER"),
        ("Jane Okafor", "PERSON"),
    ]


def test_legal_suffix_makes_an_org_and_possessive_is_trimmed():
    text = "Litware Inc.'s chief met Fabrikam's board."
    spacy = [
        EntitySpan(0, 14, "Litware Inc.'s", "PERSON", ("spacy",)),
        EntitySpan(25, 35, "Fabrikam's", "ORG", ("spacy",)),
    ]
    merged = merge_entities(text, spacy, [])
    assert [(e.text, e.type) for e in merged] == [("Litware Inc.", "ORG"), ("Fabrikam", "ORG")]


def test_type_vote_over_the_article():
    contoso_person = EntitySpan(0, 7, "Contoso", "PERSON", ("spacy",))
    okafor = EntitySpan(0, 6, "Okafor", "PERSON", ("spacy",))
    jane = EntitySpan(0, 11, "Jane Okafor", "PERSON", ("spacy",))
    voted = harmonize_types([[contoso_person, okafor], [jane]])
    assert [(e.text, e.type) for e in voted[0]] == [("Contoso", "ORG"), ("Okafor", "PERSON")]


def _entities(text: str, names: list[tuple[str, str]]) -> list[EntitySpan]:
    out = []
    for name, kind in names:
        start = text.index(name)
        out.append(EntitySpan(start, start + len(name), name, kind, ("test",)))
    return out


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        (
            "Northwind agreed to acquire Contoso.",
            [("Northwind", "ORG"), ("Contoso", "ORG")],
            ("Northwind", "acquires", "Contoso"),
        ),
        (
            "Contoso was acquired by Northwind for $2 billion.",
            [("Contoso", "ORG"), ("Northwind", "ORG")],
            ("Northwind", "acquires", "Contoso"),
        ),
        (
            "Fabrikam invested $40 million in Litware.",
            [("Fabrikam", "ORG"), ("Litware", "ORG")],
            ("Fabrikam", "invests_in", "Litware"),
        ),
        (
            "Northwind supplies batteries to Contoso.",
            [("Northwind", "ORG"), ("Contoso", "ORG")],
            ("Northwind", "supplies", "Contoso"),
        ),
        (
            "Proseware sued Tailspin Toys over unpaid royalties.",
            [("Proseware", "ORG"), ("Tailspin Toys", "ORG")],
            ("Proseware", "sues", "Tailspin Toys"),
        ),
        (
            "Wingtip Toys, a subsidiary of Contoso, opened a plant.",
            [("Wingtip Toys", "ORG"), ("Contoso", "ORG")],
            ("Wingtip Toys", "subsidiary_of", "Contoso"),
        ),
        (
            "Jane Okafor, chief executive of Northwind, said sales rose.",
            [("Jane Okafor", "PERSON"), ("Northwind", "ORG")],
            ("Jane Okafor", "executive_of", "Northwind"),
        ),
    ],
)
def test_dependency_patterns(nlp, text, names, expected):
    entities = _entities(text, names)
    found = pattern_relations(sentence_of(nlp, text).span, entities)
    assert [(entities[r.head].text, r.type, entities[r.tail].text) for r in found] == [expected]
    assert all(r.source == "pattern" and 0 < r.confidence <= 1 for r in found)


def test_patterns_skip_negated_and_unrelated(nlp):
    for text in (
        "Northwind abandoned its plan to acquire Contoso.",
        "Northwind did not acquire Contoso.",
        "Northwind and Contoso both reported results on Monday.",
        "Northwind's unit supplies batteries to Contoso.",  # the unit, not Northwind
    ):
        entities = _entities(text, [("Northwind", "ORG"), ("Contoso", "ORG")])
        assert pattern_relations(sentence_of(nlp, text).span, entities) == [], text


def test_model_inputs_pair_names_in_text_order():
    text = "Jane Okafor of Northwind met Contoso in Oslo."
    entities = _entities(
        text, [("Jane Okafor", "PERSON"), ("Northwind", "ORG"), ("Contoso", "ORG"), ("Oslo", "GPE")]
    )
    pairs = model_inputs(text, entities)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (0, 2), (1, 2)]
    assert pairs[0][2]["head"] == {"start": 0, "end": 11, "type": "PERSON"}


def test_combine_merges_agreement_and_lets_the_preferred_source_win():
    model = [
        FoundRelation(0, 1, "acquires", 0.9, "model"),
        FoundRelation(1, 2, "sues", 0.8, "model"),
        FoundRelation(2, 3, "supplies", 0.3, "model"),  # below the threshold: dropped
    ]
    patterns = [
        FoundRelation(0, 1, "acquires", 0.6, "pattern"),
        FoundRelation(1, 2, "supplies", 0.6, "pattern"),
    ]
    by_pattern = combine(model, patterns, threshold=0.5, prefer="pattern")
    assert [(r.head, r.tail, r.type, r.source) for r in by_pattern] == [
        (0, 1, "acquires", "model+pattern"),
        (1, 2, "supplies", "pattern"),
    ]
    assert by_pattern[0].confidence == 0.9
    by_model = combine(model, patterns, threshold=0.5, prefer="model")
    assert [(r.type, r.source) for r in by_model] == [
        ("acquires", "model+pattern"),
        ("sues", "model"),
    ]
    with pytest.raises(ValueError, match="prefer"):
        combine(model, patterns, prefer="both")


def test_topics_by_keywords_and_relations():
    text = "Northwind beat earnings forecasts and raised its dividend. Regulators opened a probe."
    assert article_topics(text) == ["earnings", "legal"]
    assert article_topics("Short note.", ["acquires", "executive_of"]) == ["m&a", "management"]
