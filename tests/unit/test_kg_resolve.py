"""kg.resolve: canonical entities across articles, and accuracy on the project's alias pairs."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kg import AliasTable, Article, EntityResolver, Extraction, KgError, Mention
from kg.resolve import normalize, org_key, paired_ticker, parse_ticker, person_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REGISTRY = FIXTURES / "kg_registry.yaml"
PAIRS = FIXTURES / "kg_aliases.jsonl"
ACCURACY_FLOOR = (
    0.9  # measured 0.94 (47/50) when the pairs were written; the misses are named there
)
WHEN = datetime(2024, 3, 1, tzinfo=UTC)


def article(aid: str, *mentions: tuple[str, str] | tuple[str, str, int, str]) -> Extraction:
    """An article whose mentions are (text, type) or (text, type, sentence index, sentence)."""
    items = []
    for i, mention in enumerate(mentions):
        text, type_, index, sentence = (*mention, i, f"{mention[0]} spoke.")[:4]
        items.append(Mention(aid, text, type_, index, sentence, 0.0))
    return Extraction(Article(aid, "test", aid, WHEN, 0.0), items)


def resolve_all(resolver: EntityResolver, *articles: Extraction) -> dict[str, list[str]]:
    for item in articles:
        resolver.observe(item)
    return {item.id: [ref.id for ref in resolver.resolve_article(item)] for item in articles}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Northwind Holdings Inc.", ("northwind", True)),
        ("NORTHWIND", ("northwind", False)),
        ("Northwind Bank", ("northwind bank", False)),
        ("Smith & Co.", ("smith", True)),
        ("Société Générale S.A.", ("societe generale", True)),
        ("Contoso's", ("contoso", False)),
        ("Fabrikam A/S", ("fabrikam", True)),
        ("The Tailspin Group", ("tailspin", True)),
        ("Group", ("group", False)),
    ],
)
def test_org_keys(text, key):
    assert org_key(text) == key


def test_normalise_people_and_tickers():
    assert normalize("  The  Phoenix-Company ") == "phoenix company"
    assert person_key("Dr. Jane Okafor Jr.") == "jane okafor"
    assert person_key("Ms Okafor") == "okafor"
    assert parse_ticker("$nwnd") == "NWND"
    assert parse_ticker("NASDAQ: NWND") == parse_ticker("NYSE:NWND") == "NWND"
    assert parse_ticker("NWND", "TICKER") == "NWND"
    assert parse_ticker("NWND", "ORG") is None
    assert parse_ticker("$2.1 billion", "MONEY") is None
    sentence = "Shares of Northwind Holdings Inc. (NASDAQ: NWND) rose."
    assert paired_ticker(Mention("a", "Northwind Holdings", "ORG", 0, sentence, 0)) == "NWND"
    assert paired_ticker(Mention("a", "Northwind (NWND)", "ORG", 0, "x", 0)) == "NWND"
    assert (
        paired_ticker(Mention("a", "Northwind", "ORG", 0, "Northwind rose (slightly).", 0)) is None
    )


def test_suffixes_merge_and_a_different_word_stays_apart():
    ids = resolve_all(
        EntityResolver(),
        article("a", ("Northwind Holdings Inc.", "ORG")),
        article("b", ("Northwind", "ORG"), ("NORTHWIND HOLDINGS", "ORG")),
        article("c", ("Northwind Bank", "ORG")),
    )
    assert ids["a"] == ["org:northwind"] and ids["b"] == ["org:northwind", "org:northwind"]
    assert ids["c"] == ["org:northwind-bank"]


def test_short_name_joins_the_one_longer_name_unless_the_registry_defines_it():
    bank = article("a", ("Northwind Bank", "ORG"))
    short = article("b", ("Northwind", "ORG"))
    assert resolve_all(EntityResolver(), bank, short)["b"] == ["org:northwind-bank"]
    registry = {"Northwind Bank": ["NWB"]}
    assert resolve_all(EntityResolver(registry), bank, short)["b"] == ["org:northwind"]
    assert resolve_all(EntityResolver(link_prefixes=False), bank, short)["b"] == ["org:northwind"]
    # Two longer names: ambiguous, so the short one stays itself.
    energy = article("c", ("Northwind Energy", "ORG"))
    assert resolve_all(EntityResolver(), bank, short, energy)["b"] == ["org:northwind"]
    # Written with a suffix somewhere, the short name is a full name of its own.
    full = article("d", ("Northwind Inc.", "ORG"))
    assert resolve_all(EntityResolver(), bank, short, full)["b"] == ["org:northwind"]


def test_within_an_article_the_short_name_follows_its_long_form():
    ids = resolve_all(
        EntityResolver(),
        article("a", ("Litware Inc.", "ORG"), ("Tailspin Aerospace", "ORG"), ("Tailspin", "ORG")),
        article("b", ("Tailspin Toys", "ORG")),
    )
    assert ids["a"] == ["org:litware", "org:tailspin-aerospace", "org:tailspin-aerospace"]


def test_tickers_link_to_the_company_an_article_pairs_them_with_in_any_order():
    ticker = article("t", ("$NWND", "TICKER"), ("NWND", "ORG"))
    paired = article("p", ("Northwind Holdings", "ORG", 0, "Northwind Holdings (NWND) rose."))
    lone = article("l", ("NASDAQ:ZZZ", "TICKER"))
    for order in itertools.permutations([ticker, paired, lone]):
        ids = resolve_all(EntityResolver(), *order)
        assert ids["t"] == ["org:northwind", "org:northwind"]
        assert ids["l"] == ["ticker:ZZZ"]
    alone = resolve_all(EntityResolver(), ticker)
    assert alone["t"] == ["ticker:NWND", "org:nwnd"]


def test_a_ticker_paired_with_two_companies_goes_to_the_majority_then_the_first_name():
    one = article("1", ("Alpha Corp", "ORG", 0, "Alpha Corp (AB) fell."))
    two = article("2", ("Beta Corp", "ORG", 0, "Beta Corp (AB) rose."))
    three = article("3", ("Beta Corp", "ORG", 0, "Beta Corp (AB) rose again."))
    probe = article("x", ("$AB", "TICKER"))
    assert resolve_all(EntityResolver(), one, two, probe)["x"] == ["org:alpha"]
    assert resolve_all(EntityResolver(), three, one, two, probe)["x"] == ["org:beta"]


def test_alias_table_wins_from_a_dict_and_from_yaml():
    table = AliasTable.from_file(REGISTRY)
    resolver = EntityResolver(table)
    ids = resolve_all(
        resolver,
        article("a", ("NWB", "ORG"), ("Northwind Bank PLC", "ORG"), ("$NWBK", "TICKER")),
        article("b", ("J. A. Okafor", "PERSON"), ("Blue Yonder Airlines Corp.", "ORG")),
    )
    assert ids["a"] == ["org:northwind-bank"] * 3
    assert ids["b"] == ["person:jane-okafor", "org:blue-yonder"]
    mapping = AliasTable.from_mapping(
        {"NW": "Northwind Holdings Inc.", "Northwind Holdings Inc.": ["NWH"]}
    )
    assert [(e.name, e.aliases) for e in mapping] == [("Northwind Holdings Inc.", ("NWH", "NW"))]
    assert EntityResolver(mapping).resolve("nw").id == "org:northwind"
    assert AliasTable.from_mapping(table.to_dict()) == table


def test_alias_table_errors_say_how_to_fix_them(tmp_path):
    with pytest.raises(
        KgError, match=r"'NW' is listed under both 'A Co' and 'B Co'; keep it under one"
    ):
        AliasTable.from_mapping({"A Co": ["NW"], "B Co": ["NW"]})
    with pytest.raises(KgError, match="both get id 'org:alpha'; give one of them an explicit id"):
        AliasTable.from_mapping({"Alpha Inc": [], "Alpha Group": []})
    with pytest.raises(KgError, match="unknown key 'alias'"):
        AliasTable.from_mapping({"Alpha": {"alias": ["A"]}})
    with pytest.raises(KgError, match="not a ticker symbol"):
        AliasTable.from_mapping({"Alpha": {"tickers": ["2 billion"]}})
    bad = tmp_path / "aliases.yaml"
    bad.write_text("Alpha: [unclosed\n", encoding="utf-8")
    with pytest.raises(KgError, match="not valid YAML"):
        AliasTable.from_file(bad)
    with pytest.raises(KgError, match="cannot read it"):
        AliasTable.from_file(tmp_path / "missing.yaml")


def test_people_surnames_link_within_an_article_only():
    ids = resolve_all(
        EntityResolver(),
        article(
            "a",
            ("Jane Okafor", "PER"),
            ("Okafor", "PERSON"),
            ("Ms Okafor", "PERSON"),
            ("J. Okafor", "PERSON"),
        ),
        article("b", ("Okafor", "PERSON")),
        article("c", ("Jane Okafor", "PERSON"), ("John Okafor", "PERSON"), ("Okafor", "PERSON")),
    )
    assert ids["a"] == ["person:jane-okafor"] * 4
    assert ids["b"] == ["person:okafor"]  # no full name in that article
    assert ids["c"] == ["person:jane-okafor", "person:john-okafor", "person:okafor"]  # ambiguous


def test_resolution_ignores_the_order_articles_are_observed():
    rows = [json.loads(line) for line in (FIXTURES / "kg_news.jsonl").read_text().splitlines()]
    extractions = [Extraction.from_dict(row) for row in rows]
    expected = resolve_all(EntityResolver(REGISTRY), *extractions)
    for seed in range(3):
        shuffled = extractions[seed:] + extractions[:seed]
        shuffled.reverse()
        resolver = EntityResolver(REGISTRY)
        for item in shuffled:
            resolver.observe(item)
            resolver.observe(item)  # twice changes nothing
        assert {e.id: [r.id for r in resolver.resolve_article(e)] for e in extractions} == expected


def _pair_ids(resolver: EntityResolver, item: dict) -> tuple[str, str]:
    """Resolve one pair of `kg_aliases.jsonl` as its `context` says (see the fixtures README)."""
    type_a = item.get("type_a", item.get("type", "ORG"))
    type_b = item.get("type_b", item.get("type", "ORG"))
    a, b = item["a"], item["b"]
    if item["context"] == "same_article":
        if "sentence" in item:
            mentions = [(a, type_a, 0, item["sentence"]), (b, type_b, 0, item["sentence"])]
        else:
            mentions = [
                (a, type_a, 0, f"{a} spoke on Monday."),
                (b, type_b, 1, f"{b} spoke later."),
            ]
        articles = [article("p1", *mentions)]
        where = [("p1", 0), ("p1", 1)]
    else:
        articles = [article("p1", (a, type_a)), article("p2", (b, type_b))]
        where = [("p1", 0), ("p2", 0)]
    if "link" in item:
        text, sentence = item["link"]
        articles.append(article("p3", (text, "ORG", 0, sentence)))
    ids = resolve_all(resolver, *articles)
    return ids[where[0][0]][where[0][1]], ids[where[1][0]][where[1][1]]


def test_alias_pair_accuracy():
    table = AliasTable.from_file(REGISTRY)
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 40 and sum(not r["same"] for r in rows) >= 15
    misses, wrongly_merged = [], []
    for item in rows:
        first, second = _pair_ids(EntityResolver(table), item)
        if (first == second) != item["same"]:
            misses.append(f"{item['a']!r} / {item['b']!r}: {first} vs {second} ({item['why']})")
            if not item["same"]:
                wrongly_merged.append(misses[-1])
    accuracy = 1 - len(misses) / len(rows)
    print(f"\nalias pair accuracy: {accuracy:.3f} ({len(rows) - len(misses)}/{len(rows)})")
    print("\n".join(misses))
    assert accuracy >= ACCURACY_FLOOR, misses
    assert wrongly_merged == []  # negatives must never merge
