"""Sentiment of sentences, articles and the entities a sentence names (score = P(pos) - P(neg)).

- **Sentences** go through the core's :class:`~lepton_nlp.inference.Predictor` on the
  shipped ``finance-sentiment`` artifact (int8 with padding-free batches where its check
  allows, the artifact's default), batched across articles.
- **Articles**: the weighted mean of their sentences' probabilities, the title counting
  ``title_weight`` times (:func:`article_sentiment`); its score is therefore the weighted mean
  of the sentence scores and its label the largest mean probability.
- **Entities**: a mention's sentiment comes from its own sentence, never the article. When
  the sentence names other entities, it comes from the clause that concerns the mention
  (:func:`entity_clause`): the dependency subtree of the clause holding the mention, without
  the sub-clauses that hold only other entities ("*Northwind's profit soared* while Contoso
  posted a loss"). That clause is scored by the same model; a sentence that does not split
  keeps the sentence's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "CLAUSE_DEPS",
    "article_sentiment",
    "entity_clause",
    "score_value",
]

#: Dependency labels that start a clause of their own (with a verb at its head); not
#: ``xcomp``, which shares its subject ("Northwind *agreed to acquire* Contoso").
CLAUSE_DEPS = frozenset({"ROOT", "advcl", "conj", "ccomp", "relcl", "parataxis"})
_VERBAL = frozenset({"VERB", "AUX"})
#: Tokens trimmed from the edges of a clause ("while", "but", ",").
_EDGE_DEPS = frozenset({"cc", "mark", "punct", "prep"})


def score_value(probabilities: dict[str, float]) -> float:
    """P(positive) - P(negative), clipped to [-1, 1] (a label the model lacks counts 0)."""
    value = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
    return max(-1.0, min(1.0, float(value)))


def article_sentiment(
    sentence_probabilities: Sequence[dict[str, float]],
    has_title: bool,
    title_weight: float = 2.0,
) -> tuple[float, str, dict[str, float]]:
    """An article's sentiment from its sentences.

    Args:
        sentence_probabilities: each sentence's label probabilities, in order.
        has_title: whether the first sentence is the title (it then weighs ``title_weight``).
        title_weight: weight of the title against 1 for each body sentence.

    Returns:
        ``(score, label, mean probabilities)``; ``(0.0, "neutral", {})`` without sentences.
    """
    if not sentence_probabilities:
        return 0.0, "neutral", {}
    weights = [1.0] * len(sentence_probabilities)
    if has_title:
        weights[0] = title_weight
    total = sum(weights)
    labels = sorted({k for p in sentence_probabilities for k in p})
    mean = {
        label: sum(
            w * p.get(label, 0.0) for w, p in zip(weights, sentence_probabilities, strict=True)
        )
        / total
        for label in labels
    }
    label = max(mean, key=mean.__getitem__)
    return score_value(mean), label, mean


def _is_clause_head(token: Any) -> bool:
    return token.dep_ == "ROOT" or (token.dep_ in CLAUSE_DEPS and token.pos_ in _VERBAL)


def _clause_head(token: Any) -> Any:
    while not _is_clause_head(token) and token.head is not token:
        token = token.head
    return token


def _root_of(sentence: Any, start: int, end: int) -> Any | None:
    """The syntactic head token of the characters [start, end) of the sentence span."""
    base = _base(sentence)
    tokens = [t for t in sentence if base + start <= t.idx < base + end]
    if not tokens:
        return None
    inside = {t.i for t in tokens}
    for token in tokens:
        if token.head.i not in inside or token.head is token:
            return token
    return tokens[0]


def _base(sentence: Any) -> int:
    text = sentence.text
    return sentence.start_char + (len(text) - len(text.lstrip()))


def entity_clause(
    sentence: Any, target: tuple[int, int], others: Sequence[tuple[int, int]]
) -> str | None:
    """The part of a parsed sentence that concerns the entity at ``target``.

    Args:
        sentence: the spaCy ``Span`` of the sentence.
        target: the entity's character range in the sentence text (stripped, as
            :class:`apps.finance.sentences.ParsedSentence` gives it).
        others: the other entities' ranges in the same sentence.

    Returns:
        The clause's text, or None when the sentence does not split apart from the other
        entities (score the whole sentence then): no other entity, or every other entity in
        the same clause as the target.
    """
    if not others:
        return None
    root = _root_of(sentence, *target)
    if root is None:
        return None
    head = _clause_head(root)
    other_roots = [r for r in (_root_of(sentence, *o) for o in others) if r is not None]
    if not other_roots:
        return None
    # Sub-clauses of the target's clause that hold another entity but not the target.
    removed: set[int] = set()
    for token in head.subtree:
        if token is head or not _is_clause_head(token):
            continue
        subtree = {t.i for t in token.subtree}
        if root.i in subtree:
            continue
        if any(o.i in subtree for o in other_roots):
            removed |= subtree
    kept = [t for t in head.subtree if t.i not in removed]
    if any(o.i in {t.i for t in kept} for o in other_roots):
        # Another entity shares the target's own clause: the clause cannot tell them apart.
        return None
    while kept and kept[0].dep_ in _EDGE_DEPS:
        kept = kept[1:]
    while kept and kept[-1].dep_ in _EDGE_DEPS and kept[-1].pos_ != "PART":
        kept = kept[:-1]
    if len(kept) < 2 or len(kept) >= len(sentence):
        return None
    text = "".join(t.text_with_ws for t in kept).strip()
    return text or None
