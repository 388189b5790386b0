"""The support bot's FAQ retrieval on bank_faqs against a BM25 baseline: top-1 and top-5 accuracy.

Data: ``$LEPTON_DATASETS/bank_faqs/BankFAQs.csv`` (``Question,Answer,Class``). Rows are
de-duplicated by question (stripped; the first row of a question is kept), then grouped by
identical answer text (stripped). Every answer gets exactly one indexed question, the first
in file order; the other questions of answers with two or more questions are the queries.
Answers with a single question are indexed too, as distractors. A query is right at k when
one of the k retrieved indexed questions belongs to its own answer.

Ties count fairly: when several entries share the right entry's score, the right one's rank
is taken as uniform over the tied positions (a 2-way tie at the top is worth 0.5 at top-1).
Breaking ties by file order instead flatters BM25 here: a query's indexed question usually
sits just above it in the file, and 8 of the 41 queries tie at BM25's top score (product
questions that differ only in a product name); those figures are kept as ``*_first_in_file``.

Systems, in the same run on the same index and queries:

- ``embedding``: the bot's retrieval (:class:`apps.support.answers.AnswerFinder`, packaged
  MiniLM, flat faiss index), which embeds each entry's question and answer text and scores an
  entry by the mean of the two cosines plus a fifth of BM25 (``LEXICAL_WEIGHT``, chosen on
  validation by ``bench/support_faq_fusion.py``);
- ``embedding_dense``: the same without the lexical part (the mean cosine alone);
- ``embedding_questions``: the embeddings of the indexed questions only (cosine alone);
- ``embedding_tuned`` / ``embedding_tuned_questions``: the same two after the bot's tune step
  (:func:`apps.support.faq_tuning.tune_faq_encoder`, ``lepton-support tune-faq``): MiniLM
  fine-tuned on the INDEXED questions and their answers only (the query questions are never
  trained on), with exactly the settings chosen on the project's own FAQ paraphrases by
  ``bench/support_faq_tuning.py`` (read from ``bench/results/support_faq_tuning.json``);
- ``bm25`` / ``bm25_questions``: ``rank_bm25.BM25Okapi`` (k1 1.5, b 0.75, epsilon 0.25) over
  the same texts (question + answer) / over the indexed questions alone, tokenised as
  lower-cased runs of ``[a-z0-9]`` (:func:`tokenize`).

The target is judged for the untuned and the tuned bot against the better BM25; the
headline ``target_met`` is the tuned bot's (the bot after its tune step).

python bench/support_faq.py [--seed N --out NAME]   # another tuning seed, another results file
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, datasets_root, write_result

sys.path.insert(0, str(ROOT))

from apps.support.answers import tokenize  # the bot's own BM25 tokenisation

#: Scores within this distance of the right entry's count as tied with it.
TIE = 1e-6
#: Candidates each system returns per query (enough to see the ties around rank 5).
DEPTH = 20


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


def hit_rate(ranked: list[tuple[int, float]], truth: int, k: int) -> float:
    """The chance that ``truth`` is among the first ``k`` of ``ranked`` (best first, with
    scores), ties broken uniformly at random; 0 when ``truth`` is not in ``ranked``."""
    scores = dict(ranked)
    if truth not in scores:
        return 0.0
    mine = scores[truth]
    above = sum(s > mine + TIE for s in scores.values())
    tied = sum(abs(s - mine) <= TIE for s in scores.values())
    return min(max((k - above) / tied, 0.0), 1.0)


def accuracy(rankings: list[list[tuple[int, float]]], truth: list[int], k: int) -> float:
    return round(
        sum(hit_rate(r, t, k) for r, t in zip(rankings, truth, strict=True)) / len(truth), 4
    )


def first_in_file(rankings: list[list[tuple[int, float]]], truth: list[int], k: int) -> float:
    """Top-k with ties broken by file order (the lower index first)."""
    hits = 0
    for ranked, t in zip(rankings, truth, strict=True):
        order = sorted(ranked, key=lambda pair: (-round(pair[1] / TIE), pair[0]))
        hits += t in [i for i, _ in order[:k]]
    return round(hits / len(truth), 4)


def bm25_rankings(documents: list[str], queries: list[str]) -> list[list[tuple[int, float]]]:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokenize(d) for d in documents])
    out = []
    for query in queries:
        scores = bm25.get_scores(tokenize(query))
        best = np.argsort(-scores, kind="stable")[:DEPTH]
        out.append([(int(i), float(scores[i])) for i in best])
    return out


def chosen_settings() -> dict:
    """The tuning settings chosen on validation (``bench/support_faq_tuning.py``)."""
    path = RESULTS / "support_faq_tuning.json"
    if not path.is_file():
        sys.exit(f"{path} not found: run python bench/support_faq_tuning.py first (validation).")
    return json.loads(path.read_text(encoding="utf-8"))["chosen"]


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="the tune step's seed (42)")
    parser.add_argument("--out", default="support_faq", help="results file name")
    args = parser.parse_args(argv)
    import torch

    from apps.support.answers import AnswerFinder, FaqEntry, Thresholds
    from apps.support.faq_tuning import FaqTuneSettings, tune_faq_encoder
    from lepton_nlp.embeddings import SentenceEmbedder

    torch.set_num_threads(1)

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
        "ties": "uniform over the tied positions (expected accuracy); *_first_in_file: the "
        "lower file index first",
        "bm25": "rank_bm25.BM25Okapi k1=1.5 b=0.75 epsilon=0.25; lower-cased runs of [a-z0-9]",
    }
    embedder = SentenceEmbedder()
    figures["embedding_model"] = embedder.model_name
    entries = [FaqEntry(str(i), q, a) for i, (q, a) in enumerate(indexed)]
    started = time.perf_counter()
    finder = AnswerFinder(entries, embedder, Thresholds(faq=0.0))
    systems = {
        "embedding": [[(int(i), s) for i, s in row] for row in finder.faq_ranking(texts, k=DEPTH)]
    }
    figures["embedding_seconds"] = round(time.perf_counter() - started, 1)
    figures["embedding_scoring"] = finder.scoring
    dense = AnswerFinder(entries, embedder, Thresholds(faq=0.0), lexical_weight=0.0)
    systems["embedding_dense"] = [
        [(int(i), s) for i, s in row] for row in dense.faq_ranking(texts, k=DEPTH)
    ]
    questions_only = AnswerFinder(
        [FaqEntry(e.id, e.question, e.question) for e in entries],
        embedder,
        Thresholds(faq=0.0),
        lexical_weight=0.0,
    )
    systems["embedding_questions"] = [
        [(int(i), s) for i, s in row] for row in questions_only.faq_ranking(texts, k=DEPTH)
    ]
    # The tune step, on the indexed entries only: the queries stay unseen.
    chosen = chosen_settings()
    settings = FaqTuneSettings(**chosen)
    if args.seed is not None:
        settings = FaqTuneSettings(**chosen, seed=args.seed)
    figures["tuning_seed"] = settings.seed
    figures["tuning_settings"] = chosen
    figures["tuning_settings_source"] = "bench/results/support_faq_tuning.json (validation)"
    scratch = Path(tempfile.mkdtemp(prefix="faq-encoder-"))
    try:
        tuned = tune_faq_encoder(
            entries,
            scratch / "encoder",
            settings,
            source="bank_faqs indexed questions and their answers (no query question)",
            progress=True,
        )
        figures["tuning_pairs"] = tuned.record["tuned_on"]["pairs"]
        figures["tuning_steps"] = tuned.record["steps"]
        figures["tuning_train_loss"] = tuned.record["train_loss"]
        figures["tuning_seconds"] = tuned.record["train_seconds"]
        tuned_embedder = SentenceEmbedder(str(tuned.output))
        started = time.perf_counter()
        finder = AnswerFinder(entries, embedder, Thresholds(faq=0.0), faq_embedder=tuned_embedder)
        systems["embedding_tuned"] = [
            [(int(i), s) for i, s in row] for row in finder.faq_ranking(texts, k=DEPTH)
        ]
        figures["embedding_tuned_seconds"] = round(time.perf_counter() - started, 1)
        questions_only = AnswerFinder(
            [FaqEntry(e.id, e.question, e.question) for e in entries],
            tuned_embedder,
            Thresholds(faq=0.0),
            lexical_weight=0.0,
        )
        systems["embedding_tuned_questions"] = [
            [(int(i), s) for i, s in row] for row in questions_only.faq_ranking(texts, k=DEPTH)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    systems["bm25"] = bm25_rankings([f"{q} {a}" for q, a in indexed], texts)
    figures["bm25_seconds"] = round(time.perf_counter() - started, 1)
    systems["bm25_questions"] = bm25_rankings([q for q, _ in indexed], texts)
    print(f"\n{'system':<22}{'top-1':>8}{'top-5':>8}{'top-1 file order':>18}")
    for name, rankings in systems.items():
        figures[f"{name}_top1"] = accuracy(rankings, truth, 1)
        figures[f"{name}_top5"] = accuracy(rankings, truth, 5)
        figures[f"{name}_top1_first_in_file"] = first_in_file(rankings, truth, 1)
        figures[f"{name}_tied_at_top"] = sum(
            sum(abs(s - row[0][1]) <= TIE for _, s in row) > 1 for row in rankings
        )
        print(
            f"{name:<22}{figures[f'{name}_top1']:>8.3f}{figures[f'{name}_top5']:>8.3f}"
            f"{figures[f'{name}_top1_first_in_file']:>18.3f}"
        )
    # Which queries the tune step won or lost at top-1 (what each bot ranked first).
    figures["tuned_top1_changes"] = [
        {
            "query": texts[n],
            "right_indexed_question": indexed[truth[n]][0],
            "untuned_first": indexed[systems["embedding"][n][0][0]][0],
            "tuned_first": indexed[systems["embedding_tuned"][n][0][0]][0],
            "untuned_hit": hit_rate(systems["embedding"][n], truth[n], 1),
            "tuned_hit": hit_rate(systems["embedding_tuned"][n], truth[n], 1),
        }
        for n in range(len(texts))
        if hit_rate(systems["embedding"][n], truth[n], 1)
        != hit_rate(systems["embedding_tuned"][n], truth[n], 1)
    ]
    best_bm25 = max(("bm25", "bm25_questions"), key=lambda n: figures[f"{n}_top1"])
    figures["best_bm25"] = best_bm25
    figures["top1_gain_over_bm25_points"] = round(
        100 * (figures["embedding_top1"] - figures["bm25_top1"]), 1
    )
    figures["top1_gain_over_best_bm25_points"] = round(
        100 * (figures["embedding_top1"] - figures[f"{best_bm25}_top1"]), 1
    )
    figures["tuned_top1_gain_over_bm25_points"] = round(
        100 * (figures["embedding_tuned_top1"] - figures["bm25_top1"]), 1
    )
    figures["tuned_top1_gain_over_best_bm25_points"] = round(
        100 * (figures["embedding_tuned_top1"] - figures[f"{best_bm25}_top1"]), 1
    )
    figures["tuned_top1_gain_over_untuned_points"] = round(
        100 * (figures["embedding_tuned_top1"] - figures["embedding_top1"]), 1
    )
    figures["target"] = (
        "the bot's top-1 at least 5 points above BM25 (judged against the better BM25); "
        "target_met: the tuned bot (after its tune step), target_met_untuned: the packaged "
        "MiniLM"
    )
    figures["target_met_untuned"] = figures["top1_gain_over_best_bm25_points"] >= 5
    figures["target_met"] = figures["tuned_top1_gain_over_best_bm25_points"] >= 5
    print()
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
