"""The finance monitor's knowledge graph: built from the stored extractions, updated per batch.

The database is the record; the graph is derived from it (never the other way round). A
run builds it from what is stored, adds each batch as it is committed (``kg``'s incremental
``add``, equal to a rebuild), and saves it with :mod:`kg.io` next to the database (or where
asked), so pages and scripts can load it without the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from apps.common.paths import data_home
from kg import AddResult, AliasTable, Extraction, KnowledgeGraph
from kg import io as kg_io

__all__ = ["GRAPH_FORMATS", "FinanceGraph", "default_graph_path", "export_graph"]

GRAPH_FORMATS = ("json", "graphml", "html")

Aliases = AliasTable | Mapping[str, Any] | str | PathLike[str] | None


def default_graph_path(db_url: str) -> Path:
    """``x/finance.graph.json`` beside a SQLite file ``x/finance.db``; for a server database,
    ``finance-graph.json`` under ``LEPTON_HOME``."""
    try:
        parsed = make_url(db_url)
    except Exception:  # the store has reported a bad URL already
        parsed = None
    sqlite = parsed is not None and parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database).expanduser()
        return database.with_name(f"{database.stem}.graph.json")
    return data_home() / "finance-graph.json"


class FinanceGraph:
    """The graph of a store's extractions, kept in step with it.

    Args:
        extractions: where to build from (the store's ``extractions`` method), called once,
            on first use.
        path: where :meth:`save` writes (``kg.io.save_json``).
        aliases: the alias table (see :class:`kg.AliasTable`).
    """

    def __init__(self, extractions: Any, path: str | Path, aliases: Aliases = None):
        self._source = extractions
        self.path = Path(path)
        self.aliases = AliasTable.coerce(aliases)
        self._kg: KnowledgeGraph | None = None

    @property
    def kg(self) -> KnowledgeGraph:
        """The graph, built from every stored extraction on first use."""
        if self._kg is None:
            self._kg = KnowledgeGraph.build(self._source(), self.aliases)
        return self._kg

    @property
    def built(self) -> bool:
        return self._kg is not None

    def add(self, extractions: Iterable[Extraction]) -> AddResult:
        """Add a committed batch (incremental; the same as a rebuild)."""
        return self.kg.add(list(extractions), replace=True)

    def sync(self, store: Any) -> AddResult | None:
        """Add what ``store`` holds that the graph lacks (articles another process stored)."""
        if self._kg is None:
            self.kg  # noqa: B018 - builds from everything stored
            return None
        missing = {i for i in store.article_ids() if not self._kg.has_article(i)}
        if not missing:
            return None
        return self.add(store.extractions(sorted(missing)))

    def save(self) -> Path:
        """Write the graph (node-link JSON with its extractions), atomically."""
        return kg_io.save_json(self.kg, self.path)


def export_graph(kg: KnowledgeGraph, path: str | Path, fmt: str) -> Path:
    """Write the graph as ``json`` (node-link, loadable with ``kg.io.load_json``), ``graphml``
    or ``html`` (one self-contained interactive page)."""
    if fmt == "json":
        return kg_io.save_json(kg, path)
    if fmt == "graphml":
        return kg_io.export_graphml(kg, path)
    if fmt == "html":
        return kg_io.export_html(kg, path, title="Finance monitor: knowledge graph")
    raise ValueError(f"graph format {fmt!r}: use one of {', '.join(GRAPH_FORMATS)}")
