import json
import os
import shutil

import numpy as np
import pytest

from knockoff import Catalog, ReferenceIndex, build_index, create_embedder
from knockoff.catalog.readers import ReferenceImage
from knockoff.errors import IndexCorruptError, IndexMismatchError


def _random_index(n_refs: int, dim_size: int = 4, seed: int = 0, views: int = 1):
    rng = np.random.default_rng(seed)
    embedder = create_embedder(f"test-pixels:{dim_size}")
    index = ReferenceIndex(embedder)
    vectors = rng.normal(size=(n_refs, views, embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    for i in range(n_refs):
        index.add_vectors(ReferenceImage("B", f"p{i % 7}", "P", f"/x/{i}.png"), vectors[i])
    return index, vectors


@pytest.mark.parametrize("views", [1, 3])
def test_search_matches_numpy_brute_force(views):
    index, vectors = _random_index(200, views=views)
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(25, index.embedder.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    per_ref = np.einsum("rvd,qd->qrv", vectors, queries).max(axis=2)  # best view per reference
    expected = np.argsort(-per_ref, axis=1)[:, :10]
    results = index.search(queries, k=10)
    for q, hits in enumerate(results):
        assert [h.reference_id for h in hits] == expected[q].tolist()
        np.testing.assert_allclose([h.similarity for h in hits], per_ref[q, expected[q]], rtol=1e-5, atol=1e-5)


def test_empty_index_and_small_k():
    index, _ = _random_index(0)
    assert index.search(np.ones((2, index.embedder.dim), np.float32), k=3) == [[], []]
    index, _ = _random_index(2)
    assert len(index.search(np.ones((1, index.embedder.dim), np.float32), k=5)[0]) == 2


def test_build_save_load_roundtrip(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    assert len(index) == 4 and index.brand("acme").authorized_sellers == ("acme_store", "bestbags")
    out = index.save(tmp_path / "brand.index")
    assert sorted(os.listdir(out)) == ["brands.json", "features_descriptors.npy", "features_keypoints.npy",
                                       "features_pixels.npy", "features_table.npy", "index.faiss", "manifest.json",
                                       "references_price.npy", "references_rows.npy", "references_text.npy",
                                       "shortlist.faiss", "shortlist_refs.npy"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == "test-pixels:8" and manifest["count"]["references"] == 4
    loaded = ReferenceIndex.load(out)
    query = index.embedder.embed([__import__("knockoff").load_image(catalog_dir / "acme/wallet.png")])
    assert loaded.search(query, 1)[0][0].reference.product_id == "wallet"
    assert loaded.search(query, 4)[0][0].similarity == pytest.approx(1.0, abs=1e-5)


def test_add_and_remove_product(catalog_dir, tmp_path):
    catalog = Catalog.from_dir(catalog_dir)
    index = build_index(catalog, "test-pixels")
    assert index.remove_product("acme", "tote") == 2
    assert len(index) == 2 and index.vector_count == 2
    assert index.remove_product("acme", "tote") == 0
    index.add([r for r in catalog.references if r.product_id == "tote"])
    assert len(index) == 4
    loaded = ReferenceIndex.load(index.save(tmp_path / "i"))
    loaded.add([catalog.references[0]])
    assert len({*loaded.references}) == 5  # ids stay unique after reload


def test_unreadable_reference_is_skipped(catalog_dir):
    (catalog_dir / "acme/wallet.png").write_bytes(b"broken")
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    assert len(index) == 3
    assert "wallet.png" in str(index.skipped[0])


def test_mismatched_embedder_says_which_two(catalog_dir, tmp_path):
    out = build_index(Catalog.from_dir(catalog_dir), "test-pixels").save(tmp_path / "i")
    with pytest.raises(IndexMismatchError) as info:
        ReferenceIndex.load(out, embedder="test-pixels:4")
    assert "test-pixels:8" in str(info.value) and "test-pixels:4" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate-faiss", "edit-refs", "drop-manifest", "bad-json", "old-format"])
def test_damaged_index_is_a_clear_error(catalog_dir, tmp_path, damage):
    out = build_index(Catalog.from_dir(catalog_dir), "test-pixels").save(tmp_path / "i")
    if damage == "truncate-faiss":
        data = (out / "index.faiss").read_bytes()
        (out / "index.faiss").write_bytes(data[:100])
    elif damage == "edit-refs":
        (out / "references_rows.npy").write_bytes(b"{}\n")
    elif damage == "drop-manifest":
        (out / "manifest.json").unlink()
    elif damage == "bad-json":
        (out / "manifest.json").write_text("{not json")
    else:
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["format_version"] = 99
        (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError) as info:
        ReferenceIndex.load(out)
    assert str(out) in str(info.value)


def test_save_is_atomic_over_a_previous_index(catalog_dir, tmp_path, monkeypatch):
    catalog = Catalog.from_dir(catalog_dir)
    target = build_index(catalog, "test-pixels").save(tmp_path / "i")
    bigger = build_index(catalog, "test-pixels")
    bigger.add([catalog.references[0]])

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("knockoff.match.index._file_checksum", crash)
    with pytest.raises(OSError):
        bigger.save(target)
    monkeypatch.undo()
    assert len(ReferenceIndex.load(target)) == 4  # the previous index is intact

    # a crash between the two renames leaves the previous index aside; load finds it
    previous = target.with_name(f".{target.name}.previous")
    shutil.move(target, previous)
    assert len(ReferenceIndex.load(target)) == 4
