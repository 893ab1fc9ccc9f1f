"""The stored reference features: a save and load give back every array, written photo by photo."""
from __future__ import annotations

import numpy as np
import pytest

from knockoff.match.refstore import FEATURE_FILES, FeatureStore, StoredFeatures


def _features(seed: int, keypoints: int, colour: bool) -> StoredFeatures:
    rng = np.random.default_rng(seed)
    return StoredFeatures(
        rng.random((keypoints, 2), dtype=np.float32) * 100, rng.random(keypoints, dtype=np.float32),
        rng.integers(0, 256, (keypoints, 128), dtype=np.uint8), (120, 90), (1200, 900),
        rng.integers(0, 256, (12, 9), dtype=np.uint8), rng.integers(0, 256, (6, 5), dtype=np.uint8),
        rng.integers(0, 256, (8, 7, 3), dtype=np.uint8) if colour else None)


@pytest.mark.parametrize("layout", [
    [(3, 40, True), (7, 0, False), (11, 5, True)],  # a photo with no keypoints, one with no colour thumbnail
    [(1, 0, False)],
    [],
])
def test_save_and_load_give_back_every_array(tmp_path, layout):
    store = FeatureStore({})
    originals = {ref_id: _features(ref_id, n, colour) for ref_id, n, colour in layout}
    for ref_id, features in originals.items():
        store.put(ref_id, features)
    store.save(tmp_path)
    assert all((tmp_path / name).is_file() for name in FEATURE_FILES)
    loaded = FeatureStore.load(tmp_path, {}, set(originals))
    assert sorted(loaded.ids()) == sorted(originals)
    for ref_id, want in originals.items():
        got = loaded.get(ref_id)
        assert got is not None
        for name in ("points", "responses", "descriptors", "thumbnail", "small_gray", "colour"):
            a, b = getattr(want, name), getattr(got, name)
            assert (a is None and b is None) or np.array_equal(np.asarray(a), np.asarray(b)), name
        assert (got.work_size, got.image_size) == (want.work_size, want.image_size)


def test_a_loaded_store_saves_again_identically(tmp_path):
    store = FeatureStore({})
    for ref_id in (2, 5):
        store.put(ref_id, _features(ref_id, 30, True))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store.save(tmp_path / "a")
    FeatureStore.load(tmp_path / "a", {}, {2, 5}).save(tmp_path / "b")  # memory-mapped in, streamed out
    for name in FEATURE_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
