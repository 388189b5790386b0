"""Sentence-encoder scores: text vs label description (zero-shot), text vs labelled examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lepton_nlp.training.prompts.templates import label_words

__all__ = ["describe_labels", "example_similarity", "label_similarity", "nearest", "top_labels"]


def describe_labels(
    labels: Sequence[str], descriptions: Mapping[str, str] | None = None
) -> list[str]:
    """Each label's description: the one given, else its name as words.

    Raises:
        ValueError: a description for a label the data does not have.
    """
    descriptions = dict(descriptions or {})
    unknown = sorted(set(descriptions) - set(labels))
    if unknown:
        raise ValueError(
            f"prompting.label_descriptions names labels the data does not have: {unknown}; the "
            f"labels are {', '.join(labels)}."
        )
    return [descriptions.get(label) or label_words(label) for label in labels]


def label_similarity(text_vectors: np.ndarray, label_vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every text to every label description, ``(texts, labels)``
    (the vectors are unit length, as :class:`lepton_nlp.embeddings.SentenceEmbedder` gives)."""
    return text_vectors @ label_vectors.T


def example_similarity(
    text_vectors: np.ndarray,
    example_vectors: np.ndarray,
    example_labels: Sequence[str],
    labels: Sequence[str],
) -> np.ndarray:
    """Each label's score for each text: the cosine similarity of its nearest labelled example
    of that label (``-inf`` for a label without examples), ``(texts, labels)``."""
    sims = text_vectors @ example_vectors.T
    out = np.full((len(text_vectors), len(labels)), -np.inf)
    owner = np.array([list(labels).index(label) for label in example_labels])
    for k in range(len(labels)):
        cols = sims[:, owner == k]
        if cols.size:
            out[:, k] = cols.max(axis=1)
    return out


def top_labels(scores: np.ndarray, n: int) -> list[list[int]]:
    """Per text, the indices of its ``n`` best-scored labels, best first."""
    n = min(n, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    return [row.tolist() for row in order]


def nearest(text_vectors: np.ndarray, example_vectors: np.ndarray, n: int) -> list[list[int]]:
    """Per text, the indices of its ``n`` most similar examples, least similar first (so the
    most similar demonstration stands right before the text)."""
    n = min(n, example_vectors.shape[0])
    if n == 0:
        return [[] for _ in range(len(text_vectors))]
    sims = text_vectors @ example_vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    return [row[::-1].tolist() for row in order]
