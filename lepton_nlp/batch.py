"""Batch scoring of JSONL, CSV or Parquet files: a resumable local engine and a Ray Data engine.

Both engines read the input as rows, cut it into chunks of ``chunk_size`` consecutive rows,
predict each chunk with one ``predictor.predict`` call, and write one JSON line per row
(the row's fields plus the prediction, as ``lepton-nlp predict`` always has). The chunks are
the same in both engines, so the outputs are byte-identical.

local
    Streams: memory holds one chunk. After each chunk the output is fsynced and a sidecar
    ``OUTPUT.progress`` file records the rows and bytes written (replaced atomically). A run
    that was killed resumes from there: the output is cut back to the recorded size (a chunk
    written but not recorded is dropped), the rows already done are skipped, and nothing is
    lost or written twice. The sidecar goes when the run completes.
ray
    ``ray.data.read_text/read_csv/read_parquet`` -> rows regrouped into blocks of exactly
    ``chunk_size`` (``repartition(target_num_rows_per_block=..., strict=True)``) ->
    ``map_batches`` with a fixed pool of actors, each holding one predictor -> the driver
    writes the lines in input order. Without an address it starts Ray on this machine; with
    one (``ray://...`` or ``auto``) it runs on that cluster, where every node needs lepton-nlp
    installed and the input, the artifact and the output path on a shared file system.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import decimal
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lepton_nlp.errors import BatchError

__all__ = [
    "BAD_RECORD_MODES",
    "ECHO_CHARS",
    "ENGINES",
    "FORMATS",
    "BatchError",
    "BatchSummary",
    "Record",
    "ScoredChunk",
    "check_not_binary",
    "detect_format",
    "iter_chunks",
    "iter_records",
    "progress_path",
    "score_file",
    "score_local",
    "score_ray",
    "score_records",
    "score_rows",
]

ENGINES = ("local", "ray")
FORMATS = ("jsonl", "csv", "parquet", "text")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
}
#: ``bad_records`` modes besides a file path: error records in the output, or stop at the first.
BAD_RECORD_MODES = ("inline", "stop")
#: Longest string copied from an input row into its output line (the rest is counted, not kept).
ECHO_CHARS = 10_000
_SNIFF_BYTES = 64 * 1024

PredictorFactory = Callable[[], Any]
"""A picklable zero-argument callable returning an object with ``.predict(list) -> list[dict]``
(``functools.partial(Predictor.from_artifact, path)``); the Ray engine calls it in each actor."""


@dataclass
class Record:
    """One input record: where it is in the input, and its row or why it could not be read."""

    position: dict[str, int]
    """``{"line": N}`` for JSONL and plain text (1-based file lines), ``{"row": N}`` for CSV and
    Parquet (1-based data rows), empty where the engine cannot tell (Ray)."""
    row: dict | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        return " ".join(f"{k} {v}" for k, v in self.position.items()) or "a record"


@dataclass
class BatchSummary:
    """What a batch run did."""

    output: Path | None
    """The output file (None: standard output)."""
    rows: int
    """Records in the output when the run finished (good and bad)."""
    resumed_from: int
    """Rows already in the output when this run started (0 for a fresh run)."""
    seconds: float
    engine: str
    bad: int = 0
    """Records that could not be predicted (reported, not predicted)."""
    bad_examples: list[str] = field(default_factory=list)
    """The first few bad records as ``"line 3: reason"``."""
    bad_records: str = "inline"
    """Where the bad records went: ``inline`` (the output), or a file path."""

    @property
    def predicted(self) -> int:
        return self.rows - self.bad


def _sniff(head: bytes, text_field: str, where: str) -> str:
    """Format from the first bytes of a file without a known suffix."""
    if head.startswith(b"PAR1"):
        return "parquet"
    first = next((line.strip() for line in head.splitlines() if line.strip()), b"")
    if first.startswith(b"{"):
        return "jsonl"
    try:
        header = next(csv.reader([first.decode("utf-8", errors="replace")]))
    except (csv.Error, StopIteration):
        header = []
    if len(header) > 1 and text_field in [h.strip() for h in header]:
        return "csv"
    return "text"


def check_not_binary(head: bytes, where: str, encoding: str = "utf-8") -> None:
    """Refuse a file whose first bytes hold NUL bytes (text in UTF-16/32 aside)."""
    nul = head.find(b"\x00")
    if nul >= 0 and not encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        raise BatchError(
            f"{where} looks like a binary file (a NUL byte at byte offset {nul}); "
            "predict reads JSONL, CSV, Parquet or plain text lines (pass --encoding for UTF-16)."
        )


def detect_format(
    path: str | Path, given: str | None = None, head: bytes | None = None, text_field: str = "text"
) -> str:
    """The input format: ``given``, else from the file suffix, else from the file's first bytes.

    Content decides as follows: Parquet's magic bytes; a first line that starts with ``{``
    (JSONL); a first line that reads as a CSV header naming ``text_field``; else plain text,
    one input per line.
    """
    if given:
        if given not in FORMATS:
            raise BatchError(f"Unknown input format {given!r}; choose one of {', '.join(FORMATS)}.")
        return given
    suffix = Path(str(path)).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if head is None:
        with open(path, "rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    return _sniff(head, text_field, str(path))


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _parse_jsonl_line(line: str) -> tuple[dict | None, str | None]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(row, dict):
        return None, f'expected a JSON object such as {{"text": ...}}, got {line.strip()[:80]!r}'
    return row, None


def _encoding_hint(encoding: str) -> str:
    other = "latin-1" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
    return f"pass --encoding with the file's encoding (e.g. --encoding {other})"


def _line_records(
    stream: BinaryIO, fmt: str, encoding: str, skip: int, where: str
) -> Iterator[Record]:
    """JSONL or plain-text records of a binary stream; a line that does not decode, or is not
    a JSON object, is a bad record (its neighbours are read as usual)."""
    codec = codecs.lookup(encoding)
    if "\n".encode(codec.name) != b"\n":  # UTF-16/32: lines only exist once decoded
        try:
            lines: Iterator[tuple[bytes | str, int]] = (
                (line, 0) for line in io.TextIOWrapper(stream, encoding=encoding, newline="\n")
            )
            yield from _decoded_records(lines, fmt, encoding, skip, where)
        except UnicodeDecodeError as exc:
            raise BatchError(
                f"{where} is not valid {encoding} ({exc.reason}); {_encoding_hint(encoding)}."
            ) from None
        return
    yield from _decoded_records(_offsets(stream), fmt, encoding, skip, where)


def _offsets(stream: BinaryIO) -> Iterator[tuple[bytes, int]]:
    offset = 0
    for raw in stream:
        yield raw, offset
        offset += len(raw)


def _decoded_records(
    lines: Iterator[tuple[bytes | str, int]], fmt: str, encoding: str, skip: int, where: str
) -> Iterator[Record]:
    seen = 0
    for line_no, (raw, offset) in enumerate(lines, start=1):
        error = None
        if isinstance(raw, bytes):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                line = raw.decode(encoding, errors="replace")
                error = (
                    f"not valid {encoding}: byte {raw[exc.start]:#04x} at byte offset "
                    f"{offset + exc.start} of the file (column {exc.start + 1}); "
                    f"{_encoding_hint(encoding)}"
                )
        else:
            line = raw
        if line_no == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark is not text
        if not line.strip():
            continue
        seen += 1
        if seen <= skip:
            continue
        position = {"line": line_no}
        if error:
            yield Record(position, error=error)
        elif fmt == "text":
            yield Record(position, {"text": line.rstrip("\r\n")})
        else:
            row, error = _parse_jsonl_line(line)
            yield Record(position, row, error)


def _decoded_row(row: dict, encoding: str) -> tuple[dict, str | None]:
    """A CSV row whose cells Arrow left as bytes (they are not valid UTF-8), decoded or refused."""
    for key, value in row.items():
        if isinstance(value, bytes):
            try:
                row[key] = value.decode(encoding)
            except UnicodeDecodeError as exc:
                return {k: v for k, v in row.items() if not isinstance(v, bytes)}, (
                    f"column {key!r} is not valid {encoding} (byte {value[exc.start]:#04x} at "
                    f"character {exc.start + 1} of the cell); {_encoding_hint(encoding)}"
                )
    return row, None


def _arrow_records(
    batches: Iterator[Any], skip: int, encoding: str | None = None
) -> Iterator[Record]:
    row_no = skip
    for batch in batches:
        if skip >= batch.num_rows:
            skip -= batch.num_rows  # skipped without turning the rows into Python objects
            continue
        if skip:
            batch = batch.slice(skip)
            skip = 0
        for row in batch.to_pylist():
            row_no += 1
            error = None
            if encoding is not None:  # CSV: a cell that is not text arrives as bytes
                row, error = _decoded_row(row, encoding)
            yield Record({"row": row_no}, row, error)


def _first_undecodable(path: Path, encoding: str) -> str:
    """Where a file first fails to decode: line, byte offset and the byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with open(path, "rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return f"line {line_no}: byte {raw[exc.start]:#04x} at byte offset {offset + exc.start}"
            offset += len(raw)
    return "somewhere"


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were read already (to tell its format): them, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def iter_records(
    source: str | Path | BinaryIO,
    fmt: str,
    skip: int = 0,
    encoding: str = "utf-8",
) -> Iterator[Record]:
    """The records of a file (or a binary stream such as stdin), after ``skip`` records.

    Blank lines are not records. A JSONL or text line that cannot be read is a bad
    :class:`Record` (``error`` set) and reading goes on; a CSV or Parquet file that cannot be
    parsed, or a CSV in another encoding than ``encoding``, is a :class:`BatchError` naming
    the line and byte offset.
    """
    import pyarrow as pa

    where = getattr(source, "name", None) or str(source)
    if not isinstance(source, str | Path):
        where = "standard input"
    if fmt in ("jsonl", "text"):
        if isinstance(source, str | Path):
            with open(source, "rb") as stream:
                yield from _line_records(stream, fmt, encoding, skip, where)
        else:
            yield from _line_records(source, fmt, encoding, skip, where)
        return
    if fmt == "parquet" and not isinstance(source, str | Path):
        raise BatchError("Parquet cannot be read from standard input; pass --input FILE.")
    try:
        if fmt == "csv":
            from pyarrow import csv as pa_csv

            batches = pa_csv.open_csv(source, read_options=pa_csv.ReadOptions(encoding=encoding))
        else:
            from pyarrow import parquet

            batches = parquet.ParquetFile(source).iter_batches(batch_size=4096)
        records = _arrow_records(batches, skip, encoding if fmt == "csv" else None)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            yield record
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        message = str(exc)
        if fmt == "csv" and ("UTF8" in message or isinstance(exc, UnicodeDecodeError)):
            found = (
                _first_undecodable(Path(source), encoding)
                if isinstance(source, str | Path)
                else "somewhere"
            )
            raise BatchError(
                f"{where} is not valid {encoding} ({found}); {_encoding_hint(encoding)}."
            ) from None
        raise BatchError(f"Cannot read {where} as {fmt}: {message}") from None


def iter_chunks(
    source: str | Path | BinaryIO,
    fmt: str,
    chunk_size: int,
    skip: int = 0,
    encoding: str = "utf-8",
) -> Iterator[list[Record]]:
    """Records of the input in chunks of ``chunk_size`` (the last may be shorter), after ``skip``.

    Memory holds one chunk (plus one Arrow record batch).
    """
    chunk: list[Record] = []
    for record in iter_records(source, fmt, skip, encoding):
        chunk.append(record)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _echo(out: dict, name: str, value: Any) -> None:
    """Copy a field to an output record: a string of at most ECHO_CHARS, its full length noted."""
    if isinstance(value, str) and len(value) > ECHO_CHARS:
        out[name] = value[:ECHO_CHARS]
        out[f"{name}_chars"] = len(value)
    else:
        out[name] = value


def _output_line(fields: dict) -> str:
    return json.dumps(fields, ensure_ascii=False, default=_json_default) + "\n"


def _error_fields(record: Record, reason: str) -> dict:
    """An error record: the row's own fields (the text bounded), where it was, and why."""
    out: dict = {}
    for key, value in (record.row or {}).items():
        _echo(out, key, value)
    return {**out, **record.position, "error": reason}


@dataclass
class ScoredChunk:
    """A chunk's output lines, and the bad records among them."""

    lines: list[str]
    """One line per good record, plus the error records when they go inline."""
    bad_lines: list[str]
    """The error records (also in ``lines`` when inline)."""
    bad_examples: list[str]
    inline_bad: list[bool] = field(default_factory=list)
    """Per entry of ``lines``: whether it is an error record."""


def _model_input(row: dict, text_field: str) -> dict:
    if text_field != "text":
        if text_field not in row:
            raise BatchError(
                f"no field {text_field!r} (--text-field); its fields: "
                f"{', '.join(map(str, row)) or 'none'}"
            )
        row = {**row, "text": row[text_field]}
    return row


def _why_refused(row: dict, text_field: str, exc: Exception) -> str:
    """The predictor's reason, or plainer words when the text field is missing or null."""
    if isinstance(row, dict) and text_field == "text" and "tokens" not in row:
        if "text" not in row:
            return (
                f"no field 'text' (--text-field names another); its fields: "
                f"{', '.join(map(str, row)) or 'none'}"
            )
        if row["text"] is None:
            return "the field 'text' is null"
    return str(exc).rstrip(".")


def score_records(
    predictor: Any,
    records: list[Record],
    text_field: str = "text",
    bad_records: str = "inline",
) -> ScoredChunk:
    """Predict the good records of a chunk with one ``predict`` call; report the bad ones.

    A record is bad when it could not be read, lacks the text field, or holds input the
    predictor refuses (``check_input``: a null, empty or whitespace-only text, a wrong type).
    ``bad_records``: ``inline`` puts an error record (the row's fields, its ``line`` or
    ``row``, and ``error``) in the output in its place; ``stop`` raises at the first bad
    record before anything of the chunk is predicted; anything else (a file) keeps the error
    records apart, in ``bad_lines``.

    An output line is the row's fields plus the prediction; strings longer than
    :data:`ECHO_CHARS` are cut, with ``<field>_chars`` holding their length, and a text longer
    than the model reads carries ``truncated``: ``{"chars_read", "chars"}``.

    Raises:
        BatchError: with ``stop``, the first bad record, named by its line or row.
    """
    check = getattr(predictor, "check_input", None)
    bound = getattr(predictor, "bound_input", None)
    slots: list[tuple[Record, dict | None, str | None]] = []
    for record in records:
        reason = record.error
        item = None
        if reason is None:
            try:
                item = _model_input(record.row, text_field)
                if check is not None:
                    check(item)
            except ValueError as exc:  # DataError, BatchError
                reason, item = _why_refused(record.row, text_field, exc), None
        if reason is not None and bad_records == "stop":
            raise BatchError(f"{record.where}: {reason}.")
        slots.append((record, item, reason))
    items = [item for _, item, _ in slots if item is not None]
    fitted = [bound(item) if bound is not None else (item, None) for item in items]
    predictions = iter(predictor.predict([model_item for model_item, _ in fitted]) if items else [])
    reads = iter(fitted)
    lines, bad_lines, examples, flags = [], [], [], []
    for record, item, reason in slots:
        if item is None:
            line = _output_line(_error_fields(record, reason))
            bad_lines.append(line)
            examples.append(f"{record.where}: {reason}")
            if bad_records == "inline":
                lines.append(line)
                flags.append(True)
            continue
        prediction, (_, truncated) = next(predictions), next(reads)
        out: dict = {}
        for key, value in item.items():
            if key not in prediction and key != "tokens":
                _echo(out, key, value)
        for key, value in prediction.items():
            _echo(out, key, value)
        if truncated is not None:
            out["truncated"] = truncated
        lines.append(_output_line(out))
        flags.append(False)
    return ScoredChunk(lines, bad_lines, examples, flags)


def score_rows(
    predictor: Any, rows: list[dict], text_field: str = "text", first_row: int = 1
) -> list[str]:
    """Predict plain rows (numbered from ``first_row``); one JSON line per row, in order, bad
    rows as error records (:func:`score_records` with ``bad_records="inline"``)."""
    records = [Record({"row": first_row + i}, row) for i, row in enumerate(rows)]
    return score_records(predictor, records, text_field).lines


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_progress(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        json.dump(state, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def progress_path(output: str | Path) -> Path:
    """The sidecar file recording how far a local run got: ``OUTPUT.progress``."""
    output = Path(output)
    return output.with_name(output.name + ".progress")


def _is_stream(path: str | Path | None) -> bool:
    return path is None or str(path) == "-"


def _check_paths(input: str | Path | None, output: str | Path | None, bad_records: str) -> None:
    if not _is_stream(input) and not Path(input).is_file():
        raise BatchError(f"Input file {input} does not exist.")
    if _is_stream(output):
        return
    output = Path(output)
    if not _is_stream(input) and output.resolve() == Path(input).resolve():
        raise BatchError("The output file must not be the input file.")
    if output.suffix.lower() in (".csv", ".parquet", ".pq"):
        raise BatchError(f"Predictions are written as JSONL; name the output {output.stem}.jsonl.")
    if bad_records not in BAD_RECORD_MODES and Path(bad_records).resolve() in (
        output.resolve(),
        None if _is_stream(input) else Path(input).resolve(),
    ):
        raise BatchError("The bad-records file must be neither the input nor the output.")


def _open_input(input: str | Path | None, fmt: str | None, text_field: str, encoding: str):
    """(source for :func:`iter_records`, format, a stream to close or None)."""
    if _is_stream(input):
        stream = sys.stdin.buffer
        head = b"" if fmt else stream.read1(_SNIFF_BYTES) if hasattr(stream, "read1") else b""
        check_not_binary(head, "standard input", encoding)
        fmt = detect_format("-", fmt, head, text_field)
        if fmt == "parquet":
            raise BatchError("Parquet cannot be read from standard input; pass --input FILE.")
        source = io.BufferedReader(_Prefixed(head, stream)) if head else stream
        return source, fmt, None
    with open(input, "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    fmt = detect_format(input, fmt, head, text_field)
    if fmt != "parquet":
        check_not_binary(head, str(input), encoding)
    if fmt in ("csv", "parquet"):
        _check_columns(Path(input), fmt, head, text_field, encoding)
    return Path(input), fmt, None


#: Columns any task reads its input from; a table with none of them (and no --text-column)
#: cannot hold a single good row.
_INPUT_COLUMNS = ("text", "tokens", "question", "context", "source")


def _check_columns(path: Path, fmt: str, head: bytes, text_field: str, encoding: str) -> None:
    """Refuse a table whose header lacks the text column: every row would be bad."""
    if fmt == "parquet":
        from pyarrow import parquet

        try:
            columns = list(parquet.read_schema(path).names)
        except Exception:  # unreadable: iter_records reports it with the reader's words
            return
    else:
        first = head.split(b"\n", 1)[0].decode(encoding, errors="replace").strip("\r\ufeff")
        try:
            columns = [c.strip() for c in next(csv.reader([first]), [])]
        except csv.Error as exc:
            raise BatchError(f"{path}: the header line is not CSV ({exc}).") from None
    wanted = (text_field,) if text_field != "text" else _INPUT_COLUMNS
    if not any(name in columns for name in wanted):
        raise BatchError(
            f"{path} has no column {text_field!r}; its columns: {', '.join(columns) or 'none'}. "
            "Pass --text-column NAME with the column that holds the text."
        )


def score_local(
    predictor_factory: PredictorFactory,
    input: str | Path | None,
    output: str | Path | None,
    *,
    fmt: str | None = None,
    text_field: str = "text",
    chunk_size: int = 1024,
    overwrite: bool = False,
    model_id: str = "",
    on_chunk: Callable[[int], None] | None = None,
    encoding: str = "utf-8",
    bad_records: str = "inline",
) -> BatchSummary:
    """Score a file (or standard input) on this machine, streaming; resume an interrupted run.

    Args:
        predictor_factory: builds the predictor (called once, after the checks).
        input: JSONL, CSV, Parquet or plain-text file; ``None`` or ``"-"``: standard input.
        output: JSONL file to write; ``None`` or ``"-"``: standard output (no resuming).
        fmt: input format (default: from the suffix, else from the content).
        text_field: the field holding the text, copied to ``text`` for the model.
        chunk_size: rows per ``predict`` call and per fsync.
        overwrite: replace an existing output (and forget any progress) instead of resuming.
        model_id: names the model in the progress file, so a resume with another model is refused.
        on_chunk: called with the number of rows done after each chunk.
        encoding: the input's text encoding.
        bad_records: ``inline`` (an error record in the output in place of each bad record),
            ``stop`` (a :class:`BatchError` at the first), or a file that receives the error
            records (``inline``'s records, kept apart from the output).

    Raises:
        BatchError: missing input, an unreadable CSV/Parquet file, an output that exists
            without a progress file (pass ``overwrite``), progress from a different input or
            settings, or (``stop``) the first bad record.
    """
    start = time.perf_counter()
    _check_paths(input, output, bad_records)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise BatchError(
            f"Unknown encoding {encoding!r} (--encoding); try utf-8 or latin-1."
        ) from None
    if chunk_size < 1:
        raise BatchError(f"chunk_size must be at least 1, got {chunk_size}.")
    source, fmt, _ = _open_input(input, fmt, text_field, encoding)
    bad_path = None if bad_records in BAD_RECORD_MODES else Path(bad_records)
    resumable = not _is_stream(input) and not _is_stream(output)
    rows_done = bytes_done = bad_done = bad_bytes = 0
    if _is_stream(output):
        sidecar = None
    else:
        output = Path(output)
        sidecar = progress_path(output)
        identity = {
            "input": str(Path(input).resolve()) if resumable else "-",
            "input_bytes": Path(input).stat().st_size if resumable else 0,
            "input_mtime_ns": Path(input).stat().st_mtime_ns if resumable else 0,
            "format": fmt,
            "text_field": text_field,
            "chunk_size": chunk_size,
            "model": model_id,
            "encoding": encoding,
            "bad_records": str(bad_path.resolve()) if bad_path else bad_records,
        }
        if resumable and sidecar.exists() and not overwrite:
            state = json.loads(sidecar.read_text(encoding="utf-8"))
            changed = [k for k, v in identity.items() if state.get("identity", {}).get(k) != v]
            if changed:
                raise BatchError(
                    f"{output} holds a partial run with different {', '.join(changed)}; resume it "
                    "with the same input and options, or pass --overwrite to start over."
                )
            rows_done, bytes_done = state["rows"], state["bytes"]
            bad_done, bad_bytes = state.get("bad", 0), state.get("bad_bytes", 0)
            if not output.exists() or output.stat().st_size < bytes_done:
                raise BatchError(
                    f"{output} is shorter than its progress file says ({bytes_done} bytes); it was "
                    "changed outside this run. Pass --overwrite to start over."
                )
        elif output.exists() and not overwrite:
            raise BatchError(
                f"{output} already exists and holds no partial run; pass --overwrite to replace it."
            )
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(b"")
            if bad_path is not None:
                bad_path.parent.mkdir(parents=True, exist_ok=True)
                bad_path.write_bytes(b"")
            if resumable:
                _write_progress(sidecar, {"identity": identity, "rows": 0, "bytes": 0})
    resumed_from = rows_done
    examples: list[str] = []
    predictor = predictor_factory()
    sink = sys.stdout.buffer if _is_stream(output) else open(output, "r+b")  # noqa: SIM115
    bad_sink = None
    if bad_path is not None:
        bad_sink = open(bad_path, "r+b" if bad_path.exists() else "w+b")  # noqa: SIM115
        bad_sink.truncate(bad_bytes)
        bad_sink.seek(bad_bytes)
    try:
        if sink is not sys.stdout.buffer:
            # Whatever follows the recorded size is a chunk that was written but never recorded.
            sink.truncate(bytes_done)
            sink.seek(bytes_done)
        for chunk in iter_chunks(source, fmt, chunk_size, skip=rows_done, encoding=encoding):
            scored = score_records(predictor, chunk, text_field, bad_records)
            data = "".join(scored.lines).encode("utf-8")
            sink.write(data)
            sink.flush()
            if bad_sink is not None and scored.bad_lines:
                bad_data = "".join(scored.bad_lines).encode("utf-8")
                bad_sink.write(bad_data)
                bad_sink.flush()
                os.fsync(bad_sink.fileno())
                bad_bytes += len(bad_data)
            rows_done += len(chunk)
            bytes_done += len(data)
            bad_done += len(scored.bad_lines)
            examples.extend(scored.bad_examples[: max(0, 10 - len(examples))])
            if resumable:
                os.fsync(sink.fileno())
                _write_progress(
                    sidecar,
                    {
                        "identity": identity,
                        "rows": rows_done,
                        "bytes": bytes_done,
                        "bad": bad_done,
                        "bad_bytes": bad_bytes,
                    },
                )
            if on_chunk is not None:
                on_chunk(rows_done)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
        if bad_sink is not None:
            bad_sink.close()
    if sidecar is not None:
        sidecar.unlink(missing_ok=True)
    return BatchSummary(
        None if _is_stream(output) else Path(output),
        rows_done,
        resumed_from,
        time.perf_counter() - start,
        "local",
        bad=bad_done,
        bad_examples=examples,
        bad_records=str(bad_path) if bad_path else bad_records,
    )


class _RayScorer:
    """A Ray Data actor: one predictor, called on chunks of rows."""

    def __init__(
        self,
        predictor_factory: PredictorFactory,
        text_field: str,
        fmt: str,
        torch_threads: int,
        bad_records: str = "inline",
    ):
        import torch

        torch.set_num_threads(torch_threads)
        self.predictor = predictor_factory()
        self.text_field = text_field
        self.fmt = fmt
        self.bad_records = bad_records

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        if self.fmt == "jsonl":
            records = [
                Record({}, *_parse_jsonl_line(line)) for line in batch.column("text").to_pylist()
            ]
        elif self.fmt == "text":
            records = [Record({}, {"text": line}) for line in batch.column("text").to_pylist()]
        else:
            records = [Record({}, row) for row in batch.to_pylist()]
        # Ray cannot tell a record's line: bad records always travel in the output, marked,
        # and the driver sends them where they belong.
        mode = "stop" if self.bad_records == "stop" else "inline"
        scored = score_records(self.predictor, records, self.text_field, mode)
        return pa.table({"line": scored.lines, "bad": scored.inline_bad})


def score_ray(
    predictor_factory: PredictorFactory,
    input: str | Path,
    output: str | Path,
    *,
    fmt: str | None = None,
    text_field: str = "text",
    chunk_size: int = 1024,
    overwrite: bool = False,
    actors: int = 1,
    cpus_per_actor: float = 1,
    address: str | None = None,
    encoding: str = "utf-8",
    bad_records: str = "inline",
) -> BatchSummary:
    """Score a file with Ray Data: an actor pool of ``actors`` predictors.

    Args:
        address: a Ray cluster (``auto``, ``ray://head:10001``); None starts Ray on this
            machine for the run (``RAY_ADDRESS`` is honoured as Ray always does).
        actors: fixed size of the actor pool.
        cpus_per_actor: CPUs reserved per actor (also its torch threads, rounded up).
        encoding, bad_records: as for :func:`score_local`; Ray cannot tell a bad record's
            line, so its error record says ``error`` without ``line``.

    The output is written by the driver in input order, to a temporary file renamed into
    place when complete (a killed Ray run is started again, not resumed).

    Raises:
        BatchError: Ray is not installed (it is the optional ``ray`` extra), or as
            :func:`score_local`.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise BatchError(
            "--engine ray needs Ray, which is not installed: pip install 'lepton-nlp[ray]' "
            "(or score with --engine local)."
        ) from None

    start = time.perf_counter()
    if _is_stream(input) or _is_stream(output):
        raise BatchError(
            "The Ray engine reads and writes files: pass --input FILE and --output FILE."
        )
    _check_paths(input, output, bad_records)
    input, output = Path(input), Path(output)
    fmt = detect_format(input, fmt, text_field=text_field)
    if output.exists() and not overwrite:
        raise BatchError(f"{output} already exists; pass --overwrite to replace it.")
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            # A private single-machine cluster for this run: a small object store, and
            # nothing exposed beyond this machine.
            options["object_store_memory"] = 256 * 2**20
            # The actors hold their CPUs for the whole run; reading and regrouping need one more,
            # or the pipeline waits forever for a free CPU.
            options["num_cpus"] = max(os.cpu_count() or 1, int(actors * cpus_per_actor + 0.999) + 1)
        ray.init(address=address, **options)
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        source = str(input.resolve())
        if fmt in ("jsonl", "text"):
            ds = ray.data.read_text(source, encoding=encoding).filter(
                lambda row: bool(row["text"].strip())
            )
        elif fmt == "csv":
            from pyarrow import csv as pa_csv

            ds = ray.data.read_csv(source, read_options=pa_csv.ReadOptions(encoding=encoding))
        else:
            ds = ray.data.read_parquet(source)
        # Exactly chunk_size rows per block, in order, so each actor call sees the same
        # chunk the local engine would predict together (and gives the same numbers).
        ds = ds.repartition(target_num_rows_per_block=chunk_size, strict=True)
        ds = ds.map_batches(
            _RayScorer,
            fn_constructor_kwargs={
                "predictor_factory": predictor_factory,
                "text_field": text_field,
                "fmt": fmt,
                "torch_threads": max(1, int(cpus_per_actor + 0.999)),
                "bad_records": bad_records,
            },
            batch_size=chunk_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        bad_path = None if bad_records in BAD_RECORD_MODES else Path(bad_records)
        rows = bad = 0
        examples: list[str] = []
        try:
            with open(tmp, "wb") as sink:
                bad_sink = open(bad_path, "wb") if bad_path else None  # noqa: SIM115
                try:
                    for batch in _ray_batches(ds):
                        lines = batch.column("line").to_pylist()
                        flags = batch.column("bad").to_pylist()
                        good = [
                            x for x, f in zip(lines, flags, strict=True) if not f or not bad_path
                        ]
                        sink.write("".join(good).encode("utf-8"))
                        errors = [x for x, f in zip(lines, flags, strict=True) if f]
                        if bad_sink is not None:
                            bad_sink.write("".join(errors).encode("utf-8"))
                        examples += [json.loads(x)["error"] for x in errors][: 10 - len(examples)]
                        rows += len(lines)
                        bad += len(errors)
                finally:
                    if bad_sink is not None:
                        bad_sink.close()
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        if started:
            ray.shutdown()
    progress_path(output).unlink(missing_ok=True)
    return BatchSummary(
        output,
        rows,
        0,
        time.perf_counter() - start,
        "ray",
        bad=bad,
        bad_examples=examples,
        bad_records=str(bad_path) if bad_path else bad_records,
    )


def _ray_batches(ds: Any) -> Iterator[Any]:
    """The dataset's output batches; a bad record under ``stop`` surfaces as a BatchError."""
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")
    except Exception as exc:
        cause = exc
        while cause is not None and not isinstance(cause, BatchError):
            cause = cause.__cause__ or getattr(cause, "cause", None)
        if isinstance(cause, BatchError):
            raise BatchError(str(cause)) from None
        raise


def score_file(
    predictor_factory: PredictorFactory,
    input: str | Path,
    output: str | Path,
    *,
    engine: str = "local",
    **options: Any,
) -> BatchSummary:
    """Score ``input`` into ``output`` with the named engine (``local`` or ``ray``)."""
    if engine == "local":
        return score_local(predictor_factory, input, output, **options)
    if engine == "ray":
        return score_ray(predictor_factory, input, output, **options)
    raise BatchError(f"Unknown engine {engine!r}; choose local or ray.")
