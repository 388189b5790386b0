"""Readers that turn dataset files into plain records (dicts), with errors naming file and line."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lepton_nlp.errors import DataError

__all__ = [
    "DataError",
    "expand_path",
    "read_conll",
    "read_csv",
    "read_fpb",
    "read_hf",
    "read_jsonl",
    "read_text",
    "to_iob2",
]


def expand_path(value: Any) -> Any:
    """Expand ``${VAR}`` in a path; LEPTON_DATASETS defaults to ``../shared/datasets``.

    Configs keep the unexpanded form (so a saved config works on another machine); readers
    expand it when they open the file.
    """
    if isinstance(value, str) and "$" in value:
        env = dict(os.environ)
        env.setdefault("LEPTON_DATASETS", "../shared/datasets")
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)",
            lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
            value,
        )
    return value


def read_text(path: str | Path, encoding: str) -> str:
    """A whole text file, refused with its line and offset when binary or not in ``encoding``.

    Raises:
        DataError: the file is missing, binary, or does not decode.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist.")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise DataError(
            f"{path} looks like a binary file, not text; pass a CSV, JSONL or text file."
        )
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        other = "latin-1" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
        raise DataError(
            f"{path}, line {line}: not valid {encoding} (byte {raw[exc.start]:#x} at offset "
            f"{exc.start}). Set data.encoding to the file's encoding (e.g. data.encoding={other})."
        ) from None


def _split_labels(value: Any, multi_label: bool, separator: str) -> Any:
    if not multi_label:
        return str(value).strip()
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(separator) if part.strip()]


def _record(
    row: dict,
    where: str,
    text_column: str,
    label_column: str | None,
    multi_label: bool,
    separator: str,
) -> dict:
    text = row.get(text_column)
    if text is None or not str(text).strip():
        raise DataError(f"{where}: empty text in column {text_column!r}.")
    record: dict[str, Any] = {"text": str(text)}
    if label_column is not None:
        label = row.get(label_column)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"{where}: empty label in column {label_column!r}.")
        record["label"] = _split_labels(label, multi_label, separator)
    return record


def read_csv(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
    multi_label: bool = False,
    label_separator: str = "|",
) -> list[dict]:
    """Read a CSV with a header row into ``{"text", "label"}`` records.

    ``label_column=None`` reads texts only (prediction input).
    """
    text = read_text(path, encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        raise DataError(f"{path}, line 1: the header is not valid CSV ({exc}).") from None
    wanted = [c for c in (text_column, label_column) if c is not None]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; the header has {columns}. "
            "Set data.text_column / data.label_column to the right names."
        )
    records = []
    try:
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if None in row:
                raise DataError(
                    f"{where}: more fields than the header's {len(columns)}; "
                    "quote fields holding commas."
                )
            records.append(
                _record(row, where, text_column, label_column, multi_label, label_separator)
            )
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if not records:
        raise DataError(f"{path} holds a header but no rows.")
    return records


def iter_json_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[str, dict]]:
    """Yield ``(where, object)`` for each non-blank line of a JSON Lines file.

    ``where`` names the file and line for error messages. Raises DataError for a line that
    is not JSON or not a JSON object.
    """
    content = read_text(path, encoding)
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}).") from None
        except RecursionError:
            raise DataError(f"{where}: JSON nested too deeply to read.") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}.")
        yield where, obj


def read_jsonl(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
    multi_label: bool = False,
    label_separator: str = "|",
    fields: tuple[str, ...] | None = None,
) -> list[dict]:
    """Read JSON Lines into records.

    With ``fields`` given, each object must have those fields and is returned as is
    (used for NER ``tokens``/``tags``); otherwise ``{"text", "label"}`` records.
    """
    records = []
    for where, obj in iter_json_lines(path, encoding):
        if fields is not None:
            missing = [f for f in fields if f not in obj]
            if missing:
                raise DataError(f"{where}: missing field(s) {missing}; it has {sorted(obj)}.")
            records.append(obj)
            continue
        missing = [c for c in (text_column, label_column) if c is not None and c not in obj]
        if missing:
            raise DataError(
                f"{where}: missing field(s) {missing}; it has {sorted(obj)}. "
                "Set data.text_column / data.label_column to the right names."
            )
        records.append(_record(obj, where, text_column, label_column, multi_label, label_separator))
    if not records:
        raise DataError(f"{path} holds no records.")
    return records


def read_fpb(path: str | Path, encoding: str = "latin-1") -> list[dict]:
    """Read Financial PhraseBank's ``sentence@label`` lines (latin-1 by default)."""
    content = read_text(path, encoding)
    records = []
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        if "@" not in line:
            raise DataError(
                f"{path}, line {line_no}: expected 'sentence@label', got {line[:80]!r}."
            )
        sentence, label = line.rsplit("@", 1)
        if not sentence.strip() or not label.strip():
            raise DataError(f"{path}, line {line_no}: empty sentence or label in {line[:80]!r}.")
        records.append({"text": sentence.strip(), "label": label.strip()})
    if not records:
        raise DataError(f"{path} holds no 'sentence@label' lines.")
    return records


def _is_iob1(sentences: list[list[str]]) -> bool:
    """IOB1 lets an entity start with I-; IOB2 never does."""
    for tags in sentences:
        previous = "O"
        for tag in tags:
            if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
                return True
            previous = tag
    return False


def to_iob2(tags: list[str]) -> list[str]:
    """Convert IOB1 tags to IOB2 (every entity starts with B-)."""
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def read_conll(
    path: str | Path,
    tag_column: int = -1,
    scheme: str = "auto",
    encoding: str = "utf-8",
) -> list[dict]:
    """Read CoNLL columns (token first, tag in ``tag_column``) into ``{"tokens", "tags"}`` records.

    Sentences are separated by blank lines; ``-DOCSTART-`` lines are skipped. Tags in
    IOB1 are converted to IOB2 (``scheme="auto"`` detects which one the file uses).
    """
    content = read_text(path, encoding)
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    width = None
    for line_no, line in enumerate(content.splitlines(), start=1):
        parts = line.split()
        if not parts:
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        if parts[0] == "-DOCSTART-":
            continue
        if len(parts) < 2:
            raise DataError(
                f"{path}, line {line_no}: expected 'TOKEN ... TAG' columns, got {line!r}. "
                "Each line needs a token and a tag separated by whitespace."
            )
        if width is None:
            width = len(parts)
        elif len(parts) != width:
            raise DataError(
                f"{path}, line {line_no}: {len(parts)} columns where earlier lines have {width}: {line!r}."
            )
        tag = parts[tag_column]
        if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
            raise DataError(
                f"{path}, line {line_no}: tag {tag!r} is not O, B-TYPE or I-TYPE. "
                "Check data.conll_tag_column (which column holds the tag)."
            )
        tokens.append(parts[0])
        tags.append(tag)
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    if not sentences:
        raise DataError(f"{path} holds no CoNLL sentences.")
    if scheme == "iob1" or (scheme == "auto" and _is_iob1([s["tags"] for s in sentences])):
        for sentence in sentences:
            sentence["tags"] = to_iob2(sentence["tags"])
    return sentences


def read_hf(path: str | Path, split: str = "train") -> list[dict]:
    """Read a local Hugging Face ``datasets`` folder (``save_to_disk``) into records."""
    import datasets

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder written by datasets' save_to_disk.")
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path} has splits {list(loaded)}, not {split!r}; set data.hf_split.")
        loaded = loaded[split]
    features = loaded.features
    rows = loaded.to_list()
    # ClassLabel columns hold ids: turn them back into names.
    for column, feature in features.items():
        names = getattr(feature, "names", None)
        inner = getattr(feature, "feature", None)
        if names:
            for i, row in enumerate(rows):
                if not 0 <= row[column] < len(names):
                    raise DataError(
                        f"{path}, row {i}: {column}={row[column]} is not a label id (unlabelled split?); "
                        "use a labelled split (data.hf_split)."
                    )
                row[column] = names[row[column]]
        elif inner is not None and getattr(inner, "names", None):
            for row in rows:
                row[column] = [inner.names[i] for i in row[column]]
    return rows
