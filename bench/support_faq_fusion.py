"""Would adding BM25 to the bot's FAQ retrieval help? Decided on validation: the project's own FAQ.

The bot ranks FAQ entries by MiniLM cosine (question and answer indexed, an entry scores the
better of the two). Dense + lexical fusion is the usual next step, and on bank_faqs BM25
over questions is level with the bot. Whether to fuse, over which text and with what weight
is chosen here on validation only: ``data/support/faq.jsonl``'s 324 paraphrases, each of
which must find its own entry among the 108. bank_faqs' queries (the test) are not read.

Fused score: ``(1 - w) * cosine + w * bm25 / ceiling``, where the ceiling is the most a
document can score for the query (``(k1 + 1) * sum of the query terms' idf``), so the lexical
part lies in [0, 1] whatever the query; BM25 is ``rank_bm25.BM25Okapi`` (k1 1.5, b 0.75)
over the entries' questions, or their questions and answers, tokenised as in
``bench/support_faq.py``. Adopted only if the best fused setting beats cosine alone on
validation top-1 by more than one query in a hundred (a rule set after a first exploratory
pass over the same validation queries, not before it).

python bench/support_faq_fusion.py
"""

from __future__ import annotations

import sys

import numpy as np
from common import ROOT, write_result

sys.path.insert(0, str(ROOT))

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
K1, B = 1.5, 0.75
#: The smallest top-1 gain over cosine (on validation) that would justify the extra signal.
MIN_GAIN = 0.01


def lexical_scores(documents: list[str], queries: list[str]) -> np.ndarray:
    """BM25 of every query against every document, divided by the query's ceiling."""
    from rank_bm25 import BM25Okapi
    from support_faq import tokenize

    bm25 = BM25Okapi([tokenize(d) for d in documents], k1=K1, b=B)
    rows = []
    for query in queries:
        terms = tokenize(query)
        ceiling = (K1 + 1) * sum(bm25.idf.get(t, 0.0) for t in set(terms))
        scores = bm25.get_scores(terms)
        rows.append(scores / ceiling if ceiling > 0 else np.zeros_like(scores))
    return np.asarray(rows)


def top_k(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return round(float(np.mean([t in row for row, t in zip(order, truth, strict=True)])), 4)


def main() -> None:
    import torch

    from apps.support.answers import AnswerFinder, Thresholds, load_faq
    from lepton_nlp.embeddings import SentenceEmbedder

    torch.set_num_threads(1)
    entries = load_faq(ROOT / "data" / "support" / "faq.jsonl")
    queries = [(p, n) for n, e in enumerate(entries) for p in e.paraphrases]
    texts, truth = [q for q, _ in queries], np.array([n for _, n in queries])
    embedder = SentenceEmbedder()
    # The bot's own scores: every entry ranked, each by its better cosine (question or answer).
    finder = AnswerFinder(entries, embedder, Thresholds(faq=0.0))
    column = {e.id: n for n, e in enumerate(entries)}
    cosine = np.zeros((len(texts), len(entries)))
    for row, ranked in enumerate(finder.faq_ranking(texts, k=len(entries))):
        for entry_id, score in ranked:
            cosine[row, column[entry_id]] = score
    figures: dict = {
        "validation": "data/support/faq.jsonl paraphrases (each must find its own entry)",
        "entries": len(entries),
        "queries": len(texts),
        "embedding_model": embedder.model_name,
        "bm25": f"rank_bm25.BM25Okapi k1={K1} b={B}; bench/support_faq.py tokenize",
        "cosine_top1": top_k(cosine, truth, 1),
        "cosine_top5": top_k(cosine, truth, 5),
        "grid": [],
    }
    fields = {
        "questions": [e.question for e in entries],
        "questions_and_answers": [f"{e.question} {e.answer}" for e in entries],
    }
    for field, documents in fields.items():
        lexical = lexical_scores(documents, texts)
        figures[f"bm25_{field}_top1"] = top_k(lexical, truth, 1)
        for weight in WEIGHTS:
            fused = (1 - weight) * cosine + weight * lexical
            figures["grid"].append(
                {
                    "bm25_over": field,
                    "weight": weight,
                    "top1": top_k(fused, truth, 1),
                    "top5": top_k(fused, truth, 5),
                }
            )
    best = max(figures["grid"], key=lambda row: (row["top1"], -row["weight"]))
    figures["best"] = best
    figures["gain_top1"] = round(best["top1"] - figures["cosine_top1"], 4)
    figures["adopt"] = figures["gain_top1"] > MIN_GAIN
    figures["rule"] = f"adopt fusion if the best setting's validation top-1 gain > {MIN_GAIN}"
    write_result("support_faq_fusion", figures)


if __name__ == "__main__":
    main()
