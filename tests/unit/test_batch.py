"""Batch scoring: local streaming over JSONL/CSV/Parquet, resume after a kill, Ray's engine."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES

from lepton_nlp.batch import BatchError, iter_chunks, progress_path, score_local, score_ray
from lepton_nlp.cli import main
from lepton_nlp.inference import Predictor


def _texts() -> list[str]:
    lines = (FIXTURES / "classification.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit(",", 1)[0].strip('"') for line in lines]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The same 300 rows as JSONL (with blank lines), CSV and Parquet."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    texts = _texts()
    rows = [{"id": i, "text": f"{texts[i % len(texts)]} #{i}"} for i in range(300)]
    folder = tmp_path_factory.mktemp("inputs")
    lines = []
    for row in rows:
        lines.append(json.dumps(row))
        if row["id"] % 50 == 0:
            lines.append("   ")  # blank lines are not rows
    (folder / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = pa.Table.from_pylist(rows)
    pyarrow.csv.write_csv(table, folder / "rows.csv")
    pyarrow.parquet.write_table(table, folder / "rows.parquet", row_group_size=70)
    return {"rows": rows, "folder": folder}


def _factory(artifact):
    return functools.partial(Predictor.from_artifact, str(artifact), batch_size=8)


def test_local_engine_gives_the_same_output_for_each_format(tiny_artifact, inputs, tmp_path):
    outputs = {}
    for suffix in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"{suffix}.out.jsonl"
        summary = score_local(
            _factory(tiny_artifact), inputs["folder"] / f"rows.{suffix}", out, chunk_size=32
        )
        assert summary.rows == 300 and summary.resumed_from == 0
        assert not progress_path(out).exists()  # gone once complete
        outputs[suffix] = out.read_bytes()
    assert outputs["jsonl"] == outputs["csv"] == outputs["parquet"]
    lines = [json.loads(line) for line in outputs["jsonl"].decode().splitlines()]
    assert [line["id"] for line in lines] == list(range(300))
    direct = Predictor.from_artifact(tiny_artifact).predict([r["text"] for r in inputs["rows"]])
    assert [line["label"] for line in lines] == [d["label"] for d in direct]
    assert lines[5]["text"] == inputs["rows"][5]["text"] and set(lines[5]["scores"]) == {
        "positive",
        "negative",
    }


def test_chunks_are_bounded_and_skip_rows(inputs):
    chunks = list(iter_chunks(inputs["folder"] / "rows.parquet", "parquet", 64, skip=100))
    assert [len(c) for c in chunks] == [64, 64, 64, 8]
    assert chunks[0][0].row["id"] == 100 and chunks[0][0].position == {"row": 101}
    chunks = list(iter_chunks(inputs["folder"] / "rows.jsonl", "jsonl", 64, skip=290))
    assert [record.row["id"] for record in chunks[0]] == list(range(290, 300))
    assert chunks[0][0].position == {"line": 297}  # file lines: six blank ones come before


def _progress_rows(out) -> int:
    try:
        return json.loads(progress_path(out).read_text())["rows"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_local_engine_resumes_after_a_kill_without_losing_or_repeating_rows(
    tiny_artifact, tmp_path
):
    texts = _texts()
    source = tmp_path / "big.jsonl"
    with open(source, "w", encoding="utf-8") as stream:
        for i in range(4000):
            stream.write(json.dumps({"id": i, "text": f"{texts[i % len(texts)]} {i}"}) + "\n")
    out = tmp_path / "scored.jsonl"
    command = [sys.executable, "-m", "lepton_nlp.cli", "predict", str(tiny_artifact)]
    command += ["-i", str(source), "-o", str(out), "--chunk-size", "16", "--batch-size", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _progress_rows(out) < 64 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = _progress_rows(out)
    assert 64 <= done < 4000, "the run should have been killed mid-way"
    # A chunk written but never recorded (as a kill between write and progress leaves it).
    with open(out, "ab") as stream:
        stream.write(b'{"id": 99999, "text": "torn')

    assert main(["predict", str(tiny_artifact), "-i", str(source), "-o", str(out),
                 "--chunk-size", "16", "--batch-size", "8"]) == 0  # fmt: skip
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert ids == list(range(4000))  # none lost, none twice, in order
    assert not progress_path(out).exists()

    reference = tmp_path / "reference.jsonl"
    score_local(_factory(tiny_artifact), source, reference, chunk_size=16)
    assert out.read_bytes() == reference.read_bytes()


def test_batch_errors_are_clear(tiny_artifact, inputs, tmp_path, capsys):
    art = str(tiny_artifact)
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    assert main(["predict", art, "-i", str(inputs["folder"] / "rows.csv"), "-o", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_text() == "precious\n"
    args = ["predict", art, "-i", str(inputs["folder"] / "rows.csv"), "-o", str(out)]
    assert main([*args, "--overwrite", "--text-field", "body"]) == 2  # no row could be good
    assert (
        "rows.csv has no column 'body'; its columns: id, text. Pass --text-column"
        in capsys.readouterr().err
    )

    # A bad record is reported in its place and costs nothing else (exit 3: some were bad).
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    assert main(["predict", art, "-i", str(bad), "-o", str(tmp_path / "b.jsonl")]) == 3
    assert "line 2: not valid JSON" in capsys.readouterr().err
    first, second = (json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines())
    assert "label" in first and second["line"] == 2 and "not valid JSON" in second["error"]
    bad.write_bytes(b'{"text": "caf\xe9"}\n')
    assert main(["predict", art, "-i", str(bad), "-o", str(tmp_path / "c.jsonl")]) == 3
    assert "not valid utf-8" in capsys.readouterr().err
    bad.write_text('{"text": 5}\n')
    assert main(["predict", art, "-i", str(bad), "-o", str(tmp_path / "d.jsonl")]) == 3
    assert "line 1: Classification input must be a string" in capsys.readouterr().err
    assert main(["predict", art, "--format", "parquet", "-i", str(bad)]) == 2
    assert "Cannot read bad.jsonl as parquet" in capsys.readouterr().err

    source = inputs["folder"] / "rows.jsonl"
    partial = tmp_path / "partial.jsonl"
    score_local(_factory(tiny_artifact), source, partial, chunk_size=32)
    progress_path(partial).write_text(
        json.dumps({"identity": {"chunk_size": 7}, "rows": 0, "bytes": 0})
    )
    with pytest.raises(BatchError, match="different input, input_bytes"):
        score_local(_factory(tiny_artifact), source, partial, chunk_size=32)
    (tmp_path / "x.txt").write_text("plain text\n")  # a .txt is one text per line
    summary = score_local(_factory(tiny_artifact), tmp_path / "x.txt", partial, overwrite=True)
    assert summary.rows == 1 and json.loads(partial.read_text())["text"] == "plain text"


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    # A private Ray on this machine for the module (Ray's replacement for "local mode").
    # Two actors hold a CPU each; reading and regrouping need a third (CPUs here are logical).
    ray.init(
        num_cpus=3,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        configure_logging=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


def test_ray_engine_matches_the_local_engine(local_ray, tiny_artifact, inputs, tmp_path, capsys):
    folder = inputs["folder"]
    local = tmp_path / "local.jsonl"
    score_local(_factory(tiny_artifact), folder / "rows.jsonl", local, chunk_size=32)

    ray_out = tmp_path / "ray.jsonl"
    args = ["predict", str(tiny_artifact), "-i", str(folder / "rows.jsonl"), "-o", str(ray_out)]
    args += ["--engine", "ray", "--chunk-size", "32", "--batch-size", "8", "--actors", "2"]
    assert main(args) == 0
    assert "300 records: 300 predicted, 0 bad" in capsys.readouterr().err
    assert ray_out.read_bytes() == local.read_bytes()

    parquet_out = tmp_path / "ray_parquet.jsonl"
    summary = score_ray(
        _factory(tiny_artifact), folder / "rows.parquet", parquet_out, chunk_size=32, actors=1
    )
    assert summary.rows == 300 and parquet_out.read_bytes() == local.read_bytes()
    with pytest.raises(BatchError, match="already exists"):
        score_ray(_factory(tiny_artifact), folder / "rows.csv", parquet_out)
