"""Nearest-neighbour search over embedding vectors: a faiss index keyed by item ids.

``VectorIndex`` wraps faiss (nothing here re-implements a search). Vectors are compared by
inner product after L2 normalisation, i.e. by cosine similarity. The index type follows the
collection's size unless the config names one:

- ``flat``: exact search (``IndexFlatIP``), the default up to ``flat_max_items`` vectors;
- ``hnsw``: a graph (``IndexHNSWFlat``, inner product), fast and accurate, the default above it;
  it keeps full vectors and cannot remove or replace items (faiss's HNSW has no removal);
- ``ivfpq``: inverted lists of product-quantised codes (``IndexIVFPQ``), trained on a sample,
  a fraction of the memory; optionally re-ranked with exact vectors (``ivf_refine``).

Item ids are strings or ints of the caller's; faiss sees int64 positions through
``IndexIDMap2``. ``save`` writes a self-describing folder (``index.faiss``, ``ids.json``,
``meta.json``) that ``VectorIndex.load`` checks.

    index = VectorIndex.build(["faq-1", "faq-2"], vectors, model="all-MiniLM-L6-v2")
    ids, scores = index.search(query_vectors, k=5, exclude=[{"faq-1"}, set()])
    index.save("runs/faq-index")
    index = VectorIndex.load("runs/faq-index")
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import json
import shutil
import tempfile
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from lepton_nlp import __version__

__all__ = ["DEVICES", "KINDS", "IndexConfig", "ItemId", "SearchResult", "VectorIndex"]

ItemId = str | int
KINDS = ("auto", "flat", "hnsw", "ivfpq")
DEVICES = ("cpu", "auto", "gpu")
INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "ids.json", "meta.json"
FORMAT = "lepton-nlp.vector-index.v1"
_CHUNK = 65_536  # rows normalised (copied) at a time, so a large add never copies it all


def _did_you_mean(value: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class IndexConfig:
    """How a ``VectorIndex`` is built and searched."""

    kind: str = "auto"
    """``auto``, ``flat``, ``hnsw`` or ``ivfpq``. ``auto`` decides at the first add (or
    ``build``): ``flat`` when it holds at most ``flat_max_items`` vectors, else ``large_kind``.
    An index keeps its kind as it grows; rebuild to change it."""
    flat_max_items: int = 50_000
    """Largest collection ``auto`` searches exactly."""
    large_kind: str = "hnsw"
    """What ``auto`` builds above ``flat_max_items``: ``hnsw`` or ``ivfpq``."""
    hnsw_m: int = 32
    """HNSW: neighbours per node (more: better recall, more memory, slower build)."""
    hnsw_ef_construction: int = 100
    """HNSW: candidate list size while building."""
    hnsw_ef_search: int = 64
    """HNSW: candidate list size while searching (raised to k when k is larger)."""
    ivf_nlist: int = 0
    """IVF-PQ: number of inverted lists; 0 chooses 4 * sqrt(n) from the vectors it is trained on."""
    ivf_nprobe: int = 32
    """IVF-PQ: lists visited per query."""
    pq_m: int = 48
    """IVF-PQ: sub-quantisers per vector (must divide the dimension); bytes per code at 8 bits."""
    pq_nbits: int = 8
    """IVF-PQ: bits per sub-quantiser code."""
    ivf_refine: float = 0.0
    """IVF-PQ: when > 0, keep exact vectors too (``IndexRefineFlat``) and re-rank
    ``k * ivf_refine`` candidates with them: better recall for the flat index's memory.
    Such an index cannot remove or replace items."""
    train_sample: int = 100_000
    """IVF-PQ: at most this many vectors (and at least 39 per list) train the quantisers."""
    normalize: bool = True
    """L2-normalise vectors and queries (on a copy) so that inner product is cosine. Turn off
    only for vectors that are unit length already."""
    device: str = "cpu"
    """``cpu``; ``auto`` (all GPUs faiss sees, else CPU); ``gpu`` (an error without one)."""
    threads: int = 0
    """faiss's OpenMP threads (``faiss.omp_set_num_threads``, process-wide); 0 leaves them."""
    seed: int = 0
    """Seed of the training sample."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Unknown index kind {self.kind!r}{_did_you_mean(self.kind, KINDS)}: "
                f"valid kinds are {', '.join(KINDS)}."
            )
        if self.large_kind not in ("hnsw", "ivfpq"):
            raise ValueError(f"large_kind must be 'hnsw' or 'ivfpq', not {self.large_kind!r}.")
        if self.device not in DEVICES:
            raise ValueError(
                f"Unknown device {self.device!r}: valid devices are {', '.join(DEVICES)}."
            )
        for name in (
            "flat_max_items",
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
            "ivf_nprobe",
            "pq_m",
            "pq_nbits",
            "train_sample",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}.")
        for name in ("ivf_nlist", "threads", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}.")
        if self.ivf_refine < 0:
            raise ValueError(f"ivf_refine must be >= 0 (0: off), not {self.ivf_refine!r}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IndexConfig:
        """The config from a mapping (YAML, ``meta.json``); an unknown key is an error."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in values if key not in names]
        if unknown:
            key = unknown[0]
            raise ValueError(
                f"Unknown index config key {key!r}{_did_you_mean(key, names)}: "
                f"valid keys are {', '.join(names)}."
            )
        return cls(**values)


class SearchResult(NamedTuple):
    """One row per query, best first: the item ids and their cosine scores."""

    ids: list[list[ItemId]]
    scores: list[list[float]]


class VectorIndex:
    """A faiss index of item vectors, searched by cosine similarity.

    Adding an id that is already in the index is an error unless ``replace=True`` (which HNSW
    and refined IVF-PQ indexes cannot do); a failed add leaves the index as it was.
    Searches may run from several threads at once; ``add``, ``remove`` and ``save`` need
    to be the only call running.
    """

    def __init__(
        self, dim: int, config: IndexConfig | None = None, *, model: str | None = None
    ) -> None:
        """An empty index for vectors of ``dim`` numbers.

        Args:
            dim: the vectors' dimension.
            config: how to build and search it (``IndexConfig()`` by default).
            model: name of the embedding model the vectors come from, kept in ``meta.json``.
        """
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a whole number >= 1, not {dim!r}.")
        self.config = config or IndexConfig()
        self.model = model
        self._dim = dim
        self._kind = self.config.kind if self.config.kind != "auto" else None
        self._index: Any = None  # the IndexIDMap2, on its device; made at the first add
        self._external: list[ItemId | None] = []  # faiss id -> item id (None once removed)
        self._internal: dict[ItemId, int] = {}  # item id -> faiss id
        self._lookup: np.ndarray | None = None  # _external as an array, for search
        self._on_gpu = False
        self.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        if self.config.threads:
            faiss.omp_set_num_threads(self.config.threads)
        if self._kind == "ivfpq":
            self._check_pq_m()

    @classmethod
    def build(
        cls,
        ids: Sequence[ItemId],
        vectors: np.ndarray,
        config: IndexConfig | None = None,
        *,
        model: str | None = None,
    ) -> VectorIndex:
        """An index of ``vectors`` (one row per id), its kind chosen by their number."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(
                f"vectors must be a 2-D array (items x dim), got shape {vectors.shape}."
            )
        index = cls(int(vectors.shape[1]), config, model=model)
        index.add(ids, vectors)
        return index

    # --- what it holds ----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        """``flat``, ``hnsw`` or ``ivfpq``; ``auto`` until the first add decides."""
        return self._kind or "auto"

    @property
    def supports_remove(self) -> bool:
        """Whether ``remove`` and ``add(..., replace=True)`` work on this kind."""
        return self._kind in ("flat", "ivfpq", None) and not (
            self._kind == "ivfpq" and self.config.ivf_refine
        )

    def __len__(self) -> int:
        return len(self._internal)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._internal

    def ids(self) -> list[ItemId]:
        """The item ids, in the order they were added."""
        return [i for i in self._external if i is not None]

    # --- building ---------------------------------------------------------------------------

    def train(self, vectors: np.ndarray) -> None:
        """Train an IVF-PQ index's quantisers on a sample (others need no training).

        ``add`` trains on (a sample of) its first batch by itself; call this first to add
        a large collection in chunks.
        """
        matrix = self._matrix(vectors, "training vectors")
        self._ensure_kind(len(matrix))
        if self._index is None:
            self._create(matrix)

    def add(self, ids: Sequence[ItemId], vectors: np.ndarray, *, replace: bool = False) -> None:
        """Add items: ``ids[i]`` gets ``vectors[i]``.

        Args:
            ids: one str or int per row, not already in the index unless ``replace``.
            vectors: float array (rows x dim); normalised on a copy when the config says so.
            replace: replace the vectors of ids already present (flat and IVF-PQ only).

        Raises:
            ValueError: wrong shape or dimension, non-finite values, ids repeated in the batch
                or (without ``replace``) already present, too few vectors to train IVF-PQ.
            TypeError: an id that is neither str nor int.
        """
        matrix = self._matrix(vectors, "vectors")
        keys = [_item_id(i) for i in ids]
        if len(keys) != len(matrix):
            raise ValueError(f"Got {len(keys)} ids for {len(matrix)} vectors: give one id per row.")
        if len(set(keys)) != len(keys):
            seen: set[ItemId] = set()
            repeated = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
            raise ValueError(
                f"{len(repeated)} ids appear more than once in this batch, e.g. "
                f"{_sample(repeated)}: give each item one vector."
            )
        present = [k for k in keys if k in self._internal]
        if present and not replace:
            raise ValueError(
                f"{len(present)} ids are already in the index, e.g. {_sample(present)}: pass "
                "replace=True to replace their vectors, or remove() them first."
            )
        if present and not self.supports_remove:
            raise ValueError(
                f"{len(present)} ids are already in the index, e.g. {_sample(present)}, and a "
                f"{self._describe()} index cannot replace or remove items: rebuild it, or use "
                "kind='flat' or 'ivfpq' without ivf_refine."
            )
        if not len(keys):
            return
        self._ensure_kind(len(matrix))
        if self._index is None:
            self._create(matrix)
        if present:
            self.remove(present)
        start = len(self._external)
        for begin in range(0, len(matrix), _CHUNK):
            chunk = self._prepared(matrix[begin : begin + _CHUNK])
            positions = np.arange(start + begin, start + begin + len(chunk), dtype=np.int64)
            self._index.add_with_ids(chunk, positions)
        self._external.extend(keys)
        self._internal.update((key, start + n) for n, key in enumerate(keys))
        self._lookup = None

    def remove(self, ids: Iterable[ItemId]) -> None:
        """Remove items (flat and IVF-PQ without refine; HNSW cannot)."""
        keys = [_item_id(i) for i in ids]
        missing = [k for k in keys if k not in self._internal]
        if missing:
            raise KeyError(f"{len(missing)} ids are not in the index, e.g. {_sample(missing)}.")
        if not self.supports_remove:
            raise ValueError(
                f"A {self._describe()} index cannot remove items (faiss does not support it): "
                "rebuild it without them, or use kind='flat' or 'ivfpq' without ivf_refine."
            )
        positions = np.array([self._internal.pop(k) for k in keys], dtype=np.int64)
        if self._index is not None and len(positions):
            self._index.remove_ids(positions)
        for position in positions:
            self._external[position] = None
        self._lookup = None

    # --- searching --------------------------------------------------------------------------

    def set_search_options(
        self,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
        refine: float | None = None,
    ) -> None:
        """Change the speed/recall trade-off of search (HNSW ``ef_search``; IVF-PQ ``nprobe``
        and ``refine``, the latter only on an index built with ``ivf_refine`` > 0)."""
        changes: dict[str, Any] = {}
        if ef_search is not None:
            changes["hnsw_ef_search"] = ef_search
        if nprobe is not None:
            changes["ivf_nprobe"] = nprobe
        if refine is not None:
            if self._kind == "ivfpq" and self._index is not None and not self.config.ivf_refine:
                raise ValueError(
                    "This IVF-PQ index was built without exact vectors (ivf_refine=0)."
                )
            changes["ivf_refine"] = refine
        self.config = dataclasses.replace(self.config, **changes)
        self._apply_search_options()

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        exclude: Sequence[Collection[ItemId]] | None = None,
    ) -> SearchResult:
        """The ``k`` items most similar to each query.

        Args:
            queries: float array (queries x dim), or one vector (one row of results).
            k: results per query.
            exclude: one collection of item ids per query that must not be returned (seen
                items); ids not in the index are ignored. The search fetches more and
                filters, so a row still has ``k`` items when the index holds enough others
                (for an approximate index: as many as its search reaches).

        Returns:
            ``SearchResult(ids, scores)``: per query, up to ``k`` ids and cosine scores, best
            first. A row is shorter only when fewer items can be returned.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, not {k!r}.")
        queries = np.asarray(queries)
        if queries.ndim == 1:
            queries = queries[None, :]
        matrix = self._matrix(queries, "queries")
        if not len(self):
            raise ValueError("The index is empty: add items before searching it.")
        if exclude is not None and len(exclude) != len(matrix):
            raise ValueError(
                f"exclude has {len(exclude)} entries for {len(matrix)} queries: give one "
                "collection of ids per query (an empty one where nothing is excluded)."
            )
        matrix = self._prepared(matrix)
        lookup = self._ids_array()
        if exclude is None:
            scores, positions = self._index.search(matrix, min(k, len(self)))
            return SearchResult(*_rows(lookup, positions, scores, [None] * len(matrix), k))
        banned = [
            {self._internal[i] for i in map(_item_id, row) if i in self._internal}
            for row in exclude
        ]
        ids: list[list[ItemId]] = [[] for _ in banned]
        found: list[list[float]] = [[] for _ in banned]
        todo = np.arange(len(matrix))
        fetch = min(len(self), k + max(map(len, banned), default=0))
        while len(todo):
            scores, positions = self._index.search(matrix[todo], fetch)
            row_ids, row_scores = _rows(lookup, positions, scores, [banned[q] for q in todo], k)
            again = []
            for n, query in enumerate(todo):
                ids[query], found[query] = row_ids[n], row_scores[n]
                short = len(row_ids[n]) < min(k, len(self) - len(banned[query]))
                exhausted = positions[n, -1] < 0  # the search reached no more items
                if short and not exhausted and fetch < len(self):
                    again.append(query)
            todo = np.array(again, dtype=np.int64)
            fetch = min(len(self), fetch * 2)
        return SearchResult(ids, found)

    # --- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the folder ``path``: ``index.faiss``, ``ids.json``, ``meta.json``.

        An existing index folder there is replaced (the new one is written beside it first);
        any other existing non-empty folder is refused.
        """
        if self._index is None:
            raise ValueError("Nothing to save: this index has no items yet (add some first).")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} is a file: save the index to a folder.")
        if path.exists() and any(path.iterdir()) and not (path / META_FILE).is_file():
            raise FileExistsError(
                f"{path} exists and is not a saved vector index: choose a new or empty folder."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            index = faiss.index_gpu_to_cpu(self._index) if self._on_gpu else self._index
            faiss.write_index(index, str(tmp / INDEX_FILE))
            (tmp / IDS_FILE).write_text(json.dumps(self._external), encoding="utf-8")
            (tmp / META_FILE).write_text(json.dumps(self.meta(), indent=2) + "\n", "utf-8")
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    def meta(self) -> dict[str, Any]:
        """What ``meta.json`` records."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "dim": self.dim,
            "metric": "inner_product",
            "normalized": self.config.normalize,
            "count": len(self),
            "model": self.model,
            "config": dataclasses.asdict(self.config),
            "lepton_nlp_version": __version__,
            "faiss_version": faiss.__version__,
            "created": self.created,
        }

    @classmethod
    def load(
        cls, path: str | Path, *, device: str | None = None, threads: int | None = None
    ) -> VectorIndex:
        """Read a folder written by ``save``; ``device`` and ``threads`` override its config.

        Raises:
            FileNotFoundError: no such folder, or a file of it missing.
            ValueError: files that do not agree with each other (count, dimension, format).
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(
                f"No vector index folder at {path}: VectorIndex.save(path) writes one."
            )
        missing = [n for n in (INDEX_FILE, IDS_FILE, META_FILE) if not (path / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} is not a complete vector index folder: {', '.join(missing)} missing "
                f"(a saved index has {INDEX_FILE}, {IDS_FILE} and {META_FILE})."
            )
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path / META_FILE} has format {meta.get('format')!r}; this version of "
                f"lepton-nlp reads {FORMAT!r}."
            )
        config = IndexConfig.from_dict(meta["config"])
        overrides = {"device": device, "threads": threads}
        config = dataclasses.replace(
            config, **{k: v for k, v in overrides.items() if v is not None}
        )
        external = json.loads((path / IDS_FILE).read_text(encoding="utf-8"))
        index = faiss.read_index(str(path / INDEX_FILE))
        present = [i for i in external if i is not None]
        problems = []
        if index.d != meta["dim"]:
            problems.append(f"{INDEX_FILE} holds dimension {index.d}, meta.json says {meta['dim']}")
        if not index.ntotal == len(present) == meta["count"]:
            problems.append(
                f"{INDEX_FILE} holds {index.ntotal} vectors, {IDS_FILE} {len(present)} ids, "
                f"meta.json says {meta['count']}"
            )
        if problems:
            raise ValueError(f"{path} is inconsistent: {'; '.join(problems)}. Save it again.")
        self = cls(meta["dim"], dataclasses.replace(config, kind=meta["kind"]), model=meta["model"])
        self.config = config
        self.created = meta["created"]
        self._external = external
        self._internal = {key: n for n, key in enumerate(external) if key is not None}
        self._index = self._place(index)
        self._apply_search_options()
        return self

    # --- internals --------------------------------------------------------------------------

    def _describe(self) -> str:
        return "refined IVF-PQ" if self._kind == "ivfpq" and self.config.ivf_refine else self.kind

    def _matrix(self, vectors: Any, what: str) -> np.ndarray:
        """``vectors`` as a 2-D float32 array of this index's dimension (no copy if it is one)."""
        matrix = np.asarray(vectors)
        if matrix.ndim != 2:
            raise ValueError(f"{what} must be a 2-D array (rows x dim), got shape {matrix.shape}.")
        if matrix.shape[1] != self._dim:
            source = f" (embeddings of {self.model})" if self.model else ""
            raise ValueError(
                f"{what} have dimension {matrix.shape[1]}, but this index holds vectors of "
                f"dimension {self._dim}{source}: embed them with the same model."
            )
        if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
            raise ValueError(f"{what} must be real numbers, got dtype {matrix.dtype}.")
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        for begin in range(0, len(matrix), _CHUNK):  # in chunks: no full-size boolean copy
            if not np.isfinite(matrix[begin : begin + _CHUNK]).all():
                raise ValueError(f"{what} contain NaN or infinite values.")
        return matrix

    def _prepared(self, matrix: np.ndarray) -> np.ndarray:
        """A normalised copy when the config normalises; the array itself otherwise."""
        if not self.config.normalize:
            return matrix
        matrix = matrix.copy()
        faiss.normalize_L2(matrix)
        return matrix

    def _ensure_kind(self, n: int) -> None:
        if self._kind is None:
            kind = "flat" if n <= self.config.flat_max_items else self.config.large_kind
            if kind == "ivfpq":
                self._check_pq_m()
            self._kind = kind

    def _check_pq_m(self) -> None:
        if self._dim % self.config.pq_m:
            divisors = [m for m in range(1, self._dim + 1) if self._dim % m == 0 and m <= 96]
            raise ValueError(
                f"pq_m={self.config.pq_m} does not divide the dimension {self._dim}: choose "
                f"one of {divisors[-6:]} (or another divisor)."
            )

    def _create(self, first: np.ndarray) -> None:
        """Make the faiss index for ``self._kind``, training IVF-PQ on (a sample of) ``first``."""
        c, d = self.config, self._dim
        if self._kind == "flat":
            inner = faiss.IndexFlatIP(d)
        elif self._kind == "hnsw":
            inner = faiss.IndexHNSWFlat(d, c.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = c.hnsw_ef_construction
        else:
            nlist = c.ivf_nlist or max(1, int(4 * np.sqrt(len(first))))
            needed = max(nlist, 2**c.pq_nbits)
            if len(first) < needed:
                raise ValueError(
                    f"IVF-PQ with nlist={nlist} and pq_nbits={c.pq_nbits} needs at least "
                    f"{needed} vectors to train on, got {len(first)}: add more at once, call "
                    "train() with a larger sample, or use kind='flat' or 'hnsw'."
                )
            quantizer = faiss.IndexFlatIP(d)
            inner = faiss.IndexIVFPQ(
                quantizer, d, nlist, c.pq_m, c.pq_nbits, faiss.METRIC_INNER_PRODUCT
            )
            if c.ivf_refine:
                inner = faiss.IndexRefineFlat(inner)
            size = min(len(first), max(c.train_sample, 39 * nlist))
            rows = np.random.default_rng(c.seed).choice(len(first), size, replace=False)
            sample = self._prepared(first[np.sort(rows)])
            inner.train(sample)
        self._index = self._place(faiss.IndexIDMap2(inner))
        self._apply_search_options()

    def _apply_search_options(self) -> None:
        if self._index is None:
            return
        c = self.config
        if self._on_gpu:  # only flat and IVF-PQ move (no refine on GPU); untested here
            if self._kind == "ivfpq":
                faiss.GpuParameterSpace().set_index_parameter(self._index, "nprobe", c.ivf_nprobe)
            return
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = c.hnsw_ef_search
        elif self._kind == "ivfpq":
            if isinstance(inner, faiss.IndexRefine):
                inner.k_factor = float(c.ivf_refine) or 1.0
            faiss.extract_index_ivf(self._index).nprobe = c.ivf_nprobe

    def _place(self, index: Any) -> Any:
        """Move ``index`` to all GPUs when the config asks and faiss sees some.

        Not exercised by the tests (they run on CPU with faiss-cpu). faiss has no GPU HNSW, so
        an HNSW index stays on CPU.
        """
        if self.config.device == "cpu":
            return index
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        reason = (
            "faiss sees no GPU (faiss-cpu is installed, or no device is visible)"
            if not gpus
            else "faiss has no GPU HNSW"
            if self._kind == "hnsw"
            else None
        )
        if reason is None:
            try:
                moved = faiss.index_cpu_to_all_gpus(index)
                self._on_gpu = True
                return moved
            except RuntimeError as error:
                reason = f"faiss could not move it: {error}"
        if self.config.device == "gpu":
            raise RuntimeError(f"device='gpu' but {reason}: use device='auto' or 'cpu'.")
        if gpus:
            warnings.warn(f"Vector index kept on CPU: {reason}.", stacklevel=3)
        return index

    def _ids_array(self) -> np.ndarray:
        if self._lookup is None:
            self._lookup = np.empty(len(self._external), dtype=object)
            self._lookup[:] = self._external
        return self._lookup


def _item_id(value: Any) -> ItemId:
    if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
        raise TypeError(f"Item ids are str or int, got {value!r} ({type(value).__name__}).")
    return int(value) if isinstance(value, np.integer) else value


def _sample(values: Sequence[Any], n: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (", ..." if len(values) > n else "")


def _rows(
    lookup: np.ndarray,
    positions: np.ndarray,
    scores: np.ndarray,
    banned: Sequence[set[int] | None],
    k: int,
) -> tuple[list[list[ItemId]], list[list[float]]]:
    """faiss's (scores, positions) rows as item ids and floats, without -1s and banned ones."""
    ids_out, scores_out = [], []
    for row, (pos, sc) in enumerate(zip(positions, scores, strict=True)):
        keep = pos >= 0
        if banned[row]:
            keep &= ~np.isin(pos, list(banned[row]))
        pos, sc = pos[keep][:k], sc[keep][:k]
        ids_out.append(lookup[pos].tolist())
        scores_out.append(sc.tolist())
    return ids_out, scores_out
