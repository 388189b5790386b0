"""The finance monitor's scored articles as a recommender catalogue (read what you read).

Each stored, scored article becomes an :class:`~apps.recommender.catalogue.Item`: its title,
its body (the first ``max_chars`` characters, which is what the content model embeds), its
topics as categories, and source, url, publication time and article sentiment as metadata.
Reading history is ordinary interactions (``user_id``, ``item_id`` = the article id,
``timestamp``), so every model (content, ALS/BPR, hybrid) works on it unchanged.

    lepton-rec train --finance-db sqlite:///finance.db --events reads.jsonl --out runs/news
"""

from __future__ import annotations

from typing import Any

from apps.recommender.catalogue import Catalogue, Item
from apps.recommender.errors import RecommenderError

__all__ = ["catalogue_from_finance", "item_from_article_row"]


def item_from_article_row(row: dict[str, Any], max_chars: int = 1_000) -> Item:
    """One row of :meth:`apps.finance.store.FinanceStore.articles_table` as an item."""
    topics = [t for t in str(row.get("topics") or "").split(",") if t]
    return Item(
        id=str(row["id"]),
        title=str(row.get("title") or ""),
        description=str(row.get("body") or "")[:max_chars],
        categories=topics,
        metadata={
            "source": row.get("source", ""),
            "url": row.get("url", ""),
            "published": row.get("published", ""),
            "sentiment": row.get("sentiment"),
            "label": row.get("label", ""),
        },
    )


def catalogue_from_finance(db_url: str | None = None, max_chars: int = 1_000) -> Catalogue:
    """Every article the finance monitor has stored and scored in the database at ``db_url``
    (the suite's database when None), oldest first.

    Raises:
        RecommenderError: the database holds no scored article yet.
        StoreError: the database cannot be opened.
    """
    from apps.finance.store import FinanceStore

    rows = FinanceStore(db_url).articles_table()
    if not rows:
        raise RecommenderError(
            "The finance database holds no scored article: score a feed first "
            "(lepton-finance score FEED --db URL), then build the catalogue from it."
        )
    return Catalogue(item_from_article_row(row, max_chars) for row in rows)
