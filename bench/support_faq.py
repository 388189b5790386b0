"""The support bot's FAQ retrieval on bank_faqs against a BM25 baseline: top-1 and top-5 accuracy.

Data: ``$LEPTON_DATASETS/bank_faqs/BankFAQs.csv`` (``Question,Answer,Class``). Rows are
de-duplicated by question (stripped; the first row of a question is kept), then grouped by
identical answer text (stripped). Every answer gets exactly one indexed question, the first
in file order; the other questions of answers with two or more questions are the queries.
Answers with a single question are indexed too, as distractors. A query is right at k when
one of the k retrieved indexed questions belongs to its own answer.

Systems, in the same run on the same index and queries:

- ``embedding``: the bot's retrieval (:class:`apps.support.answers.AnswerFinder`, packaged
  MiniLM, flat faiss index), which indexes each entry's question and answer text and ranks an
  entry by the better of the two;
- ``embedding_questions``: the same embeddings over the indexed questions only;
- ``bm25`` / ``bm25_questions``: BM25 Okapi (k1 1.5, b 0.75, idf floored at 0.25 x mean idf,
  as rank-bm25's ``BM25Okapi``) over the same texts, tokenised as lower-cased runs of
  ``[a-z0-9]`` (:func:`tokenize`).

python bench/support_faq.py
"""

from __future__ import annotations

import csv
import math
import re
import sys
import time
from collections import Counter

from common import ROOT, datasets_root, write_result

sys.path.insert(0, str(ROOT))

TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (the BM25 tokenisation)."""
    return TOKEN.findall(text.lower())


class BM25Okapi:
    """BM25 Okapi over tokenised documents, as ``rank_bm25.BM25Okapi`` (0.2.2) scores them."""

    def __init__(
        self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ):
        self.k1, self.b = k1, b
        self.freqs = [Counter(doc) for doc in corpus]
        self.lengths = [len(doc) for doc in corpus]
        self.avgdl = sum(self.lengths) / len(corpus)
        df = Counter(word for doc in corpus for word in set(doc))
        n = len(corpus)
        self.idf = {w: math.log(n - f + 0.5) - math.log(f + 0.5) for w, f in df.items()}
        floor = epsilon * sum(self.idf.values()) / len(self.idf)
        self.idf = {w: (v if v >= 0 else floor) for w, v in self.idf.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for freqs, length in zip(self.freqs, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.avgdl)
            out.append(
                sum(
                    self.idf.get(w, 0.0) * freqs[w] * (self.k1 + 1) / (freqs[w] + norm)
                    for w in query
                    if w in freqs
                )
            )
        return out


def split(rows: list[dict]) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """``(indexed [(question, answer)], queries [(question, index of its answer)])``."""
    seen, groups = set(), {}
    for row in rows:
        question, answer = row["Question"].strip(), row["Answer"].strip()
        if not question or not answer or question in seen:
            continue
        seen.add(question)
        groups.setdefault(answer, []).append(question)
    indexed, queries = [], []
    for position, (answer, questions) in enumerate(groups.items()):
        indexed.append((questions[0], answer))
        queries.extend((q, position) for q in questions[1:])
    return indexed, queries


def accuracy(rankings: list[list[int]], truth: list[int], k: int) -> float:
    return round(sum(t in r[:k] for r, t in zip(rankings, truth, strict=True)) / len(truth), 4)


def bm25_rankings(documents: list[str], queries: list[str], k: int = 5) -> list[list[int]]:
    bm25 = BM25Okapi([tokenize(d) for d in documents])
    out = []
    for query in queries:
        scores = bm25.scores(tokenize(query))
        out.append(sorted(range(len(scores)), key=lambda i: -scores[i])[:k])
    return out


def main() -> None:
    from apps.support.answers import AnswerFinder, FaqEntry, Thresholds
    from lepton_nlp.embeddings import SentenceEmbedder

    path = datasets_root() / "bank_faqs" / "BankFAQs.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    indexed, queries = split(rows)
    texts, truth = [q for q, _ in queries], [t for _, t in queries]
    figures: dict = {
        "dataset": "bank_faqs/BankFAQs.csv",
        "rows": len(rows),
        "unique_questions": len(indexed) + len(queries),
        "answers_indexed": len(indexed),
        "answers_with_2_or_more_questions": len(set(truth)),
        "queries": len(queries),
        "one_query_points": round(100 / len(queries), 2),
        "indexed_question": "first in file order (rows de-duplicated by question first)",
        "bm25_tokenisation": "lower-cased runs of [a-z0-9]; BM25Okapi k1=1.5 b=0.75 eps=0.25",
    }
    embedder = SentenceEmbedder()
    figures["embedding_model"] = embedder.model_name
    entries = [FaqEntry(str(i), q, a) for i, (q, a) in enumerate(indexed)]
    started = time.perf_counter()
    finder = AnswerFinder(entries, embedder, Thresholds(faq=0.0))
    ranked = finder.faq_ranking(texts, k=5)
    figures["embedding_seconds"] = round(time.perf_counter() - started, 1)
    systems = {"embedding": [[int(i) for i, _ in row] for row in ranked]}
    questions_only = AnswerFinder(
        [FaqEntry(e.id, e.question, e.question) for e in entries], embedder, Thresholds(faq=0.0)
    )
    systems["embedding_questions"] = [
        [int(i) for i, _ in row] for row in questions_only.faq_ranking(texts, k=5)
    ]
    started = time.perf_counter()
    systems["bm25"] = bm25_rankings([f"{q} {a}" for q, a in indexed], texts)
    figures["bm25_seconds"] = round(time.perf_counter() - started, 1)
    systems["bm25_questions"] = bm25_rankings([q for q, _ in indexed], texts)
    print(f"\n{'system':<22}{'top-1':>8}{'top-5':>8}")
    for name, rankings in systems.items():
        figures[f"{name}_top1"] = accuracy(rankings, truth, 1)
        figures[f"{name}_top5"] = accuracy(rankings, truth, 5)
        print(f"{name:<22}{figures[f'{name}_top1']:>8.3f}{figures[f'{name}_top5']:>8.3f}")
    figures["top1_gain_over_bm25_points"] = round(
        100 * (figures["embedding_top1"] - figures["bm25_top1"]), 1
    )
    figures["target"] = "embedding top-1 at least 5 points above BM25 (both over question + answer)"
    figures["target_met"] = figures["top1_gain_over_bm25_points"] >= 5
    print()
    write_result("support_faq", figures)


if __name__ == "__main__":
    main()
