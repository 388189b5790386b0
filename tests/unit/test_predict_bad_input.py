"""`lepton-nlp predict | eval | serve` on bad input, run as a user runs them: a real subprocess.

One bad record never costs a run: every good record is predicted and written, each bad one
is reported with its line (or row) and why, the same with and without ``-o``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from conftest import FIXTURES

from lepton_nlp.batch import ECHO_CHARS

BAD_JSONL = (
    b'{"id": 1, "text": "Revenue grew strongly."}\n'
    b'{"id": 2, "text": "Costs were cut."}\n'
    b'{"id": 3, "text": oops}\n'
    b'{"id": 4, "text": null}\n'
    b'{"id": 5}\n'
    b'{"id": 6, "text": "   "}\n'
    b'{"id": 7, "text": "The order book is full."}\n'
)


def _run(*args: str, stdin: bytes | None = None, env: dict | None = None, cwd=None):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lepton_nlp.cli", *args],
        input=stdin,
        capture_output=True,
        env=environment,
        cwd=cwd,
        timeout=300,
    )


def _lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def _summary(stderr: bytes, target: str) -> str:
    return stderr.decode().replace(target, "TARGET").split(" (local engine")[0]


def test_bad_records_are_reported_and_good_ones_written_with_and_without_output(
    tiny_artifact, tmp_path
):
    source = tmp_path / "feed.jsonl"
    source.write_bytes(BAD_JSONL)
    out = tmp_path / "scored.jsonl"
    to_stdout = _run("predict", str(tiny_artifact), "-i", str(source))
    to_file = _run("predict", str(tiny_artifact), "-i", str(source), "-o", str(out))
    assert to_stdout.returncode == to_file.returncode == 3  # finished, some records bad
    assert b"Traceback" not in to_stdout.stderr + to_file.stderr
    assert to_stdout.stdout == out.read_bytes()
    assert _summary(to_stdout.stderr, "standard output") == _summary(to_file.stderr, str(out))
    assert "7 records: 3 predicted, 4 bad" in to_file.stderr.decode()

    lines = _lines(out.read_bytes())
    assert [line.get("id") for line in lines] == [1, 2, None, 4, 5, 6, 7]  # in input order
    good = [line for line in lines if "error" not in line]
    assert [line["id"] for line in good] == [1, 2, 7] and all("label" in g for g in good)
    errors = {line["line"]: line["error"] for line in lines if "error" in line}
    assert set(errors) == {3, 4, 5, 6}
    assert "not valid JSON" in errors[3]
    assert "'text' is null" in errors[4]
    assert "no field 'text'" in errors[5] and "id" in errors[5]
    assert "empty or only whitespace" in errors[6]
    assert "line 3: not valid JSON" in to_file.stderr.decode()

    # Bad records apart, in a file of their own: the output holds only predictions.
    apart, bad = tmp_path / "apart.jsonl", tmp_path / "bad.jsonl"
    run = _run("predict", str(tiny_artifact), "-i", str(source), "-o", str(apart),
               "--bad-records", str(bad))  # fmt: skip
    assert run.returncode == 3
    assert [line["id"] for line in _lines(apart.read_bytes())] == [1, 2, 7]
    assert [line["line"] for line in _lines(bad.read_bytes())] == [3, 4, 5, 6]
    assert str(bad) in run.stderr.decode()

    # Strict mode stops at the first bad record, with the same message either way.
    strict = [_run("predict", str(tiny_artifact), "-i", str(source), "--bad-records", "stop",
                   *extra) for extra in ([], ["-o", str(tmp_path / "strict.jsonl")])]  # fmt: skip
    for run in strict:
        assert run.returncode == 2 and b"Traceback" not in run.stderr
        assert "line 3: not valid JSON" in run.stderr.decode()
    assert strict[0].stderr == strict[1].stderr


def test_other_encodings_and_binary_files_are_named_not_tracebacks(tiny_artifact, tmp_path):
    art = str(tiny_artifact)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"text": "Caf\u00e9 sales rose."}\n{"text": "Fine."}\n'.encode("latin-1"))
    runs = [_run("predict", art, "-i", str(latin), *extra)
            for extra in ([], ["-o", str(tmp_path / "l.jsonl")])]  # fmt: skip
    for run in runs:
        assert run.returncode == 3 and b"Traceback" not in run.stderr
        text = run.stderr.decode()
        assert "line 1: not valid utf-8: byte 0xe9 at byte offset 13" in text
        assert "--encoding latin-1" in text
    assert _lines(runs[0].stdout)[1]["label"]  # the good line was still predicted
    fixed = _run("predict", art, "-i", str(latin), "--encoding", "latin-1")
    assert fixed.returncode == 0
    assert _lines(fixed.stdout)[0]["text"] == "Caf\u00e9 sales rose."

    csv_latin = tmp_path / "latin.csv"
    csv_latin.write_bytes("id,text\n1,Caf\u00e9 rose\n2,Fine\n".encode("latin-1"))
    run = _run("predict", art, "-i", str(csv_latin))
    assert run.returncode == 3 and "column 'text' is not valid utf-8" in run.stderr.decode()
    assert _run("predict", art, "-i", str(csv_latin), "--encoding", "latin-1").returncode == 0

    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    for extra in ([], ["-o", str(tmp_path / "b.jsonl")]):
        run = _run("predict", art, "-i", str(binary), *extra)
        assert run.returncode == 2 and b"Traceback" not in run.stderr
        assert "looks like a binary file" in run.stderr.decode()


def test_input_format_follows_the_file_with_and_without_output(tiny_artifact, tmp_path):
    art = str(tiny_artifact)
    source = tmp_path / "news.csv"
    source.write_text('id,text\n1,Profit doubled.\n2,"Sales fell, sharply."\n', encoding="utf-8")
    to_stdout = _run("predict", art, "-i", str(source))
    out = tmp_path / "news.jsonl"
    to_file = _run("predict", art, "-i", str(source), "-o", str(out))
    assert to_stdout.returncode == to_file.returncode == 0
    lines = _lines(to_stdout.stdout)
    assert [(line["id"], line["text"]) for line in lines] == [
        (1, "Profit doubled."),
        (2, "Sales fell, sharply."),
    ]  # the header is not a text; the quoted comma stays in the text
    assert to_stdout.stdout == out.read_bytes()
    # Without a suffix the content decides: a CSV header naming the text field.
    bare = tmp_path / "news"
    shutil.copy(source, bare)
    assert _run("predict", art, "-i", str(bare)).stdout == to_stdout.stdout
    piped = _run("predict", art, stdin=source.read_bytes())
    assert piped.stdout == to_stdout.stdout
    plain = _run("predict", art, stdin=b"Profit doubled.\n\nSales fell.\n")
    assert [line["text"] for line in _lines(plain.stdout)] == ["Profit doubled.", "Sales fell."]


def test_empty_file_says_so(tiny_artifact, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n  \n")
    run = _run("predict", str(tiny_artifact), "-i", str(empty))
    assert run.returncode == 0 and run.stdout == b""
    assert "No records in" in run.stderr.decode() and "empty" in run.stderr.decode()


#: Runs the command line, then writes its own peak RSS (KiB, VmHWM) to the file named first.
#: Not getrusage: the children's figure counts every earlier subprocess of the suite, and a
#: process's own ru_maxrss keeps the size of the test process it was forked from.
_MEASURED = (
    "import re, runpy, sys\n"
    "out, sys.argv = sys.argv[1], ['lepton-nlp', *sys.argv[2:]]\n"
    "try:\n"
    "    runpy.run_module('lepton_nlp.cli', run_name='__main__')\n"
    "finally:\n"
    "    status = open('/proc/self/status').read()\n"
    "    open(out, 'w').write(re.search(r'VmHWM:\\s*(\\d+)', status).group(1))\n"
)


def _peak_rss_mb(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    figure = tmp_path / "peak_rss_kib"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(figure), *args],
        capture_output=True,
        env=environment,
        timeout=300,
    )
    return run, int(figure.read_text()) / 1024


def test_a_huge_text_is_read_in_part_says_so_and_is_not_echoed_whole(tiny_artifact, tmp_path):
    huge = tmp_path / "huge.txt"
    huge.write_text("Revenue grew. " * 360_000 + "\n", encoding="utf-8")  # 5 MB, one line
    run = _run("predict", str(tiny_artifact), "-i", str(huge))
    assert run.returncode == 0, run.stderr.decode()
    (line,) = _lines(run.stdout)
    assert len(run.stdout) < ECHO_CHARS + 2000
    assert len(line["text"]) == ECHO_CHARS and line["text_chars"] == 5_040_000
    assert line["truncated"]["chars"] == 5_040_000
    assert 0 < line["truncated"]["chars_read"] < 1000  # 48 tokens of "Revenue grew."
    # What was read is what the model gives for a text that fills the same tokens.
    short = tmp_path / "short.txt"
    short.write_text(("Revenue grew. " * 60) + "\n", encoding="utf-8")
    (alone,) = _lines(_run("predict", str(tiny_artifact), "-i", str(short)).stdout)
    assert alone["scores"] == pytest.approx(line["scores"], abs=1e-5)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_huge_text_costs_no_more_memory_than_a_short_one(tiny_artifact, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Revenue grew.\n", encoding="utf-8")
    huge = tmp_path / "huge.txt"
    huge.write_text("Revenue grew. " * 360_000 + "\n", encoding="utf-8")
    run, huge_mb = _peak_rss_mb(tmp_path, "predict", str(tiny_artifact), "-i", str(huge))
    assert run.returncode == 0
    # Tokenizing all 5 MB took over 1 GB; a prefix of what the model reads costs nothing.
    assert huge_mb < 900, f"peak RSS {huge_mb:.0f} MB"


def test_eval_infers_the_reader_and_takes_the_column_settings_it_names(tiny_artifact, tmp_path):
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, artifact)
    config_path = artifact / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["data"]["format"] = "fpb"  # trained on Financial PhraseBank's sentence@label
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    run = _run("eval", str(artifact), "--data", str(FIXTURES / "classification.csv"))
    assert run.returncode == 0, run.stderr.decode()
    assert json.loads(run.stdout)["examples"] == 48

    renamed = tmp_path / "renamed.csv"
    rows = (FIXTURES / "classification.csv").read_text(encoding="utf-8").splitlines()
    renamed.write_text("\n".join(["headline,tone", *rows[1:]]) + "\n", encoding="utf-8")
    run = _run("eval", str(artifact), "--data", str(renamed))
    assert run.returncode == 2 and b"Traceback" not in run.stderr
    assert "data.text_column" in run.stderr.decode()
    run = _run("eval", str(artifact), "--data", str(renamed),
               "data.text_column=headline", "data.label_column=tone")  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    assert json.loads(run.stdout)["examples"] == 48


def test_serve_without_models_and_unknown_models_online_fail_fast_and_clearly(tmp_path):
    run = _run("serve")
    assert run.returncode == 2 and b"Traceback" not in run.stderr
    assert "--model NAME=ARTIFACT_FOLDER" in run.stderr.decode()

    # Online (HF_HUB_OFFLINE unset), but no hub answers: an error at once, not a minute of
    # retries. HF_ENDPOINT points at a closed port of this machine.
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "lepton_nlp.cli", "serve", "--embed", "acme/no-such-model"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert time.monotonic() - start < 30
    assert run.returncode == 2 and b"Traceback" not in run.stderr
    text = run.stderr.decode()
    assert "acme/no-such-model" in text and "cannot be reached" in text
    assert "HF_HUB_OFFLINE=1" in text


def test_resolving_a_hub_id_uses_the_local_cache_when_the_hub_is_unreachable(tmp_path, monkeypatch):
    from lepton_nlp import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "is_offline", lambda: False)
    snapshot = tmp_path / "snapshot"

    class Unreachable:
        def model_info(self, name, timeout):
            raise ConnectionError("no route to host")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", Unreachable)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda name, **kw: str(snapshot))
    assert hub.resolve_model("acme/cached-model") == str(snapshot)
