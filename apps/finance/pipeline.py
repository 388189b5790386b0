"""Score news articles: sentences, sentiment, entities, entity-level sentiment, relations, topics.

``FinancePipeline(config).score(articles)`` turns a batch of
:class:`~apps.finance.records.NewsArticle` into :class:`~apps.finance.records.ScoredArticle`,
each carrying the :class:`kg.Extraction` the knowledge graph is built from. Models load once,
in the constructor; every model stage runs batched across the articles of a chunk:

1. **parse** (:mod:`apps.finance.sentences`): spaCy splits and parses the article texts;
2. **sentiment** (:mod:`apps.finance.sentiment`): every sentence through the shipped
   ``finance-sentiment`` model; the article's score is the title-weighted mean;
3. **entities** (:mod:`apps.finance.entities`): spaCy's NER, the core's CoNLL NER and a
   ticker pattern, merged;
4. **entity sentiment**: the clause of a sentence that concerns each entity, scored by the
   sentiment model, where a sentence names several entities;
5. **relations** (:mod:`apps.finance.relations`): the relation model on ORG/PERSON pairs of
   a sentence, plus dependency patterns;
6. **topics** (:mod:`apps.finance.topics`): keyword rules and the relations found.

Each article records the seconds spent on it per stage (a batched stage's time shared among
the chunk's articles in proportion to their sentences) and the versions of the models.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.finance.entities import (
    CORE_TYPES,
    EntitySpan,
    harmonize_types,
    merge_entities,
    spacy_entities,
)
from apps.finance.records import NewsArticle, ScoredArticle, SentenceScore
from apps.finance.relations import (
    PREFER,
    FoundRelation,
    combine,
    model_inputs,
    pattern_relations,
    read_prediction,
)
from apps.finance.sentences import SPACY_MODEL, load_spacy, parse_texts, spacy_version
from apps.finance.sentiment import article_sentiment, entity_clause, score_value
from apps.finance.topics import article_topics
from kg.schema import Article, Extraction, Mention, Relation
from lepton_nlp.config import build_dataclass
from lepton_nlp.errors import ConfigError

__all__ = [
    "DEFAULT_NER_MODEL",
    "DEFAULT_RELATION_MODEL",
    "DEFAULT_SENTIMENT_MODEL",
    "PIPELINE_VERSION",
    "STAGES",
    "FinancePipeline",
    "FinancePipelineConfig",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SENTIMENT_MODEL = "data/models/finance-sentiment"
DEFAULT_NER_MODEL = "data/models/conll2003-ner"
DEFAULT_RELATION_MODEL = "data/models/finance-relations"

#: Bumped when the same models would give different output (registered-name versioning).
PIPELINE_VERSION = "finance-pipeline.v1"

#: The stages an article's ``timings`` names (plus ``total``).
STAGES = ("parse", "sentiment", "entities", "entity_sentiment", "relations", "topics")

#: Entity types whose mentions get an entity-level sentiment.
SENTIMENT_TYPES = frozenset({"ORG", "PERSON", "TICKER", "PRODUCT"})


@dataclass
class FinancePipelineConfig:
    """Settings of the scoring pipeline; :meth:`from_dict` reads them from YAML/JSON."""

    sentiment_model: str = DEFAULT_SENTIMENT_MODEL
    """Classification artifact with negative/neutral/positive labels (relative paths are
    read from the working directory, else from the project folder)."""
    ner_model: str | None = DEFAULT_NER_MODEL
    """The core's NER artifact (CoNLL PER/ORG/LOC/MISC); None: spaCy's entities only."""
    relation_model: str | None = DEFAULT_RELATION_MODEL
    """Relation artifact (the core's relation task); None: dependency patterns only."""
    relation_patterns: bool = True
    """Also find relations with dependency patterns on spaCy's parse."""
    relation_threshold: float = 0.5
    """The model's relations below this probability are dropped (a pattern may still give one)."""
    relation_prefer: str = "pattern"
    """Which source wins an entity pair that the model and a pattern read differently:
    ``pattern`` (chosen on the relation set's validation part) or ``model``."""
    max_relation_entities: int = 8
    """Pair at most this many ORG/PERSON entities of a sentence for the relation model."""
    spacy_model: str = SPACY_MODEL
    """spaCy pipeline for sentences, its entities and the dependency parse."""
    backend: str = "auto"
    """Predictor backend (``auto``: int8 on CPUs where an artifact's check allows it)."""
    ner_backend: str | None = None
    """Backend of the NER model alone (None: ``backend``). The shipped NER's int8 check lost
    0.65 F1 points, so ``auto`` keeps it fp32; ``torch-int8`` trades those for speed."""
    batch_size: int = 64
    """Largest model batch (sentences, clauses or entity pairs)."""
    chunk_articles: int = 64
    """Articles scored together (one batch per stage); ``progress`` is called after each chunk."""
    max_chars: int = 20_000
    """Characters of an article read (title and body); the rest is cut and noted."""
    title_weight: float = 2.0
    """Weight of the title in the article's sentiment (each body sentence weighs 1)."""
    entity_clauses: bool = True
    """Score the clause of a many-entity sentence that concerns each entity; False: every
    entity takes its sentence's score."""
    topic_min_hits: int = 2
    """Keyword matches a topic needs (:func:`apps.finance.topics.article_topics`)."""
    languages: list[str] = field(default_factory=lambda: ["en"])
    """Languages scored; an article in another language comes back unscored, with a note."""
    threads: int | None = None
    """CPU threads for torch (None: its default)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "chunk_articles", "max_chars", "max_relation_entities"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1.")
        if not 0.0 <= self.relation_threshold <= 1.0:
            raise ConfigError(
                f"relation_threshold={self.relation_threshold} must be a probability in [0, 1]."
            )
        if self.relation_prefer not in PREFER:
            raise ConfigError(
                f"relation_prefer={self.relation_prefer!r}; choose one of {', '.join(PREFER)}."
            )
        if self.title_weight < 0:
            raise ConfigError(f"title_weight={self.title_weight} must be 0 or more.")
        if self.topic_min_hits < 1:
            raise ConfigError(f"topic_min_hits={self.topic_min_hits} must be at least 1.")
        if not self.languages:
            raise ConfigError("languages is empty: give the languages to score, e.g. ['en'].")

    @classmethod
    def from_dict(cls, data: dict | None) -> FinancePipelineConfig:
        """Build from a mapping; an unknown key is an error naming the nearest valid one."""
        return build_dataclass(cls, data or {}, "finance.pipeline")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _artifact_path(value: str, what: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists() and (ROOT / path).exists():
        path = ROOT / path
    if not (path / "lepton_artifact.json").is_file():
        raise ConfigError(
            f"{what}={value!r} is not an artifact folder (no lepton_artifact.json in {path}); "
            f"give the folder a training run wrote, e.g. {DEFAULT_SENTIMENT_MODEL!r}"
            + (", or None to leave this stage out." if what != "sentiment_model" else ".")
        )
    return path


def _version(predictor: Any) -> str:
    """``name@created (backend)``: which artifact, which training run, which kernels."""
    info = predictor.info
    return f"{info.name or info.path.name}@{info.created or '?'} ({predictor.backend})"


def _companion(entities: list[EntitySpan], target: int, other: int) -> bool:
    """Whether ``other`` belongs with ``target`` rather than competing with it for a clause:
    a ticker, for a company or person (tickers stand beside their company: "Northwind
    (NASDAQ: NWND) rose"), or, for a ticker, the name written right before it."""
    t, o = entities[target], entities[other]
    if o.type == "TICKER" and t.type != "TICKER":
        return True
    if t.type == "TICKER" and o.type != "TICKER":
        return 0 <= t.start - o.end <= 3
    return False


@dataclass
class _Sentence:
    article: int
    parsed: Any
    label: str = "neutral"
    score: float = 0.0
    probabilities: dict = field(default_factory=dict)
    entities: list[EntitySpan] = field(default_factory=list)
    entity_scores: list[float | None] = field(default_factory=list)
    relations: list[FoundRelation] = field(default_factory=list)


class FinancePipeline:
    """The finance monitor's scorer: models loaded once, articles scored in batches.

    Attributes:
        config: the settings.
        model_versions: what scored the articles: artifact names with their creation time
            and backend, the spaCy pipeline, and :data:`PIPELINE_VERSION`.
    """

    def __init__(self, config: FinancePipelineConfig | None = None):
        from lepton_nlp.inference import Predictor

        self.config = config or FinancePipelineConfig()
        c = self.config
        if c.threads:
            import torch

            torch.set_num_threads(c.threads)

        def load(path: str, what: str, backend: str | None = None) -> Any:
            return Predictor.from_artifact(
                _artifact_path(path, what), batch_size=c.batch_size, backend=backend or c.backend
            )

        self.sentiment = load(c.sentiment_model, "sentiment_model")
        missing = {"negative", "positive"} - set(self.sentiment.labels)
        if missing:
            raise ConfigError(
                f"sentiment_model {c.sentiment_model!r} has labels {self.sentiment.labels}; the "
                "pipeline needs 'negative' and 'positive' (and usually 'neutral')."
            )
        self.ner = load(c.ner_model, "ner_model", c.ner_backend) if c.ner_model else None
        self.relation = load(c.relation_model, "relation_model") if c.relation_model else None
        self.nlp = load_spacy(c.spacy_model)
        self.model_versions: dict[str, str] = {
            "pipeline": PIPELINE_VERSION,
            "sentiment": _version(self.sentiment),
            "spacy": spacy_version(self.nlp),
        }
        if self.ner is not None:
            self.model_versions["ner"] = _version(self.ner)
        if self.relation is not None:
            self.model_versions["relations"] = _version(self.relation)

    # --- public -------------------------------------------------------------------------

    def score(
        self,
        articles: Sequence[NewsArticle],
        progress: Callable[[int], None] | None = None,
    ) -> list[ScoredArticle]:
        """Score articles, batched across them; one result per article, in order.

        Args:
            articles: the articles.
            progress: called with the number of articles just finished, after each chunk of
                ``config.chunk_articles`` (``tqdm.update`` fits).
        """
        out: list[ScoredArticle] = []
        size = self.config.chunk_articles
        for first in range(0, len(articles), size):
            chunk = list(articles[first : first + size])
            out.extend(self._score_chunk(chunk))
            if progress is not None:
                progress(len(chunk))
        return out

    def sentence_sentiment(self, texts: Sequence[str]) -> list[tuple[str, float, dict]]:
        """``(label, score, probabilities)`` of each text, as the pipeline scores a sentence:
        the sentiment model in batches, score = P(positive) - P(negative)."""
        out = []
        for prediction in self.sentiment.predict(list(texts)):
            probabilities = dict(prediction["scores"])
            out.append((prediction["label"], score_value(probabilities), probabilities))
        return out

    # --- stages -------------------------------------------------------------------------

    def _texts(self, articles: list[NewsArticle]) -> tuple[list[str], list[list[str]]]:
        texts, notes = [], []
        for article in articles:
            note: list[str] = []
            text = article.text or ""
            if article.language not in self.config.languages:
                note.append(
                    f"not scored: language {article.language!r} is not one of "
                    f"{self.config.languages}"
                )
                text = ""
            elif len(text) > self.config.max_chars:
                cut = text.rfind(" ", 0, self.config.max_chars)
                cut = cut if cut > self.config.max_chars // 2 else self.config.max_chars
                note.append(f"text cut at {cut} of {len(text)} characters (max_chars)")
                text = text[:cut]
            elif not text.strip():
                note.append("no text to score")
            texts.append(text)
            notes.append(note)
        return texts, notes

    def _score_chunk(self, articles: list[NewsArticle]) -> list[ScoredArticle]:
        c = self.config
        spent: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            spent[stage] = spent.get(stage, 0.0) + now - clock
            clock = now

        texts, notes = self._texts(articles)
        parsed = parse_texts(self.nlp, texts, batch_size=c.batch_size)
        sentences = [_Sentence(a, s) for a, sents in enumerate(parsed) for s in sents]
        lap("parse")

        scored = self.sentence_sentiment([s.parsed.text for s in sentences])
        for sentence, (label, value, probabilities) in zip(sentences, scored, strict=True):
            sentence.label, sentence.score, sentence.probabilities = label, value, probabilities
        lap("sentiment")

        core = (
            self.ner.predict([s.parsed.text for s in sentences])
            if self.ner is not None
            else [{"entities": []}] * len(sentences)
        )
        for sentence, found in zip(sentences, core, strict=True):
            core_spans = [
                EntitySpan(e["start"], e["end"], e["text"], CORE_TYPES[e["label"]], ("core",))
                for e in found["entities"]
                if e["label"] in CORE_TYPES
            ]
            sentence.entities = merge_entities(
                sentence.parsed.text, spacy_entities(sentence.parsed.span), core_spans
            )
        by_article: dict[int, list[_Sentence]] = {}
        for sentence in sentences:
            by_article.setdefault(sentence.article, []).append(sentence)
        for group in by_article.values():
            for sentence, spans in zip(
                group, harmonize_types([s.entities for s in group]), strict=True
            ):
                sentence.entities = spans
        lap("entities")

        self._entity_sentiment(sentences)
        lap("entity_sentiment")

        self._relations(sentences)
        lap("relations")

        results = []
        per_article: list[list[_Sentence]] = [[] for _ in articles]
        for sentence in sentences:
            per_article[sentence.article].append(sentence)
        for i, article in enumerate(articles):
            results.append(self._assemble(article, per_article[i], notes[i], texts[i]))
        lap("topics")

        weights = [max(1, len(s)) for s in per_article]
        total = sum(weights)
        for result, weight in zip(results, weights, strict=True):
            share = weight / total
            result.timings = {stage: round(spent.get(stage, 0.0) * share, 6) for stage in STAGES}
            result.timings["total"] = round(sum(result.timings.values()), 6)
        return results

    def _entity_sentiment(self, sentences: list[_Sentence]) -> None:
        """Each entity's score: its clause's where the sentence splits, else the sentence's."""
        clauses: dict[str, list[tuple[_Sentence, int]]] = {}
        for sentence in sentences:
            sentence.entity_scores = [
                sentence.score if e.type in SENTIMENT_TYPES else None for e in sentence.entities
            ]
            if not self.config.entity_clauses:
                continue
            actors = [i for i, e in enumerate(sentence.entities) if e.type in SENTIMENT_TYPES]
            if len(actors) < 2:
                continue
            for i in actors:
                target = sentence.entities[i]
                # A ticker stands beside its company ("Northwind (NWND) rose"): the two share
                # a clause, and neither splits the other off.
                others = [
                    (sentence.entities[j].start, sentence.entities[j].end)
                    for j in actors
                    if j != i and not _companion(sentence.entities, i, j)
                ]
                clause = entity_clause(sentence.parsed.span, (target.start, target.end), others)
                if clause is not None:
                    clauses.setdefault(clause, []).append((sentence, i))
        if not clauses:
            return
        texts = list(clauses)
        for text, prediction in zip(texts, self.sentiment.predict(texts), strict=True):
            value = score_value(prediction["scores"])
            for sentence, i in clauses[text]:
                sentence.entity_scores[i] = value

    def _relations(self, sentences: list[_Sentence]) -> None:
        jobs: list[tuple[_Sentence, int, int, dict]] = []
        for sentence in sentences:
            if self.relation is not None:
                for i, j, item in model_inputs(
                    sentence.parsed.text, sentence.entities, self.config.max_relation_entities
                ):
                    jobs.append((sentence, i, j, item))
        found: dict[int, list[FoundRelation]] = {}
        if jobs:
            predictions = self.relation.predict([item for *_, item in jobs])
            for (sentence, i, j, _), prediction in zip(jobs, predictions, strict=True):
                relation = read_prediction(i, j, prediction)
                if relation is not None:
                    found.setdefault(id(sentence), []).append(relation)
        for sentence in sentences:
            patterns = (
                pattern_relations(sentence.parsed.span, sentence.entities)
                if self.config.relation_patterns
                else []
            )
            sentence.relations = combine(
                found.get(id(sentence), []),
                patterns,
                self.config.relation_threshold,
                self.config.relation_prefer,
            )

    def _assemble(
        self, article: NewsArticle, sentences: list[_Sentence], notes: list[str], text: str
    ) -> ScoredArticle:
        score, label, _ = article_sentiment(
            [s.probabilities for s in sentences],
            has_title=bool(article.title and article.body and sentences),
            title_weight=self.config.title_weight,
        )
        score = round(score, 6)
        kg_article = Article(
            id=article.id,
            source=article.source,
            title=article.title,
            published=article.published,
            sentiment=score,
            url=article.url,
        )
        mentions, relations, scores = [], [], []
        for s in sentences:
            p = s.parsed
            scores.append(
                SentenceScore(
                    index=p.index,
                    text=p.text,
                    start=p.start,
                    end=p.end,
                    label=s.label,
                    score=round(s.score, 6),
                    probabilities={k: round(v, 6) for k, v in s.probabilities.items()},
                )
            )
            for entity, entity_score in zip(s.entities, s.entity_scores, strict=True):
                mentions.append(
                    Mention(
                        article_id=article.id,
                        text=entity.text,
                        type=entity.type,
                        sentence_index=p.index,
                        sentence=p.text,
                        sentiment=round(s.score, 6),
                        entity_sentiment=None if entity_score is None else round(entity_score, 6),
                    )
                )
            for r in s.relations:
                relations.append(
                    Relation(
                        article_id=article.id,
                        head=s.entities[r.head].text,
                        tail=s.entities[r.tail].text,
                        type=r.type,
                        confidence=round(min(1.0, max(0.0, r.confidence)), 6),
                        sentence=p.text,
                        sentiment=round(s.score, 6),
                        sentence_index=p.index,
                    )
                )
        topics = article_topics(
            text, [r.type for r in relations], min_hits=self.config.topic_min_hits
        )
        return ScoredArticle(
            article=article,
            sentences=scores,
            sentiment=score,
            label=label,
            topics=topics,
            extraction=Extraction(kg_article, tuple(mentions), tuple(relations)),
            model_versions=dict(self.model_versions),
            timings={},
            notes=list(notes),
        )
