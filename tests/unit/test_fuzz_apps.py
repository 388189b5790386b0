"""Fuzzed inputs to the knowledge graph's records and the apps' readers and message handling.

``kg.schema`` records from dicts, the recommender's catalogue and event files (and upload
row counting), the support bot's message handling: a typed
error or a valid result, never a crash, a hang or runaway memory.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from apps.recommender.errors import RecommenderError
from kg.errors import KgError
from tests.unit.fuzzing import FUZZ, check, file_bytes, file_text, json_values, mutated, near_miss
from tests.unit.support_standins import StandInAnswers, StandInNLU

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXTRACTION = json.loads((FIXTURES / "kg_news.jsonl").read_text().splitlines()[0])


@st.composite
def extraction_near_miss(draw):
    """The fixture's first extraction broken at one level: the top, the article, a mention or
    a relation."""
    tree = json.loads(json.dumps(EXTRACTION))
    level = draw(st.sampled_from(["top", "article", "mentions", "relations"]))
    if level == "top":
        return draw(near_miss(tree))
    if level == "article":
        tree["article"] = draw(near_miss(tree["article"]) | json_values)
        return tree
    items = tree[level]
    at = draw(st.integers(0, len(items) - 1))
    items[at] = draw(near_miss(items[at]) | json_values)
    return tree


@FUZZ
@given(data=extraction_near_miss() | json_values)
def test_kg_extraction_from_dict(data):
    from kg.schema import Extraction

    result = check("kg_from_dict", (KgError,), lambda: Extraction.from_dict(data))
    if not isinstance(result, Exception):
        assert Extraction.from_dict(result.to_dict()) == result


@FUZZ
@given(
    data=near_miss(EXTRACTION["mentions"][0]) | near_miss(EXTRACTION["relations"][0]) | json_values
)
def test_kg_mention_relation_from_dict(data):
    from kg.schema import Mention, Relation

    check("kg_from_dict", (KgError,), lambda: Mention.from_dict(data, "a01"))
    check("kg_from_dict", (KgError,), lambda: Relation.from_dict(data, "a01"))


# --- recommender ----------------------------------------------------------------------------

SUFFIXES = st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"])
CATALOGUE_ROW = {"id": "i1", "title": "Dune", "description": "Sand.", "categories": "sf|novel"}
EVENT_ROW = {"user": "u1", "item": "i1", "kind": "rating", "rating": 4, "timestamp": 1700000000}


def _distinct_ids(rows: list[dict]) -> list[dict]:
    """Rows whose unbroken ids differ, so a broken field is reached, not a repeated id."""
    for n, row in enumerate(rows):
        if row.get("id") == "i1":
            row["id"] = f"i{n + 1}"
    return rows


def _rows_file(folder: str, suffix: str, rows: list) -> Path:
    path = Path(folder) / f"f{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.write_table(pa.Table.from_pylist([r for r in rows if isinstance(r, dict)]), path)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            path.write_bytes(b"PAR1")  # rows Arrow cannot hold: a broken Parquet file instead
    else:
        import csv

        sep = "\t" if suffix == ".tsv" else ","
        with path.open("w", newline="") as f:
            writer = csv.writer(f, delimiter=sep)
            dicts = [r for r in rows if isinstance(r, dict)]
            names = sorted({str(k) for r in dicts for k in r})
            writer.writerow(names)
            for r in dicts:
                writer.writerow([json.dumps(r.get(n)) if n in r else "" for n in names])
    return path


@FUZZ
@given(data=file_bytes, suffix=SUFFIXES)
def test_recommender_files_bytes(data, suffix):
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.interactions import load_interactions
    from apps.recommender.uploads import count_rows

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"f{suffix}"
        path.write_bytes(data)
        check("recommender_catalogue", (RecommenderError,), lambda: load_catalogue(path))
        check("recommender_events", (RecommenderError,), lambda: load_interactions(path))
    rows = check("recommender_count_rows", (RecommenderError,), lambda: count_rows(path.name, data))
    assert isinstance(rows, RecommenderError) or rows >= 0


@FUZZ
@given(
    rows=st.lists(near_miss(CATALOGUE_ROW), min_size=1, max_size=3).map(_distinct_ids),
    suffix=SUFFIXES,
)
def test_recommender_catalogue_near_miss(rows, suffix):
    from apps.recommender.catalogue import Catalogue, load_catalogue

    with tempfile.TemporaryDirectory() as folder:
        path = _rows_file(folder, suffix, rows)
        result = check("recommender_catalogue", (RecommenderError,), lambda: load_catalogue(path))
    if not isinstance(result, Exception):
        assert isinstance(result, Catalogue) and len(result.items) >= 1


@FUZZ
@given(rows=st.lists(near_miss(EVENT_ROW), min_size=1, max_size=3), suffix=SUFFIXES)
def test_recommender_events_near_miss(rows, suffix):
    from apps.recommender.interactions import Interactions, clean_interactions, load_interactions

    with tempfile.TemporaryDirectory() as folder:
        path = _rows_file(folder, suffix, rows)
        result = check(
            "recommender_events",
            (RecommenderError,),
            lambda: clean_interactions(load_interactions(path)),
        )
    if not isinstance(result, Exception):
        assert isinstance(result[0], Interactions)


@FUZZ
@given(data=mutated(b"\x50\x41\x52\x31" + b"\x00" * 40 + b"PAR1"), name=st.just("x.parquet"))
def test_recommender_count_rows_parquet(data, name):
    from apps.recommender.uploads import count_rows

    check("recommender_count_rows", (RecommenderError,), lambda: count_rows(name, data))


# --- support --------------------------------------------------------------------------------


@FUZZ
@given(
    messages=st.lists(
        st.tuples(
            st.text(max_size=12) | st.sampled_from(["u1", "u2"]),
            file_text | st.sampled_from(["I lost my card", "a person please", "refund", "yes"]),
            st.none() | st.text(max_size=6),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_support_bot_messages(messages):
    """A conversation of arbitrary messages: an answer for each text, ValueError for an empty
    sender or text, and every accepted message stored."""
    from apps.support.dialogue import BotMessage, MemoryStore, SupportBot

    store = MemoryStore()
    bot = SupportBot(StandInNLU(), StandInAnswers(), store=store)
    for sender, text, message_id in messages:
        result = check(
            "support_message", (ValueError,), partial(bot.reply, sender, text, message_id)
        )
        if isinstance(result, Exception):
            assert not sender.strip() or not text.strip()
        else:
            assert result and all(isinstance(m, BotMessage) for m in result)
            assert store.load(sender) is not None


@FUZZ
@given(text=file_text)
def test_support_handoff_phrases(text):
    from apps.support.dialogue import is_handoff_request

    result = check("support_message", (), lambda: is_handoff_request(text, ["a person"]))
    assert isinstance(result, bool)
