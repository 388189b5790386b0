"""The finance pipeline's sentence sentiment on the Financial PhraseBank test split.

python bench/finance_sentiment.py [--limit N]

The same 969 test sentences as ``bench/classification_fpb.py`` and
``bench/inference_throughput.py`` (50Agree, FinBERT's 64/16/20 split, seed 42). Two readings:

- ``sentence_stage_*``: the texts through the pipeline's sentence scorer
  (:meth:`apps.finance.pipeline.FinancePipeline.sentence_sentiment`, the shipped
  finance-sentiment model on the pipeline's default backend): should reproduce the core's
  figure (``inference_throughput.json``: int8 accuracy 0.850);
- ``article_*``: each sentence as a whole article through ``FinancePipeline.score`` (spaCy
  may split it into several sentences; the article label is then the mean of theirs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from common import ROOT, datasets_root, write_result

NAME = "finance_sentiment"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N test sentences only")
    args = parser.parse_args()
    datasets_root()
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime

    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig
    from apps.finance.records import NewsArticle
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.evaluation.metrics import classification_metrics

    config = load_config(ROOT / "configs" / "classification_fpb.yaml")
    records = load_splits(config.data, "text")["test"][: args.limit]
    labels = sorted({r["label"] for r in records})
    gold = [r["label"] for r in records]
    # Relations play no part in sentiment: leave the relation model out to save time.
    pipeline = FinancePipeline(FinancePipelineConfig(relation_model=None))

    started = time.perf_counter()
    stage = [label for label, _, _ in pipeline.sentence_sentiment([r["text"] for r in records])]
    stage_seconds = time.perf_counter() - started
    stage_metrics = classification_metrics(stage, gold, labels)

    published = datetime(2024, 1, 1, tzinfo=UTC)
    articles = [
        NewsArticle(id=f"fpb{i}", source="fpb", title="", body=r["text"], published=published)
        for i, r in enumerate(records)
    ]
    started = time.perf_counter()
    scored = pipeline.score(articles)
    article_seconds = time.perf_counter() - started
    article_metrics = classification_metrics([s.label for s in scored], gold, labels)
    split = sum(len(s.sentences) > 1 for s in scored)

    reference = json.loads((ROOT / "bench" / "results" / "inference_throughput.json").read_text())
    artifact = json.loads(
        (ROOT / "data" / "models" / "finance-sentiment" / "metrics.json").read_text()
    )
    figures = {
        "dataset": "Financial PhraseBank 50Agree, test split of configs/classification_fpb.yaml "
        "(64/16/20, seed 42)",
        "examples": len(records),
        "model": pipeline.model_versions["sentiment"],
        "sentence_stage_accuracy": round(stage_metrics["accuracy"], 4),
        "sentence_stage_macro_f1": round(stage_metrics["macro_f1"], 4),
        "sentence_stage_sentences_per_second": round(len(records) / stage_seconds, 1),
        "article_accuracy": round(article_metrics["accuracy"], 4),
        "article_macro_f1": round(article_metrics["macro_f1"], 4),
        "article_articles_per_second": round(len(records) / article_seconds, 1),
        "articles_split_by_spacy": split,
        "reference_core_int8_accuracy": reference.get("torch_int8_accuracy"),
        "reference_core_fp32_accuracy": artifact["test"]["accuracy"],
        "reference_core_fp32_macro_f1": artifact["test"]["macro_f1"],
    }
    figures["sentence_stage_minus_core_int8_points"] = round(
        100 * (figures["sentence_stage_accuracy"] - (figures["reference_core_int8_accuracy"] or 0)),
        2,
    )
    # Speeds depend on what else runs: the 1-minute load average says how busy the machine was.
    figures["load_average_1min"] = round(os.getloadavg()[0], 1)
    write_result(NAME, figures)


if __name__ == "__main__":
    main()
