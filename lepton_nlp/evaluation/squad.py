"""SQuAD exact match and F1, as the official v1.1 evaluation script computes them.

The functions follow ``evaluate-v1.1.py`` (Rajpurkar et al. 2016) line for line: answers are
normalised (lower case, punctuation and the articles a/an/the removed, whitespace collapsed),
F1 is over normalised tokens, and each question scores its best match among its gold
answers. One addition for SQuAD 2.0-style data: a question with no gold answer is scored as
the v2.0 script does, 1 when the prediction is empty and 0 otherwise.

Scores are fractions in [0, 1] like every other metric in lepton-nlp (the official script
prints them x100: 0.81 here is its 81.0).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["exact_match_score", "f1_score", "normalize_answer", "squad_metrics"]

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 of two answers after normalisation (0 when nothing is shared)."""
    predicted = normalize_answer(prediction).split()
    reference = normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(reference)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(reference)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 over questions, each the best over its gold answers.

    Args:
        predictions: one predicted answer string per question (``""`` for "no answer").
        golds: the gold answer strings of each question; an empty list means the question
            has no answer (SQuAD 2.0), and only an empty prediction scores on it.

    Returns:
        ``{"exact_match", "f1"}`` as fractions in [0, 1] (0.0 for no questions).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(predictions) != len(golds):
        raise ValueError(
            f"{len(predictions)} predictions for {len(golds)} questions; give one per question."
        )
    exact = f1 = 0.0
    for prediction, answers in zip(predictions, golds, strict=True):
        if not answers:
            empty = float(not normalize_answer(prediction))
            exact += empty
            f1 += empty
            continue
        exact += max(exact_match_score(prediction, gold) for gold in answers)
        f1 += max(f1_score(prediction, gold) for gold in answers)
    total = max(len(predictions), 1)
    return {"exact_match": exact / total, "f1": f1 / total}
