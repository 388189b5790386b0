"""Save and load the knowledge graph (node-link JSON), export GraphML and an offline HTML view.

The JSON file is networkx's node-link form (`nx.node_link_graph(data, edges="edges")` reads
it as is) plus the extractions and options the graph was built from, so a loaded graph can
go on growing incrementally. GraphML holds scalars only: list and dict attributes are written
as JSON strings. The HTML view is one self-contained file: an SVG drawn from networkx's
`spring_layout` (seeded), hover titles, and a panel listing a node's relations on click; no
script or style comes from the network, and every text from the data is escaped.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import networkx as nx

from kg.errors import KgError
from kg.graph import GRAPH_VERSION, KnowledgeGraph
from kg.schema import (
    EDGE_ARTICLES,
    EDGE_CONFIDENCE,
    EDGE_COUNT,
    EDGE_EVIDENCE,
    EDGE_KIND,
    EDGE_SENTIMENT,
    EDGE_TYPE,
    EVIDENCE_PUBLISHED,
    EVIDENCE_SENTENCE,
    KIND_CO_MENTION,
    NODE_ALIASES,
    NODE_FIRST_SEEN,
    NODE_LAST_SEEN,
    NODE_MENTION_COUNT,
    NODE_NAME,
    NODE_SENTIMENT,
    NODE_TICKERS,
    NODE_TYPE,
    RELATION_TYPES,
    Extraction,
)

__all__ = [
    "FILE_FORMAT",
    "canonical_dump",
    "export_graphml",
    "export_html",
    "from_json_dict",
    "load_json",
    "save_json",
    "to_json_dict",
]

FILE_FORMAT = "lepton-kg"
"""The `format` field of a saved graph."""


# --- JSON ---------------------------------------------------------------------------------


def _sorted_node_link(graph: nx.MultiDiGraph) -> dict[str, Any]:
    data = nx.node_link_data(graph, edges="edges")
    data["nodes"].sort(key=lambda n: n["id"])
    data["edges"].sort(key=lambda e: (e["source"], e["target"], e["key"]))
    return data


def to_json_dict(kg: KnowledgeGraph) -> dict[str, Any]:
    """The saved form: node-link data plus `format`, `version`, `options` and `extractions`."""
    data = _sorted_node_link(kg.graph)
    data.update(
        {
            "format": FILE_FORMAT,
            "version": GRAPH_VERSION,
            "options": kg.options(),
            "extractions": [e.to_dict() for e in kg.extractions],
        }
    )
    return data


def from_json_dict(data: Mapping[str, Any], *, check: bool = True) -> KnowledgeGraph:
    """Rebuild a `KnowledgeGraph` from `to_json_dict`'s form.

    Args:
        data: the saved form.
        check: compare the stored graph with the one rebuilt from the stored extractions and
            refuse a difference (a hand-edited file, or one from another `kg` version).

    Raises:
        KgError: not a saved graph, a newer version, or (with `check`) a mismatch.
    """
    if not isinstance(data, Mapping) or data.get("format") != FILE_FORMAT:
        raise KgError(
            f"not a saved knowledge graph (expected format {FILE_FORMAT!r}); write one with "
            "kg.io.save_json"
        )
    version = data.get("version")
    if not isinstance(version, int) or version > GRAPH_VERSION:
        raise KgError(
            f"saved graph has version {version!r}; this kg reads up to {GRAPH_VERSION}: "
            "upgrade lepton-nlp"
        )
    options = dict(data.get("options") or {})
    unknown = sorted(set(options) - {"aliases", "link_prefixes", "skip_types"})
    if unknown:
        raise KgError(f"saved graph: unknown option {unknown[0]!r}")
    extractions = data.get("extractions")
    if not isinstance(extractions, list):
        raise KgError("saved graph has no 'extractions' list; it cannot be rebuilt or extended")
    kg = KnowledgeGraph(options.pop("aliases", None), **options)
    try:
        kg.add(Extraction.from_dict(item) for item in extractions)
    except KgError as error:
        raise KgError(f"saved graph: {error}") from None
    if check:
        stored = nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
        if not nx.utils.graphs_equal(stored, kg.graph):
            raise KgError(
                "saved graph differs from the graph its extractions build ("
                + _first_difference(stored, kg.graph)
                + "); it was edited or written by another kg version: load with check=False "
                "to rebuild it from its extractions"
            )
    return kg


def _first_difference(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> str:
    if a.graph != b.graph:
        return "graph attributes"
    for node in sorted(set(a) | set(b)):
        if node not in a or node not in b or a.nodes[node] != b.nodes[node]:
            return f"node {node!r}"
    edges_a = {(u, v, k): d for u, v, k, d in a.edges(keys=True, data=True)}
    edges_b = {(u, v, k): d for u, v, k, d in b.edges(keys=True, data=True)}
    for key in sorted(set(edges_a) | set(edges_b)):
        if edges_a.get(key) != edges_b.get(key):
            return f"edge {key!r}"
    return "edges"


def save_json(kg: KnowledgeGraph, path: str | PathLike[str]) -> Path:
    """Write the graph as node-link JSON with its extractions (atomically).

    Returns:
        The path written.
    """
    path = Path(path)
    text = json.dumps(to_json_dict(kg), ensure_ascii=False, sort_keys=True, indent=1)
    _write_atomic(path, text + "\n")
    return path


def load_json(path: str | PathLike[str], *, check: bool = True) -> KnowledgeGraph:
    """Read a graph written by `save_json` (see `from_json_dict` for `check`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KgError(f"{path}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise KgError(f"{path}: not valid JSON ({error})") from None
    try:
        return from_json_dict(data, check=check)
    except KgError as error:
        raise KgError(f"{path}: {error}") from None


def canonical_dump(graph: nx.MultiDiGraph | KnowledgeGraph) -> str:
    """The graph as sorted JSON text: equal graphs give equal text, whatever their history."""
    graph = graph.graph if isinstance(graph, KnowledgeGraph) else graph
    return json.dumps(_sorted_node_link(graph), sort_keys=True, ensure_ascii=False)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- GraphML ------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def export_graphml(graph: nx.MultiDiGraph | KnowledgeGraph, path: str | PathLike[str]) -> Path:
    """Write GraphML for tools like Gephi or yEd; lists and dicts become JSON strings.

    `nx.read_graphml(path)` reads it back; `json.loads` turns those strings back.

    Returns:
        The path written.
    """
    graph = graph.graph if isinstance(graph, KnowledgeGraph) else graph
    flat = nx.MultiDiGraph(**{k: _scalar(v) for k, v in graph.graph.items() if v is not None})
    for node, data in sorted(graph.nodes(data=True)):
        flat.add_node(node, **{k: _scalar(v) for k, v in data.items() if v is not None})
    for u, v, key, data in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3]):
        flat.add_edge(u, v, key=key, **{k: _scalar(x) for k, x in data.items() if x is not None})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(flat, path, encoding="utf-8")
    return path


# --- HTML ---------------------------------------------------------------------------------

_TYPE_COLOURS = {
    "ORG": "#3b6fb6",
    "PERSON": "#c0504d",
    "GPE": "#4f9a4f",
    "LOC": "#6aa84f",
    "PRODUCT": "#e69138",
    "EVENT": "#8e7cc3",
    "TICKER": "#7f7f7f",
    "MONEY": "#b7b7b7",
    "MISC": "#a0a0a0",
}
_RELATION_COLOURS = dict(
    zip(
        RELATION_TYPES,
        [
            "#d62728",
            "#2ca02c",
            "#1f77b4",
            "#ff7f0e",
            "#9467bd",
            "#8c564b",
            "#17becf",
            "#e377c2",
            "#7f7f7f",
        ],
        strict=True,
    )
)
_WIDTH, _HEIGHT, _MARGIN = 1000, 700, 40

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#view{flex:1;min-width:0;border-right:1px solid #ddd}
svg{width:100%;height:100%;cursor:grab;background:#fcfcfc}
.edge{stroke-opacity:.7}.edge.co{stroke:#bbb;stroke-dasharray:4 3}
.node circle{stroke:#fff;stroke-width:1.5}.node{cursor:pointer}
.node text{font-size:11px;pointer-events:none;fill:#333}
.node.on circle{stroke:#000;stroke-width:3}
aside{width:360px;overflow:auto;padding:12px}
aside h2{font-size:16px;margin:4px 0}aside ul{padding-left:18px}
.quote{color:#555;font-style:italic}.small{color:#666;font-size:12px}
.legend span{display:inline-block;margin-right:8px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:3px;border-radius:5px}
"""

_SCRIPT = """
(function(){
  var svg=document.getElementById('graph');
  var vb=svg.viewBox.baseVal, drag=null;
  function show(id){
    document.querySelectorAll('aside section').forEach(function(s){s.hidden=s.id!=='d-'+id;});
    document.querySelectorAll('g.node').forEach(function(g){
      g.classList.toggle('on',g.dataset.id===id);});
  }
  document.querySelectorAll('g.node').forEach(function(g){
    g.addEventListener('click',function(e){e.stopPropagation();show(g.dataset.id);});
    g.addEventListener('keydown',function(e){if(e.key==='Enter'){show(g.dataset.id);}});
  });
  svg.addEventListener('wheel',function(e){
    e.preventDefault();
    var k=e.deltaY>0?1.15:1/1.15, r=svg.getBoundingClientRect();
    var x=vb.x+(e.clientX-r.left)/r.width*vb.width, y=vb.y+(e.clientY-r.top)/r.height*vb.height;
    vb.x=x-(x-vb.x)*k; vb.y=y-(y-vb.y)*k; vb.width*=k; vb.height*=k;
  },{passive:false});
  svg.addEventListener('mousedown',function(e){drag={x:e.clientX,y:e.clientY};});
  window.addEventListener('mouseup',function(){drag=null;});
  window.addEventListener('mousemove',function(e){
    if(!drag){return;}
    var r=svg.getBoundingClientRect();
    vb.x-=(e.clientX-drag.x)/r.width*vb.width; vb.y-=(e.clientY-drag.y)/r.height*vb.height;
    drag={x:e.clientX,y:e.clientY};
  });
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def export_html(
    kg: KnowledgeGraph | nx.MultiDiGraph,
    path: str | PathLike[str],
    *,
    title: str = "Knowledge graph",
    seed: int = 0,
    max_nodes: int = 200,
    evidence_per_edge: int = 3,
) -> Path:
    """Write one self-contained HTML page showing the graph; it works offline.

    Nodes are coloured by type and sized by mentions; relation edges are coloured by type,
    co-mentions dashed grey. Hovering shows a node's or edge's summary; clicking a node lists
    its relations with evidence sentences. Drag to pan, scroll to zoom.

    Args:
        kg: the graph (a `KnowledgeGraph` or its networkx graph).
        path: where to write.
        title: page title.
        seed: seed of `nx.spring_layout`, so the same graph draws the same way.
        max_nodes: draw at most this many nodes (the most mentioned; the page says so).
        evidence_per_edge: evidence sentences listed per relation in the panel.

    Returns:
        The path written.
    """
    graph = kg.graph if isinstance(kg, KnowledgeGraph) else kg
    ranked = sorted(graph.nodes, key=lambda n: (-graph.nodes[n][NODE_MENTION_COUNT], n))
    shown = sorted(ranked[:max_nodes])
    sub = graph.subgraph(shown)
    simple = nx.Graph()
    simple.add_nodes_from(shown)
    for u, v, data in sorted(sub.edges(data=True), key=lambda e: e[:2]):
        a, b = sorted((u, v))
        weight = simple.edges[a, b]["weight"] if simple.has_edge(a, b) else 0
        simple.add_edge(a, b, weight=weight + data[EDGE_COUNT])
    positions = nx.spring_layout(simple, seed=seed, weight="weight") if shown else {}
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0

    def xy(node: str) -> tuple[float, float]:
        x, y = positions[node]
        return (
            round(_MARGIN + (x - min(xs)) / span_x * (_WIDTH - 2 * _MARGIN), 1),
            round(_MARGIN + (y - min(ys)) / span_y * (_HEIGHT - 2 * _MARGIN), 1),
        )

    index = {node: f"n{i}" for i, node in enumerate(shown)}
    names = {node: graph.nodes[node][NODE_NAME] for node in shown}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f'<div id="view"><svg id="graph" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        "<defs>"
        + "".join(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="18" refY="5" markerWidth="6" '
            f'markerHeight="6" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
            f'fill="{colour}"/></marker>'
            for kind, colour in _RELATION_COLOURS.items()
        )
        + "</defs>",
    ]
    for u, v, _key, data in sorted(sub.edges(keys=True, data=True), key=lambda e: e[:3]):
        (x1, y1), (x2, y2) = xy(u), xy(v)
        if data[EDGE_KIND] == KIND_CO_MENTION:
            label = f"{names[u]} and {names[v]}: named together in {data[EDGE_COUNT]} sentence(s)"
            parts.append(
                f'<line class="edge co" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}">'
                f"<title>{_e(label)}</title></line>"
            )
            continue
        kind = data[EDGE_TYPE]
        colour = _RELATION_COLOURS[kind]
        width = min(1 + data[EDGE_COUNT], 6)
        label = (
            f"{names[u]} {kind} {names[v]}: {data[EDGE_COUNT]} sentence(s), "
            f"confidence {data[EDGE_CONFIDENCE]:.2f}"
        )
        parts.append(
            f'<line class="edge" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" '
            f'stroke-width="{width}" marker-end="url(#arrow-{kind})"><title>{_e(label)}</title></line>'
        )
    for node in shown:
        data = graph.nodes[node]
        x, y = xy(node)
        radius = round(5 + 3 * data[NODE_MENTION_COUNT] ** 0.5, 1)
        colour = _TYPE_COLOURS.get(data[NODE_TYPE], "#999")
        summary = (
            f"{data[NODE_NAME]} ({data[NODE_TYPE]}): {data[NODE_MENTION_COUNT]} mention(s), "
            f"sentiment {data[NODE_SENTIMENT]:+.2f}"
        )
        parts.append(
            f'<g class="node" data-id="{index[node]}" tabindex="0" transform="translate({x},{y})">'
            f'<circle r="{radius}" fill="{colour}"></circle><title>{_e(summary)}</title>'
            f'<text x="{radius + 2}" y="4">{_e(data[NODE_NAME])}</text></g>'
        )
    parts.append("</svg></div><aside>")
    parts.append(f"<h1 style='font-size:18px'>{_e(title)}</h1>")
    note = f"{graph.number_of_nodes()} entities, {graph.number_of_edges()} edges"
    if len(shown) < graph.number_of_nodes():
        note += f"; showing the {len(shown)} most mentioned"
    parts.append(f'<p class="small">{_e(note)}. Click an entity to see its relations.</p>')
    parts.append(
        '<p class="legend">'
        + "".join(
            f'<span><i style="background:{c}"></i>{_e(t)}</span>' for t, c in _TYPE_COLOURS.items()
        )
        + "</p>"
    )
    for node in shown:
        parts.append(_details(graph, node, index[node], evidence_per_edge))
    parts.append(f"</aside><script>{_SCRIPT}</script></body></html>")
    path = Path(path)
    _write_atomic(path, "\n".join(parts) + "\n")
    return path


def _details(graph: nx.MultiDiGraph, node: str, anchor: str, evidence_per_edge: int) -> str:
    data = graph.nodes[node]
    rows = [
        f'<section id="d-{anchor}" hidden><h2>{_e(data[NODE_NAME])}</h2>',
        f'<p class="small">{_e(data[NODE_TYPE])} · {_e(node)} · '
        f"{data[NODE_MENTION_COUNT]} mention(s) · sentiment {data[NODE_SENTIMENT]:+.2f} · "
        f"seen {_e(data[NODE_FIRST_SEEN][:10])} to {_e(data[NODE_LAST_SEEN][:10])}</p>",
    ]
    also = [alias for alias in data[NODE_ALIASES] if alias != data[NODE_NAME]]
    if also:
        rows.append(f'<p class="small">Also written: {_e(", ".join(also))}</p>')
    if data[NODE_TICKERS]:
        rows.append(f'<p class="small">Tickers: {_e(", ".join(data[NODE_TICKERS]))}</p>')
    relations, co = [], []
    edges = [(v, k, d, True) for _, v, k, d in graph.out_edges(node, keys=True, data=True)]
    edges += [(u, k, d, False) for u, _, k, d in graph.in_edges(node, keys=True, data=True)]
    for other, _, edge, outgoing in sorted(edges, key=lambda e: (-e[2][EDGE_COUNT], e[0], e[1])):
        name = graph.nodes[other][NODE_NAME]
        if edge[EDGE_KIND] == KIND_CO_MENTION:
            co.append(
                f"<li>{_e(name)} <span class='small'>({edge[EDGE_COUNT]} sentence(s), "
                f"{len(edge[EDGE_ARTICLES])} article(s))</span></li>"
            )
            continue
        quotes = "".join(
            f'<li class="quote">{_e(item[EVIDENCE_SENTENCE])} '
            f'<span class="small">({_e(item[EVIDENCE_PUBLISHED][:10])})</span></li>'
            for item in edge[EDGE_EVIDENCE][-evidence_per_edge:]
        )
        head, tail = (data[NODE_NAME], name) if outgoing else (name, data[NODE_NAME])
        rows_label = (
            f"{_e(head)} <b>{_e(edge[EDGE_TYPE])}</b> {_e(tail)} <span class='small'>"
            f"({edge[EDGE_COUNT]}×, confidence {edge[EDGE_CONFIDENCE]:.2f}, "
            f"sentiment {edge[EDGE_SENTIMENT]:+.2f})</span>"
        )
        relations.append(f"<li>{rows_label}<ul>{quotes}</ul></li>")
    rows.append(
        "<h3>Relations</h3>" + (f"<ul>{''.join(relations)}</ul>" if relations else "<p>none</p>")
    )
    if co:
        rows.append(f"<h3>Named with</h3><ul>{''.join(co[:20])}</ul>")
    rows.append("</section>")
    return "".join(rows)
