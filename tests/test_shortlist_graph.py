"""Issue 15: from ``hnsw_from`` inverted lists up, the keypoint shortlist's lists are found by two-level k-means and
searched through an HNSW graph (the build at 10^6 reference photos); the plan says so in the manifest, older
manifests (without those fields) still load as they were built."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from knockoff import Catalog, Detector, Listing, Policy, ReferenceIndex, build_index
from knockoff.decide.policy import ShortlistSettings
from knockoff.errors import ConfigError, IndexCorruptError
from knockoff.match import keypoints
from knockoff.match.keypoints import SHORTLIST_FILE, IndexPlan, ShortlistParams, plan
from knockoff.match.verify import GeometricVerifier, opencv_available

#: four photos of up to 300 descriptors: 256 lists, over the graph when it starts at 256
SMALL_GRAPH = ShortlistParams(per_reference=300, flat_limit=100, compress_above=100, hnsw_from=256)
SMALL_FLAT = ShortlistParams(per_reference=300, flat_limit=100, compress_above=100)
OLD_PLAN = {"kind": "ivfpq", "descriptors": 9, "nlist": 256, "nprobe": 16, "pq_bytes": 32, "train_size": 9}
needs_opencv = pytest.mark.skipif(not opencv_available(), reason="OpenCV is not installed")


@pytest.mark.parametrize("descriptors, hnsw_from, nlist, graph", [
    (5_000_000, 8192, 8192, True), (50_000_000, 8192, 16_384, True), (50_000_000, 32_768, 16_384, False),
    (1_000_000, 8192, 4096, False), (1_000_000, 4096, 4096, True), (1_000, 1, 0, False),
])
def test_the_plan_puts_a_graph_over_many_lists(descriptors, hnsw_from, nlist, graph):
    p = plan(descriptors, flat_limit=65_536, hnsw_from=hnsw_from)
    assert p.nlist == nlist
    assert (p.quantizer_m, p.quantizer_ef, p.train_levels) == ((16, 16, 2) if graph else (0, 0, 1))
    assert IndexPlan.from_dict(vars(p)) == p


def test_plans_and_params_of_older_manifests_read_with_their_defaults():
    old = IndexPlan.from_dict(dict(OLD_PLAN))
    assert (old.quantizer_m, old.quantizer_ef, old.train_levels) == (0, 0, 1)
    params = {"per_reference": 50, "flat_limit": 65_536, "compress_above": 2_500_000, "pq_bytes": 32}
    assert ShortlistParams.from_dict(params) == ShortlistParams(per_reference=50)


@pytest.mark.parametrize("change", [
    {"train_levels": 3}, {"train_levels": 0}, {"quantizer_m": 16, "quantizer_ef": 0}, {"quantizer_m": -1},
    {"quantizer_m": True, "quantizer_ef": 16}, {"colour": 1},
    {"kind": "flat", "nlist": 0, "nprobe": 0, "pq_bytes": 0, "quantizer_m": 16, "quantizer_ef": 16},
])
def test_bad_graph_fields_are_refused(change):
    with pytest.raises(ConfigError, match="not a shortlist plan"):
        IndexPlan.from_dict({**OLD_PLAN, **change})


def test_bad_hnsw_from_is_refused():
    with pytest.raises(ConfigError, match="hnsw_from"):
        ShortlistParams(hnsw_from=0)


def _blobs(groups: int, per_group: int, per_blob: int, seed: int = 0) -> np.ndarray:
    """Points around ``groups * per_group`` centres that lie in ``groups`` far-apart groups."""
    rng = np.random.default_rng(seed)
    group = rng.random((groups, 16)) * 1000
    centre = np.repeat(group, per_group, axis=0) + rng.random((groups * per_group, 16)) * 100
    return (np.repeat(centre, per_blob, axis=0) + rng.normal(0, 0.5, (len(centre) * per_blob, 16))).astype(np.float32)


def _spread(vectors: np.ndarray, centroids: np.ndarray) -> float:
    """Mean squared distance of the vectors to their nearest centroid (what k-means makes small)."""
    return float(((vectors[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2).min(axis=1).mean())


def test_two_level_kmeans_is_as_tight_as_kmeans_and_repeatable():
    import faiss

    vectors = _blobs(8, 8, 40)
    found = keypoints._two_level_kmeans(vectors, 64)
    assert found.shape == (64, 16) and found.dtype == np.float32
    plain = faiss.Kmeans(16, 64, niter=25, seed=1234)
    plain.train(vectors)
    picked = vectors[np.random.default_rng(1).choice(len(vectors), 64, replace=False)]
    assert _spread(vectors, found) <= 1.25 * _spread(vectors, plain.centroids)
    assert _spread(vectors, found) <= 0.5 * _spread(vectors, picked)
    assert np.array_equal(found, keypoints._two_level_kmeans(vectors, 64))


def test_two_level_kmeans_with_about_as_many_centroids_as_vectors():
    vectors = _blobs(2, 5, 7)
    found = keypoints._two_level_kmeans(vectors, 64)
    assert found.shape == (64, 16) and np.isfinite(found).all()


def _rotated(catalog_dir, angle=15):
    with Image.open(catalog_dir / "acme/tote_front.png") as image:
        return image.convert("RGB").rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")


def _top(index, image):
    votes = index.keypoint_shortlist.vote(GeometricVerifier()._listing_features(image), top=3)
    return votes[0][0] if votes else None


@needs_opencv
@pytest.mark.parametrize("mmap", [False, True])
def test_a_graph_quantized_shortlist_is_saved_loaded_and_votes(catalog_dir, tmp_path, monkeypatch, mmap):
    import faiss

    index = build_index(Catalog.from_dir(catalog_dir), "perceptual", shortlist=SMALL_GRAPH)
    entry = json.loads((index.save(tmp_path / "i") / "manifest.json").read_text())["shortlist"]
    assert (entry["plan"]["quantizer_m"], entry["plan"]["train_levels"], entry["params"]["hnsw_from"]) == (16, 2, 256)
    monkeypatch.setattr(keypoints, "_faiss_index", lambda *a: pytest.fail("trained again"))
    loaded = ReferenceIndex.load(tmp_path / "i", mmap=mmap)
    quantizer = faiss.downcast_index(loaded.keypoint_shortlist._index.quantizer)
    assert isinstance(quantizer, faiss.IndexHNSWFlat) and quantizer.ntotal == entry["plan"]["nlist"]
    tote = index.references.find("acme", "tote")[0]
    assert _top(index, _rotated(catalog_dir)) == tote == _top(loaded, _rotated(catalog_dir))


@needs_opencv
def test_the_graph_build_is_repeatable(catalog_dir, tmp_path):
    catalog = Catalog.from_dir(catalog_dir)
    for name in ("a", "b"):
        build_index(catalog, "perceptual", shortlist=SMALL_GRAPH).save(tmp_path / name)
    assert (tmp_path / "a" / SHORTLIST_FILE).read_bytes() == (tmp_path / "b" / SHORTLIST_FILE).read_bytes()


def _edit_shortlist(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest["shortlist"])
    (root / "manifest.json").write_text(json.dumps(manifest))


@needs_opencv
@pytest.mark.parametrize("params, claim", [(SMALL_GRAPH, {"quantizer_m": 0, "quantizer_ef": 0}),
                                           (SMALL_FLAT, {"quantizer_m": 16, "quantizer_ef": 16}),
                                           (SMALL_GRAPH, {"quantizer_m": 32})])
def test_a_plan_that_misnames_the_quantizer_is_refused(catalog_dir, tmp_path, params, claim):
    root = build_index(Catalog.from_dir(catalog_dir), "perceptual", shortlist=params).save(tmp_path / "i")
    _edit_shortlist(root, lambda e: e["plan"].update(claim))
    with pytest.raises(IndexCorruptError, match="coarse quantizer"):
        ReferenceIndex.load(root)


@needs_opencv
def test_an_index_saved_before_the_graph_fields_loads_as_built(catalog_dir, tmp_path, caplog):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual", shortlist=SMALL_FLAT)
    root = index.save(tmp_path / "i")

    def strip(entry):
        for name in ("quantizer_m", "quantizer_ef", "train_levels"):
            del entry["plan"][name]
        del entry["params"]["hnsw_from"]

    _edit_shortlist(root, strip)
    loaded = ReferenceIndex.load(root)
    shortlist = loaded.keypoint_shortlist
    assert shortlist.index_plan == index.keypoint_shortlist.index_plan and shortlist.params == SMALL_FLAT
    assert _top(loaded, _rotated(catalog_dir)) == index.references.find("acme", "tote")[0]
    policy = Policy(shortlist=ShortlistSettings(per_reference=300, flat_limit=100, compress_above=100,
                                                stop_at_copy=False))
    photo = tmp_path / "copy.jpg"
    _rotated(catalog_dir, angle=0).save(photo, quality=85)
    with caplog.at_level(logging.WARNING):
        verdict = Detector(loaded, policy).check(Listing([photo], seller="shop123"))
    assert verdict.verdict == "suspect"
    assert not any("built in memory" in r.message for r in caplog.records)  # the stored shortlist is used
