"""Questions asked of a `KnowledgeGraph`: neighbours, paths, communities, movers, evidence.

Every function takes the `KnowledgeGraph` and an entity given by id, name, alias or any
surface that resolves to it (`KnowledgeGraph.find`). The graph algorithms are networkx's,
run on a weighted undirected projection (`projection`) whose nodes and edges are inserted in
sorted order, so seeded results do not depend on the order articles were added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice

import networkx as nx

from kg.errors import KgError
from kg.graph import KnowledgeGraph
from kg.schema import (
    EDGE_CONFIDENCE,
    EDGE_COUNT,
    EDGE_EVIDENCE,
    EDGE_KIND,
    EDGE_TYPE,
    EVIDENCE_ARTICLE,
    EVIDENCE_CONFIDENCE,
    EVIDENCE_PUBLISHED,
    EVIDENCE_SENTENCE,
    EVIDENCE_SENTIMENT,
    KIND_CO_MENTION,
    NODE_NAME,
    NODE_SENTIMENT_BY_DAY,
    NODE_TYPE,
    RELATION_TYPES,
    SYMMETRIC_RELATIONS,
    format_time,
    parse_time,
)

__all__ = [
    "Evidence",
    "Mover",
    "Neighbour",
    "as_of",
    "centrality",
    "communities",
    "ego_graph",
    "evidence",
    "neighbours",
    "projection",
    "shortest_paths",
    "top_movers",
]

_DIRECTIONS = ("out", "in", "any")


@dataclass(frozen=True)
class Neighbour:
    """An entity linked to the one asked about.

    Attributes:
        entity: its node id.
        name: its display name.
        relation: relation type, or "co_mention".
        direction: "out" (asked -> it), "in" (it -> asked), or "any" for symmetric relations
            and co-mentions.
        count: evidence sentences (relations) or shared sentences (co-mentions).
        confidence: highest evidence confidence (relations only).
    """

    entity: str
    name: str
    relation: str
    direction: str
    count: int
    confidence: float | None = None


@dataclass(frozen=True)
class Mover:
    """An entity whose recent sentiment moved against its trailing window.

    Attributes:
        entity: node id.
        name: display name.
        type: entity type.
        recent: mean sentiment over the recent window.
        baseline: mean sentiment over the trailing window before it.
        change: `recent - baseline`.
        recent_n: mentions in the recent window.
        baseline_n: mentions in the trailing window.
    """

    entity: str
    name: str
    type: str
    recent: float
    baseline: float
    change: float
    recent_n: int
    baseline_n: int


@dataclass(frozen=True)
class Evidence:
    """A sentence that says something about an entity.

    Attributes:
        article_id: the article.
        published: its publication time (ISO 8601, UTC).
        sentence: the sentence.
        sentiment: the mention's (entity-level if scored, else the sentence's) or relation
            sentence's sentiment.
        kind: "mention" or "relation".
        relation: the relation type, for relations.
        other: the entity at the other end, for relations.
        confidence: the relation's confidence, for relations.
    """

    article_id: str
    published: str
    sentence: str
    sentiment: float
    kind: str
    relation: str | None = None
    other: str | None = None
    confidence: float | None = None


def _relation_filter(relation: str | Iterable[str] | None) -> frozenset[str] | None:
    if relation is None:
        return None
    wanted = frozenset([relation] if isinstance(relation, str) else relation)
    unknown = sorted(wanted - set(RELATION_TYPES))
    if unknown:
        raise KgError(
            f"relation {unknown[0]!r} is not a relation type; use one of "
            f"{', '.join(RELATION_TYPES)} (co-mentions: co_mentions=True)"
        )
    return wanted


def projection(
    kg: KnowledgeGraph,
    *,
    relation: str | Iterable[str] | None = None,
    co_mentions: bool = True,
) -> nx.Graph:
    """The undirected simple graph that algorithms run on; edge `weight` sums evidence counts.

    Args:
        kg: the graph.
        relation: keep only these relation types (all when None).
        co_mentions: include co-mention edges.
    """
    wanted = _relation_filter(relation)
    graph = kg.graph
    simple = nx.Graph()
    simple.add_nodes_from(sorted(graph.nodes))
    for u, v, _key, data in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3]):
        if data[EDGE_KIND] == KIND_CO_MENTION:
            if not co_mentions:
                continue
        elif wanted is not None and data[EDGE_TYPE] not in wanted:
            continue
        a, b = sorted((u, v))
        weight = simple.edges[a, b]["weight"] if simple.has_edge(a, b) else 0
        simple.add_edge(a, b, weight=weight + data[EDGE_COUNT])
    return simple


def neighbours(
    kg: KnowledgeGraph,
    entity: str,
    *,
    relation: str | Iterable[str] | None = None,
    direction: str = "any",
    co_mentions: bool = False,
) -> list[Neighbour]:
    """Entities linked to one, by relation type and direction.

    Args:
        kg: the graph.
        entity: id, name or alias.
        relation: relation type(s) to follow (all when None).
        direction: "out" (entity is the head), "in" (entity is the tail) or "any"; symmetric
            relations (partners_with, competes_with) match every direction.
        co_mentions: include entities named in the same sentences.

    Returns:
        Neighbours by evidence count (most first), then id and relation.
    """
    if direction not in _DIRECTIONS:
        raise KgError(f"direction {direction!r}: use one of {', '.join(_DIRECTIONS)}")
    node = kg.find(entity)
    wanted = _relation_filter(relation)
    graph = kg.graph
    found = []
    edges = [(u, v, k, d, "out") for u, v, k, d in graph.out_edges(node, keys=True, data=True)]
    edges += [(u, v, k, d, "in") for u, v, k, d in graph.in_edges(node, keys=True, data=True)]
    for u, v, _, data, side in edges:
        other = v if side == "out" else u
        if data[EDGE_KIND] == KIND_CO_MENTION:
            if co_mentions:
                found.append(
                    Neighbour(other, _name(kg, other), KIND_CO_MENTION, "any", data[EDGE_COUNT])
                )
            continue
        kind = data[EDGE_TYPE]
        if wanted is not None and kind not in wanted:
            continue
        side = "any" if kind in SYMMETRIC_RELATIONS else side
        if direction != "any" and side not in (direction, "any"):
            continue
        found.append(
            Neighbour(other, _name(kg, other), kind, side, data[EDGE_COUNT], data[EDGE_CONFIDENCE])
        )
    return sorted(found, key=lambda n: (-n.count, n.entity, n.relation, n.direction))


def _name(kg: KnowledgeGraph, node: str) -> str:
    return kg.graph.nodes[node][NODE_NAME]


def shortest_paths(
    kg: KnowledgeGraph,
    source: str,
    target: str,
    *,
    relation: str | Iterable[str] | None = None,
    co_mentions: bool = True,
    limit: int = 10,
) -> list[list[str]]:
    """All shortest paths between two entities (node ids), ignoring edge direction.

    Args:
        kg: the graph.
        source: id, name or alias.
        target: id, name or alias.
        relation: relation types to walk along (all when None).
        co_mentions: also walk along co-mentions.
        limit: at most this many paths, in sorted order.

    Returns:
        The paths, each a list of node ids from source to target; [] when none connects them.
    """
    start, end = kg.find(source), kg.find(target)
    simple = projection(kg, relation=relation, co_mentions=co_mentions)
    try:
        paths = sorted(nx.all_shortest_paths(simple, start, end))
    except nx.NetworkXNoPath:
        return []
    return list(islice(paths, limit))


def ego_graph(
    kg: KnowledgeGraph,
    entity: str,
    radius: int = 1,
    *,
    relation: str | Iterable[str] | None = None,
    co_mentions: bool = True,
) -> nx.MultiDiGraph:
    """The entities within `radius` steps of one (direction ignored), with their edges.

    Returns:
        A new MultiDiGraph holding those nodes and the edges among them that were walked
        along (with all their attributes).
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise KgError(f"radius {radius!r}: expected an int >= 0")
    node = kg.find(entity)
    wanted = _relation_filter(relation)
    simple = projection(kg, relation=relation, co_mentions=co_mentions)
    keep = set(nx.ego_graph(simple, node, radius=radius))
    graph = kg.graph
    ego = nx.MultiDiGraph(**graph.graph)
    ego.add_nodes_from((n, dict(graph.nodes[n])) for n in sorted(keep))
    for u, v, key, data in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3]):
        if u not in keep or v not in keep:
            continue
        if data[EDGE_KIND] == KIND_CO_MENTION:
            if not co_mentions:
                continue
        elif wanted is not None and data[EDGE_TYPE] not in wanted:
            continue
        ego.add_edge(u, v, key=key, **data)
    return ego


def as_of(kg: KnowledgeGraph, when: datetime | date | str) -> KnowledgeGraph:
    """The graph as it stood at `when`: built from the articles published by then."""
    return kg.as_of(when)


def communities(
    kg: KnowledgeGraph,
    *,
    method: str = "louvain",
    seed: int = 0,
    resolution: float = 1.0,
    co_mentions: bool = True,
) -> list[list[str]]:
    """Groups of densely linked entities (networkx's Louvain or greedy modularity).

    Args:
        kg: the graph.
        method: "louvain" (seeded) or "greedy" (greedy modularity, deterministic).
        seed: random seed for Louvain.
        resolution: above 1 favours smaller communities.
        co_mentions: count co-mentions as links.

    Returns:
        Communities as sorted lists of node ids, largest first (ties by first id).
    """
    simple = projection(kg, co_mentions=co_mentions)
    if simple.number_of_nodes() == 0:
        return []
    if method == "louvain":
        found = nx.community.louvain_communities(
            simple, weight="weight", resolution=resolution, seed=seed
        )
    elif method == "greedy":
        found = nx.community.greedy_modularity_communities(
            simple, weight="weight", resolution=resolution
        )
    else:
        raise KgError(f"method {method!r}: use 'louvain' or 'greedy'")
    return sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))


def centrality(
    kg: KnowledgeGraph,
    *,
    measure: str = "pagerank",
    co_mentions: bool = True,
    top: int | None = None,
) -> list[tuple[str, float]]:
    """Entities ranked by importance.

    Args:
        kg: the graph.
        measure: "pagerank" (weighted by evidence counts) or "degree" (networkx's degree
            centrality: the share of other entities each is linked to).
        co_mentions: count co-mentions as links.
        top: keep the first `top`.

    Returns:
        (node id, score) pairs, highest first, ties by id.
    """
    simple = projection(kg, co_mentions=co_mentions)
    if simple.number_of_nodes() == 0:
        return []
    if measure == "pagerank":
        scores = nx.pagerank(simple, weight="weight")
    elif measure == "degree":
        scores = nx.degree_centrality(simple)
    else:
        raise KgError(f"measure {measure!r}: use 'pagerank' or 'degree'")
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return ranked if top is None else ranked[:top]


def top_movers(
    kg: KnowledgeGraph,
    *,
    days: int = 7,
    trailing: int = 28,
    end: datetime | date | str | None = None,
    min_mentions: int = 2,
    top: int = 10,
) -> list[Mover]:
    """Entities whose mean sentiment over the last `days` moved most against the window before.

    The recent window is the `days` UTC days ending with `end` (inclusive); the trailing window
    is the `trailing` days before it. Means weigh each mention alike.

    Args:
        kg: the graph.
        days: length of the recent window.
        trailing: length of the trailing window.
        end: last day of the recent window; the latest day with any mention when None.
        min_mentions: skip entities with fewer mentions than this in either window.
        top: how many to return.

    Returns:
        Movers by absolute change (largest first), ties by id.
    """
    for name, value in (("days", days), ("trailing", trailing), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise KgError(f"{name}={value!r}: expected an int >= 1")
    graph = kg.graph
    if end is None:
        seen = [day for _, series in graph.nodes(data=NODE_SENTIMENT_BY_DAY) for day in series]
        if not seen:
            return []
        last = date.fromisoformat(max(seen))
    else:
        last = parse_time(end, "end").date()
    recent_from = (last - timedelta(days=days - 1)).isoformat()
    trailing_from = (last - timedelta(days=days + trailing - 1)).isoformat()
    last_day = last.isoformat()
    movers = []
    for node, data in graph.nodes(data=True):
        recent, baseline = [], []
        for day, point in data[NODE_SENTIMENT_BY_DAY].items():
            if recent_from <= day <= last_day:
                recent.append(point)
            elif trailing_from <= day < recent_from:
                baseline.append(point)
        recent_n, baseline_n = sum(p["n"] for p in recent), sum(p["n"] for p in baseline)
        if recent_n < max(min_mentions, 1) or baseline_n < max(min_mentions, 1):
            continue
        now = math.fsum(p["mean"] * p["n"] for p in recent) / recent_n
        before = math.fsum(p["mean"] * p["n"] for p in baseline) / baseline_n
        movers.append(
            Mover(
                node,
                data[NODE_NAME],
                data[NODE_TYPE],
                now,
                before,
                now - before,
                recent_n,
                baseline_n,
            )
        )
    movers.sort(key=lambda m: (-abs(m.change), m.entity))
    return movers[:top]


def evidence(
    kg: KnowledgeGraph,
    entity: str,
    *,
    relation: str | Iterable[str] | None = None,
    include_mentions: bool = True,
) -> list[Evidence]:
    """The sentences behind an entity: where it is mentioned and where its relations are stated.

    Args:
        kg: the graph.
        entity: id, name or alias.
        relation: only relation evidence of these types (mentions are then left out).
        include_mentions: include sentences that only mention the entity.

    Returns:
        Evidence by publication time, article, kind and sentence; a sentence mentioning the
        entity twice comes once.
    """
    node = kg.find(entity)
    wanted = _relation_filter(relation)
    found: list[Evidence] = []
    if include_mentions and wanted is None:
        seen = set()
        for article, mention in kg.mentions(node):
            if (article.id, mention.sentence_index) in seen:
                continue
            seen.add((article.id, mention.sentence_index))
            found.append(
                Evidence(
                    article.id,
                    format_time(article.published),
                    mention.sentence,
                    mention.score,
                    "mention",
                )
            )
    graph = kg.graph
    edges = list(graph.out_edges(node, keys=True, data=True))
    edges += list(graph.in_edges(node, keys=True, data=True))
    for u, v, _, data in edges:
        if data[EDGE_KIND] == KIND_CO_MENTION:
            continue
        if wanted is not None and data[EDGE_TYPE] not in wanted:
            continue
        for item in data[EDGE_EVIDENCE]:
            found.append(
                Evidence(
                    item[EVIDENCE_ARTICLE],
                    item[EVIDENCE_PUBLISHED],
                    item[EVIDENCE_SENTENCE],
                    item[EVIDENCE_SENTIMENT],
                    "relation",
                    data[EDGE_TYPE],
                    v if u == node else u,
                    item[EVIDENCE_CONFIDENCE],
                )
            )
    return sorted(
        found,
        key=lambda e: (
            e.published,
            e.article_id,
            e.kind,
            e.sentence,
            e.relation or "",
            e.other or "",
        ),
    )
