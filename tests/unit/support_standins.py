"""Deterministic stand-ins for the support bot's understanding and answers (no models)."""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass

import numpy as np

from apps.support.entities import Entity
from apps.support.sentiment import Sentiment
from apps.support.understanding import IntentScore, Understanding

#: keyword -> (intent, confidence, second intent, its confidence)
RULES = {
    "lost": ("lost_or_stolen_card", 0.95, "card_not_working", 0.02),
    "stolen": ("lost_or_stolen_card", 0.95, "card_not_working", 0.02),
    "transfer": ("transfer_not_received_by_recipient", 0.9, "pending_transfer", 0.05),
    "refund": ("request_refund", 0.9, "reverted_card_payment?", 0.05),
    "activate": ("activate_my_card", 0.92, "card_arrival", 0.03),
    "rate": ("exchange_rate", 0.9, "card_payment_wrong_exchange_rate", 0.05),
    "topup": ("top_up_failed", 0.42, "top_up_reverted_card_payment", 0.40),
    "limit": ("top_up_limits", 0.5, "atm_limit", 0.45),
}
ANGRY = ("furious", "disgusting", "useless", "worst")


@dataclass
class StandInAnswer:
    text: str
    source: str
    score: float
    kind: str
    question: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class HashedWords:
    """Deterministic embedder: counts of hashed lower-cased words, unit length."""

    model_name = "hashed-words"
    dim = 256

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts, normalize: bool = True) -> np.ndarray:
        self.encoded += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms) if normalize else out


class StandInAnswers:
    """Answers every question of a known topic; None for 'unanswerable'.

    Args:
        embedder: the FAQ's embedder as ``AnswerFinder.embedder`` (similar resolved cases
            use it); None: none, as without MiniLM.
    """

    def __init__(self, embedder=None) -> None:
        self.asked: list[str] = []
        #: The intent the bot passed with each question.
        self.intents: list[str | None] = []
        if embedder is not None:
            self.embedder = embedder

    def find(self, question: str, intent: str | None = None) -> StandInAnswer | None:
        self.asked.append(question)
        self.intents.append(intent)
        if "unanswerable" in question:
            return None
        return StandInAnswer(
            f"Answer to: {question}", "policies/cards.md#x", 0.8, "faq", "Canned question?"
        )


def entities(text: str) -> list[Entity]:
    found = []
    for m in re.finditer(r"ending (\d{4})", text):
        found.append(Entity("CARD_LAST4", m.group(0), m.start(), m.end(), m.group(1)))
    for m in re.finditer(r"£(\d+)", text):
        found.append(Entity("AMOUNT", m.group(0), m.start(), m.end(), float(m.group(1)), "GBP"))
    for m in re.finditer(r"\byesterday\b|\b\d{4}-\d{2}-\d{2}\b", text):
        value = "2026-12-02" if m.group(0) == "yesterday" else m.group(0)
        found.append(Entity("DATE", m.group(0), m.start(), m.end(), value))
    for m in re.finditer(r"\b(Amazon|Tesco)\b", text):
        found.append(Entity("ORG", m.group(0), m.start(), m.end(), m.group(0), source="spacy"))
    return found


def understand(text: str) -> Understanding:
    low = text.lower()
    sentiment = Sentiment(
        "negative" if any(w in low for w in ANGRY) else "neutral",
        0.9 if any(w in low for w in ANGRY) else 0.0,
    )
    for key, (intent, conf, second, conf2) in RULES.items():
        if key in low:
            ambiguous = conf - conf2 < 0.1
            return Understanding(
                text,
                intent,
                conf,
                [IntentScore(intent, conf), IntentScore(second, conf2)],
                False,
                ambiguous,
                entities(text),
                sentiment,
            )
    return Understanding(
        text,
        None,
        0.1,
        [IntentScore("card_arrival", 0.1), IntentScore("exchange_rate", 0.05)],
        True,
        False,
        entities(text),
        sentiment,
        reasons=["no intent is likely enough"],
    )


class StandInNLU:
    """An object with ``understand`` (like SupportNLU)."""

    def understand(self, text: str) -> Understanding:
        return understand(text)


def make_bot(store=None):
    """A bot on the stand-ins (the page's ``LEPTON_SUPPORT_BOT_FACTORY`` in tests), with the
    hashed-words embedder for similar resolved cases."""
    from apps.support.dialogue import SupportBot

    return SupportBot(StandInNLU(), StandInAnswers(HashedWords()), store=store)
