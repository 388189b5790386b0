"""What a customer's message means: intent with calibrated confidence, scope, entities, sentiment.

``SupportNLU.from_artifact("data/models/banking77-intent").understand("my card hasn't come")``
returns an :class:`Understanding`. The intent comes from the core's
:class:`lepton_nlp.inference.Predictor`; this module only rescales its probabilities by the
temperature in the model's ``calibration.json`` and decides, with the thresholds fitted there
on validation data (:mod:`apps.support.calibration`), whether the message is out of scope or
ambiguous. Entities come from :mod:`apps.support.entities`, the customer's tone from
:mod:`apps.support.sentiment`, the language check from :mod:`apps.common.language`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.common.language import guess_language
from apps.support.calibration import Calibration, apply_temperature, log_probabilities
from apps.support.entities import SPACY_MODEL, Entity, EntityExtractor
from apps.support.sentiment import LexiconSentiment, Sentiment, SentimentScorer

__all__ = [
    "MAX_TEXT_CHARS",
    "TOP_K",
    "IntentScore",
    "SupportNLU",
    "Understanding",
]

#: Entities and sentiment read at most this many characters of a message (the intent model
#: reads fewer still: its ``max_length`` tokens, and says so in ``truncated``).
MAX_TEXT_CHARS = 10_000

#: Intents listed in ``Understanding.ranking``.
TOP_K = 5


@dataclass(frozen=True)
class IntentScore:
    """One intent and its calibrated probability."""

    intent: str
    confidence: float


@dataclass
class Understanding:
    """What the bot understood of one message. Check ``out_of_scope``, then ``ambiguous``."""

    text: str
    intent: str | None
    """The top intent; None when the message is out of scope."""
    confidence: float
    """Calibrated probability of the top intent (temperature-scaled)."""
    ranking: list[IntentScore]
    """The top intents (at most :data:`TOP_K`), most likely first, even when out of scope."""
    out_of_scope: bool
    """True when no intent is likely enough (below the fitted threshold) or the message is
    not in English."""
    ambiguous: bool
    """True when in scope but the top two intents are within the fitted margin: confirm."""
    entities: list[Entity] = field(default_factory=list)
    sentiment: Sentiment | None = None
    english: bool = True
    reasons: list[str] = field(default_factory=list)
    """Why the message is out of scope or ambiguous, in words."""
    truncated: dict[str, int] | None = None
    """``{"chars_read", "chars"}`` when the intent model read only part of the message."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text if len(self.text) <= 200 else self.text[:200] + "...",
            "intent": self.intent,
            "confidence": self.confidence,
            "ranking": [{"intent": r.intent, "confidence": r.confidence} for r in self.ranking],
            "out_of_scope": self.out_of_scope,
            "ambiguous": self.ambiguous,
            "entities": [e.to_dict() for e in self.entities],
            "sentiment": None
            if self.sentiment is None
            else {
                "label": self.sentiment.label,
                "negative_strength": self.sentiment.negative_strength,
            },
            "english": self.english,
            "reasons": list(self.reasons),
            "truncated": self.truncated,
        }


class SupportNLU:
    """The bot's understanding of messages, over an intent Predictor.

    Args:
        intent_predictor: a classification :class:`lepton_nlp.inference.Predictor` (single
            label).
        calibration: temperature and thresholds (:class:`Calibration`); None: the identity
            (temperature 1, nothing out of scope, the default margin).
        entities: an :class:`EntityExtractor`; None: no entities.
        sentiment: a sentiment scorer (:mod:`apps.support.sentiment`); None: no sentiment.
        top_k: intents kept in ``ranking``.
    """

    def __init__(
        self,
        intent_predictor: Any,
        calibration: Calibration | None = None,
        entities: EntityExtractor | None = None,
        sentiment: SentimentScorer | None = None,
        top_k: int = TOP_K,
    ):
        if getattr(intent_predictor.spec, "multi_label", False):
            raise ValueError(
                "SupportNLU needs a single-label intent classifier; this artifact is multi-label."
            )
        self.predictor = intent_predictor
        self.calibration = calibration or Calibration()
        self.entities = entities
        self.sentiment = sentiment
        self.top_k = top_k
        self.labels = list(intent_predictor.labels)

    @classmethod
    def from_artifact(
        cls,
        path: str | Path,
        spacy_model: str | None = SPACY_MODEL,
        sentiment: SentimentScorer | str | None = "vader",
        calibration: Calibration | None = None,
        **predictor_options: Any,
    ) -> SupportNLU:
        """Load an intent artifact and the ``calibration.json`` beside it.

        Args:
            path: the intent artifact folder (e.g. ``data/models/banking77-intent``).
            spacy_model: the spaCy pipeline for names and places; None: patterns only.
            sentiment: ``"vader"``, a scorer, or None.
            calibration: overrides the artifact's ``calibration.json``.
            predictor_options: passed to ``Predictor.from_artifact`` (``backend``...).
        """
        from lepton_nlp.inference import Predictor

        predictor = Predictor.from_artifact(path, **predictor_options)
        if calibration is None:
            calibration = Calibration.load(path)
        if sentiment == "vader":
            sentiment = LexiconSentiment()
        elif isinstance(sentiment, str):
            raise ValueError(f"sentiment={sentiment!r}: give 'vader', a scorer or None.")
        extractor = EntityExtractor(spacy_model)
        return cls(predictor, calibration, extractor, sentiment)

    def intent_probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[dict | None]]:
        """Calibrated intent probabilities ``(n, labels)`` and what each text's model did not read.

        Raises:
            ValueError: a text is empty or only whitespace, or is not a string (which one).
        """
        bounded, truncated = [], []
        for i, text in enumerate(texts):
            try:
                self.predictor.check_input(text)
            except ValueError as err:
                where = f"Message {i + 1} of {len(texts)}: " if len(texts) > 1 else ""
                raise ValueError(f"{where}{err}") from err
            item, cut = self.predictor.bound_input(text)
            bounded.append(item)
            truncated.append(cut)
        if not bounded:
            return np.zeros((0, len(self.labels))), truncated
        predictions = self.predictor.predict(bounded)
        log_probs = log_probabilities([p["scores"] for p in predictions], self.labels)
        return apply_temperature(log_probs, self.calibration.temperature), truncated

    def understand(self, text: str, now: dt.date | dt.datetime | None = None) -> Understanding:
        """Understand one message; ``now`` resolves relative dates (default: today)."""
        return self.understand_many([text], now)[0]

    def understand_many(
        self, texts: list[str], now: dt.date | dt.datetime | None = None
    ) -> list[Understanding]:
        """Understand several messages in one batch (same results as one at a time).

        Raises:
            ValueError: a message is empty, only whitespace or not a string; nothing is
                predicted then, and the message says which one.
        """
        texts = list(texts)
        if not texts:
            return []
        probs, truncated = self.intent_probabilities(texts)
        bounded = [t[:MAX_TEXT_CHARS] for t in texts]
        languages = [guess_language(t) for t in bounded]
        entities = (
            self.entities.extract_many(bounded, now, [g.english for g in languages])
            if self.entities
            else None
        )
        sentiments = self.sentiment.score_many(bounded) if self.sentiment else None
        cal = self.calibration
        out = []
        for i, text in enumerate(texts):
            order = np.argsort(-probs[i])[: self.top_k]
            ranking = [IntentScore(self.labels[j], round(float(probs[i, j]), 6)) for j in order]
            top = ranking[0].confidence
            second = ranking[1].confidence if len(ranking) > 1 else 0.0
            language = languages[i]
            reasons = []
            if not language.english:
                reasons.append(f"not English: {language.reason}")
            if top < cal.oos_threshold:
                reasons.append(
                    f"no intent is likely enough: {ranking[0].intent} at {top:.2f}, under the "
                    f"threshold {cal.oos_threshold:.2f}"
                )
            out_of_scope = bool(reasons)
            ambiguous = not out_of_scope and top - second < cal.margin
            if ambiguous:
                reasons.append(
                    f"{ranking[0].intent} ({top:.2f}) and {ranking[1].intent} ({second:.2f}) "
                    f"are within the margin {cal.margin:.2f}"
                )
            out.append(
                Understanding(
                    text=text,
                    intent=None if out_of_scope else ranking[0].intent,
                    confidence=top,
                    ranking=ranking,
                    out_of_scope=out_of_scope,
                    ambiguous=ambiguous,
                    entities=entities[i] if entities is not None else [],
                    sentiment=sentiments[i] if sentiments is not None else None,
                    english=language.english,
                    reasons=reasons,
                    truncated=truncated[i],
                )
            )
        return out
