"""VectorIndex: exact search against numpy, approximate recall, exclusions, files, errors."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from lepton_nlp import __version__
from lepton_nlp.retrieval import IndexConfig, VectorIndex

DIM = 32


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """One OpenMP thread: on a busy 2-core machine spinning threads made this file 6x slower,
    and HNSW builds are deterministic with one thread (the recall floors below are measured
    so)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def clustered(n: int, seed: int, centres: int = 40, dim: int = DIM) -> np.ndarray:
    """Unit vectors from a Gaussian mixture with uneven spreads (same centres for any seed)."""
    centre_rng, rng = np.random.default_rng(1234), np.random.default_rng(seed)
    means = centre_rng.standard_normal((centres, dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    spreads = centre_rng.uniform(0.3, 0.9, centres)
    label = rng.integers(0, centres, n)
    x = means[label] + spreads[label, None] * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q @ v.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def collection() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items, queries, exact top-10 positions): 4,000 items, 100 queries of the same mixture."""
    items, queries = clustered(4000, seed=1), clustered(100, seed=2)
    return items, queries, brute_force(items, queries, 10)[0]


IVFPQ = IndexConfig(kind="ivfpq", ivf_nlist=32, ivf_nprobe=8, pq_m=8, pq_nbits=8)


# --- search -------------------------------------------------------------------------------


def test_exact_search_equals_numpy_brute_force():
    rng = np.random.default_rng(0)
    items = rng.standard_normal((500, DIM)).astype(np.float32) * 3  # not unit length
    queries = rng.standard_normal((20, DIM)).astype(np.float32)
    ids = [f"item-{i}" for i in range(500)]
    index = VectorIndex.build(ids, items)
    assert index.kind == "flat" and len(index) == 500 and index.dim == DIM
    found, scores = index.search(queries, k=7)
    order, expected = brute_force(items, queries, 7)
    assert found == [[ids[j] for j in row] for row in order]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # a single vector is one query
    assert index.search(queries[0], k=7).ids == [found[0]]
    # the caller's arrays are not normalised in place
    assert np.linalg.norm(items[0]) > 1.5


def test_auto_kind_follows_size():
    vectors = clustered(300, seed=3)
    small = IndexConfig(flat_max_items=300)
    assert VectorIndex.build(range(300), vectors, small).kind == "flat"
    assert VectorIndex.build(range(300), vectors, IndexConfig(flat_max_items=299)).kind == "hnsw"
    large_ivf = IndexConfig(flat_max_items=299, large_kind="ivfpq", ivf_nlist=4, pq_m=8, pq_nbits=4)
    assert VectorIndex.build(range(300), vectors, large_ivf).kind == "ivfpq"


def test_hnsw_recall(collection):
    items, queries, truth = collection
    index = VectorIndex.build(range(len(items)), items, IndexConfig(kind="hnsw", hnsw_m=16))
    assert index.kind == "hnsw"
    # measured 1.0 at ef_search 64 (the default) and 0.986 at 16
    assert recall(index.search(queries, 10).ids, truth) >= 0.97
    index.set_search_options(ef_search=16)
    assert recall(index.search(queries, 10).ids, truth) >= 0.9


def test_ivfpq_recall(collection):
    items, queries, truth = collection
    index = VectorIndex.build(range(len(items)), items, IVFPQ)
    # measured 0.536 (8 bytes per vector: PQ loses the order of close neighbours; random: 0.0025)
    assert recall(index.search(queries, 10).ids, truth) >= 0.5
    refined = VectorIndex.build(
        range(len(items)), items, IndexConfig(**{**vars(IVFPQ), "ivf_refine": 8})
    )
    # measured 0.998: exact vectors re-rank 80 candidates
    assert recall(refined.search(queries, 10).ids, truth) >= 0.95


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_exclude_still_returns_k(collection, kind):
    items, queries, _ = collection
    config = IVFPQ if kind == "ivfpq" else IndexConfig(kind=kind)
    index = VectorIndex.build([f"i{j}" for j in range(len(items))], items, config)
    plain = index.search(queries, 30).ids
    # each query excludes its own first 25 results and some ids that are not in the index
    exclude = [set(row[:25]) | {"unknown", "i-1"} for row in plain]
    found, scores = index.search(queries, 10, exclude=exclude)
    for row, banned, row_scores in zip(found, exclude, scores, strict=True):
        assert len(row) == 10 and not set(row) & banned
        assert row_scores == sorted(row_scores, reverse=True)
    if kind == "flat":  # exact: the next ten of the unfiltered ranking
        assert found == [row[25:35] for row in index.search(queries, 35).ids]


def test_exclude_beyond_what_is_left():
    items = clustered(50, seed=4)
    index = VectorIndex.build(range(50), items)
    found, _ = index.search(items[:2], 10, exclude=[set(range(47)), set()])
    assert sorted(found[0]) == [47, 48, 49] and len(found[1]) == 10
    assert len(index.search(items[:1], 80).ids[0]) == 50
    with pytest.raises(ValueError, match="exclude has 1 entries for 2 queries"):
        index.search(items[:2], 5, exclude=[set()])


@pytest.mark.parametrize("config", [IndexConfig(kind="flat"), IVFPQ], ids=["flat", "ivfpq"])
def test_incremental_add_equals_building_at_once(collection, config):
    items, queries, _ = collection
    ids = [f"i{j}" for j in range(len(items))]
    at_once = VectorIndex.build(ids, items, config)
    step = VectorIndex(DIM, config)
    step.train(items)  # IVF-PQ: same training sample as build's (no-op for flat)
    for begin in range(0, len(items), 700):
        step.add(ids[begin : begin + 700], items[begin : begin + 700])
    assert len(step) == len(at_once) and step.ids() == ids
    assert step.search(queries, 10) == at_once.search(queries, 10)


def test_incremental_hnsw_recall(collection):
    # faiss inserts a batch's nodes by level, so chunked graphs differ; their recall does not
    items, queries, truth = collection
    index = VectorIndex(DIM, IndexConfig(kind="hnsw", hnsw_m=16))
    for begin in range(0, len(items), 500):
        index.add(range(begin, begin + 500), items[begin : begin + 500])
    assert recall(index.search(queries, 10).ids, truth) >= 0.97


# --- ids ----------------------------------------------------------------------------------


def test_duplicate_ids_are_refused_and_nothing_is_lost():
    items = clustered(20, seed=5)
    index = VectorIndex.build([f"a{i}" for i in range(10)], items[:10])
    before = index.search(items, 5)
    with pytest.raises(
        ValueError, match=r"1 ids are already in the index, e.g. 'a3'.*replace=True"
    ):
        index.add(["b1", "a3"], items[10:12])
    with pytest.raises(ValueError, match="appear more than once in this batch, e.g. 'b1'"):
        index.add(["b1", "b1"], items[10:12])
    assert len(index) == 10 and "b1" not in index and index.search(items, 5) == before


def test_replace_and_remove():
    items = clustered(20, seed=6)
    index = VectorIndex.build(range(10), items[:10])
    index.add([3, 10], items[[15, 10]], replace=True)
    assert len(index) == 11 and index.search(items[15], 1).ids == [[3]]
    assert index.search(items[15], 1).scores[0][0] == pytest.approx(1.0, abs=1e-5)
    index.remove([3, np.int64(10)])
    assert len(index) == 9 and 3 not in index
    assert 3 not in index.search(items[15], 9).ids[0]
    with pytest.raises(KeyError, match="1 ids are not in the index, e.g. 3"):
        index.remove([3])


def test_hnsw_cannot_replace_or_remove():
    items = clustered(20, seed=7)
    index = VectorIndex.build(range(10), items[:10], IndexConfig(kind="hnsw"))
    assert not index.supports_remove
    with pytest.raises(ValueError, match="hnsw index cannot replace or remove"):
        index.add([3], items[10:11], replace=True)
    with pytest.raises(ValueError, match="hnsw index cannot remove items"):
        index.remove([3])
    assert len(index) == 10


def test_id_types():
    items = clustered(3, seed=8)
    index = VectorIndex.build([np.int32(7), "x", 9], items)
    assert index.ids() == [7, "x", 9] and isinstance(index.ids()[0], int)
    with pytest.raises(TypeError, match=r"Item ids are str or int, got 1.5"):
        index.add([1.5], items[:1])
    with pytest.raises(TypeError, match="got True"):
        index.add([True], items[:1])
    with pytest.raises(ValueError, match="Got 2 ids for 1 vectors"):
        index.add([1, 2], items[:1])


# --- files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config", [IndexConfig(), IndexConfig(kind="hnsw"), IVFPQ], ids=["flat", "hnsw", "ivfpq"]
)
def test_save_load_round_trip(tmp_path, collection, config):
    items, queries, _ = collection
    ids = [f"i{j}" for j in range(len(items))]
    index = VectorIndex.build(ids, items, config, model="all-MiniLM-L6-v2")
    folder = index.save(tmp_path / "faq-index")
    assert sorted(p.name for p in folder.iterdir()) == ["ids.json", "index.faiss", "meta.json"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kind"] == index.kind and meta["dim"] == DIM and meta["count"] == len(items)
    assert meta["metric"] == "inner_product" and meta["model"] == "all-MiniLM-L6-v2"
    assert meta["lepton_nlp_version"] == __version__ and meta["created"]
    assert meta["config"] == vars(config)
    loaded = VectorIndex.load(folder)
    assert loaded.meta() == index.meta() and loaded.ids() == ids
    assert loaded.search(queries, 10) == index.search(queries, 10)
    # it keeps growing where it stopped
    loaded.add(["new"], queries[:1])
    assert loaded.search(queries[:1], 1).ids == [["new"]]


def test_save_replaces_an_index_but_no_other_folder(tmp_path):
    items = clustered(10, seed=9)
    VectorIndex.build(range(10), items).save(tmp_path / "idx")
    VectorIndex.build(range(5), items[:5]).save(tmp_path / "idx")
    assert len(VectorIndex.load(tmp_path / "idx")) == 5
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a saved vector index"):
        VectorIndex.build(range(5), items[:5]).save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="is a file"):
        VectorIndex.build(range(5), items[:5]).save(tmp_path / "other" / "notes.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "other"]  # no temporaries left


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No vector index folder at"):
        VectorIndex.load(tmp_path / "nowhere")
    items = clustered(10, seed=10)
    folder = VectorIndex.build(range(10), items).save(tmp_path / "idx")
    (folder / "ids.json").write_text(json.dumps(list(range(9))))
    with pytest.raises(ValueError, match="holds 10 vectors, ids.json 9 ids"):
        VectorIndex.load(folder)
    (folder / "ids.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"ids.json missing"):
        VectorIndex.load(folder)
    with pytest.raises(ValueError, match="Nothing to save"):
        VectorIndex(DIM).save(tmp_path / "empty")


# --- errors -------------------------------------------------------------------------------


def test_wrong_dimension_and_bad_values():
    items = clustered(10, seed=11)
    index = VectorIndex.build(range(10), items, model="all-MiniLM-L6-v2")
    with pytest.raises(
        ValueError,
        match=r"dimension 16, but this index holds vectors of dimension 32 \(embeddings of all-MiniLM-L6-v2\)",
    ):
        index.search(np.ones((2, 16), np.float32), 3)
    with pytest.raises(ValueError, match="vectors have dimension 8"):
        index.add([20], np.ones((1, 8)))
    bad = items[:1].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add([20], bad)
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        index.search(items[:1], 0)
    assert len(index) == 10


def test_empty_index_search():
    with pytest.raises(ValueError, match="The index is empty: add items before searching"):
        VectorIndex(DIM).search(np.ones(DIM, np.float32), 5)


def test_config_errors():
    with pytest.raises(
        ValueError,
        match=r"Unknown index kind 'hnws' \(did you mean 'hnsw'\?\): valid kinds are auto, flat, hnsw, ivfpq",
    ):
        IndexConfig(kind="hnws")
    with pytest.raises(
        ValueError, match="Unknown index config key 'ef_search'.*valid keys are kind"
    ):
        IndexConfig.from_dict({"ef_search": 64})
    with pytest.raises(ValueError, match="hnsw_m must be a whole number >= 1"):
        IndexConfig(hnsw_m=0)
    with pytest.raises(ValueError, match="Unknown device 'cuda'"):
        IndexConfig(device="cuda")
    with pytest.raises(ValueError, match="pq_m=48 does not divide the dimension 32"):
        VectorIndex(DIM, IndexConfig(kind="ivfpq"))
    with pytest.raises(ValueError, match="needs at least 256 vectors to train on, got 100"):
        VectorIndex.build(
            range(100), clustered(100, seed=12), IndexConfig(kind="ivfpq", pq_m=8, ivf_nlist=4)
        )


def test_device_and_threads():
    items = clustered(10, seed=13)
    threads = faiss.omp_get_max_threads()
    try:
        index = VectorIndex.build(range(10), items, IndexConfig(device="auto", threads=1))
        assert faiss.omp_get_max_threads() == 1 and len(index.search(items, 3).ids) == 10
    finally:
        faiss.omp_set_num_threads(threads)
    if faiss.get_num_gpus() == 0:
        with pytest.raises(RuntimeError, match="device='gpu' but faiss sees no GPU"):
            VectorIndex.build(range(10), items, IndexConfig(device="gpu"))
