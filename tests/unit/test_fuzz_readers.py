"""Fuzzed inputs to the core's readers and parsers: a typed error or a valid result, never a crash.

Arbitrary bytes and structured near-misses (a valid file with one field wrong) go through
every dataset reader, ``lepton-nlp predict``'s input sniffing and reading, the run-config
loader and audio decoding. See ``tests/unit/fuzzing.py`` for the bounds each call keeps.
"""

from __future__ import annotations

import io
import json
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lepton_nlp.errors import BatchError, ConfigError, DataError
from tests.unit.fuzzing import (
    FUZZ,
    check,
    file_bytes,
    file_text,
    json_values,
    mutated,
    near_miss,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """Import what the targets import lazily (torch, via the task registry) before the timed
    calls: a first import is slow, and one cut short by the time limit breaks torch."""
    from lepton_nlp.config import load_config

    load_config(None)


def _file(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def _records_ok(records: list[dict], keys: tuple[str, ...]) -> None:
    """A valid result: a non-empty list of records holding ``keys``."""
    assert isinstance(records, list) and records
    for record in records:
        assert all(key in record for key in keys), record


# --- classification / NER readers -----------------------------------------------------------


@FUZZ
@given(data=file_bytes)
@example(data=b"text,label\n" + b"a,b\n" * 1200 + b"c\x00,d\n")
@example(data=b'text,label\n"' + b"x" * 200_000 + b'",y\n')
def test_read_csv_bytes(data):
    from lepton_nlp.data import read_csv

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.csv", data)
        result = check("read_csv", (DataError,), lambda: read_csv(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "label"))
        assert all(isinstance(r["text"], str) and r["text"].strip() for r in result)


@FUZZ
@given(rows=st.lists(st.lists(file_text, min_size=0, max_size=4), max_size=6), header=st.booleans())
def test_read_csv_near_miss(rows, header):
    """A CSV whose rows have too few, too many or odd fields."""
    import csv

    from lepton_nlp.data import read_csv

    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(["text", "label"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.csv", out.getvalue().encode("utf-8"))
        result = check("read_csv", (DataError,), lambda: read_csv(path, multi_label=True))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "label"))


DEEP = b"[" * 100_000 + b"]" * 100_000


@FUZZ
@given(data=file_bytes)
@example(data=DEEP)
@example(data=b'{"text": "a", "label": "b"}\n' + b"x" * 200_000)
def test_read_jsonl_bytes(data):
    from lepton_nlp.data import read_jsonl

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        result = check("read_jsonl", (DataError,), lambda: read_jsonl(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "label"))


@FUZZ
@given(
    lines=st.lists(
        near_miss({"text": "Shares rose.", "label": "positive"}) | json_values, max_size=5
    ),
    multi=st.booleans(),
)
def test_read_jsonl_near_miss(lines, multi):
    from lepton_nlp.data import read_jsonl

    data = "\n".join(json.dumps(line) for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        result = check("read_jsonl", (DataError,), lambda: read_jsonl(path, multi_label=multi))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "label"))


@FUZZ
@given(data=file_bytes)
def test_read_fpb_bytes(data):
    from lepton_nlp.data import read_fpb

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.txt", data)
        result = check("read_fpb", (DataError,), lambda: read_fpb(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "label"))


@FUZZ
@given(data=file_bytes | mutated((FIXTURES / "ner_iob1.conll").read_bytes()))
def test_read_conll_bytes(data):
    from lepton_nlp.data import read_conll

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.conll", data)
        result = check("read_conll", (DataError,), lambda: read_conll(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("tokens", "tags"))
        for record in result:
            assert len(record["tokens"]) == len(record["tags"])
            assert not any(tag.startswith("I-") for tag in record["tags"][:1])


@FUZZ
@given(
    lines=st.lists(
        near_miss({"tokens": ["Acme", "rose"], "tags": ["B-ORG", "O"]}) | json_values, max_size=4
    )
)
def test_load_ner_jsonl_near_miss(lines):
    """NER records from JSON Lines through ``load_records`` (tokens and tags checked)."""
    from lepton_nlp.config import DataConfig
    from lepton_nlp.data import load_records

    data = "\n".join(json.dumps(line) for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        config = DataConfig(format="jsonl")
        result = check("read_ner_jsonl", (DataError,), lambda: load_records(config, path, "tokens"))
    if not isinstance(result, Exception):
        _records_ok(result, ("tokens", "tags"))


# --- question answering ---------------------------------------------------------------------

SQUAD_QUESTION = {
    "id": "q1",
    "question": "Who rose?",
    "answers": [{"text": "Acme", "answer_start": 0}],
}
SQUAD_PARAGRAPH = {"context": "Acme rose 5%.", "qas": [SQUAD_QUESTION]}
SQUAD_ARTICLE = {"title": "Markets", "paragraphs": [SQUAD_PARAGRAPH]}


@st.composite
def squad_near_miss(draw):
    """A SQuAD tree broken at one level: the top, an article, a paragraph or a question."""
    level = draw(st.sampled_from(["top", "article", "paragraph", "question"]))
    question = draw(near_miss(SQUAD_QUESTION)) if level == "question" else SQUAD_QUESTION
    paragraph = (
        draw(near_miss(SQUAD_PARAGRAPH))
        if level == "paragraph"
        else {**SQUAD_PARAGRAPH, "qas": [question]}
    )
    article = (
        draw(near_miss(SQUAD_ARTICLE))
        if level == "article"
        else {**SQUAD_ARTICLE, "paragraphs": [paragraph]}
    )
    if level == "top":
        return draw(near_miss({"version": "1.1", "data": [article]}))
    return {"version": "1.1", "data": [draw(json_values), article][draw(st.integers(1, 1)) :]}


@FUZZ
@given(tree=squad_near_miss() | st.fixed_dictionaries({"data": st.lists(json_values, max_size=3)}))
def test_read_squad_near_miss(tree):
    from lepton_nlp.data.squad import read_squad

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.json", json.dumps(tree).encode())
        result = check("read_squad", (DataError,), lambda: read_squad(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("id", "question", "context", "answers", "title"))
        for record in result:
            for text, start in zip(*record["answers"].values(), strict=True):
                assert record["context"][start : start + len(text)] == text


@FUZZ
@given(data=file_bytes | mutated((FIXTURES / "squad_tiny.json").read_bytes()))
@example(data=DEEP)
def test_read_squad_bytes(data):
    from lepton_nlp.data.squad import read_squad

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.json", data)
        check("read_squad", (DataError,), lambda: read_squad(path))


@FUZZ
@given(
    lines=st.lists(
        near_miss({**SQUAD_QUESTION, "context": "Acme rose 5%."}) | json_values,
        min_size=1,
        max_size=4,
    )
)
def test_read_qa_jsonl_near_miss(lines):
    from lepton_nlp.data.squad import read_qa_jsonl

    data = "\n".join(json.dumps(line) for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        check("read_qa_jsonl", (DataError,), lambda: read_qa_jsonl(path))


# --- relations ------------------------------------------------------------------------------

SEMEVAL = (
    b'1\t"The <e1>child</e1> was carefully wrapped into the <e2>cradle</e2>."\n'
    b"Entity-Destination(e1,e2)\nComment:\n\n"
    b'2\t"The <e1>author</e1> of a keygen uses a <e2>disassembler</e2>."\n'
    b"Instrument-Agency(e2,e1)\nComment:\n\n"
)


@FUZZ
@given(
    data=file_bytes
    | mutated(SEMEVAL)
    | st.lists(
        st.sampled_from(["<e1>", "</e1>", "<e2>", "</e2>", "x", " ", "\t", '"', "\n", "7"]),
        max_size=40,
    ).map(lambda parts: ("3\t" + "".join(parts)).encode())
)
def test_read_semeval_bytes(data):
    from lepton_nlp.data.semeval import read_semeval

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.txt", data)
        result = check("read_semeval", (DataError,), lambda: read_semeval(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("text", "head", "tail"))
        for record in result:
            for side in ("head", "tail"):
                span = record[side]
                assert 0 <= span["start"] < span["end"] <= len(record["text"])


@FUZZ
@given(
    lines=st.lists(
        near_miss(
            {"text": "Acme bought Beta.", "head": [0, 4], "tail": [12, 16], "label": "acquires"}
        )
        | near_miss({"text": "<e1>Acme</e1> bought <e2>Beta</e2>.", "label": "acquires"}),
        min_size=1,
        max_size=4,
    )
)
def test_read_relation_jsonl_near_miss(lines):
    from lepton_nlp.data.semeval import read_relation_jsonl

    data = "\n".join(json.dumps(line) for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        check("read_relation_jsonl", (DataError,), lambda: read_relation_jsonl(path))


# --- pairs ----------------------------------------------------------------------------------


@FUZZ
@given(source=file_bytes, target=file_bytes)
def test_read_parallel_bytes(source, target):
    from lepton_nlp.data.pairs import read_parallel

    with tempfile.TemporaryDirectory() as folder:
        _file(folder, "p.en", source)
        _file(folder, "p.de", target)
        result = check(
            "read_parallel", (DataError,), lambda: read_parallel(Path(folder) / "p", "en", "de")
        )
    if not isinstance(result, Exception):
        _records_ok(result, ("source", "target"))


@FUZZ
@given(data=file_bytes)
def test_read_pairs_csv_bytes(data):
    from lepton_nlp.data.pairs import read_pairs_csv

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.csv", data)
        result = check("read_pairs_csv", (DataError,), lambda: read_pairs_csv(path))
    if not isinstance(result, Exception):
        _records_ok(result, ("source", "target"))


@FUZZ
@given(
    lines=st.lists(
        near_miss({"dialogue": "A: hi\nB: hello", "summary": "They greet."})
        | near_miss({"dialogue": "A: hi", "summary1": "x", "summary2": "y"}),
        min_size=1,
        max_size=4,
    )
)
def test_read_pairs_jsonl_near_miss(lines):
    from lepton_nlp.data.pairs import read_pairs_jsonl

    data = "\n".join(json.dumps(line) for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "f.jsonl", data)
        result = check(
            "read_pairs_jsonl", (DataError,), lambda: read_pairs_jsonl(path, "dialogue", "summary")
        )
    if not isinstance(result, Exception):
        _records_ok(result, ("source", "target"))


# --- lepton-nlp predict input ---------------------------------------------------------------


def _parquet_bytes() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"text": ["Shares rose.", "Profit fell."], "id": [1, 2]}), out)
    return out.getvalue()


PARQUET = _parquet_bytes()


@FUZZ
@given(
    data=file_bytes | mutated(PARQUET) | mutated(b'text,id\nShares rose.,1\n"Profit\nfell",2\n'),
    name=st.sampled_from(["input", "in.csv", "in.jsonl", "in.txt", "in.parquet"]),
)
def test_predict_input_bytes(data, name):
    """What ``lepton-nlp predict --input FILE`` does before scoring: sniff, check, read."""
    from lepton_nlp.batch import _open_input, iter_records

    def read():
        source, fmt, _ = _open_input(path, None, "text", "utf-8")
        return fmt, list(iter_records(source, fmt))

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, name, data)
        result = check("predict_input", (BatchError,), read)
    if not isinstance(result, Exception):
        fmt, records = result
        assert fmt in ("csv", "jsonl", "text", "parquet")
        for record in records:
            # A good record holds its row; a bad one says why (and keeps the cells it could read).
            if record.error is None:
                assert isinstance(record.row, dict)
            else:
                assert isinstance(record.error, str) and record.error


# --- run configs ----------------------------------------------------------------------------

CONFIG_KEYS = st.sampled_from(
    ["task", "model", "data", "peft", "training", "evaluation", "name", "seed", "task_options"]
)
SECTION_KEYS = st.sampled_from(
    ["name", "format", "train", "epochs", "learning_rate", "method", "r", "batch_size", "lr"]
)


@FUZZ
@given(
    tree=st.dictionaries(
        CONFIG_KEYS | st.text(max_size=6),
        json_values | st.dictionaries(SECTION_KEYS, json_values, max_size=3),
        max_size=4,
    )
    # a string is a path (tested below with files)
    | json_values.filter(lambda v: not isinstance(v, str))
)
def test_load_config_any_mapping(tree):
    from lepton_nlp.config import RunConfig, load_config

    result = check("config_mapping", (ConfigError,), lambda: load_config(tree))
    if not isinstance(result, Exception):
        assert isinstance(result, RunConfig)


@FUZZ
@given(text=file_text | file_bytes.map(lambda b: b.decode("latin-1")))
def test_load_config_any_yaml(text):
    from lepton_nlp.config import RunConfig, load_config

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "run.yaml", text.encode("utf-8", errors="surrogatepass"))
        result = check("config_yaml", (ConfigError,), lambda: load_config(path))
    if not isinstance(result, Exception):
        assert isinstance(result, RunConfig)


@FUZZ
@given(data=st.binary(max_size=200))
def test_load_config_bytes(data):
    from lepton_nlp.config import load_config

    with tempfile.TemporaryDirectory() as folder:
        path = _file(folder, "run.yaml", data)
        check("config_yaml", (ConfigError,), lambda: load_config(path))


@FUZZ
@given(overrides=st.lists(file_text, max_size=4))
def test_config_overrides(overrides):
    from lepton_nlp.config import load_config

    check("config_overrides", (ConfigError,), lambda: load_config(None, overrides))


# --- audio ----------------------------------------------------------------------------------


def _wav_bytes(seconds: float = 0.2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        t = np.arange(int(16000 * seconds)) / 16000
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return out.getvalue()


WAV = _wav_bytes()


@pytest.fixture(scope="module", autouse=False)
def _av():
    return pytest.importorskip("av")


@FUZZ
@given(data=st.binary(min_size=1, max_size=2000) | mutated(WAV))
def test_decode_audio_bytes(_av, data):
    from lepton_nlp.speech import SpeechError, decode_audio

    result = check(
        "decode_audio",
        (SpeechError,),
        lambda: decode_audio(data, max_seconds=5),
        measure_memory=False,  # PyAV allocates outside the Python heap; the limit bounds it
    )
    if not isinstance(result, Exception):
        assert result.dtype == np.float32 and result.ndim == 1 and result.size > 0
        assert result.size <= 5 * 16000
