"""Similar resolved cases for a handoff: past conversations an agent has answered and closed.

When the bot hands a conversation to a person, the agent also sees the closed handoffs most
like it, each with its similarity and what the agent answered then (issue 19). A case is a
closed handoff with at least one agent reply; its text is the customer's turns of its
transcript, embedded (``SentenceEmbedder``, or anything with ``encode(texts, normalize=True)``)
into a flat :class:`~lepton_nlp.retrieval.VectorIndex` and searched with the customer's
turns of the handoff at hand::

    cases = SimilarCases(embedder)
    cases.refresh(store)  # embeds only the cases it has not seen
    cases.similar(handoff, k=3)  # [SimilarCase(handoff_id, sender, score, customer, resolution, ...)]

    similar_for(bot, handoffs)  # the same for a bot's handoffs, one index per bot

No Streamlit here: the API and the page share it (:func:`cases_for`, :func:`similar_for`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from apps.support.dialogue import ConversationStore, Handoff, is_handoff_request
from lepton_nlp.retrieval import IndexConfig, VectorIndex

__all__ = [
    "Case",
    "SimilarCase",
    "SimilarCases",
    "cases_for",
    "customer_text",
    "resolved_cases",
    "similar_for",
]

#: Characters of a case's customer text shown to the agent.
SHOWN_CHARS = 500


class Embedder(Protocol):
    def encode(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray: ...


@dataclass
class Case:
    """A resolved conversation: a closed handoff and what the agent answered."""

    handoff_id: int
    sender: str
    reason: str
    customer: str
    """The customer's turns, one per line."""
    resolution: str
    """The agent's replies, one per line."""


@dataclass
class SimilarCase:
    """A resolved case found for a handoff, ``score`` its cosine similarity."""

    handoff_id: int
    sender: str
    score: float
    reason: str
    customer: str
    resolution: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def customer_text(transcript: str) -> str:
    """The customer's lines of a transcript (``Customer: ...``), one per line, without the
    speaker and without requests for a person (unless that is all there is); a line with no
    speaker continues the line before it."""
    lines: list[str] = []
    speaker = None
    for line in transcript.splitlines():
        name, sep, text = line.partition(": ")
        if sep and name in ("Customer", "Bot", "Agent"):
            speaker = name
            if name == "Customer":
                lines.append(text.strip())
        elif speaker == "Customer" and lines and line.strip():
            lines[-1] += " " + line.strip()
    said = [line for line in lines if line]
    # "I want to talk to a human" is in most handoffs: it would make them all look alike.
    about = [line for line in said if not is_handoff_request(line)]
    return "\n".join(about or said)


def _events(store: Any, sender: str) -> list[dict[str, Any]]:
    if hasattr(store, "events_of"):  # the SQL store
        return store.events_of(sender)
    return [e for e in getattr(store, "events", []) if e["sender"] == sender]  # MemoryStore


def resolved_cases(store: ConversationStore) -> list[Case]:
    """The closed handoffs of ``store`` with an agent reply, oldest first.

    An agent reply belongs to the sender's latest handoff before it (the events' order).
    """
    cases = []
    for handoff in store.handoffs("closed"):
        if handoff.id is None:
            continue
        replies, current = [], None
        for event in _events(store, handoff.sender):
            if event["kind"] == "handoff":
                current = event["data"].get("id")
            elif event["kind"] == "agent" and current == handoff.id:
                replies.append(str(event["data"].get("text", "")).strip())
        customer = customer_text(handoff.transcript)
        resolution = "\n".join(r for r in replies if r)
        if customer and resolution:
            cases.append(Case(handoff.id, handoff.sender, handoff.reason, customer, resolution))
    return cases


class SimilarCases:
    """Resolved cases in a flat vector index, searched for a handoff.

    Args:
        embedder: ``encode(texts, normalize=True) -> array`` (the FAQ's ``SentenceEmbedder``).
        min_score: cases below this cosine are left out (default: none).
    """

    def __init__(self, embedder: Embedder, min_score: float = -1.0):
        self.embedder = embedder
        self.min_score = min_score
        self.cases: dict[int, Case] = {}
        self._vectors: dict[int, np.ndarray] = {}
        self._index: VectorIndex | None = None
        self._lock = threading.Lock()

    def refresh(self, store: ConversationStore) -> int:
        """Index the store's resolved cases; only new or changed ones are embedded.

        Returns:
            How many cases the index holds.
        """
        cases = {c.handoff_id: c for c in resolved_cases(store)}
        with self._lock:
            new = [c for i, c in cases.items() if self.cases.get(i) != c]
            if new:
                vectors = np.asarray(
                    self.embedder.encode([c.customer for c in new], normalize=True),
                    dtype=np.float32,
                )
                for case, vector in zip(new, vectors, strict=True):
                    self._vectors[case.handoff_id] = vector
            if new or set(cases) != set(self.cases):
                self._vectors = {i: v for i, v in self._vectors.items() if i in cases}
                self.cases = cases
                ids = sorted(cases)
                self._index = (
                    VectorIndex.build(
                        ids, np.stack([self._vectors[i] for i in ids]), IndexConfig(kind="flat")
                    )
                    if ids
                    else None
                )
            return len(self.cases)

    def similar_many(self, handoffs: Sequence[Handoff], k: int = 3) -> list[list[SimilarCase]]:
        """Up to ``k`` resolved cases per handoff, best first (a handoff never finds itself)."""
        texts = [customer_text(h.transcript) for h in handoffs]
        out: list[list[SimilarCase]] = [[] for _ in handoffs]
        asked = [n for n, text in enumerate(texts) if text]
        with self._lock:
            index, cases = self._index, self.cases
        if index is None or not asked:
            return out
        queries = np.asarray(
            self.embedder.encode([texts[n] for n in asked], normalize=True), dtype=np.float32
        )
        found = index.search(
            queries, k, exclude=[[] if handoffs[n].id is None else [handoffs[n].id] for n in asked]
        )
        for n, ids, scores in zip(asked, found.ids, found.scores, strict=True):
            for case_id, score in zip(ids, scores, strict=True):
                if score < self.min_score:
                    continue
                case = cases[int(case_id)]
                out[n].append(
                    SimilarCase(
                        case.handoff_id,
                        case.sender,
                        round(float(score), 4),
                        case.reason,
                        case.customer[:SHOWN_CHARS],
                        case.resolution,
                    )
                )
        return out

    def similar(self, handoff: Handoff, k: int = 3) -> list[SimilarCase]:
        """Up to ``k`` resolved cases like ``handoff``, best first."""
        return self.similar_many([handoff], k)[0]


_by_bot: weakref.WeakKeyDictionary[Any, SimilarCases] = weakref.WeakKeyDictionary()
_by_bot_lock = threading.Lock()


def cases_for(bot: Any) -> SimilarCases | None:
    """The resolved cases of ``bot`` (a ``SupportBot``), one index per bot, embedded with its
    FAQ's embedder (``bot.answers.embedder``); None when its answers have no embedder."""
    embedder = getattr(bot.answers, "embedder", None)
    if embedder is None:
        return None
    with _by_bot_lock:
        cases = _by_bot.get(bot)
        if cases is None or cases.embedder is not embedder:
            cases = _by_bot[bot] = SimilarCases(embedder)
        return cases


def similar_for(
    bot: Any, handoffs: Sequence[Handoff], k: int = 3
) -> list[list[SimilarCase]] | None:
    """Up to ``k`` resolved cases per handoff of ``bot``'s store (the index refreshed first);
    None when the bot has no embedder (see :func:`cases_for`)."""
    cases = cases_for(bot)
    if cases is None:
        return None
    if not handoffs:
        return []
    cases.refresh(bot.store)
    return cases.similar_many(handoffs, k)
