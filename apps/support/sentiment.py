"""How the customer feels: negative, neutral or positive, and how negative (for the handoff rule).

Two scorers behind one protocol:

- :class:`LexiconSentiment` (the default): VADER (Hutto and Gilbert 2014, ``vaderSentiment``),
  a rule-weighted lexicon built for short social-media text: it reads capitals, ``!!!``,
  ``but``, negation and emoticons, which is how angry customers write. It ships its lexicon
  in the package, so it works offline, and costs microseconds a message.
- :class:`ModelSentiment`: any 3-class classification artifact with ``negative``,
  ``neutral`` and ``positive`` labels through the core's Predictor, e.g. the shipped
  ``data/models/finance-sentiment`` (trained on financial news, another domain).

Both were scored on ``eval_data/sentiment_messages.csv``: 93 support messages the project
wrote and labelled (36 negative, many angry or frustrated; 33 neutral; 24 positive);
``bench/support_sentiment.py`` measures them and the README gives the figures.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "LABELS",
    "SENTIMENT_MESSAGES",
    "LexiconSentiment",
    "ModelSentiment",
    "Sentiment",
    "SentimentScorer",
    "evaluate_sentiment",
    "load_sentiment_messages",
]

LABELS = ("negative", "neutral", "positive")

#: The labelled support messages the scorers were compared on.
SENTIMENT_MESSAGES = Path(__file__).resolve().parent / "eval_data" / "sentiment_messages.csv"


@dataclass(frozen=True)
class Sentiment:
    """The customer's tone in one message."""

    label: str
    """``negative``, ``neutral`` or ``positive``."""
    negative_strength: float
    """How negative, in [0, 1]: 0 not at all, 1 as angry as the scorer can tell."""
    scores: dict[str, float] = field(default_factory=dict)
    """The scorer's own figures (VADER: neg/neu/pos/compound; a model: probabilities)."""
    method: str = ""


class SentimentScorer(Protocol):
    """Scores messages; ``name`` says which scorer."""

    name: str

    def score_many(self, texts: list[str]) -> list[Sentiment]: ...


class LexiconSentiment:
    """VADER's compound score: ``<= -0.05`` negative, ``>= 0.05`` positive, else neutral
    (the cut-offs its authors recommend; not tuned here). ``negative_strength`` is
    ``max(0, -compound)``."""

    name = "vader"

    def __init__(self, threshold: float = 0.05):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.threshold = threshold
        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, text: str) -> Sentiment:
        s = self._analyzer.polarity_scores(text)
        compound = s["compound"]
        if compound <= -self.threshold:
            label = "negative"
        elif compound >= self.threshold:
            label = "positive"
        else:
            label = "neutral"
        return Sentiment(label, round(max(0.0, -compound), 4), dict(s), self.name)

    def score_many(self, texts: list[str]) -> list[Sentiment]:
        return [self.score(t) for t in texts]


class ModelSentiment:
    """A sentiment classification artifact through the core's Predictor;
    ``negative_strength`` is its probability of ``negative``.

    Args:
        predictor: a :class:`lepton_nlp.inference.Predictor` (or anything with ``predict``
            and ``labels``) whose labels include negative, neutral and positive.
        name: what to call it in results.

    Raises:
        ValueError: the model's labels are not sentiment labels.
    """

    def __init__(self, predictor: Any, name: str = "model"):
        missing = set(LABELS) - set(predictor.labels)
        if missing:
            raise ValueError(
                f"A sentiment model needs the labels {', '.join(LABELS)}; this one lacks "
                f"{', '.join(sorted(missing))} (it has {', '.join(predictor.labels)})."
            )
        self.predictor = predictor
        self.name = name

    @classmethod
    def from_artifact(cls, path: str | Path, **kwargs: Any) -> ModelSentiment:
        from lepton_nlp.inference import Predictor

        return cls(Predictor.from_artifact(path, **kwargs), name=Path(path).name)

    def score_many(self, texts: list[str]) -> list[Sentiment]:
        out = []
        for p in self.predictor.predict(texts):
            scores = p["scores"]
            out.append(
                Sentiment(p["label"], round(float(scores["negative"]), 4), dict(scores), self.name)
            )
        return out


def load_sentiment_messages(path: str | Path = SENTIMENT_MESSAGES) -> list[dict[str, str]]:
    """The labelled support messages (``text``, ``label``)."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)]


def evaluate_sentiment(scorer: SentimentScorer, records: list[dict[str, str]]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label recall and the confusion matrix of ``scorer``."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    gold = [r["label"] for r in records]
    pred = [s.label for s in scorer.score_many([r["text"] for r in records])]
    recalls = recall_score(gold, pred, labels=list(LABELS), average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(
            float(f1_score(gold, pred, labels=list(LABELS), average="macro", zero_division=0)), 4
        ),
        **{f"recall_{label}": round(float(r), 4) for label, r in zip(LABELS, recalls, strict=True)},
        "confusion": confusion_matrix(gold, pred, labels=list(LABELS)).tolist(),
        "examples": len(records),
    }
