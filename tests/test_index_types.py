"""Index types (flat, hnsw, ivfpq) against a numpy brute force on seeded clustered vectors."""

import json
import pickle

import numpy as np
import pytest

from knockoff import Catalog, ReferenceIndex, build_index, create_embedder
from knockoff.catalog.readers import ReferenceImage
from knockoff.errors import IndexCorruptError, KnockoffError
from knockoff.match.index import AUTO_FLAT_LIMIT, choose_index_type, resolve_index_params

DIM_SIZE = 4  # test-pixels:4 has 48 dimensions
SMALL_IVF = {"nlist": 32, "m": 24, "nbits": 8, "nprobe": 8, "train_size": 3000}
TYPES = {"flat": {}, "hnsw": {}, "ivfpq": SMALL_IVF}
RECALL_FLOOR = {"flat": 1.0, "hnsw": 0.93, "ivfpq": 0.7}  # measured: 1.0, 0.97-0.99, 0.78-0.86


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """FAISS's OpenMP threads spin badly on a busy shared machine (ivfpq training went from 2 s to 140 s)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, dim: int, seed: int, clusters: int = 40) -> np.ndarray:
    """Unit vectors around a few random centres (closer to real embeddings than uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_index(index_type: str, n_refs: int = 3000, views: int = 1, seed: int = 0, params=None):
    embedder = create_embedder(f"test-pixels:{DIM_SIZE}")
    index = ReferenceIndex(embedder, index_type=index_type, params=TYPES[index_type] if params is None else params)
    vectors = clustered(n_refs * views, embedder.dim, seed).reshape(n_refs, views, embedder.dim)
    refs = [ReferenceImage("B", f"p{i % 97}", "P", f"/x/{i}.png") for i in range(n_refs)]
    for start in range(0, n_refs, 700):  # built in batches
        stop = min(start + 700, n_refs)
        index.add_vectors_batch(refs[start:stop], vectors[start:stop].reshape(-1, embedder.dim), [views] * (stop - start))
    return index, vectors


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    per_ref = np.einsum("rvd,qd->qrv", vectors, queries).max(axis=2)  # best view per reference
    top = np.argsort(-per_ref, axis=1)[:, :k]
    return top, np.take_along_axis(per_ref, top, axis=1)


def recall(index: ReferenceIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    expected, _ = brute_force(vectors, queries, k)
    found = index.search(queries, k)
    return float(np.mean([len({h.reference_id for h in hits} & set(exp.tolist())) / k
                          for hits, exp in zip(found, expected)]))


@pytest.mark.parametrize("views", [1, 3])
@pytest.mark.parametrize("index_type", list(TYPES))
def test_recall_against_brute_force(index_type, views):
    index, vectors = make_index(index_type, views=views)
    queries = clustered(60, index.embedder.dim, seed=7)
    assert index.index_type == index_type and index.vector_count == vectors.shape[0] * views
    assert recall(index, vectors, queries) >= RECALL_FLOOR[index_type]
    results = index.search(queries, 10)
    for hits in results:  # one hit per reference image, most similar first
        ids = [h.reference_id for h in hits]
        assert len(ids) == len(set(ids)) == 10
        assert all(a.similarity >= b.similarity - 1e-6 for a, b in zip(hits, hits[1:]))
    if index_type == "flat":
        expected, sims = brute_force(vectors, queries, 10)
        for q, hits in enumerate(results):
            assert [h.reference_id for h in hits] == expected[q].tolist()
            np.testing.assert_allclose([h.similarity for h in hits], sims[q], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("index_type", list(TYPES))
def test_save_load_roundtrip_keeps_type_params_and_results(index_type, tmp_path):
    index, _ = make_index(index_type, n_refs=2000)
    if index_type != "flat":
        index.set_search_params(**{"hnsw": {"efSearch": 80}, "ivfpq": {"nprobe": 12}}[index_type])
    queries = clustered(20, index.embedder.dim, seed=3)
    before = [[(h.reference_id, h.similarity) for h in hits] for hits in index.search(queries, 5)]
    out = index.save(tmp_path / "i")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["index_type"] == index_type and manifest["index_params"] == index.params
    for mmap in (False, True):
        loaded = ReferenceIndex.load(out, mmap=mmap)
        assert loaded.index_type == index_type and loaded.params == index.params and loaded.read_only == mmap
        after = [[(h.reference_id, h.similarity) for h in hits] for hits in loaded.search(queries, 5)]
        assert after == before
    state = {**index.__getstate__(), "embedder": None}  # how an index travels to Ray actors
    copy = ReferenceIndex._from_state(pickle.loads(pickle.dumps(state)), index.embedder)
    assert [[(h.reference_id, h.similarity) for h in hits] for hits in copy.search(queries, 5)] == before


@pytest.mark.parametrize("index_type", list(TYPES))
def test_mmap_index_is_read_only(index_type, tmp_path):
    index, vectors = make_index(index_type, n_refs=1600)
    loaded = ReferenceIndex.load(index.save(tmp_path / "i"), mmap=True)
    with pytest.raises(KnockoffError, match="memory-mapped"):
        loaded.add_vectors(ReferenceImage("B", "new", "P", "/x/new.png"), vectors[0])
    with pytest.raises(KnockoffError, match="mmap=False"):
        loaded.remove_product("B", "p1")
    assert loaded.remove_product("B", "no-such-product") == 0
    assert len(ReferenceIndex.load(loaded.save(tmp_path / "copy"))) == 1600  # a mapped index can still be saved


@pytest.mark.parametrize("index_type", list(TYPES))
def test_remove_product_in_place_or_by_rebuild(index_type, tmp_path):
    index, vectors = make_index(index_type, n_refs=2000, views=2)
    gone = {r for r, ref in index.references.items() if ref.product_id == "p5"}
    assert index.remove_product("b", "p5") == len(gone) > 0
    assert len(index) == 2000 - len(gone) and index.vector_count == 2 * len(index)
    queries = vectors[sorted(gone), 0]  # each removed image's own vector: it must not come back
    keep = np.array([r not in gone for r in range(2000)])
    kept_vectors = vectors[keep]
    kept_ids = np.flatnonzero(keep)
    for hits in index.search(queries, 10):
        assert not {h.reference_id for h in hits} & gone
    others = clustered(30, index.embedder.dim, seed=11)
    expected, _ = brute_force(kept_vectors, others, 10)
    found = index.search(others, 10)
    got = np.mean([len({h.reference_id for h in hits} & set(kept_ids[e].tolist())) / 10 for hits, e in zip(found, expected)])
    assert got >= RECALL_FLOOR[index_type]
    loaded = ReferenceIndex.load(index.save(tmp_path / "i"))
    assert loaded.vector_count == index.vector_count and len(loaded) == len(index)


def test_ivfpq_buffers_then_trains_with_bounded_memory():
    embedder = create_embedder(f"test-pixels:{DIM_SIZE}")
    index = ReferenceIndex(embedder, index_type="ivfpq", params=SMALL_IVF)
    vectors = clustered(4000, embedder.dim, seed=1)
    refs = [ReferenceImage("B", f"p{i}", "P", f"/x/{i}.png") for i in range(4000)]
    peak = 0
    for start in range(0, 4000, 400):
        index.add_vectors_batch(refs[start : start + 400], vectors[start : start + 400])
        peak = max(peak, index._pending_count)
        assert index.is_trained == (start + 400 >= SMALL_IVF["train_size"])
    assert peak < SMALL_IVF["train_size"] and index._pending_count == 0
    assert index.vector_count == 4000 and recall(index, vectors[:, None, :], vectors[:50]) >= 0.6


def test_ivfpq_explicit_training_and_too_few_vectors():
    embedder = create_embedder(f"test-pixels:{DIM_SIZE}")
    trained = ReferenceIndex(embedder, index_type="ivfpq", params=SMALL_IVF)
    trained.train(clustered(3000, embedder.dim, seed=2))
    trained.add_vectors(ReferenceImage("B", "p", "P", "/x/p.png"), clustered(1, embedder.dim, seed=3))
    assert trained.is_trained and trained._pending_count == 0 and trained.vector_count == 1
    with pytest.raises(ValueError, match="already trained"):
        trained.train(clustered(3000, embedder.dim, seed=2))

    tiny = ReferenceIndex(embedder, index_type="ivfpq", params=SMALL_IVF)
    tiny.add_vectors(ReferenceImage("B", "p", "P", "/x/p.png"), clustered(3, embedder.dim, seed=4))
    with pytest.raises(KnockoffError, match="needs at least 256 training vectors"):
        tiny.search(clustered(1, embedder.dim, seed=5))


def test_auto_picks_flat_below_a_million_then_by_memory(catalog_dir, tmp_path):
    assert choose_index_type(AUTO_FLAT_LIMIT - 1, 512) == "flat"
    assert choose_index_type(2_000_000, 256) == "hnsw"
    assert choose_index_type(2_000_000, 256, memory_budget=1 << 30) == "ivfpq"
    assert resolve_index_params("auto", 48, {"expected_vectors": 5_000_000, "memory_budget": 1 << 30})[0] == "ivfpq"
    _, params = resolve_index_params("ivfpq", 512, {}, expected_vectors=1_000_000)
    assert params["nlist"] == 4096 and params["m"] == 64 and params["train_size"] >= 40 * 4096
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    assert index.index_type == "flat"
    manifest = json.loads((index.save(tmp_path / "i") / "manifest.json").read_text())
    assert manifest["index_type"] == "flat" and manifest["index_params"] == {}


@pytest.mark.parametrize(("index_type", "params", "message"), [
    ("annoy", {}, "unknown index type 'annoy'"),
    ("hnsw", {"nprobe": 4}, "unknown parameter.*nprobe.*valid: M, efConstruction, efSearch"),
    ("hnsw", {"M": 0}, "M must be >= 1"),
    ("ivfpq", {"m": 5}, "must divide the dimension 48"),
    ("ivfpq", {"nbits": 20}, "nbits must be in 1..16"),
    ("flat", {"M": 8}, "valid: none"),
])
def test_bad_types_and_params_are_value_errors(index_type, params, message):
    with pytest.raises(ValueError, match=message):
        ReferenceIndex(create_embedder("test-pixels:4"), index_type=index_type, params=params)


def test_set_search_params_checks_names():
    index, _ = make_index("hnsw", n_refs=50)
    with pytest.raises(ValueError, match="not a search parameter"):
        index.set_search_params(nprobe=3)
    index.set_search_params(efSearch=200)
    assert index.params["efSearch"] == 200


def test_manifest_type_disagreeing_with_the_file_is_corrupt(tmp_path):
    index, _ = make_index("flat", n_refs=50)
    out = index.save(tmp_path / "i")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["index_type"], manifest["index_params"] = "hnsw", {}
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="not a hnsw index"):
        ReferenceIndex.load(out)


def _products_found(index: ReferenceIndex, queries: np.ndarray, k: int = 10) -> list[set[str]]:
    return [{f"{h.reference.brand}/{h.reference.product_id}" for h in hits} for hits in index.search(queries, k)]


@pytest.mark.parametrize("index_type", list(TYPES))
def test_add_then_remove_a_brand_matches_a_fresh_build(index_type, tmp_path):
    """A brand added to a built index and removed again leaves what a fresh build of the rest finds (hnsw and
    ivfpq within their approximation: their graph or lists differ), without rebuilding the hnsw graph."""
    fresh, vectors = make_index(index_type, n_refs=1500)
    changed, _ = make_index(index_type, n_refs=1500)
    graph = changed._faiss if index_type == "hnsw" else None
    extra = clustered(200, changed.embedder.dim, seed=5)
    changed.add_vectors_batch([ReferenceImage("Other", f"o{i % 20}", "O", f"/o/{i}.png") for i in range(200)], extra)
    queries = np.concatenate([clustered(40, changed.embedder.dim, seed=9), extra[:20]])
    assert any("Other" in {p.split("/")[0] for p in found} for found in _products_found(changed, queries))
    assert changed.remove_brand("other") == 200 and changed.remove_brand("other") == 0
    assert len(changed) == 1500 and changed.vector_count == 1500
    assert changed._faiss is graph or index_type != "hnsw"  # hnsw: the same graph, the brand only skipped
    reloaded = ReferenceIndex.load(changed.save(tmp_path / "i"))
    expected = _products_found(fresh, queries)
    floor = {"flat": 1.0, "hnsw": 0.9, "ivfpq": 0.7}[index_type]
    for index in (changed, reloaded):
        found = _products_found(index, queries)
        assert all(not any(p.startswith("Other/") for p in f) for f in found)
        overlap = np.mean([len(f & e) / len(e) for f, e in zip(found, expected)])
        assert overlap >= floor, overlap
    if index_type == "hnsw":
        assert len(reloaded._tombstones) == 200
        reloaded.compact()
        assert len(reloaded._tombstones) == 0 and reloaded._faiss.ntotal == 1500
        found = _products_found(reloaded, queries)
        assert np.mean([len(f & e) / len(e) for f, e in zip(found, expected)]) >= floor


@pytest.mark.parametrize("damage", ["count", "file", "foreign-id"])
def test_damaged_hnsw_removals_are_a_clear_error(tmp_path, damage):
    index, _ = make_index("hnsw", n_refs=300)
    index.remove_product("B", "p3")
    saved = index.save(tmp_path / "i")
    manifest = json.loads((saved / "manifest.json").read_text())
    if damage == "count":
        manifest["hnsw_removed"] += 1
    elif damage == "file":
        (saved / "hnsw_removed.npy").write_bytes(b"not numpy")
        manifest["checksums"].pop("hnsw_removed.npy")
    else:
        np.save(saved / "hnsw_removed.npy", np.load(saved / "hnsw_removed.npy") + (10**6 << 8))
        manifest["checksums"].pop("hnsw_removed.npy")
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="hnsw_removed"):
        ReferenceIndex.load(saved)
