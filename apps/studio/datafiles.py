"""The studio's data sets: samples and uploads, read with the core's readers, and what they hold
for the pages (task and format guessed from a file, labels, unanswerable questions)."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from apps.common.paths import ROOT, data_home
from apps.studio.errors import StudioError
from lepton_nlp.security import UnsafePathError, contained_path, safe_filename

__all__ = [
    "FILE_FORMATS",
    "MAX_UPLOAD_MB",
    "SAMPLES",
    "UPLOAD_INDEX",
    "accept_upload",
    "data_labels",
    "detect_columns",
    "formats_for",
    "guess_format",
    "is_pair_task",
    "known_data_files",
    "load_data",
    "record_labels",
    "sample_data",
    "save_upload",
    "staging_folder",
    "task_names",
    "unanswerable_questions",
    "uploads_folder",
]

MAX_UPLOAD_MB = 200

FILE_FORMATS = ("csv", "jsonl", "conll", "squad", "semeval", "parallel")
"""The ``data.format`` values the Data page reads from a file (a Hugging Face datasets folder
and Financial PhraseBank's lines are read by the command line)."""

_EXTENSIONS = {
    ".csv": ("classification", "csv"),
    ".tsv": ("classification", "csv"),
    ".jsonl": ("classification", "jsonl"),
    ".conll": ("ner", "conll"),
    ".iob": ("ner", "conll"),
    ".json": ("qa", "squad"),
}

# Field names of (source, target) pairs in common data sets, in the order they are preferred.
_SOURCE_FIELDS = ("source", "dialogue", "document", "article", "src", "en")
_TARGET_FIELDS = ("target", "summary", "highlights", "tgt", "de")


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


def task_names() -> list[str]:
    """The tasks the studio offers: those of the samples, in their order, then any other
    task registered in the core."""
    from lepton_nlp.tasks import TASKS

    names = list(dict.fromkeys(task for _, _, task, _, _ in SAMPLES))
    return names + sorted({t.name for t in TASKS.values()} - set(names))


def formats_for(task: str) -> list[str]:
    """The formats a data file of ``task`` can come in on the Data page, the usual first
    (the task's ``data_formats``)."""
    from lepton_nlp.tasks import get_task

    formats = getattr(get_task(task), "data_formats", None) or dict.fromkeys(FILE_FORMATS)
    return [fmt for fmt in formats if fmt in FILE_FORMATS]


def is_pair_task(task: str) -> bool:
    """Whether ``task`` reads (source, target) pairs (summarization, translation)."""
    from lepton_nlp.tasks import get_task

    return get_task(task).record_kind == "pair"


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
    if fmt not in ("csv", "jsonl") or not is_pair_task(task):
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
    # The browser sends the name: keep its last part only, never a folder or '..'.
    name = safe_filename(filename, default="upload")
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
    try:
        path = contained_path(folder, name, "upload")  # a symlink planted there is not followed
    except UnsafePathError as error:
        raise StudioError(str(error)) from None
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
        expected = (getattr(adapter, "data_formats", None) or {}).get(fmt)
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
