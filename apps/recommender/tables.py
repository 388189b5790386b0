"""Rows from CSV, JSONL or Parquet files as dicts: the one reader the catalogue and events share."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from apps.recommender.errors import RecommenderError

__all__ = ["FORMATS", "pick", "read_rows"]

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``.csv``/``.tsv`` (header line), ``.jsonl`` (one object a line), ``.json``
    (a list of objects) or ``.parquet`` file.

    Raises:
        RecommenderError: no such file, another extension, or a line that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise RecommenderError(f"No file at {path}: give the path of a {'/'.join(FORMATS)} file.")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise RecommenderError(
            f"{path} has extension {suffix or '(none)'!r}; the recommender reads {', '.join(FORMATS)}."
        )
    try:
        return _read(path, suffix)
    except UnicodeDecodeError as error:
        raise RecommenderError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}); save it as UTF-8."
        ) from None
    except csv.Error as error:
        raise RecommenderError(f"{path} is not a readable CSV file ({error}).") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise RecommenderError(f"{path} is not valid JSON ({error}).") from None


def _read(path: Path, suffix: str) -> list[dict[str, Any]]:
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            rows = []
            for row in reader:
                if None in row:
                    raise RecommenderError(
                        f"{path}:{reader.line_num} has more fields than the header; quote "
                        "fields holding the separator."
                    )
                rows.append(dict(row))
            return rows
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise RecommenderError(f"{path}:{n} is not JSON ({error.msg}).") from None
            if not isinstance(row, dict):
                raise RecommenderError(f"{path}:{n} is not a JSON object: write one object a line.")
            rows.append(row)
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RecommenderError(f"{path} must hold a JSON list of objects.")
        return data
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise RecommenderError(f"{path} is not a readable Parquet file ({error}).") from None


def pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` present (and not empty) in ``row``, else None."""
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return value
    return None
