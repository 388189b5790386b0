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

import datetime as _dt
import decimal
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ENGINES",
    "FORMATS",
    "BatchError",
    "BatchSummary",
    "detect_format",
    "iter_chunks",
    "score_file",
    "score_local",
    "score_ray",
]

ENGINES = ("local", "ray")
FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

PredictorFactory = Callable[[], Any]
"""A picklable zero-argument callable returning an object with ``.predict(list) -> list[dict]``
(``functools.partial(Predictor.from_artifact, path)``); the Ray engine calls it in each actor."""


class BatchError(ValueError):
    """Input or output that cannot be scored as asked; the message says how to fix it."""


@dataclass
class BatchSummary:
    """What a batch run did."""

    output: Path
    rows: int
    """Rows in the output when the run finished."""
    resumed_from: int
    """Rows already in the output when this run started (0 for a fresh run)."""
    seconds: float
    engine: str


def detect_format(path: str | Path, given: str | None = None) -> str:
    """The input format: ``given``, else from the file suffix."""
    if given:
        if given not in FORMATS:
            raise BatchError(f"Unknown input format {given!r}; choose one of {', '.join(FORMATS)}.")
        return given
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise BatchError(
            f"Cannot tell the format of {path} from its suffix {suffix!r}; name it .jsonl, .csv or "
            "\n.parquet, or pass --format."
        )
    return _SUFFIXES[suffix]


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _parse_jsonl_line(line: str, where: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BatchError(f"{where}: not valid JSON ({exc.msg}).") from None
    if not isinstance(row, dict):
        raise BatchError(
            f'{where}: expected a JSON object such as {{"text": ...}}, got {line[:80]!r}.'
        )
    return row


def _jsonl_rows(path: Path, skip: int) -> Iterator[dict]:
    seen = 0
    with open(path, "rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BatchError(
                    f"{path} line {line_no} is not valid UTF-8 (byte {raw[exc.start : exc.start + 1]!r} "
                    f"at column {exc.start + 1}); convert the file to UTF-8 first."
                ) from None
            if not line.strip():
                continue
            seen += 1
            if seen <= skip:
                continue
            yield _parse_jsonl_line(line, f"{path} line {line_no}")


def _arrow_rows(batches: Iterator[Any], skip: int) -> Iterator[dict]:
    for batch in batches:
        if skip >= batch.num_rows:
            skip -= batch.num_rows  # skipped without turning the rows into Python objects
            continue
        if skip:
            batch = batch.slice(skip)
            skip = 0
        yield from batch.to_pylist()


def _rows(path: Path, fmt: str, skip: int) -> Iterator[dict]:
    if fmt == "jsonl":
        return _jsonl_rows(path, skip)
    import pyarrow as pa

    try:
        if fmt == "csv":
            from pyarrow import csv

            batches = csv.open_csv(path)
        else:
            from pyarrow import parquet

            batches = parquet.ParquetFile(path).iter_batches(batch_size=4096)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BatchError(f"Cannot read {path} as {fmt}: {exc}") from None
    return _arrow_rows(batches, skip)


def iter_chunks(path: str | Path, fmt: str, chunk_size: int, skip: int = 0) -> Iterator[list[dict]]:
    """Rows of the input in chunks of ``chunk_size`` (the last may be shorter), after ``skip`` rows.

    Blank JSONL lines are not rows. Memory holds one chunk (plus one Arrow record batch).
    """
    import pyarrow as pa

    chunk: list[dict] = []
    rows = _rows(Path(path), fmt, skip)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise BatchError(f"Cannot read {path} as {fmt}: {exc}") from None
        chunk.append(row)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _model_input(row: dict, text_field: str, row_no: int) -> dict:
    if text_field != "text":
        if text_field not in row:
            raise BatchError(
                f"Row {row_no} has no field {text_field!r} (--text-field); its fields: "
                f"{', '.join(map(str, row)) or 'none'}."
            )
        row = {**row, "text": row[text_field]}
    return row


def score_rows(
    predictor: Any, rows: list[dict], text_field: str = "text", first_row: int = 1
) -> list[str]:
    """Predict ``rows`` with one ``predict`` call; one JSON line (with newline) per row.

    Raises:
        BatchError: a row the predictor refuses, named by its number (1-based, blank lines
            not counted).
    """
    items = [_model_input(row, text_field, first_row + i) for i, row in enumerate(rows)]
    try:
        predictions = predictor.predict(items)
    except ValueError as exc:
        raise BatchError(f"{_locate_bad_row(predictor, items, first_row)}{exc}") from None
    lines = []
    for item, prediction in zip(items, predictions, strict=True):
        extra = {k: v for k, v in item.items() if k not in prediction and k != "tokens"}
        lines.append(
            json.dumps({**extra, **prediction}, ensure_ascii=False, default=_json_default) + "\n"
        )
    return lines


def _locate_bad_row(predictor: Any, items: list[dict], first_row: int) -> str:
    prepare = getattr(getattr(predictor, "task", None), "prepare_input", None)
    if prepare is None:
        return f"rows {first_row}-{first_row + len(items) - 1}: "
    for i, item in enumerate(items):
        try:
            prepare(item)
        except ValueError:
            return f"row {first_row + i}: "
    return f"rows {first_row}-{first_row + len(items) - 1}: "


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


def _check_paths(input: Path, output: Path) -> None:
    if not input.is_file():
        raise BatchError(f"Input file {input} does not exist.")
    if output.resolve() == input.resolve():
        raise BatchError("The output file must not be the input file.")
    if output.suffix.lower() in (".csv", ".parquet", ".pq"):
        raise BatchError(f"Predictions are written as JSONL; name the output {output.stem}.jsonl.")


def score_local(
    predictor_factory: PredictorFactory,
    input: str | Path,
    output: str | Path,
    *,
    fmt: str | None = None,
    text_field: str = "text",
    chunk_size: int = 1024,
    overwrite: bool = False,
    model_id: str = "",
    on_chunk: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Score a file on this machine, streaming, resuming a run that was interrupted.

    Args:
        predictor_factory: builds the predictor (called once, after the checks).
        input: JSONL, CSV or Parquet file.
        output: JSONL file to write.
        fmt: input format (default: from the suffix).
        text_field: the field holding the text, copied to ``text`` for the model.
        chunk_size: rows per ``predict`` call and per fsync.
        overwrite: replace an existing output (and forget any progress) instead of resuming.
        model_id: names the model in the progress file, so a resume with another model is refused.
        on_chunk: called with the number of rows done after each chunk.

    Raises:
        BatchError: missing input, unreadable rows, an output that exists without a
            progress file (pass ``overwrite``), or progress from a different input or settings.
    """
    start = time.perf_counter()
    input, output = Path(input), Path(output)
    _check_paths(input, output)
    fmt = detect_format(input, fmt)
    if chunk_size < 1:
        raise BatchError(f"chunk_size must be at least 1, got {chunk_size}.")
    stat = input.stat()
    identity = {
        "input": str(input.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "format": fmt,
        "text_field": text_field,
        "chunk_size": chunk_size,
        "model": model_id,
    }
    sidecar = progress_path(output)
    rows_done = bytes_done = 0
    if sidecar.exists() and not overwrite:
        state = json.loads(sidecar.read_text(encoding="utf-8"))
        changed = [k for k, v in identity.items() if state.get("identity", {}).get(k) != v]
        if changed:
            raise BatchError(
                f"{output} holds a partial run with different {', '.join(changed)}; resume it with "
                "the same input and options, or pass --overwrite to start over."
            )
        rows_done, bytes_done = state["rows"], state["bytes"]
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
        _write_progress(sidecar, {"identity": identity, "rows": 0, "bytes": 0})
    resumed_from = rows_done
    predictor = predictor_factory()
    with open(output, "r+b") as sink:
        # Whatever follows the recorded size is a chunk that was written but never recorded.
        sink.truncate(bytes_done)
        sink.seek(bytes_done)
        for chunk in iter_chunks(input, fmt, chunk_size, skip=rows_done):
            data = "".join(score_rows(predictor, chunk, text_field, rows_done + 1)).encode("utf-8")
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
            rows_done += len(chunk)
            bytes_done += len(data)
            _write_progress(sidecar, {"identity": identity, "rows": rows_done, "bytes": bytes_done})
            if on_chunk is not None:
                on_chunk(rows_done)
    sidecar.unlink(missing_ok=True)
    return BatchSummary(output, rows_done, resumed_from, time.perf_counter() - start, "local")


class _RayScorer:
    """A Ray Data actor: one predictor, called on chunks of rows."""

    def __init__(
        self, predictor_factory: PredictorFactory, text_field: str, fmt: str, torch_threads: int
    ):
        import torch

        torch.set_num_threads(torch_threads)
        self.predictor = predictor_factory()
        self.text_field = text_field
        self.fmt = fmt

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        if self.fmt == "jsonl":
            rows = [_parse_jsonl_line(line, "input") for line in batch.column("text").to_pylist()]
        else:
            rows = batch.to_pylist()
        return pa.table({"line": score_rows(self.predictor, rows, self.text_field)})


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
) -> BatchSummary:
    """Score a file with Ray Data: an actor pool of ``actors`` predictors.

    Args:
        address: a Ray cluster (``auto``, ``ray://head:10001``); None starts Ray on this
            machine for the run (``RAY_ADDRESS`` is honoured as Ray always does).
        actors: fixed size of the actor pool.
        cpus_per_actor: CPUs reserved per actor (also its torch threads, rounded up).

    The output is written by the driver in input order, to a temporary file renamed into
    place when complete (a killed Ray run is started again, not resumed).
    """
    import ray
    import ray.data

    start = time.perf_counter()
    input, output = Path(input), Path(output)
    _check_paths(input, output)
    fmt = detect_format(input, fmt)
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
        if fmt == "jsonl":
            ds = ray.data.read_text(source).filter(lambda row: bool(row["text"].strip()))
        elif fmt == "csv":
            ds = ray.data.read_csv(source)
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
            },
            batch_size=chunk_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        rows = 0
        try:
            with open(tmp, "wb") as sink:
                for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    lines = batch.column("line").to_pylist()
                    sink.write("".join(lines).encode("utf-8"))
                    rows += len(lines)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        if started:
            ray.shutdown()
    progress_path(output).unlink(missing_ok=True)
    return BatchSummary(output, rows, 0, time.perf_counter() - start, "ray")


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
