"""Files uploaded through the page: sized up before anything is parsed, then trained on.

A page can only embed so many item texts while someone waits (MiniLM on 2 CPU cores: about
100 texts a second), so :func:`count_rows` reads the row count first (lines of CSV/JSONL,
Parquet's metadata) and :func:`train_upload` refuses a catalogue above ``max_items`` with
the command that trains it offline, before parsing a million rows.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from apps.recommender.errors import RecommenderError
from apps.recommender.tables import FORMATS

__all__ = ["MAX_PAGE_ITEMS", "count_rows", "train_upload"]

#: Most catalogue items the page trains on (larger catalogues: ``lepton-rec train``).
MAX_PAGE_ITEMS = 5_000


def count_rows(name: str, data: bytes) -> int:
    """Rows in an uploaded file, without parsing it.

    Raises:
        RecommenderError: an extension the recommender does not read, or a broken Parquet file.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise RecommenderError(
            f"{name}: the recommender reads {', '.join(FORMATS)} files, not {suffix or 'this'}."
        )
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)
        except Exception as error:  # pyarrow raises several kinds for a broken file
            raise RecommenderError(f"{name} is not a readable Parquet file ({error}).") from None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if suffix == ".json":
        return data.count(b"{")  # an upper bound: objects in the list
    return max(lines - (1 if suffix in (".csv", ".tsv") else 0), 0)


def train_upload(
    catalogue: tuple[str, bytes],
    events: tuple[str, bytes] | None,
    out: Path,
    *,
    embedder: Any = None,
    max_items: int = MAX_PAGE_ITEMS,
) -> Path:
    """Train on uploaded files into ``out``: the hybrid with events, content alone without.

    Args:
        catalogue: (file name, bytes) of the items.
        events: (file name, bytes) of the events, or None.
        out: the folder to write (replaced).
        embedder: the sentence embedder (default MiniLM).
        max_items: the largest catalogue trained here.

    Raises:
        RecommenderError: too many items (saying how to train them offline), an empty or
            unreadable file, bad events (as :func:`~apps.recommender.service.train_recommender`).
    """
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.interactions import load_interactions
    from apps.recommender.service import train_recommender

    name, data = catalogue
    rows = count_rows(name, data)
    if rows > max_items:
        raise RecommenderError(
            f"{name} holds about {rows:,} items; the page trains on at most {max_items:,} "
            "(embedding them takes about a minute here). Train it offline: lepton-rec train "
            f"--catalogue {name} --events EVENTS --out FOLDER, then start the suite with "
            "LEPTON_REC_MODEL=FOLDER."
        )
    with tempfile.TemporaryDirectory() as tmp:
        catalogue_path = Path(tmp) / f"catalogue{Path(name).suffix.lower()}"
        catalogue_path.write_bytes(data)
        items = load_catalogue(catalogue_path)
        interactions = None
        if events is not None:
            count_rows(*events)  # the extension check
            events_path = Path(tmp) / f"events{Path(events[0]).suffix.lower()}"
            events_path.write_bytes(events[1])
            interactions = load_interactions(events_path)
        return train_recommender(
            items,
            interactions,
            out,
            model="hybrid" if interactions is not None else "content",
            config={"cf_config": {"factors": 16}} if interactions is not None else None,
            embedder=embedder,
            overwrite=True,
        )
