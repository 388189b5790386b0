"""Build and update the knowledge graph (a networkx MultiDiGraph) from article extractions.

The graph is a pure function of the set of extractions added (and the options): `add` is
incremental, adding an article twice changes nothing, and the result equals a rebuild from
scratch over the same articles in any order. It holds because every node and edge attribute
is recomputed from the extractions that support it (sorted, with `math.fsum` for sums), and
because resolution depends only on the set of articles: when a new article changes how an
earlier one resolves (it pairs a ticker with its company, say), that article is re-resolved.

Nodes are resolved entities and edges either typed relations (key = relation type, directed
head -> tail) or co-mentions (key "co_mention", two entities named in one sentence, stored
once from the smaller id). Attribute names are the `NODE_*`/`EDGE_*` constants of
`kg.schema`.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from itertools import combinations
from os import PathLike
from typing import Any

import networkx as nx

from kg.errors import KgError
from kg.resolve import (
    AliasTable,
    EntityRef,
    EntityResolver,
    normalize,
    paired_ticker,
    parse_ticker,
    person_key,
)
from kg.schema import (
    EDGE_ARTICLES,
    EDGE_CONFIDENCE,
    EDGE_COUNT,
    EDGE_EVIDENCE,
    EDGE_FIRST_SEEN,
    EDGE_KIND,
    EDGE_LAST_SEEN,
    EDGE_SENTIMENT,
    EDGE_TYPE,
    ENTITY_TYPES,
    EVIDENCE_ARTICLE,
    EVIDENCE_CONFIDENCE,
    EVIDENCE_PUBLISHED,
    EVIDENCE_SENTENCE,
    EVIDENCE_SENTIMENT,
    KIND_CO_MENTION,
    KIND_RELATION,
    NODE_ALIASES,
    NODE_ARTICLE_COUNT,
    NODE_FIRST_SEEN,
    NODE_LAST_SEEN,
    NODE_MENTION_COUNT,
    NODE_NAME,
    NODE_REGISTERED,
    NODE_SENTIMENT,
    NODE_SENTIMENT_BY_DAY,
    NODE_TICKERS,
    NODE_TYPE,
    SYMMETRIC_RELATIONS,
    Article,
    Extraction,
    Mention,
    check_entity_type,
    format_time,
    parse_time,
)

__all__ = ["GRAPH_VERSION", "AddResult", "KnowledgeGraph"]

GRAPH_VERSION = 1
"""Stored as the graph attribute `kg_version`; bumped when attributes change meaning."""

_RelationKey = tuple[str, str, str]  # (head, tail, relation type)
_PairKey = tuple[str, str]  # (smaller id, larger id)


@dataclass(frozen=True)
class AddResult:
    """What `KnowledgeGraph.add` did.

    Attributes:
        added: ids of articles new to the graph.
        replaced: ids of articles re-added with different content (`replace=True`).
        unchanged: ids of articles already in the graph with the same content.
        re_resolved: ids of earlier articles whose entities changed with the new evidence
            (e.g. a ticker now paired with its company).
    """

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    re_resolved: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the graph changed."""
        return bool(self.added or self.replaced or self.re_resolved)


@dataclass(frozen=True)
class _Contribution:
    """What one article adds to the graph, given how its mentions resolved."""

    nodes: Mapping[str, tuple[int, ...]]  # entity id -> mention indices
    relations: Mapping[_RelationKey, tuple[int, ...]]  # edge -> relation indices
    pairs: Mapping[_PairKey, int]  # co-mention pair -> sentences naming both


class KnowledgeGraph:
    """Entities, relations and co-mentions from scored articles, as an `nx.MultiDiGraph`.

    Args:
        aliases: the user's alias table (an `AliasTable`, a mapping, or a YAML/JSON path);
            it wins over every resolution heuristic.
        link_prefixes: join a short organisation name to the one longer name that extends it
            across articles ("Contoso" -> "Contoso Pharmaceuticals"; see `kg.resolve`).
        skip_types: mention types that do not become nodes (amounts of money by default).

    Example:
        >>> kg = KnowledgeGraph.build(extractions, aliases="aliases.yaml")
        >>> kg.add(todays_extractions)          # incremental, idempotent
        >>> kg.graph.nodes["org:northwind"]["sentiment"]
    """

    def __init__(
        self,
        aliases: AliasTable | Mapping[str, Any] | str | PathLike[str] | None = None,
        *,
        link_prefixes: bool = True,
        skip_types: Iterable[str] = ("MONEY",),
    ) -> None:
        self.resolver = EntityResolver(aliases, link_prefixes=link_prefixes)
        if isinstance(skip_types, str):
            skip_types = (skip_types,)
        self.skip_types: tuple[str, ...] = tuple(
            sorted({check_entity_type(t, "skip_types") for t in skip_types})
        )
        self._graph = nx.MultiDiGraph(kg_version=GRAPH_VERSION)
        self._extractions: dict[str, Extraction] = {}
        self._refs: dict[str, tuple[EntityRef, ...]] = {}
        self._contributions: dict[str, _Contribution] = {}
        self._node_index: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
        self._relation_index: dict[_RelationKey, dict[str, tuple[int, ...]]] = defaultdict(dict)
        self._pair_index: dict[_PairKey, dict[str, int]] = defaultdict(dict)
        self._ref_by_node: dict[str, EntityRef] = {}
        # (kind, key) look-up -> its answer at the last add, and the articles that asked it
        self._answers: dict[tuple[str, str], EntityRef] = {}
        self._readers: dict[tuple[str, str], set[str]] = {}
        self._asked: dict[str, frozenset[tuple[str, str]]] = {}

    # -- construction

    @classmethod
    def build(
        cls,
        extractions: Iterable[Extraction | Mapping[str, Any]],
        aliases: AliasTable | Mapping[str, Any] | str | PathLike[str] | None = None,
        **options: Any,
    ) -> KnowledgeGraph:
        """A graph over the given extractions (the same as `KnowledgeGraph(...).add(...)`)."""
        graph = cls(aliases, **options)
        graph.add(extractions)
        return graph

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph. Read it, don't change it: `add` keeps it; copy it to edit."""
        return self._graph

    @property
    def aliases(self) -> AliasTable:
        """The user's alias table."""
        return self.resolver.aliases

    def options(self) -> dict[str, Any]:
        """The constructor's options as JSON-able data (what `kg.io` saves)."""
        return {
            "aliases": self.aliases.to_dict(),
            "link_prefixes": self.resolver.link_prefixes,
            "skip_types": list(self.skip_types),
        }

    @property
    def extractions(self) -> tuple[Extraction, ...]:
        """Every extraction added, sorted by publication time then article id."""
        return tuple(sorted(self._extractions.values(), key=lambda e: (e.article.published, e.id)))

    def has_article(self, article_id: str) -> bool:
        """Whether an article with this id was added."""
        return article_id in self._extractions

    def add(
        self,
        extractions: Extraction | Mapping[str, Any] | Iterable[Extraction | Mapping[str, Any]],
        *,
        replace: bool = False,
    ) -> AddResult:
        """Add articles' extractions; only what they touch is recomputed.

        All items are checked before anything changes, so a bad one leaves the graph as it was.

        Args:
            extractions: one `Extraction` (or its dict form) or an iterable of them.
            replace: accept an article id already in the graph with different content (a
                re-scored article) and use the new version; without it that is an error.

        Returns:
            Which articles were added, replaced, already present, or re-resolved.

        Raises:
            KgError: an item is malformed, or an article id comes twice with different content.
        """
        batch = self._coerce(extractions)
        added, replaced, unchanged = [], [], []
        for extraction in batch.values():
            known = self._extractions.get(extraction.id)
            if known is None:
                added.append(extraction.id)
            elif known == extraction:
                unchanged.append(extraction.id)
            elif replace:
                replaced.append(extraction.id)
            else:
                raise KgError(
                    f"article {extraction.id!r} is already in the graph with different content; "
                    "pass replace=True to use the new version (a re-scored article), or give it "
                    "its own id"
                )
        if not added and not replaced:
            return AddResult(unchanged=tuple(unchanged))
        changed = {aid: batch[aid] for aid in (*added, *replaced)}
        for aid, extraction in changed.items():
            self.resolver.forget(aid)
            self.resolver.observe(extraction)
            self._extractions[aid] = extraction
        # New evidence changes an earlier article's entities only through the cross-article
        # look-ups it made (a ticker's company, a short name's long form): redo the articles
        # whose look-ups now answer differently.
        answers = self.resolver.lookup
        moved = [q for q, old in self._answers.items() if answers(*q) != old]
        suspects = set().union(*(self._readers[q] for q in moved)) - changed.keys()
        re_resolved = []
        dirty = dict.fromkeys(changed)
        for aid in [*sorted(suspects), *changed]:
            asked: set[tuple[str, str]] = set()
            refs = self.resolver.resolve_article(self._extractions[aid], lookups=asked)
            if aid not in changed and refs != self._refs[aid]:
                re_resolved.append(aid)
                dirty[aid] = None
            self._refs[aid] = refs
            for question in self._asked.get(aid, ()):
                self._readers[question].discard(aid)
            for question in asked:
                self._readers.setdefault(question, set()).add(aid)
            self._asked[aid] = frozenset(asked)
        self._readers = {q: readers for q, readers in self._readers.items() if readers}
        self._answers = {q: answers(*q) for q in self._readers}
        touched_nodes: set[str] = set()
        touched_relations: set[_RelationKey] = set()
        touched_pairs: set[_PairKey] = set()
        for aid in dirty:
            old = self._contributions.pop(aid, None)
            new = self._contribution(self._extractions[aid], self._refs[aid])
            self._contributions[aid] = new
            for contribution in (old, new) if old else (new,):
                touched_nodes.update(contribution.nodes)
                touched_relations.update(contribution.relations)
                touched_pairs.update(contribution.pairs)
            for index, before, after in (
                (self._node_index, old.nodes if old else {}, new.nodes),
                (self._relation_index, old.relations if old else {}, new.relations),
                (self._pair_index, old.pairs if old else {}, new.pairs),
            ):
                for key in before:
                    del index[key][aid]
                for key, value in after.items():
                    index[key][aid] = value
        for refs in (self._refs[aid] for aid in dirty):
            for ref in refs:
                self._ref_by_node[ref.id] = ref
        self._refresh(touched_nodes, touched_relations, touched_pairs)
        return AddResult(
            added=tuple(added),
            replaced=tuple(replaced),
            unchanged=tuple(unchanged),
            re_resolved=tuple(sorted(re_resolved)),
        )

    @staticmethod
    def _coerce(
        items: Extraction | Mapping[str, Any] | Iterable[Extraction | Mapping[str, Any]],
    ) -> dict[str, Extraction]:
        if isinstance(items, Extraction | Mapping):
            items = [items]
        elif isinstance(items, str | bytes):
            raise KgError("add: expected Extraction objects or dicts, got a string")
        batch: dict[str, Extraction] = {}
        for position, item in enumerate(items):
            if isinstance(item, Mapping):
                try:
                    item = Extraction.from_dict(item)
                except KgError as error:
                    raise KgError(f"item {position}: {error}") from None
            elif not isinstance(item, Extraction):
                raise KgError(
                    f"item {position}: expected an Extraction or its dict form, got "
                    f"{type(item).__name__}"
                )
            first = batch.setdefault(item.id, item)
            if first != item:
                raise KgError(
                    f"item {position}: article {item.id!r} comes twice in the batch with "
                    "different content; keep one version"
                )
        return batch

    def as_of(self, when: datetime | date | str) -> KnowledgeGraph:
        """The graph built from the articles published up to `when` (inclusive).

        Entities resolve as that evidence alone allows (a ticker paired only later stays a
        ticker). A date or a bare ISO day means the end of that day, UTC.

        Raises:
            KgError: `when` is naive or not a time.
        """
        cutoff = parse_time(when, "as_of", end_of_day=True)
        past = KnowledgeGraph(
            self.aliases, link_prefixes=self.resolver.link_prefixes, skip_types=self.skip_types
        )
        past.add(e for e in self._extractions.values() if e.article.published <= cutoff)
        return past

    # -- look-ups

    def find(self, entity: str, type: str | None = None) -> str:
        """The node id for an id, a name, an alias or any surface that resolves to a node.

        Raises:
            KgError: nothing matches (close names are suggested) or several do (pass `type`).
        """
        if not isinstance(entity, str) or not entity.strip():
            raise KgError(f"find: expected an entity id or name, got {entity!r}")
        if entity in self._graph:
            return entity
        wanted = check_entity_type(type, "find: type") if type else None
        types = (wanted,) if wanted else ENTITY_TYPES
        found = {
            ref.id for t in types if (ref := self.resolver.resolve(entity, t)).id in self._graph
        }
        folded = entity.strip().casefold()
        for node, data in self._graph.nodes(data=True):
            names = [data[NODE_NAME], *data[NODE_ALIASES]]
            if any(name.casefold() == folded for name in names):
                found.add(node)
        if wanted:
            found = {n for n in found if self._graph.nodes[n][NODE_TYPE] == wanted}
        if len(found) == 1:
            return found.pop()
        if found:
            raise KgError(
                f"{entity!r} names several entities: {', '.join(sorted(found))}; pass one of "
                "these ids, or type=..."
            )
        names = {data[NODE_NAME]: node for node, data in self._graph.nodes(data=True)}
        near = difflib.get_close_matches(entity, list(names), n=3)
        hint = (
            "; close: " + ", ".join(f"{n!r} ({names[n]})" for n in near)
            if near
            else "; it was never mentioned"
        )
        raise KgError(f"no entity {entity!r} in the graph{hint}")

    def mentions(self, entity: str) -> list[tuple[Article, Mention]]:
        """Every mention of an entity with its article, by time, article and sentence."""
        node = self.find(entity)
        found = [
            (self._extractions[aid].article, self._extractions[aid].mentions[i])
            for aid, indices in self._node_index.get(node, {}).items()
            for i in indices
        ]
        return sorted(found, key=lambda am: (am[0].published, am[0].id, am[1].sentence_index))

    # -- derivation

    def _contribution(self, extraction: Extraction, refs: tuple[EntityRef, ...]) -> _Contribution:
        ids = [None if ref.type in self.skip_types else ref.id for ref in refs]
        nodes: dict[str, list[int]] = defaultdict(list)
        by_sentence: dict[int, set[str]] = defaultdict(set)
        for i, (mention, node) in enumerate(zip(extraction.mentions, ids, strict=True)):
            if node is not None:
                nodes[node].append(i)
                by_sentence[mention.sentence_index].add(node)
        relations: dict[_RelationKey, list[int]] = defaultdict(list)
        for i, relation in enumerate(extraction.relations):
            head = self._mention_id(extraction, ids, relation.head, relation.sentence)
            tail = self._mention_id(extraction, ids, relation.tail, relation.sentence)
            if head is None or tail is None or head == tail:
                continue  # an amount, or both ends one entity: nothing to connect
            if relation.type in SYMMETRIC_RELATIONS:
                head, tail = sorted((head, tail))
            relations[(head, tail, relation.type)].append(i)
        pairs: Counter[_PairKey] = Counter()
        for entities in by_sentence.values():
            pairs.update(combinations(sorted(entities), 2))
        return _Contribution(
            nodes={k: tuple(v) for k, v in nodes.items()},
            relations={k: tuple(v) for k, v in relations.items()},
            pairs=dict(pairs),
        )

    @staticmethod
    def _mention_id(
        extraction: Extraction, ids: list[str | None], surface: str, sentence: str
    ) -> str | None:
        """The entity of the mention a relation names: the one in its sentence if there is one."""
        matches = [i for i, m in enumerate(extraction.mentions) if m.text == surface]
        same_sentence = [i for i in matches if extraction.mentions[i].sentence == sentence]
        return ids[(same_sentence or matches)[0]]

    def _refresh(self, nodes: set[str], relations: set[_RelationKey], pairs: set[_PairKey]) -> None:
        graph = self._graph
        for key in sorted(relations):
            if not self._relation_index.get(key):
                self._relation_index.pop(key, None)
                if graph.has_edge(key[0], key[1], key[2]):
                    graph.remove_edge(key[0], key[1], key[2])
        for key in sorted(pairs):
            if not self._pair_index.get(key):
                self._pair_index.pop(key, None)
                if graph.has_edge(key[0], key[1], KIND_CO_MENTION):
                    graph.remove_edge(key[0], key[1], KIND_CO_MENTION)
        for node in sorted(nodes):
            if not self._node_index.get(node):
                self._node_index.pop(node, None)
                if node in graph:
                    graph.remove_node(node)
            else:
                graph.add_node(node)
                _replace(graph.nodes[node], self._node_attributes(node))
        for key in sorted(relations):
            if key in self._relation_index:
                graph.add_edge(key[0], key[1], key=key[2])
                _replace(graph.edges[key], self._relation_attributes(key))
        for key in sorted(pairs):
            if key in self._pair_index:
                graph.add_edge(key[0], key[1], key=KIND_CO_MENTION)
                _replace(graph.edges[(*key, KIND_CO_MENTION)], self._pair_attributes(key))

    def _node_attributes(self, node: str) -> dict[str, Any]:
        ref = self._ref_by_node[node]
        found = [
            (self._extractions[aid].article, self._extractions[aid].mentions[i])
            for aid, indices in sorted(self._node_index[node].items())
            for i in indices
        ]
        times = [article.published for article, _ in found]
        days: dict[str, list[float]] = defaultdict(list)
        for article, mention in found:
            days[article.published.date().isoformat()].append(mention.score)
        tickers = {t for _, m in found if (t := parse_ticker(m.text, m.type) or paired_ticker(m))}
        if ref.registered is not None:
            tickers.update(ref.registered.tickers)
        surfaces = Counter(m.text for _, m in found)
        return {
            NODE_TYPE: ref.type,
            NODE_NAME: ref.registered.name if ref.registered else _display_name(surfaces, ref),
            NODE_ALIASES: sorted(surfaces),
            NODE_TICKERS: sorted(tickers),
            NODE_REGISTERED: ref.registered is not None,
            NODE_FIRST_SEEN: format_time(min(times)),
            NODE_LAST_SEEN: format_time(max(times)),
            NODE_MENTION_COUNT: len(found),
            NODE_ARTICLE_COUNT: len(self._node_index[node]),
            NODE_SENTIMENT: _mean(m.score for _, m in found),
            NODE_SENTIMENT_BY_DAY: {
                day: {"mean": _mean(scores), "n": len(scores)}
                for day, scores in sorted(days.items())
            },
        }

    def _relation_attributes(self, key: _RelationKey) -> dict[str, Any]:
        evidence = []
        for aid, indices in self._relation_index[key].items():
            extraction = self._extractions[aid]
            for i in indices:
                relation = extraction.relations[i]
                evidence.append(
                    {
                        EVIDENCE_ARTICLE: aid,
                        EVIDENCE_SENTENCE: relation.sentence,
                        EVIDENCE_PUBLISHED: format_time(extraction.article.published),
                        EVIDENCE_CONFIDENCE: relation.confidence,
                        EVIDENCE_SENTIMENT: relation.sentiment,
                    }
                )
        evidence.sort(
            key=lambda e: (
                e[EVIDENCE_PUBLISHED],
                e[EVIDENCE_ARTICLE],
                e[EVIDENCE_SENTENCE],
                e[EVIDENCE_CONFIDENCE],
                e[EVIDENCE_SENTIMENT],
            )
        )
        return {
            EDGE_KIND: KIND_RELATION,
            EDGE_TYPE: key[2],
            EDGE_EVIDENCE: evidence,
            EDGE_COUNT: len(evidence),
            EDGE_CONFIDENCE: max(e[EVIDENCE_CONFIDENCE] for e in evidence),
            EDGE_SENTIMENT: _mean(e[EVIDENCE_SENTIMENT] for e in evidence),
            EDGE_FIRST_SEEN: evidence[0][EVIDENCE_PUBLISHED],
            EDGE_LAST_SEEN: evidence[-1][EVIDENCE_PUBLISHED],
        }

    def _pair_attributes(self, key: _PairKey) -> dict[str, Any]:
        articles = dict(sorted(self._pair_index[key].items()))
        times = [self._extractions[aid].article.published for aid in articles]
        return {
            EDGE_KIND: KIND_CO_MENTION,
            EDGE_ARTICLES: articles,
            EDGE_COUNT: sum(articles.values()),
            EDGE_FIRST_SEEN: format_time(min(times)),
            EDGE_LAST_SEEN: format_time(max(times)),
        }


def _replace(target: dict[str, Any], values: dict[str, Any]) -> None:
    target.clear()
    target.update(values)


def _mean(values: Iterable[float]) -> float:
    """Mean that does not depend on the order of the values (math.fsum is exactly rounded)."""
    values = list(values)
    return math.fsum(values) / len(values)


def _display_name(surfaces: Counter[str], ref: EntityRef) -> str:
    """The fullest, most used surface: 'Northwind Holdings Inc.' over 'Northwind' or '$NWND'."""
    names = [s for s in surfaces if not parse_ticker(s, ref.type)] or list(surfaces)
    if ref.type == "TICKER":
        return ref.id.split(":", 1)[1]

    def words(surface: str) -> int:
        return len((person_key(surface) if ref.type == "PERSON" else normalize(surface)).split())

    return max(names, key=lambda s: (words(s), not s.isupper(), surfaces[s], -len(s), s))
