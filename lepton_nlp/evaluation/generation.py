"""Generated-text metrics: ROUGE (rouge-score), BLEU and chrF (sacrebleu), multi-reference.

Scales follow the libraries: ROUGE F-measures in [0, 1], BLEU and chrF in [0, 100].
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "ROUGE_TYPES",
    "as_references",
    "bleu_chrf",
    "generation_metrics",
    "lead_baseline",
    "rouge_scores",
]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

Reference = str | Sequence[str]


def as_references(target: Reference) -> list[str]:
    """One record's reference(s) as a list of strings (a record may carry several)."""
    refs = [target] if isinstance(target, str) else list(target)
    refs = [str(r) for r in refs if r is not None and str(r).strip()]
    if not refs:
        raise ValueError(f"A record has no reference text: {target!r}.")
    return refs


def rouge_scores(
    predictions: Sequence[str], references: Sequence[Reference], use_stemmer: bool = True
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over examples (rouge-score, Porter stemming).

    With several references per example, each ROUGE type takes the reference that scores
    best for that example (rouge-score's ``score_multi``), then the mean over examples.
    ROUGE-L is the plain longest common subsequence over the whole text (not ``rougeLsum``,
    which needs sentence splitting).
    """
    from rouge_score import rouge_scorer

    _same_length(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, target in zip(predictions, references, strict=True):
        best = scorer.score_multi(as_references(target), prediction or "")
        for name in ROUGE_TYPES:
            totals[name] += best[name].fmeasure
    n = max(len(predictions), 1)
    return {name: total / n for name, total in totals.items()}


def bleu_chrf(
    predictions: Sequence[str], references: Sequence[Reference], tokenize: str = "13a"
) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults), using every reference of every example.

    Examples with fewer references than others are padded with ``None``, which sacrebleu
    skips, so the reference count may vary per example.
    """
    import sacrebleu

    _same_length(predictions, references)
    refs = [as_references(t) for t in references]
    width = max((len(r) for r in refs), default=1)
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
    hyps = [p or "" for p in predictions]
    return {
        "bleu": float(sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize).score),
        "chrf": float(sacrebleu.corpus_chrf(hyps, streams).score),
    }


def generation_metrics(
    predictions: Sequence[str], references: Sequence[Reference]
) -> dict[str, float]:
    """ROUGE-1/2/L (best reference per example), BLEU, chrF and the mean length in words."""
    if not predictions:
        return {}
    out = rouge_scores(predictions, references)
    out.update(bleu_chrf(predictions, references))
    out["gen_words"] = sum(len(p.split()) for p in predictions) / len(predictions)
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def lead_baseline(text: str, n: int = 2) -> str:
    """The first ``n`` turns of a dialogue (one turn a line), or the first ``n`` sentences of prose."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        return "\n".join(lines[:n])
    return " ".join(_SENTENCE_END.split(text.strip())[:n])


def _same_length(predictions: Sequence[str], references: Sequence[Reference]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; they must pair up."
        )
