"""Readers of (source, target) pairs for summarization and translation: JSONL, CSV, parallel text.

A pair record is ``{"source": str, "target": str}``; ``target`` is a list of strings when
the file gives several references (DialogSum's test split: ``summary1..3``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lepton_nlp.data.readers import iter_json_lines, read_hf, read_text
from lepton_nlp.errors import DataError

__all__ = ["read_pair_records", "read_pairs_csv", "read_pairs_jsonl", "read_parallel"]


def _targets(row: dict, field: str, where: str) -> str | list[str]:
    """The reference(s) of a row: ``field``, ``a,b,c`` fields, or numbered ``field1, field2...``."""
    names = [f.strip() for f in field.split(",") if f.strip()]
    if len(names) == 1 and names[0] not in row:
        # DialogSum's test file has summary1..summary3 where the dev file has summary.
        numbered = [f"{names[0]}{i}" for i in range(1, 100) if f"{names[0]}{i}" in row]
        names = numbered or names
    missing = [name for name in names if name not in row]
    if missing:
        raise DataError(
            f"{where}: missing target field(s) {missing}; it has {sorted(row)}. Set "
            "data.target_column (several references: a comma-separated list, or the stem of "
            "numbered fields such as summary for summary1, summary2...)."
        )
    refs: list[str] = []
    for name in names:
        value = row[name]
        values = value if isinstance(value, list) else [value]
        refs.extend(str(v).strip() for v in values if v is not None and str(v).strip())
    if not refs:
        raise DataError(f"{where}: empty target in {names}.")
    return refs[0] if len(refs) == 1 else refs


def _pair(row: dict, source_field: str, target_field: str, where: str) -> dict[str, Any]:
    source = row.get(source_field)
    if source is None:
        raise DataError(
            f"{where}: missing source field {source_field!r}; it has {sorted(row)}. "
            "Set data.source_column."
        )
    if not str(source).strip():
        raise DataError(f"{where}: empty source in {source_field!r}.")
    return {"source": str(source).strip(), "target": _targets(row, target_field, where)}


def read_pairs_jsonl(
    path: str | Path,
    source_field: str = "source",
    target_field: str = "target",
    encoding: str = "utf-8",
) -> list[dict]:
    """Read JSON Lines objects into pair records (DialogSum: ``dialogue`` / ``summary``)."""
    records = []
    for where, row in iter_json_lines(path, encoding):
        records.append(_pair(row, source_field, target_field, where))
    if not records:
        raise DataError(f"{path} holds no records.")
    return records


def read_pairs_csv(
    path: str | Path,
    source_field: str = "source",
    target_field: str = "target",
    encoding: str = "utf-8",
) -> list[dict]:
    """Read a CSV file with a header into pair records."""
    content = read_text(path, encoding)
    reader = csv.DictReader(io.StringIO(content, newline=""))
    records = []
    try:
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if None in row:
                raise DataError(
                    f"{where}: more fields than the header's {len(reader.fieldnames or [])}; "
                    "quote fields holding commas."
                )
            records.append(_pair(row, source_field, target_field, where))
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if not records:
        raise DataError(f"{path} holds a header but no rows.")
    return records


def read_parallel(
    prefix: str | Path, source_lang: str, target_lang: str, encoding: str = "utf-8"
) -> list[dict]:
    """Read aligned text files ``<prefix>.<source_lang>`` and ``<prefix>.<target_lang>``, a pair a line.

    Lines blank on both sides are skipped; a line blank on one side only is an error.

    Raises:
        DataError: a file is missing, the files differ in line count, or one side is blank.
    """
    files = [Path(f"{prefix}.{lang}") for lang in (source_lang, target_lang)]
    for file in files:
        if not file.is_file():
            raise DataError(
                f"Parallel file {file} does not exist; data.format=parallel reads "
                f"<path>.<data.source_lang> and <path>.<data.target_lang> (path given: {prefix})."
            )
    sources, targets = (read_text(f, encoding).splitlines() for f in files)
    if len(sources) != len(targets):
        raise DataError(
            f"{files[0]} has {len(sources)} lines but {files[1]} has {len(targets)}; "
            "parallel files must be aligned line by line."
        )
    records = []
    for line_no, (source, target) in enumerate(zip(sources, targets, strict=True), start=1):
        source, target = source.strip(), target.strip()
        if not source and not target:
            continue
        if not source or not target:
            blank = files[0] if not source else files[1]
            raise DataError(f"{blank}, line {line_no}: blank line where the other file has text.")
        records.append({"source": source, "target": target})
    if not records:
        raise DataError(f"{files[0]} and {files[1]} hold no text.")
    return records


def read_pair_records(data: Any, path: str | Path) -> list[dict]:
    """Read pair records with the reader ``data.format`` names (a task's ``read_records``).

    Args:
        data: a :class:`lepton_nlp.config.DataConfig` (format, source/target columns, languages).
        path: the file, the parallel files' common prefix, or a ``datasets`` folder.
    """
    fmt = data.format
    if fmt == "jsonl":
        return read_pairs_jsonl(path, data.source_column, data.target_column, data.encoding)
    if fmt == "csv":
        return read_pairs_csv(path, data.source_column, data.target_column, data.encoding)
    if fmt == "parallel":
        return read_parallel(path, data.source_lang, data.target_lang, data.encoding)
    if fmt == "hf":
        rows = read_hf(path, data.hf_split)
        return [
            _pair(row, data.source_column, data.target_column, f"{path}, row {i}")
            for i, row in enumerate(rows)
        ]
    raise DataError(
        f"data.format={fmt!r} cannot hold (source, target) pairs; use jsonl, csv, parallel or hf."
    )
