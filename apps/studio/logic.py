"""What the studio pages compute: data checks and statistics, run configs, evaluation, comparison.

No streamlit here: the same functions serve the pages, the tests and any script.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import html
import io
import json
import os
import re
import shutil
import statistics
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from apps.studio.store import Run, RunStore, data_home

__all__ = [
    "BASE_MODELS",
    "EXPECTED_SHAPE",
    "FORMATS_BY_TASK",
    "HEADLINE_METRICS",
    "LEARNING_RATE_MIN",
    "LEARNING_RATE_STEP",
    "MAX_UPLOAD_MB",
    "MODEL_DEFAULTS",
    "MODEL_NOTES",
    "SAMPLES",
    "TASK_DEFAULTS",
    "UPLOAD_INDEX",
    "DataSummary",
    "EvalReport",
    "StudioError",
    "accept_upload",
    "artifact_spec",
    "artifact_zip",
    "build_config",
    "data_labels",
    "default_pooling",
    "default_task_options",
    "defaults_for",
    "detect_columns",
    "diff_runs",
    "evaluate_artifact",
    "evaluation_note",
    "fitting_models",
    "format_metric",
    "guess_format",
    "headline_metrics",
    "highlight_entities",
    "known_data_files",
    "label_mismatch",
    "load_data",
    "marked_text",
    "missing_artifacts",
    "model_catalog",
    "predict_input",
    "record_labels",
    "relation_input",
    "relation_spans",
    "run_records",
    "runs_table",
    "sample_data",
    "save_upload",
    "shown_path",
    "staging_folder",
    "start_run",
    "summarize",
    "unique_run_name",
    "unknown_labels",
    "uploads_folder",
]

MAX_UPLOAD_MB = 200
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODELS = ROOT / "data" / "models"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
BASE_MODELS = {
    "classification": [MINILM],
    "ner": [MINILM],
    "qa": [MINILM],
    "relation": [MINILM],
    "summarization": [SMOLLM],
    "translation": [MINILM, SMOLLM],
}
"""Base models offered per task (all available offline), the first the default; any local
model folder also works. For translation MiniLM is warm-started as an encoder-decoder (the
core's ``family: auto`` does that for a bare encoder): measured on Multi30k it reaches BLEU 10.6
where SmolLM2, which knows little German, starts from 0.3 (README, Benchmarks)."""

FORMATS_BY_TASK = {
    "classification": ["csv", "jsonl"],
    "ner": ["conll", "jsonl"],
    "qa": ["squad", "jsonl"],
    "relation": ["jsonl", "semeval"],
    "summarization": ["jsonl", "csv"],
    "translation": ["parallel", "jsonl", "csv"],
}

TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4, "max_length": 128},
    "ner": {"epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "max_length": 128},
    "qa": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-4, "max_length": 384},
    "relation": {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4, "max_length": 128},
    "summarization": {"epochs": 1, "batch_size": 4, "learning_rate": 2e-4, "max_length": 512},
    "translation": {
        "epochs": 10,
        "batch_size": 16,
        "learning_rate": 5e-4,
        "max_length": 64,
        "method": "full",
    },
}
"""Sensible starting points per task for its default base model (LoRA r=16 unless ``method``
says otherwise)."""

MODEL_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("translation", SMOLLM): {
        "epochs": 1,
        "batch_size": 4,
        "learning_rate": 2e-4,
        "max_length": 256,
        "method": "lora",
    },
}
"""Starting points of a (task, base model) that differ from the task's: a causal LM wants a
longer prompt window, a smaller batch and LoRA where the encoder-decoder trains in full."""

MODEL_NOTES = {
    ("translation", MINILM): "MiniLM is warm-started as an encoder-decoder: its cross-attention "
    "layers are new, so it trains in full, and the decoder gets a cased vocabulary trained on "
    "your targets. On Multi30k (1,000 pairs, 20 epochs) it reached BLEU 10.6.",
}
"""A line the Train page shows under a (task, base model) choice."""

_EXTENSIONS = {
    ".csv": ("classification", "csv"),
    ".tsv": ("classification", "csv"),
    ".jsonl": ("classification", "jsonl"),
    ".conll": ("ner", "conll"),
    ".iob": ("ner", "conll"),
    ".json": ("qa", "squad"),
}

PAIR_TASKS = ("summarization", "translation")

_PAIR_CSV = (
    "a CSV file with a header row, a source column and a target column (name them under Columns)"
)
EXPECTED_SHAPE = {
    ("classification", "csv"): (
        "a CSV file with a header row, a text column and a label column (name them under Columns)"
    ),
    ("classification", "jsonl"): (
        'one JSON object a line with a text and a label field, e.g. {"text": "Profit rose.", '
        '"label": "positive"}'
    ),
    ("ner", "conll"): (
        "one word and its tag a line (e.g. 'Oslo B-LOC'), a blank line between sentences"
    ),
    ("ner", "jsonl"): 'one JSON object a line with "tokens" and "tags" lists of the same length',
    ("qa", "squad"): (
        'SQuAD JSON: {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": '
        '[{"question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}'
    ),
    ("qa", "jsonl"): (
        'one JSON object a line with "question", "context" and "answers" ({"text": [...], '
        '"answer_start": [...]}, character offsets into the context)'
    ),
    ("relation", "jsonl"): (
        'one JSON object a line with "text", "label" and the two arguments, as character spans '
        '("head": {"start": 0, "end": 9}, "tail": {...}) or marked in the text with '
        "<e1>...</e1> and <e2>...</e2>"
    ),
    ("relation", "semeval"): (
        'SemEval-2010 Task 8 text: a line 1<TAB>"The <e1>storm</e1> caused a <e2>flood</e2>.", '
        "the label on the next line, then a blank line"
    ),
    ("summarization", "jsonl"): (
        "one JSON object a line with the text and its summary (name the two fields under "
        "Columns, e.g. dialogue and summary)"
    ),
    ("summarization", "csv"): _PAIR_CSV,
    ("translation", "jsonl"): (
        "one JSON object a line with the text and its translation (name the two fields under "
        "Columns, e.g. en and de)"
    ),
    ("translation", "csv"): _PAIR_CSV,
    ("translation", "parallel"): (
        "two aligned plain-text files, <name>.<source language> and <name>.<target language> "
        "(e.g. news.en and news.de), one sentence a line; upload both"
    ),
}
"""What a file of each (task, format) must look like, in plain words (shown with read errors)."""

# Field names of (source, target) pairs in common data sets, in the order they are preferred.
_SOURCE_FIELDS = ("source", "dialogue", "document", "article", "src", "en")
_TARGET_FIELDS = ("target", "summary", "highlights", "tgt", "de")


class StudioError(ValueError):
    """Something the user can fix; the message says what happened and what to do."""


SAMPLES: list[tuple[str, Path, str, str, dict[str, str]]] = [
    (
        "finance sentiment sample (300 sentences)",
        ROOT / "data/samples/finance_sentiment.csv",
        "classification",
        "csv",
        {},
    ),
    (
        "finance NER sample (120 sentences)",
        ROOT / "data/samples/finance_ner.conll",
        "ner",
        "conll",
        {},
    ),
    (
        "finance QA sample (36 questions)",
        ROOT / "data/samples/finance_qa.json",
        "qa",
        "squad",
        {},
    ),
    (
        "finance relation sample (48 sentences)",
        ROOT / "data/samples/finance_relations.jsonl",
        "relation",
        "jsonl",
        {},
    ),
    (
        "finance dialogue summarization sample (30 dialogues)",
        ROOT / "data/samples/finance_dialogues.jsonl",
        "summarization",
        "jsonl",
        {"source_column": "dialogue", "target_column": "summary"},
    ),
    (
        "finance news en-de translation sample (40 sentences)",
        ROOT / "data/samples/finance_news",  # finance_news.en + finance_news.de
        "translation",
        "parallel",
        {"source_lang": "en", "target_lang": "de"},
    ),
]
"""Label, path (parallel text: the common prefix), task, format and columns of each sample."""


def shown_path(path: str | Path) -> str:
    """A path as the pages show it, without this machine's folders: relative inside the
    project (``data/models/finance-sentiment``), ``~/...`` under the home folder,
    ``$LEPTON_HOME/...`` under a LEPTON_HOME elsewhere; any other path as it is."""
    path = Path(path).expanduser()
    home, studio = Path.home(), data_home()
    for folder, shown in ((ROOT, ""), (home, "~"), (studio, "$LEPTON_HOME")):
        try:
            inside = path.resolve().relative_to(folder.resolve())
        except ValueError:
            continue
        if folder == ROOT and studio.resolve().is_relative_to(ROOT.resolve()):
            continue  # LEPTON_HOME inside the project: said below, as LEPTON_HOME
        if folder == studio and not inside.parts:
            break  # LEPTON_HOME itself: where it is
        return str(Path(shown, inside)) if shown else str(inside) or "."
    return str(path)


def _exists(path: Path, fmt: str, columns: dict[str, str]) -> bool:
    if fmt == "parallel":
        return all(
            Path(f"{path}.{columns.get(key, default)}").is_file()
            for key, default in (("source_lang", "en"), ("target_lang", "de"))
        )
    return path.is_file()


UPLOAD_INDEX = ".studio-index.json"
"""The accepted uploads, in the uploads folder: data path name -> task, format, columns, files."""


def uploads_folder() -> Path:
    """Where accepted uploads are kept (``LEPTON_HOME/uploads``)."""
    return data_home() / "uploads"


def _read_index(folder: Path) -> dict[str, dict]:
    try:
        index = json.loads((folder / UPLOAD_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


@contextlib.contextmanager
def _index_lock(folder: Path) -> Iterator[None]:
    """Sessions that accept or tidy uploads at once take turns over the index."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{UPLOAD_INDEX}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_index(folder: Path, index: dict[str, dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{UPLOAD_INDEX}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, folder / UPLOAD_INDEX)  # readers never see half an index


def _data_files(path: Path, fmt: str, columns: dict[str, str]) -> list[Path]:
    """The files a data path stands for: itself, or a parallel prefix's two language files."""
    if fmt == "parallel":
        return [
            Path(f"{path}.{columns.get(key, default)}")
            for key, default in (("source_lang", "en"), ("target_lang", "de"))
        ]
    return [path]


def _reads(path: Path, task: str, fmt: str, columns: dict[str, str]) -> bool:
    try:
        load_data(path, task, fmt, columns)
    except StudioError:
        return False
    return True


def _guessed_reading(path: Path) -> tuple[Path, str, str, dict[str, str]]:
    """Data path, task, format and columns that a stored file's name and content suggest."""
    task, fmt = guess_format(path)
    if fmt == "parallel" and path.suffix:
        source = path.suffix[1:]
        target = "en" if source == "de" else "de"
        return path.with_suffix(""), task, fmt, {"source_lang": source, "target_lang": target}
    return path, task, fmt, detect_columns(path, task, fmt)


def _tidy_uploads(folder: Path, index: dict[str, dict]) -> dict[str, dict]:
    """Check the files that earlier versions stored without reading them: one that reads as
    data is recorded, one that does not is deleted (it was refused; offered, it made the Train
    page fail). Call it holding :func:`_index_lock`."""
    kept = {name: entry for name, entry in index.items() if isinstance(entry, dict)}
    covered = {f for entry in kept.values() for f in entry.get("files", [])}
    unchecked = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.name not in covered
    ]
    for path in unchecked:
        if not path.is_file() or path.name in covered:  # taken with its partner already
            continue
        data_path, task, fmt, columns = _guessed_reading(path)
        files = _data_files(data_path, fmt, columns)
        if all(f.is_file() for f in files) and _reads(data_path, task, fmt, columns):
            kept[data_path.name] = {
                "task": task,
                "format": fmt,
                "columns": columns,
                "files": [f.name for f in files],
            }
            covered.update(f.name for f in files)
        else:
            path.unlink(missing_ok=True)
    if kept != index:
        _write_index(folder, kept)
    return kept


def accept_upload(
    path: str | Path, task: str, fmt: str, columns: dict[str, str] | None = None
) -> dict:
    """Keep an upload that has just been read as data (:func:`load_data`) under the uploads
    folder, with the task, format and columns it was read with; returns it as a data choice.

    Only accepted files are stored and offered: a refused upload stays where
    :func:`save_upload` put it (a temporary folder) and is never listed.

    Raises:
        StudioError: the file does not read as ``fmt`` data for ``task`` with ``columns``.
    """
    path, columns = Path(path), dict(columns or {})
    load_data(path, task, fmt, columns)
    folder = uploads_folder()
    files = _data_files(path, fmt, columns)
    entry = {"task": task, "format": fmt, "columns": columns, "files": [f.name for f in files]}
    with _index_lock(folder):
        for file in files:
            target = folder / file.name
            if file.resolve() != target.resolve():
                partial = folder / f".{file.name}.{os.getpid()}.tmp"  # hidden: never listed
                shutil.copyfile(file, partial)
                os.replace(partial, target)
        index = {
            name: known
            for name, known in _read_index(folder).items()
            if name != path.name and not set(known.get("files", [])) & set(entry["files"])
        }
        index[path.name] = entry
        _write_index(folder, index)
    return _upload_choice(folder, path.name, entry)


def _upload_choice(folder: Path, name: str, entry: dict) -> dict:
    label = f"upload: {name}"
    if entry["format"] == "parallel":
        columns = entry.get("columns") or {}
        label += f" ({columns.get('source_lang', 'en')}-{columns.get('target_lang', 'de')})"
    return {
        "label": label,
        "path": str(folder / name),
        "task": entry["task"],
        "format": entry["format"],
        "columns": dict(entry.get("columns") or {}),
    }


def known_data_files() -> list[dict]:
    """The studio's accepted uploads (newest first) and the project's samples, as data choices.

    Uploads are listed with the task, format and columns they were read with; files stored
    without that record (by earlier versions) are checked once, and removed when refused.
    """
    choices = []
    folder = uploads_folder()
    if folder.is_dir():
        with _index_lock(folder):
            index = _tidy_uploads(folder, _read_index(folder))
        present = {
            name: max((folder / f).stat().st_mtime for f in entry["files"])
            for name, entry in index.items()
            if entry.get("files") and all((folder / f).is_file() for f in entry["files"])
        }
        for name in sorted(present, key=lambda n: -present[n]):
            choices.append(_upload_choice(folder, name, index[name]))
    for label, path, task, fmt, columns in SAMPLES:
        if _exists(path, fmt, columns):
            choices.append(
                {
                    "label": label,
                    "path": str(path),
                    "task": task,
                    "format": fmt,
                    "columns": dict(columns),
                }
            )
    return choices


def sample_data(task: str) -> dict:
    """The project's sample data set for ``task`` as a data choice (label, path, format, columns).

    Raises:
        StudioError: there is no sample for this task.
    """
    for label, path, sample_task, fmt, columns in SAMPLES:
        if sample_task == task:
            return {
                "label": label,
                "path": str(path),
                "task": task,
                "format": fmt,
                "columns": dict(columns),
            }
    raise StudioError(f"There is no sample data set for {task}; upload a file on the Data page.")


def _head(path: Path, size: int = 8192) -> str:
    """The first characters of a text file ("" when it is not a readable file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(size)
    except OSError:
        return ""


def _field_names(path: Path, fmt: str) -> list[str]:
    """Field names of the first JSON Lines object, or the CSV header ([] when unreadable)."""
    head = _head(path)
    if fmt == "jsonl":
        for line in head.splitlines():
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return []
                return list(obj) if isinstance(obj, dict) else []
        return []
    if fmt == "csv" and head:
        return next(csv.reader(io.StringIO(head)), [])
    return []


def _pair_fields(names: list[str]) -> dict[str, str]:
    # DialogSum's test file numbers its references (summary1..3); the reader takes the stem.
    stems = [re.sub(r"\d+$", "", name) for name in names]
    found = {}
    for key, candidates in (("source_column", _SOURCE_FIELDS), ("target_column", _TARGET_FIELDS)):
        match = next((c for c in candidates if c in names or c in stems), None)
        if match:
            found[key] = match
    return found


def detect_columns(path: str | Path, task: str, fmt: str) -> dict[str, str]:
    """Source and target field names a pair file (csv/jsonl) seems to use, e.g. dialogue/summary.

    Only fields found in the file are returned; the reader's defaults hold for the rest.
    """
    if task not in PAIR_TASKS or fmt not in ("csv", "jsonl"):
        return {}
    return _pair_fields(_field_names(Path(path), fmt))


def guess_format(filename: str | Path) -> tuple[str, str]:
    """(task, data format) that a file's name, and its first lines when it exists, suggest.

    The user can change both. Content decides among the tasks one extension serves: a JSON
    Lines file with question/context is QA, with head/tail (or ``<e1>`` marks) relation,
    with tokens NER, with a source/summary pair summarization; a CSV header with such a
    pair is summarization; a ``.txt`` in SemEval-2010 layout is relation.
    """
    path = Path(filename)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        names = _field_names(path, "jsonl")
        first = _head(path).lstrip()[:2000]
        if {"question", "context"} <= set(names):
            return "qa", "jsonl"
        if {"head", "tail"} & set(names) or "<e1>" in first:
            return "relation", "jsonl"
        if "tokens" in names:
            return "ner", "jsonl"
        pair = _pair_fields(names)
        if len(pair) == 2:
            if all(len(v) == 2 for v in pair.values()):  # language codes: en / de
                return "translation", "jsonl"
            return "summarization", "jsonl"
    if suffix in (".csv", ".tsv"):
        names = _field_names(path, "csv")
        if len(_pair_fields(names)) == 2 and "label" not in names:
            return "summarization", "csv"
    if suffix == ".txt" and re.match(r"\s*\d+\t\"", _head(path)):
        return "relation", "semeval"
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    return "translation", "parallel"


def staging_folder() -> Path:
    """A new temporary folder, outside ``LEPTON_HOME``, for uploads not yet read as data."""
    return Path(tempfile.mkdtemp(prefix="lepton-upload-"))


def save_upload(filename: str, content: bytes, folder: Path | None = None) -> Path:
    """Check an uploaded file's bytes and write it to ``folder`` to be read.

    ``folder`` defaults to a new :func:`staging_folder`: an upload is stored under
    ``LEPTON_HOME`` (and offered) only once it reads as data, by :func:`accept_upload`.

    Raises:
        StudioError: the file is empty, too large, or not text.
    """
    name = Path(filename).name.lstrip(".") or "upload"
    size_mb = len(content) / 2**20
    if not content.strip():
        raise StudioError(f"{name} is empty. Choose a file with at least a few labelled examples.")
    if size_mb > MAX_UPLOAD_MB:
        raise StudioError(
            f"{name} is {size_mb:.0f} MB; uploads are limited to {MAX_UPLOAD_MB} MB. Put the file "
            "on this machine and enter its folder or path under 'A file or folder on this machine'."
        )
    head = content[:65536]
    if b"\x00" in head:
        raise StudioError(
            f"{name} is not a text file (it holds binary data). Upload CSV, JSONL, CoNLL, "
            "SQuAD JSON or plain text."
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the 64 KB boundary
            raise StudioError(
                f"{name} is not UTF-8 text (byte {error.start}). Save it as UTF-8 and upload again."
            ) from None
    folder = folder or staging_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _data_config(fmt: str, columns: dict[str, str] | None = None):
    from lepton_nlp.config import DataConfig

    return DataConfig(format=fmt, **(columns or {}))


def load_data(path: str | Path, task: str, fmt: str, columns: dict[str, str] | None = None):
    """Read a data file (or a parallel-text prefix) into records with the core's readers.

    Raises:
        StudioError: the file cannot be read as ``fmt`` for ``task``; the message says why.
    """
    from lepton_nlp.config import ConfigError
    from lepton_nlp.data import DataError, load_records
    from lepton_nlp.tasks import get_task

    path = Path(path).expanduser()
    if fmt != "parallel" and not path.exists():
        raise StudioError(f"{path} does not exist. Check the path, or upload the file instead.")
    adapter = get_task(task)
    try:
        records = load_records(
            _data_config(fmt, columns),
            path,
            adapter.record_kind,
            getattr(adapter, "read_records", None),
        )
    except (DataError, ConfigError, KeyError, ValueError, OSError) as error:
        expected = EXPECTED_SHAPE.get((task, fmt))
        hint = f" Expected for {task} ({fmt}): {expected}." if expected else ""
        raise StudioError(
            f"{path.name} could not be read as {fmt} data for {task}: {error}{hint}"
        ) from None
    if not records:
        raise StudioError(f"{path.name} holds no records; check the format and the columns.")
    return records


def unanswerable_questions(
    path: str | Path, fmt: str, columns: dict[str, str] | None = None
) -> int:
    """How many questions of a QA data file have no answer (SQuAD 2.0's ``is_impossible``).

    The count is kept per file version, so a page that asks on every rerun reads it once.

    Raises:
        StudioError: the file cannot be read as QA data.
    """
    path = Path(path).expanduser()
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = 0  # load_data names the missing file
    return _unanswerable(str(path), fmt, tuple(sorted((columns or {}).items())), version)


@functools.lru_cache(maxsize=32)
def _unanswerable(path: str, fmt: str, columns: tuple, version: int) -> int:
    return sum(not r["answers"]["text"] for r in load_data(path, "qa", fmt, dict(columns)))


def _record_text(record: dict) -> str:
    for key in ("text", "source", "question"):
        if key in record:
            return str(record[key])
    if "tokens" in record:
        return " ".join(record["tokens"])
    return json.dumps(record, ensure_ascii=False)[:200]


def _record_kind(record: dict) -> str:
    """``tokens`` (NER), ``qa``, ``relation``, ``pair`` (summarization, translation) or ``text``."""
    if "tags" in record:
        return "tokens"
    if "answers" in record:
        return "qa"
    if "head" in record and "tail" in record:
        return "relation"
    if "source" in record and "target" in record:
        return "pair"
    return "text"


def _words(text: Any) -> int:
    return len(str(text).split())


def _stats(values: list[int]) -> dict[str, float]:
    values = values or [0]
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 1),
        "median": statistics.median(values),
        "max": max(values),
    }


def _references(target: Any) -> list[str]:
    return [str(t) for t in target] if isinstance(target, list) else [str(target)]


def marked_text(record: dict) -> str:
    """A relation record's text with its head marked ``<e1>..</e1>`` and its tail ``<e2>..</e2>``."""
    text = record["text"]
    spans = sorted(((record["head"], "e1"), (record["tail"], "e2")), key=lambda s: s[0]["start"])
    out, last = [], 0
    for span, tag in spans:
        out += [text[last : span["start"]], f"<{tag}>", text[span["start"] : span["end"]]]
        out.append(f"</{tag}>")
        last = span["end"]
    out.append(text[last:])
    return "".join(out)


def _argument(record: dict, name: str) -> str:
    span = record[name]
    words = record["text"][span["start"] : span["end"]]
    return f"{words} ({span['type']})" if span.get("type") else words


def _label_of(record: dict) -> str | None:
    if "label" in record:
        label = record["label"]
        return "|".join(map(str, label)) if isinstance(label, list) else str(label)
    return None


def _cell(value: Any) -> Any:
    return value if isinstance(value, str | int | float) else json.dumps(value, ensure_ascii=False)


@dataclass
class DataSummary:
    """What a data set holds: size, label counts, lengths and a preview."""

    count: int
    label_counts: dict[str, int]
    label_name: str
    lengths: dict[str, float]
    """Length statistics in words of the main text (text, context or source)."""
    preview: list[dict]
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    """Headline figures after the record count (``{"Labels": 3, "Median length (words)": 12}``)."""
    lengths_by_field: dict[str, dict[str, float]] = field(default_factory=dict)
    """Length statistics in words per field (QA: question, context, answer; pairs: source, target)."""


def summarize(records: list[dict], preview_rows: int = 20) -> DataSummary:
    """Counts of labels (entity types, relations), length statistics in words, and a preview.

    The figures follow the records' kind: labels for classification and relations, entity
    types for NER, contexts and question lengths for QA, source and target lengths for
    summarization and translation.
    """
    kind = _record_kind(records[0]) if records else "text"
    labels: Counter = Counter()
    warnings: list[str] = []
    fields: dict[str, list[int]] = {}
    preview: list[dict] = []
    head = records[:preview_rows]
    if kind == "tokens":
        label_name = "entity type"
        for r in records:
            labels.update(t[2:] for t in r["tags"] if t.startswith("B-"))
        fields["text"] = [len(r["tokens"]) for r in records]
        for r in head:
            row = {k: v for k, v in r.items() if k not in ("tokens", "tags")}
            row["text"] = " ".join(r["tokens"])
            row["entities"] = ", ".join(t[2:] for t in r["tags"] if t.startswith("B-"))
            preview.append(row)
    elif kind == "qa":
        label_name = "answer"
        for r in records:
            labels["has an answer" if r["answers"]["text"] else "no answer"] += 1
        fields["context"] = [_words(r["context"]) for r in records]
        fields["question"] = [_words(r["question"]) for r in records]
        fields["answer"] = [
            _words(r["answers"]["text"][0]) for r in records if r["answers"]["text"]
        ]
        preview = [
            {
                "question": r["question"],
                "answer": " | ".join(r["answers"]["text"]) or "(no answer)",
                "context": r["context"],
                **({"title": r["title"]} if r.get("title") else {}),
            }
            for r in head
        ]
        if labels["no answer"]:
            warnings.append(
                f"{labels['no answer']} question(s) have no answer (SQuAD 2.0 style): the Train "
                'page lets such a model answer "no answer" (on by default for this data).'
            )
    elif kind == "relation":
        label_name = "relation"
        labels.update(lab for r in records if (lab := _label_of(r)) is not None)
        fields["text"] = [_words(r["text"]) for r in records]
        preview = [
            {
                "text": marked_text(r),
                "head (e1)": _argument(r, "head"),
                "tail (e2)": _argument(r, "tail"),
                "relation": r.get("label", ""),
            }
            for r in head
        ]
    elif kind == "pair":
        label_name = ""
        fields["source"] = [_words(r["source"]) for r in records]
        fields["target"] = [_words(_references(r["target"])[0]) for r in records]
        preview = [
            {"source": r["source"], "target": " | ".join(_references(r["target"]))} for r in head
        ]
        several = sum(len(_references(r["target"])) > 1 for r in records)
        if several:
            warnings.append(
                f"{several} record(s) have several references: training uses the first, "
                "evaluation scores against all of them."
            )
    else:
        label_name = "label"
        labels.update(lab for r in records if (lab := _label_of(r)) is not None)
        fields["text"] = [len(_record_text(r).split()) for r in records]
        preview = [dict(r) for r in head]
    if kind in ("text", "relation"):
        if labels and len(labels) == 1:
            warnings.append(f"Only one {label_name}: a classifier needs at least two.")
        rare = [k for k, v in labels.items() if v < 2]
        if rare:
            warnings.append(
                f"{len(rare)} {label_name}(s) have a single example ({', '.join(sorted(rare)[:5])}); "
                "they stay in training and cannot be validated."
            )
    by_field = {name: _stats(values) for name, values in fields.items()}
    main = next(iter(by_field.values()), _stats([]))
    figures: dict[str, Any] = {}
    if kind == "qa":
        figures["Contexts"] = len({r["context"] for r in records})
        figures["Median context length (words)"] = by_field["context"]["median"]
        figures["Median question length (words)"] = by_field["question"]["median"]
    elif kind == "pair":
        figures["Median source length (words)"] = by_field["source"]["median"]
        figures["Median target length (words)"] = by_field["target"]["median"]
    else:
        figures[f"{label_name.capitalize()}s"] = len(labels)
        figures["Median length (words)"] = main["median"]
    return DataSummary(
        count=len(records),
        label_counts=dict(labels.most_common()),
        label_name=label_name,
        lengths=main,
        preview=[{k: _cell(v) for k, v in row.items()} for row in preview],
        warnings=warnings,
        figures=figures,
        lengths_by_field=by_field,
    )


def build_config(
    *,
    task: str,
    data_path: str | Path,
    fmt: str,
    base_model: str,
    method: str,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    r: int = 16,
    validation_size: float = 0.2,
    test_size: float = 0.0,
    columns: dict[str, str] | None = None,
    name: str = "studio-run",
    output_dir: str | Path = "runs/studio",
    early_stopping: bool = True,
    task_options: dict[str, Any] | None = None,
) -> str:
    """A validated run config, as YAML, for the choices made on the Train page.

    ``task_options`` are added to :func:`default_task_options` (and win over them).

    Raises:
        StudioError: the choices do not make a valid config (the core's message says why).
    """
    from lepton_nlp.config import ConfigError, config_to_dict, load_config

    options = {
        **default_task_options(task, int(max_length), base_model),
        **(task_options or {}),
    }

    tree = {
        "task": task,
        "name": name,
        "data": {
            "format": fmt,
            "train": str(data_path),
            "validation_size": validation_size,
            "test_size": test_size,
            **(columns or {}),
        },
        "model": {"name": base_model, "max_length": int(max_length)},
        "peft": {"method": method, "r": int(r)},
        "training": {
            "output_dir": str(output_dir),
            "epochs": float(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "progress": False,
            "logging_steps": 1,
            "early_stopping_patience": 3 if validation_size > 0 and early_stopping else None,
            "eval_strategy": "epoch" if validation_size > 0 else "no",
        },
    }
    if options:
        tree["task_options"] = options
    try:
        config = load_config(tree)
    except (ConfigError, ValueError, KeyError) as error:
        raise StudioError(f"These settings do not make a valid run: {error}") from None
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def defaults_for(task: str, base_model: str) -> dict[str, Any]:
    """The Train page's starting values (epochs, batch size, learning rate, max tokens, PEFT
    method) for ``task`` on ``base_model``."""
    return {"method": "lora", **TASK_DEFAULTS[task], **MODEL_DEFAULTS.get((task, base_model), {})}


def default_task_options(task: str, max_length: int, base_model: str = "") -> dict[str, Any]:
    """Task options that fit the chosen max tokens and base model.

    QA reads a long context in windows of ``max_length`` tokens that overlap by ``stride``;
    the core's defaults (stride 128, questions up to 64 tokens) need 384 tokens or so, so a
    shorter window gets a proportionally shorter overlap and question instead of an error.
    Translation on the MiniLM encoder-decoder: MiniLM's vocabulary is lower-cased and
    accent-stripped, so the decoder gets a cased vocabulary trained on the targets (as in
    ``configs/translation_multi30k.yaml``) and target texts as long as the sources.
    """
    if task == "qa":
        return {
            "stride": min(128, max_length // 3),
            "max_question_length": max(1, min(64, max_length // 6)),
        }
    if task == "translation" and base_model == MINILM:
        return {
            "family": "encoder-decoder",
            "target_vocab_size": 4000,
            "max_target_length": max_length,
            "max_new_tokens": max_length,
            "no_repeat_ngram_size": 3,
        }
    return {}


POOLINGS = {
    "mean": "Mean of the token vectors",
    "cls": "First token ([CLS], the model's pooler)",
}
"""Classification's ``task_options.pooling`` choices, as the Train page names them."""


def default_pooling(base_model: str) -> str:
    """``mean`` for a sentence-transformers model trained to mean its tokens (all-MiniLM-L6-v2:
    its [CLS] pooler was never trained), else ``cls``, what transformers does."""
    from lepton_nlp.hub import ModelNotFoundError, resolve_model, sentence_pooling

    if not base_model:
        return "cls"
    try:
        folder = resolve_model(base_model)
    except ModelNotFoundError:  # not installed, or no such folder: the run will say why
        return "cls"
    return "mean" if sentence_pooling(folder) == "mean" else "cls"


LEARNING_RATE_MIN = 1e-6
LEARNING_RATE_STEP = 1e-5
"""The Train page's learning-rate bounds and arrow step: a step well below the usual values
(1e-4 to 1e-3), so the arrows move both ways from any of them; typed values are kept as typed."""


def unique_run_name(store: RunStore, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a run of that name exists already."""
    taken = {run.name for run in store.list()}
    if name not in taken:
        return name
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"


def evaluation_note(history: list[dict]) -> str | None:
    """A line for a run evaluated once so far (a single point is no curve): its scores."""
    evaluations = [e for e in history if any(k.startswith("eval_") for k in e)]
    if len(evaluations) != 1:
        return None
    entry = evaluations[0]
    scores = ", ".join(
        f"{key[5:]} {format_metric(key[5:], float(value))}"
        for key, value in entry.items()
        if key.startswith("eval_") and not key.endswith(("_runtime", "_per_second", "epoch"))
    )
    epoch = entry.get("epoch")
    when = f"epoch {epoch:g}, step {entry.get('step', 0)}" if epoch else f"step {entry['step']}"
    return (
        f"One evaluation so far ({when}): {scores}. The curves need a second epoch; "
        "until then each value is one dot."
    )


def start_run(store: RunStore, config_yaml: str, name: str, task: str) -> Run:
    """Record a run and start its worker process.

    Raises:
        StudioError: another run is still training (two at once would share the same CPU
            cores and both crawl), the message naming it; or a run of this name exists
            (names tell runs apart on every page), the message offering a free one.
    """
    from apps.studio.worker import spawn_worker

    name = name.strip()
    if not name:
        raise StudioError("Give the run a name (it tells runs apart on every page).")
    same = next((run for run in store.list() if run.name == name), None)
    if same is not None:
        raise StudioError(
            f"A run named '{name}' already exists (#{same.id}, {same.status}). Choose another "
            f"name, e.g. '{unique_run_name(store, name)}'."
        )
    busy = store.active()
    if busy:
        other = busy[0]
        raise StudioError(
            f"Run #{other.id} '{other.name}' is still training ({other.status}). Wait for it to "
            "finish, or stop it, then start this one."
        )
    run = store.create(name=name, task=task, config_yaml=config_yaml)
    folder = data_home() / "runs" / f"run-{run.id}"
    config = yaml.safe_load(config_yaml)
    config["training"]["output_dir"] = str(folder / "artifact")
    log_path = folder / "worker.log"
    store.update(
        run.id, config_yaml=yaml.safe_dump(config, sort_keys=False), log_path=str(log_path)
    )
    pid = spawn_worker(run.id, log_path)
    return store.update(run.id, pid=pid)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating..."
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def loss_curves(history: list[dict]) -> list[dict]:
    """Rows ``{step, series, value}``: ``training loss``, ``validation loss`` and the validation
    metrics (``validation accuracy``...; the per-label F1s are left to the results table)."""
    rows = []
    for entry in history:
        for key, value in entry.items():
            if key == "loss":
                series = "training loss"
            elif key.startswith("eval_") and not (
                key.endswith(("_runtime", "_per_second")) or key.startswith("eval_f1_")
            ):
                if key == "eval_epoch":
                    continue
                series = f"validation {key[5:]}"
            else:
                continue
            rows.append({"step": entry.get("step", 0), "series": series, "value": float(value)})
    return rows


def run_records(config_yaml: str, split: str = "test") -> list[dict]:
    """The records of one split of a run, re-created from its config (same seed, same split)."""
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    config = load_config(yaml.safe_load(config_yaml))
    task = get_task(config.task)
    return load_splits(config.data, task.record_kind, getattr(task, "read_records", None))[split]


HEADLINE_METRICS = {
    "qa": ["exact_match", "f1"],
    "relation": ["macro_f1", "micro_f1", "accuracy"],
    "summarization": ["rouge1", "rouge2", "rougeL"],
    "translation": ["bleu", "chrf"],
}
"""The metrics the Evaluate page leads with, per task (others: the first of a general list)."""

_GENERAL_HEADLINE = (
    "accuracy",
    "macro_f1",
    "precision",
    "recall",
    "f1",
    "exact_match",
    "rougeL",
    "bleu",
)
_PERCENT_SCALE = ("bleu", "chrf")  # sacrebleu's scores are in [0, 100]


def headline_metrics(task: str, metrics: dict[str, float]) -> list[str]:
    """Names of the metrics to show first for ``task``, those present in ``metrics``."""
    return [k for k in HEADLINE_METRICS.get(task, _GENERAL_HEADLINE) if k in metrics]


def format_metric(name: str, value: float) -> str:
    """A metric as shown: BLEU and chrF (0-100) with one decimal, fractions with three."""
    return f"{value:.1f}" if name in _PERCENT_SCALE else f"{value:.3f}"


@dataclass
class EvalReport:
    """Metrics of an artifact on labelled records, with what a person needs to read them."""

    metrics: dict[str, float]
    labels: list[str]
    confusion: list[list[int]] | None
    per_label: dict[str, float]
    errors: list[dict]
    """The worst predictions, worst first; their keys are the columns the page shows."""
    task: str = ""
    backend: str = ""
    """The inference backend that made the predictions (``torch-int8``, ``torch``...)."""


def record_labels(records: list[dict]) -> set[str] | None:
    """The labels (NER: tags) that labelled records use; None for tasks without labels
    (QA, summarization, translation), whose data fits any model of the task."""
    labels: set[str] = set()
    for record in records:
        if "tags" in record:
            labels.update(map(str, record["tags"]))
        elif "label" in record:
            value = record["label"]
            labels.update(map(str, value) if isinstance(value, list) else [str(value)])
        else:
            return None
    return labels


@functools.lru_cache(maxsize=64)
def _file_labels(path: str, task: str, fmt: str, columns: tuple, version: int) -> frozenset | None:
    labels = record_labels(load_data(path, task, fmt, dict(columns)))
    return None if labels is None else frozenset(labels)


def data_labels(choice: dict) -> set[str] | None:
    """:func:`record_labels` of a data choice's file (read once per file version).

    Raises:
        StudioError: the file cannot be read as the choice says.
    """
    path = Path(choice["path"]).expanduser()
    columns = choice.get("columns") or {}
    try:
        version = max(f.stat().st_mtime_ns for f in _data_files(path, choice["format"], columns))
    except OSError:
        version = 0  # load_data names the missing file
    labels = _file_labels(
        str(path), choice["task"], choice["format"], tuple(sorted(columns.items())), version
    )
    return None if labels is None else set(labels)


def unknown_labels(model_labels: list[str] | set[str], labels: set[str] | None) -> list[str]:
    """The labels of the data that the model was not trained on (sorted; [] when it fits)."""
    return sorted((labels or set()) - set(model_labels))


def fitting_models(models: list[dict], task: str, labels: set[str] | None) -> list[dict]:
    """The catalogue's models of ``task`` that know every one of ``labels``."""
    fit = []
    for model in models:
        if model["task"] != task:
            continue
        try:
            known = artifact_spec(model["path"]).labels
        except StudioError:
            continue
        if not unknown_labels(known, labels):
            fit.append(model)
    return fit


def label_mismatch(
    model: dict, data_name: str, labels: set[str] | None, fitting: list[dict]
) -> str | None:
    """One line saying that ``model`` does not know the data's labels, and which models do;
    None when it knows them all."""
    known = artifact_spec(model["path"]).labels
    unknown = unknown_labels(known, labels)
    if not unknown:
        return None
    shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
    others = [m["name"] for m in fitting if m["path"] != model["path"]]
    offer = (
        f"Models whose labels fit: {', '.join(others)}."
        if others
        else "No model here knows them: train one on this data on the Train page."
    )
    return (
        f"{model['name']} does not know {len(unknown)} of the {len(labels or ())} labels in "
        f"{data_name} ({shown}); it was trained on {len(known)} others. {offer}"
    )


def _label_errors(records: list[dict], predictions: list[dict]) -> list[dict]:
    errors = []
    for r, p in zip(records, predictions, strict=True):
        if str(p["label"]) != str(r["label"]):
            text = marked_text(r) if "head" in r and "tail" in r else r.get("text", "")
            errors.append(
                {
                    "text": text,
                    "true": str(r["label"]),
                    "predicted": str(p["label"]),
                    "confidence": round(float(p["score"]), 3),
                }
            )
    return sorted(errors, key=lambda e: -e["confidence"])


def _qa_errors(records: list[dict], predictions: list[dict]) -> list[dict]:
    from lepton_nlp.evaluation.squad import exact_match_score, f1_score

    errors = []
    for r, p in zip(records, predictions, strict=True):
        golds = r["answers"]["text"]
        answer = p["answer"]
        if golds:
            exact = max(exact_match_score(answer, g) for g in golds)
            f1 = max(f1_score(answer, g) for g in golds)
        else:  # a question without an answer: only an empty prediction is right
            exact = f1 = float(answer == "")
        if exact < 1.0:
            errors.append(
                {
                    "question": r["question"],
                    "expected": " | ".join(golds) or "(no answer)",
                    "predicted": answer or "(no answer)",
                    "F1": round(f1, 3),
                    "confidence": round(float(p["score"]), 3),
                    "context": r["context"],
                }
            )
    # Wrong and sure of it first: those teach the most about the model.
    return sorted(errors, key=lambda e: (e["F1"], -e["confidence"]))


def _generation_errors(task: str, records: list[dict], predictions: list[dict]) -> list[dict]:
    """Every example with its own score (summaries: ROUGE-L, translations: chrF), lowest first."""
    outputs = [p["generated_text"] for p in predictions]
    references = [_references(r["target"]) for r in records]
    if task == "translation":
        import sacrebleu

        name = "chrF"
        scores = [
            sacrebleu.sentence_chrf(o, refs).score
            for o, refs in zip(outputs, references, strict=True)
        ]
    else:
        from rouge_score import rouge_scorer

        name = "ROUGE-L"
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores = [
            scorer.score_multi(refs, o or "")["rougeL"].fmeasure
            for o, refs in zip(outputs, references, strict=True)
        ]
    rows = [
        {
            "source": r["source"],
            "reference": " | ".join(refs),
            "output": output,
            name: round(float(score), 3),
        }
        for r, refs, output, score in zip(records, references, outputs, scores, strict=True)
    ]
    return sorted(rows, key=lambda e: e[name])


def evaluate_artifact(predictor: Any, records: list[dict], worst: int = 10) -> EvalReport:
    """Predict ``records`` with ``predictor`` and score them: metrics, confusion, worst errors.

    The metrics are made as :meth:`Predictor.evaluate` (what ``lepton-nlp eval`` prints)
    makes them: the task's record check, one ``predict`` over all records, the task's
    ``evaluate_predictions``; the same predictions then give the confusion and the errors.

    The worst errors follow the task: confident wrong labels (classification, relations,
    with the relation's arguments marked in the text), sentences with most wrong tags
    (NER), wrong answers with the question and the gold answer (QA), and the outputs that
    score lowest against their references (summarization, translation).
    """
    if not records:
        raise StudioError(
            "There are no labelled records to evaluate on; choose another split or file."
        )
    predictor.task.check_records(records, predictor.spec, "evaluation")
    predictions = predictor.predict(records)
    metrics = predictor.task.evaluate_predictions(predictions, records, predictor.spec)
    labels = list(predictor.spec.labels)
    per_label = {k[3:]: v for k, v in metrics.items() if k.startswith("f1_")}
    confusion = None
    errors: list[dict] = []
    if predictions and "label" in predictions[0] and "label" in records[0]:
        from sklearn.metrics import confusion_matrix

        refs = [str(r["label"]) for r in records]
        preds = [str(p["label"]) for p in predictions]
        confusion = confusion_matrix(refs, preds, labels=labels).tolist()
        errors = _label_errors(records, predictions)
    elif predictions and "tags" in predictions[0]:
        per_label = {
            k.split("_", 1)[1]: v
            for k, v in metrics.items()
            if k.startswith("f1_") or (k.endswith("_f1") and k != "f1")
        } or per_label
        for r, p in zip(records, predictions, strict=True):
            wrong = sum(a != b for a, b in zip(r["tags"], p["tags"], strict=False))
            if wrong:
                text = p.get("text") or " ".join(r["tags"])
                gold = _entities_from_tags(r["tokens"], r["tags"])
                errors.append(
                    {
                        "text": text,
                        "wrong tags": wrong,
                        "gold": ", ".join(f"{e['text']} ({e['label']})" for e in gold),
                        "predicted": ", ".join(
                            f"{e['text']} ({e['label']})" for e in p["entities"]
                        ),
                        "entities": p["entities"],
                    }
                )
        errors.sort(key=lambda e: -e["wrong tags"])
    elif predictions and "answer" in predictions[0]:
        errors = _qa_errors(records, predictions)
    elif predictions and "generated_text" in predictions[0]:
        errors = _generation_errors(predictor.task.name, records, predictions)
    return EvalReport(
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        labels=labels,
        confusion=confusion,
        per_label=per_label,
        errors=errors[:worst],
        task=predictor.task.name,
        backend=str(getattr(predictor, "backend", "")),
    )


def predict_input(predictor: Any, item: Any) -> dict:
    """The prediction for one input typed on the Try page, after the core's input check.

    Raises:
        StudioError: the input is refused (a text that is empty or only whitespace, a
            missing field); the message is the core's.
    """
    from lepton_nlp.data import DataError

    try:
        predictor.check_input(item)
    except DataError as error:
        raise StudioError(str(error)) from None
    return predictor.predict_one(item)


def _entities_from_tags(tokens: list[str], tags: list[str]) -> list[dict]:
    entities, current = [], None
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-") or (
            tag.startswith("I-") and (current is None or current["label"] != tag[2:])
        ):
            current = {"label": tag[2:], "words": [token]}
            entities.append(current)
        elif tag.startswith("I-") and current is not None:
            current["words"].append(token)
        else:
            current = None
    return [{"label": e["label"], "text": " ".join(e["words"])} for e in entities]


_COLOURS = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc"]


_FIXED = {
    "PER": _COLOURS[0],
    "ORG": _COLOURS[1],
    "LOC": _COLOURS[2],
    "MISC": _COLOURS[4],
    "answer": _COLOURS[2],
    "head": _COLOURS[3],
    "tail": _COLOURS[1],
}


def _entity_colour(label: str) -> str:
    # The same type has the same colour in every sentence (and every session).
    return _FIXED.get(label) or _COLOURS[sum(map(ord, label)) % len(_COLOURS)]


def highlight_entities(text: str, entities: list[dict]) -> str:
    """HTML of ``text`` with each entity span marked and labelled (text is escaped)."""
    colour = {t: _entity_colour(t) for t in {e["label"] for e in entities}}
    out, last = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        if e["start"] < last:
            continue
        out.append(html.escape(text[last : e["start"]]))
        out.append(
            f'<mark style="background:{colour[e["label"]]};padding:0 4px;border-radius:4px">'
            f"{html.escape(text[e['start'] : e['end']])} <b style='font-size:0.75em'>{html.escape(e['label'])}</b></mark>"
        )
        last = e["end"]
    out.append(html.escape(text[last:]))
    return "".join(out)


def relation_spans(prediction: dict) -> list[dict]:
    """The head and tail of a relation input or prediction as spans for :func:`highlight_entities`."""
    return [
        {"label": name, "start": prediction[name]["start"], "end": prediction[name]["end"]}
        for name in ("head", "tail")
    ]


def _occurrences(text: str, words: str) -> list[int]:
    starts, start = [], text.find(words) if words else -1
    while start >= 0:
        starts.append(start)
        start = text.find(words, start + 1)
    return starts


def _argument_spans(text: str, head: str, tail: str) -> tuple[dict, dict]:
    """The first places of ``head`` and ``tail`` in ``text`` that do not overlap."""
    head, tail = head.strip(), tail.strip()
    heads, tails = _occurrences(text, head), _occurrences(text, tail)
    for name, words, found, mark in (
        ("head", head, heads, "<e1>...</e1>"),
        ("tail", tail, tails, "<e2>...</e2>"),
    ):
        if not found:
            raise StudioError(
                f"The {name} {words!r} is not in the text. Type it exactly as it appears there "
                f"(same capitals), or mark it in the text with {mark}."
            )
    for h in heads:
        for t in tails:
            if h + len(head) <= t or t + len(tail) <= h:
                return {"start": h, "end": h + len(head)}, {"start": t, "end": t + len(tail)}
    raise StudioError(
        f"The head {head!r} and the tail {tail!r} overlap in the text; the two arguments must "
        "be different words. Mark them with <e1>...</e1> and <e2>...</e2> to be exact."
    )


def relation_input(
    text: str, head: str = "", tail: str = "", head_type: str = "", tail_type: str = ""
) -> dict:
    """A relation Predictor input from the Try page: ``{"text", "head", "tail"}`` spans.

    The arguments are either marked in the text (``<e1>head</e1>``, ``<e2>tail</e2>``) or
    typed as words of the text (the first place they occur; the tail clear of the head).
    Types, when given, go with the spans (models trained with typed arguments use them).

    Raises:
        StudioError: the text is empty, its marks are broken, or an argument is not in it.
    """
    from lepton_nlp.data import DataError
    from lepton_nlp.data.semeval import parse_marked

    if not text.strip():
        raise StudioError("Type a sentence that names the two arguments.")
    if re.search(r"</?e[12]>", text):
        try:
            item = parse_marked(text, "The text")
        except DataError as error:
            raise StudioError(
                f"{error} Mark the first argument (head) as <e1>...</e1> and the second (tail) "
                "as <e2>...</e2>."
            ) from None
    else:
        if not head.strip() or not tail.strip():
            raise StudioError(
                "Give the two arguments: mark them in the text as <e1>...</e1> (head) and "
                "<e2>...</e2> (tail), or type them in the Head and Tail boxes."
            )
        first, second = _argument_spans(text, head, tail)
        item = {"text": text, "head": first, "tail": second}
    for name, kind in (("head", head_type), ("tail", tail_type)):
        if kind.strip():
            item[name]["type"] = kind.strip()
    return item


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_TABLE_CONFIG = {
    "model.name": "base model",
    "peft.method": "method",
    "peft.r": "r",
    "training.epochs": "epochs",
    "training.learning_rate": "learning rate",
    "training.batch_size": "batch",
}


def runs_table(runs: list[Run]) -> list[dict]:
    """One row per run: config, status, metrics, time and trainable parameters."""
    rows = []
    for run in runs:
        config = _flat(yaml.safe_load(run.config_yaml) or {})
        metrics = run.metrics
        row: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "task": run.task,
            "status": run.status,
        }
        for split in ("validation", "test"):
            for key, value in (metrics.get(split) or {}).items():
                if key != "examples" and not key.startswith("f1_"):
                    row[f"{split} {key}"] = round(float(value), 4)
        row.update({label: config.get(key) for key, label in _TABLE_CONFIG.items()})
        if "/" in str(row.get("base model")) and Path(str(row["base model"])).is_dir():
            row["base model"] = Path(str(row["base model"])).name  # a local folder: its name
        train = metrics.get("train") or {}
        row["train seconds"] = train.get("train_seconds")
        row["trainable params"] = train.get("trainable_parameters")
        if run.artifact_path and not Path(run.artifact_path, "lepton_artifact.json").is_file():
            row["status"] = f"{run.status} (model folder deleted)"
        row["created"] = run.created.strftime("%Y-%m-%d %H:%M") if run.created else ""
        rows.append(row)
    return rows


def diff_runs(a: Run, b: Run) -> list[dict]:
    """Settings and results that differ between two runs (``name``, ``run A``, ``run B``)."""
    flat_a = _flat(yaml.safe_load(a.config_yaml) or {})
    flat_b = _flat(yaml.safe_load(b.config_yaml) or {})
    flat_a.update(_flat({k: v for k, v in a.metrics.items() if k != "history"}, "metrics."))
    flat_b.update(_flat({k: v for k, v in b.metrics.items() if k != "history"}, "metrics."))
    rows = []
    # Settings first, then results.
    for key in sorted(set(flat_a) | set(flat_b), key=lambda k: (k.startswith("metrics."), k)):
        # Not what tells two runs apart: where they wrote, timings, the int8 check's notes.
        if (
            key in ("training.output_dir", "name")
            or key.startswith("metrics.backends.")
            or key.endswith(("train_seconds", "samples_per_second", "peak_memory_mb"))
        ):
            continue
        va, vb = flat_a.get(key), flat_b.get(key)
        if va != vb:
            rows.append(
                {"setting": key, f"#{a.id} {a.name}": _show(va), f"#{b.id} {b.name}": _show(vb)}
            )
    return rows


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def model_catalog(store: RunStore | None = None, shipped: Path = SHIPPED_MODELS) -> list[dict]:
    """Models ready to use: the shipped ones and the studio's finished runs (name, task, metrics)."""
    from lepton_nlp.artifacts import ArtifactError, read_artifact

    folders: list[tuple[str, Path]] = []
    if store is not None:  # the newest studio runs first, then the shipped models
        folders += [
            (f"studio run #{r.id}", Path(r.artifact_path))
            for r in store.list()
            if r.artifact_path and r.status in ("completed", "stopped")
        ]
    if shipped.is_dir():
        folders += [("shipped", p) for p in sorted(shipped.iterdir()) if p.is_dir()]
    models = []
    for source, folder in folders:
        try:
            info = read_artifact(folder)
        except (ArtifactError, OSError, KeyError, ValueError):
            continue
        test = info.metrics.get("test") or info.metrics.get("validation") or {}
        headline = {
            k: round(float(v), 3)
            for k, v in test.items()
            if k in ("accuracy", "macro_f1", "f1", "exact_match", "rougeL", "bleu")
        }
        models.append(
            {
                "name": info.name or folder.name,
                "task": info.task,
                "method": info.peft_method,
                "base model": info.base_model,
                "labels": len(info.spec.labels),
                "metrics": ", ".join(f"{k} {v}" for k, v in headline.items()) or "-",
                "source": source,
                "path": str(folder),
            }
        )
    return models


def missing_artifacts(store: RunStore) -> list[Run]:
    """Finished runs whose model folder has been deleted or moved since."""
    return [
        r
        for r in store.list()
        if r.status in ("completed", "stopped")
        and r.artifact_path
        and not Path(r.artifact_path, "lepton_artifact.json").is_file()
    ]


def artifact_spec(path: str | Path) -> Any:
    """The task spec saved in an artifact folder (labels, options), without loading the model.

    Raises:
        StudioError: the folder is gone or is not a complete artifact.
    """
    from lepton_nlp.artifacts import ArtifactError, read_artifact

    try:
        return read_artifact(path).spec
    except (ArtifactError, OSError, KeyError, ValueError) as error:
        raise StudioError(
            f"The model folder {path} cannot be read ({error}); choose another model or train "
            "it again."
        ) from None


def artifact_zip(path: str | Path) -> bytes:
    """The artifact folder as a zip (for download), without TensorBoard logs."""
    from lepton_nlp.artifacts import read_artifact

    info = read_artifact(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(info.path.rglob("*")):
            if file.is_file() and "logs" not in file.relative_to(info.path).parts:
                archive.write(file, Path(info.path.name) / file.relative_to(info.path))
    return buffer.getvalue()
