"""Entity-level sentiment on sentences naming two companies of opposite sentiment.

python bench/finance_entities.py

``data/finance/entity_sentiment.jsonl`` (written by the project): 72 sentences, each naming
two companies, one with positive and one with negative news ("Northwind's profit soared
while Contoso posted a heavy loss"). Each sentence goes through ``FinancePipeline.score`` as
an article; an entity's predicted polarity is the sign of its mention's ``entity_sentiment``.
Compared with the naive readings that give both companies the sentence's (or the article's)
score, which can be right for at most one of the two. The ``dev`` part (every fourth
sentence) is the one looked at while building the clause rule; ``test`` is the rest.
An entity the pipeline does not find counts as wrong (``found`` says how many were found).
"""

from __future__ import annotations

import json
import os
import sys

from common import ROOT, write_result

NAME = "finance_entities"
DATA = ROOT / "data" / "finance" / "entity_sentiment.jsonl"


def _polarity(value: float) -> str:
    return "positive" if value > 0 else "negative"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime

    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig
    from apps.finance.records import NewsArticle

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    published = datetime(2024, 1, 1, tzinfo=UTC)
    articles = [
        NewsArticle(id=r["id"], source="bench", title="", body=r["text"], published=published)
        for r in rows
    ]
    figures: dict = {"dataset": str(DATA.relative_to(ROOT)), "sentences": len(rows)}
    for name, clauses in (("clause", True), ("sentence", False)):
        pipeline = FinancePipeline(
            FinancePipelineConfig(relation_model=None, entity_clauses=clauses)
        )
        scored = pipeline.score(articles)
        counts: dict[str, dict[str, int]] = {}
        for row, result in zip(rows, scored, strict=True):
            for entity in row["entities"]:
                mentions = [
                    m
                    for m in result.extraction.mentions
                    if m.text == entity["text"] or entity["text"] in m.text
                ]
                part = counts.setdefault(row["split"], {"n": 0, "found": 0, "right": 0, "art": 0})
                part["n"] += 1
                if _polarity(result.sentiment) == entity["sentiment"]:
                    part["art"] += 1
                if not mentions:
                    continue
                part["found"] += 1
                if _polarity(mentions[0].score) == entity["sentiment"]:
                    part["right"] += 1
        total = {k: sum(c[k] for c in counts.values()) for k in ("n", "found", "right", "art")}
        for split, c in [*counts.items(), ("all", total)]:
            if name == "clause":
                figures[f"{split}_entities"] = c["n"]
                figures[f"{split}_entities_found"] = c["found"]
                figures[f"{split}_clause_accuracy"] = round(c["right"] / c["n"], 4)
                figures[f"{split}_article_score_accuracy"] = round(c["art"] / c["n"], 4)
            else:
                figures[f"{split}_sentence_score_accuracy"] = round(c["right"] / c["n"], 4)
    figures["model_versions"] = ", ".join(f"{k}={v}" for k, v in pipeline.model_versions.items())
    # Speeds depend on what else runs: the 1-minute load average says how busy the machine was.
    figures["load_average_1min"] = round(os.getloadavg()[0], 1)
    write_result(NAME, figures)


if __name__ == "__main__":
    main()
