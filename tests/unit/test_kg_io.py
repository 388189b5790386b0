"""kg.io: node-link JSON round trip, GraphML read back by networkx, offline HTML with escaped text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from kg import Extraction, KgError, KnowledgeGraph
from kg.io import canonical_dump, export_graphml, export_html, load_json, save_json
from kg.schema import NODE_ALIASES, NODE_NAME

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REGISTRY = FIXTURES / "kg_registry.yaml"
NEWS = [
    Extraction.from_dict(json.loads(line))
    for line in (FIXTURES / "kg_news.jsonl").read_text(encoding="utf-8").splitlines()
]
EVIL = '<script>alert("x")</script> & Co'


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.build(NEWS, aliases=REGISTRY)


def _evil_graph() -> KnowledgeGraph:
    sentence = f"{EVIL} sued Northwind Holdings Inc. over <b>patents</b>."
    extra = Extraction.from_dict(
        {
            "article": {
                "id": "evil",
                "source": "s",
                "title": "<i>t</i>",
                "published": "2024-03-30T00:00:00Z",
                "sentiment": 0,
            },
            "mentions": [
                {
                    "text": EVIL,
                    "type": "ORG",
                    "sentence_index": 0,
                    "sentence": sentence,
                    "sentiment": -0.5,
                },
                {
                    "text": "Northwind Holdings Inc.",
                    "type": "ORG",
                    "sentence_index": 0,
                    "sentence": sentence,
                    "sentiment": -0.5,
                },
            ],
            "relations": [
                {
                    "head": EVIL,
                    "tail": "Northwind Holdings Inc.",
                    "type": "sues",
                    "confidence": 0.7,
                    "sentence": sentence,
                    "sentiment": -0.5,
                }
            ],
        }
    )
    return KnowledgeGraph.build([*NEWS, extra], REGISTRY)


def test_json_round_trip_is_equal_and_stable(kg, tmp_path):
    path = save_json(kg, tmp_path / "graph.json")
    loaded = load_json(path)
    assert nx.utils.graphs_equal(loaded.graph, kg.graph)
    assert canonical_dump(loaded) == canonical_dump(kg)
    assert loaded.extractions == kg.extractions and loaded.options() == kg.options()
    again = save_json(loaded, tmp_path / "again.json")
    assert again.read_bytes() == path.read_bytes()
    # plain networkx reads the same file
    plain = nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), edges="edges")
    assert nx.utils.graphs_equal(plain, kg.graph)
    # a loaded graph keeps growing incrementally
    assert loaded.add(NEWS[0]).unchanged == ("a01",)


def test_load_refuses_edited_or_foreign_files(kg, tmp_path):
    path = save_json(kg, tmp_path / "graph.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["nodes"][0][NODE_NAME] = "Edited"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        KgError, match=r"differs from the graph its extractions build \(node 'gpe:germany'\)"
    ):
        load_json(path)
    assert canonical_dump(load_json(path, check=False)) == canonical_dump(kg)
    (tmp_path / "other.json").write_text('{"nodes": []}', encoding="utf-8")
    with pytest.raises(KgError, match="not a saved knowledge graph"):
        load_json(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(KgError, match="not valid JSON"):
        load_json(tmp_path / "broken.json")


def test_graphml_is_read_back_by_networkx(kg, tmp_path):
    path = export_graphml(kg, tmp_path / "graph.graphml")
    back = nx.read_graphml(path)
    assert back.is_directed() and back.is_multigraph()
    assert sorted(back.nodes) == sorted(kg.graph.nodes)
    assert back.number_of_edges() == kg.graph.number_of_edges()
    node = back.nodes["org:northwind"]
    assert json.loads(node[NODE_ALIASES]) == kg.graph.nodes["org:northwind"][NODE_ALIASES]
    assert node["mention_count"] == 9 and node["registered"] is False
    assert isinstance(node["sentiment"], float)
    edge = back.edges["org:northwind", "org:contoso-pharmaceuticals", "acquires"]
    assert json.loads(edge["evidence"])[0]["article_id"] == "a01"


def test_html_is_offline_and_escapes_every_text(tmp_path):
    graph = _evil_graph()
    path = export_html(graph, tmp_path / "graph.html", title="News <graph>", seed=3)
    page = path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert "<script>alert" not in page and "<b>patents" not in page
    assert "over &lt;b&gt;patents&lt;/b&gt;" in page  # evidence sentence in the click panel
    assert "<title>News &lt;graph&gt;</title>" in page
    assert page.count("<script>") == 1  # the page's own script only
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    assert page.count('class="node"') == graph.graph.number_of_nodes()
    assert page.count("<section") == graph.graph.number_of_nodes()
    assert (
        export_html(graph, tmp_path / "again.html", title="News <graph>", seed=3).read_text(
            encoding="utf-8"
        )
        == page
    )


def test_html_caps_nodes_and_handles_an_empty_graph(kg, tmp_path):
    page = export_html(kg, tmp_path / "top.html", max_nodes=3).read_text(encoding="utf-8")
    assert page.count('class="node"') == 3 and "showing the 3 most mentioned" in page
    empty = export_html(KnowledgeGraph(), tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "0 entities" in empty
    assert (
        nx.read_graphml(export_graphml(KnowledgeGraph(), tmp_path / "e.graphml")).number_of_nodes()
        == 0
    )
