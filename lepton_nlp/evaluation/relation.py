"""Relation extraction scores: the SemEval-2010 Task 8 official macro-F1, plus accuracy.

The official score is the scorer's "(9+1)-way evaluation with directionality taken into
account" (``semeval2010_task8_scorer-v1.2.pl``, part iii): directed labels such as
``Cause-Effect(e2,e1)`` are scored by their relation type (``Cause-Effect``), a prediction
counts as correct only with the right type *and* direction, a right type with the wrong
direction is an error charged to that type's precision, and the F1 of each type found in
the references is averaged with the no-relation label (``Other``) left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["relation_metrics", "relation_type"]

_DIRECTION = re.compile(r"\(e[12],e[12]\)$")


def relation_type(label: str) -> str:
    """The relation without its direction: ``Cause-Effect(e2,e1)`` -> ``Cause-Effect``."""
    return _DIRECTION.sub("", label)


def relation_metrics(
    predictions: Sequence[str], references: Sequence[str], other: str | None = "Other"
) -> dict[str, float]:
    """The official SemEval-2010 Task 8 score and its companions, as fractions in [0, 1].

    Per relation type ``T`` (every type in ``references`` except ``other``), as the official
    scorer counts them:

    - correct: the prediction equals the reference exactly (type and direction);
    - precision = correct / (predictions of type ``T``, wrong directions included);
    - recall = correct / (references of type ``T``);

    ``macro_f1`` (the official score) averages the per-type F1; ``micro_*`` pools the counts
    of those types. ``accuracy`` is plain exact-label accuracy over every example, ``other``
    included. Labels without an ``(e1,e2)``/``(e2,e1)`` suffix are their own type.

    Args:
        predictions: predicted labels.
        references: gold labels, in the same order.
        other: the no-relation label left out of the averages (None leaves nothing out).

    Returns:
        ``macro_f1``, ``macro_precision``, ``macro_recall``, ``micro_f1``, ``micro_precision``,
        ``micro_recall``, ``accuracy``, and ``f1_<type>`` per relation type.

    Raises:
        ValueError: the two sequences differ in length or are empty.
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} references; give one each."
        )
    if not references:
        raise ValueError("No examples to score.")
    correct: Counter[str] = Counter()
    proposed: Counter[str] = Counter()  # every prediction of the type, wrong directions included
    gold: Counter[str] = Counter()
    for predicted, reference in zip(predictions, references, strict=True):
        gold[relation_type(reference)] += 1
        proposed[relation_type(predicted)] += 1
        if predicted == reference:
            correct[relation_type(reference)] += 1
    types = sorted(t for t in gold if t != other)
    out: dict[str, float] = {}
    precisions, recalls, f1s = [], [], []
    for kind in types:
        p = correct[kind] / proposed[kind] if proposed[kind] else 0.0
        r = correct[kind] / gold[kind]
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(f1)
        out[f"f1_{kind}"] = f1
    n_correct = sum(correct[t] for t in types)
    n_proposed = sum(proposed[t] for t in types)
    n_gold = sum(gold[t] for t in types)
    micro_p = n_correct / n_proposed if n_proposed else 0.0
    micro_r = n_correct / n_gold if n_gold else 0.0
    count = len(types) or 1
    return {
        "macro_f1": sum(f1s) / count,
        "macro_precision": sum(precisions) / count,
        "macro_recall": sum(recalls) / count,
        "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "accuracy": sum(p == r for p, r in zip(predictions, references, strict=True))
        / len(references),
        **out,
    }
