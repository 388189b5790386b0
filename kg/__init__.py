"""Knowledge graph of entities and relations built from scored news articles (networkx).

The finance app scores articles and stores `Extraction`s; `kg` builds a graph from them:

    >>> from kg import KnowledgeGraph, Extraction
    >>> kg = KnowledgeGraph.build(extractions, aliases="aliases.yaml")
    >>> kg.add(more)                                  # incremental; same result as a rebuild
    >>> from kg.query import neighbours, top_movers
    >>> neighbours(kg, "Northwind", relation="acquires", direction="out")
    >>> from kg.io import save_json, export_html

Modules: `schema` (the records and attribute names), `resolve` (entity resolution), `graph`
(`KnowledgeGraph`), `query` (questions), `io` (JSON, GraphML, HTML).
"""

from __future__ import annotations

from kg.errors import KgError
from kg.graph import AddResult, KnowledgeGraph
from kg.resolve import AliasTable, EntityResolver, RegisteredEntity
from kg.schema import ENTITY_TYPES, RELATION_TYPES, Article, Extraction, Mention, Relation

__all__ = [
    "ENTITY_TYPES",
    "RELATION_TYPES",
    "AddResult",
    "AliasTable",
    "Article",
    "EntityResolver",
    "Extraction",
    "KgError",
    "KnowledgeGraph",
    "Mention",
    "RegisteredEntity",
    "Relation",
]
