"""Choose the FAQ encoder's tuning settings on validation: the project's own FAQ base.

For each setting of a small grid, the packaged MiniLM is tuned (:mod:`apps.support.faq_tuning`)
on ``data/support/faq.jsonl``'s question -> answer pairs (108 entries; paraphrases never used),
then the bot's FAQ retrieval (:class:`apps.support.answers.AnswerFinder`, question and answer
embedded; an entry scores as the bot scores it: 0.8 x the mean of the two cosines + 0.2 x
BM25 since session 18) ranks the entries for the 324 held-out
paraphrases (each must find its own entry). Top-1 picks the setting; a tie goes to the
cheaper setting (fewer epochs, then no symmetric term, then the larger batch, then the lower
learning rate). ``bench/support_faq.py`` then applies exactly that setting to bank_faqs.

The grid's epochs stop at 3: bank_faqs has ten times as many pairs, and more epochs there
do not fit the benchmark's CPU budget (2 shared cores).

python bench/support_faq_tuning.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write_result

sys.path.insert(0, str(ROOT))

GRID = [
    {"learning_rate": lr, "epochs": ep, "symmetric": sym, "batch_size": 32}
    for ep in (1, 3)
    for sym in (False, True)
    for lr in (2e-5, 5e-5, 1e-4, 2e-4)
] + [
    {"learning_rate": lr, "epochs": ep, "symmetric": False, "batch_size": 16}
    for ep in (1, 3)
    for lr in (5e-5, 1e-4)
]


def paraphrase_accuracy(finder, entries) -> tuple[float, float]:
    """Top-1 and top-5 of the entries' paraphrases finding their own entry."""
    queries = [(p, e.id) for e in entries for p in e.paraphrases]
    ranked = finder.faq_ranking([q for q, _ in queries], k=5)
    top1 = sum(row[0][0] == own for row, (_, own) in zip(ranked, queries, strict=True))
    top5 = sum(own in [i for i, _ in row] for row, (_, own) in zip(ranked, queries, strict=True))
    return round(top1 / len(queries), 4), round(top5 / len(queries), 4)


def main() -> None:
    import torch

    from apps.support.answers import AnswerFinder, Thresholds, load_faq
    from apps.support.faq_tuning import FaqTuneSettings, tune_faq_encoder
    from lepton_nlp.embeddings import SentenceEmbedder

    torch.set_num_threads(1)
    faq = ROOT / "data" / "support" / "faq.jsonl"
    entries = load_faq(faq)
    figures: dict = {
        "validation": "data/support/faq.jsonl: tuned on its question->answer pairs, scored on "
        "its paraphrases (held out from tuning)",
        "entries": len(entries),
        "paraphrase_queries": sum(len(e.paraphrases) for e in entries),
        "choice": "best top-1; ties: fewer epochs, no symmetric term, larger batch, lower "
        "learning rate",
    }
    untuned = AnswerFinder(entries, SentenceEmbedder(), Thresholds(faq=0.0))
    figures["retrieval"] = f"AnswerFinder, an entry scores {untuned.scoring}"
    figures["untuned_top1"], figures["untuned_top5"] = paraphrase_accuracy(untuned, entries)
    print(f"untuned: top-1 {figures['untuned_top1']}, top-5 {figures['untuned_top5']}", flush=True)
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="faq-tune-"))
    try:
        for i, options in enumerate(GRID):
            settings = FaqTuneSettings(**options)
            result = tune_faq_encoder(faq, scratch / f"run{i}", settings, overwrite=True)
            started = time.perf_counter()
            finder = AnswerFinder(
                entries, SentenceEmbedder(str(result.output)), Thresholds(faq=0.0)
            )
            top1, top5 = paraphrase_accuracy(finder, entries)
            row = {
                **options,
                "top1": top1,
                "top5": top5,
                "train_seconds": result.record["train_seconds"],
                "steps": result.record["steps"],
                "eval_seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(row, flush=True)
            shutil.rmtree(result.output, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = max(
        rows,
        key=lambda r: (
            r["top1"],
            -r["epochs"],
            not r["symmetric"],
            r["batch_size"],
            -r["learning_rate"],
        ),
    )
    figures["grid"] = rows
    figures["chosen"] = {k: best[k] for k in ("learning_rate", "epochs", "symmetric", "batch_size")}
    figures["chosen_top1"], figures["chosen_top5"] = best["top1"], best["top5"]
    figures["chosen_gain_points"] = round(100 * (best["top1"] - figures["untuned_top1"]), 1)
    write_result("support_faq_tuning", figures)


if __name__ == "__main__":
    main()
