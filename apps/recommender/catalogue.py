"""The catalogue: items with an id, a title, a text to embed, categories and free metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apps.recommender.errors import RecommenderError
from apps.recommender.tables import pick, read_rows

__all__ = ["Catalogue", "Item", "load_catalogue"]

ID_COLUMNS = ("id", "item_id", "item", "itemId", "movieId", "product_id")
TITLE_COLUMNS = ("title", "name", "headline")
TEXT_COLUMNS = ("description", "text", "body", "summary", "overview")
CATEGORY_COLUMNS = ("categories", "category", "genres", "tags")


@dataclass
class Item:
    """One thing that can be recommended. Ids are strings (``42`` and ``"42"`` are one item)."""

    id: str
    title: str = ""
    description: str = ""
    categories: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    """Anything else the file had (price, url, date...), kept as read."""

    def text(self) -> str:
        """What the content model embeds: title, categories, description."""
        parts = [self.title]
        if self.categories:
            parts.append(", ".join(self.categories))
        if self.description:
            parts.append(self.description)
        return ". ".join(p for p in parts if p) or self.id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str = "") -> Item:
        """An item from a file row (column names as in ``ID_COLUMNS`` and the others)."""
        item_id = pick(row, ID_COLUMNS)
        if item_id is None:
            raise RecommenderError(
                f"{where or 'A catalogue row'} has no item id: name the column one of "
                f"{', '.join(ID_COLUMNS)} (got columns {sorted(row)})."
            )
        categories = pick(row, CATEGORY_COLUMNS) or []
        if isinstance(categories, str):
            sep = "|" if "|" in categories else ","
            categories = [c.strip() for c in categories.split(sep) if c.strip()]
        elif not isinstance(categories, list | tuple):
            raise RecommenderError(
                f"{where or 'A catalogue row'} has categories {categories!r:.60}: give a list, "
                "or a string split on '|' or ','."
            )
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise RecommenderError(
                f"{where or 'A catalogue row'} has metadata {metadata!r:.60}: give an object."
            )
        used = set(ID_COLUMNS + TITLE_COLUMNS + TEXT_COLUMNS + CATEGORY_COLUMNS)
        return cls(
            id=_item_id(item_id),
            title=str(pick(row, TITLE_COLUMNS) or ""),
            description=str(pick(row, TEXT_COLUMNS) or ""),
            categories=[str(c) for c in categories],
            metadata={k: v for k, v in row.items() if k not in used and k != "metadata"} | metadata,
        )


def _item_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise RecommenderError("An item id is empty: give every item an id.")
    return text


class Catalogue:
    """Items in a fixed order (their positions are the models' item indices).

    Raises:
        RecommenderError: an empty catalogue, or an id given twice.
    """

    def __init__(self, items: Iterable[Item], *, allow_empty: bool = False) -> None:
        self.items: list[Item] = list(items)
        self._index: dict[str, int] = {}
        for n, item in enumerate(self.items):
            if item.id in self._index:
                raise RecommenderError(
                    f"Item id {item.id!r} appears twice in the catalogue (rows "
                    f"{self._index[item.id] + 1} and {n + 1}): give each item one row."
                )
            self._index[item.id] = n
        if not self.items and not allow_empty:
            raise RecommenderError(
                "The catalogue is empty: load a file with at least one item (see "
                "data/recommender/demo_catalogue.jsonl for the format)."
            )

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self._index

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def position(self, item_id: Any) -> int:
        """The index of ``item_id``.

        Raises:
            KeyError: not in the catalogue (the message says so and shows some ids).
        """
        try:
            return self._index[str(item_id)]
        except KeyError:
            shown = ", ".join(repr(i) for i in self.ids[:3])
            raise KeyError(
                f"No item {item_id!r} in the catalogue of {len(self)} items (ids like {shown})."
            ) from None

    def get(self, item_id: Any) -> Item:
        return self.items[self.position(item_id)]

    def title(self, item_id: Any) -> str:
        item = self.items[self._index[str(item_id)]] if str(item_id) in self._index else None
        return (item.title or item.id) if item else str(item_id)

    def texts(self) -> list[str]:
        return [item.text() for item in self.items]

    def categories(self) -> list[str]:
        """Every category, most frequent first."""
        counts: dict[str, int] = {}
        for item in self.items:
            for c in item.categories:
                counts[c] = counts.get(c, 0) + 1
        return sorted(counts, key=lambda c: (-counts[c], c))

    def extended(self, items: Sequence[Item]) -> Catalogue:
        """A catalogue with ``items`` added at the end (new items; an existing id is an error)."""
        return Catalogue([*self.items, *items])

    def save(self, path: str | Path) -> Path:
        """Write the items as JSONL (what :func:`load_catalogue` reads back)."""
        path = Path(path)
        with path.open("w", encoding="utf-8") as f:
            for item in self.items:
                f.write(json.dumps(item.to_dict(), ensure_ascii=False, default=str) + "\n")
        return path


def load_catalogue(path: str | Path) -> Catalogue:
    """The catalogue in a CSV, JSONL, JSON or Parquet file, one item a row.

    Columns: an id (``id``, ``item_id``...), optionally ``title``, ``description`` (or ``text``),
    ``categories`` (a list, or a string split on ``|`` or ``,``); other columns are metadata.

    Raises:
        RecommenderError: an unreadable file, a row without id, a repeated id, no items.
    """
    rows = read_rows(path)
    return Catalogue(Item.from_row(row, f"{path}, row {n}") for n, row in enumerate(rows, 1))
