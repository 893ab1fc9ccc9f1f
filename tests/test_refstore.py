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


def _saved_store(folder, ids=(2, 5, 9)):
    store = FeatureStore({})
    for ref_id in ids:
        store.put(ref_id, _features(ref_id, 4 + ref_id, True))
    store.save(folder)
    return {ref_id: _features(ref_id, 4 + ref_id, True) for ref_id in ids}


@pytest.mark.parametrize("known", [{2, 5, 9}, np.array([2, 5, 9, 11])])
def test_a_table_out_of_id_order_is_still_looked_up_right(tmp_path, known):
    originals = _saved_store(tmp_path)
    table = np.load(tmp_path / FEATURE_FILES[0])
    np.save(tmp_path / FEATURE_FILES[0], table[[2, 0, 1]])  # rows not in id order: still consistent
    loaded = FeatureStore.load(tmp_path, {}, known)
    assert loaded.ids() == [2, 5, 9] and len(loaded) == 3 and 5 in loaded and 6 not in loaded
    for ref_id, want in originals.items():
        assert np.array_equal(loaded.get(ref_id).descriptors, want.descriptors)


@pytest.mark.parametrize("ids, known, problem", [
    ([2, 2, 9], {2, 9}, "reference ids repeated"),
    ([9, 2, 9], {2, 9}, "reference ids repeated"),
    ([2, 5, 9], {2, 9}, "unknown to the index"),
])
def test_bad_reference_ids_in_the_table_are_refused(tmp_path, ids, known, problem):
    from knockoff.errors import IndexCorruptError

    _saved_store(tmp_path)
    table = np.load(tmp_path / FEATURE_FILES[0])
    table[:, 0] = ids
    np.save(tmp_path / FEATURE_FILES[0], table)
    with pytest.raises(IndexCorruptError, match=problem):
        FeatureStore.load(tmp_path, {}, known)


def test_loaded_photos_removed_or_replaced_since(tmp_path):
    originals = _saved_store(tmp_path)
    loaded = FeatureStore.load(tmp_path, {}, set(originals))
    replacement = _features(77, 3, False)
    loaded.discard(5)
    loaded.discard(5)
    loaded.put(9, replacement)
    loaded.put(12, replacement)
    assert loaded.ids() == [2, 9, 12] and len(loaded) == 3 and 5 not in loaded and loaded.get(5) is None
    assert loaded.get(9) is replacement and np.array_equal(loaded.get(2).descriptors, originals[2].descriptors)
    loaded.discard(9)
    assert loaded.ids() == [2, 12] and len(loaded) == 2


@pytest.mark.parametrize("ids, distinct", [
    ([], True), ([4], True), ([1, 2, 3], True), ([3, 1, 2], True), ([1, 1], False), ([3, 1, 3], False),
    ([5, 4, 3, 2, 1, 5], False), ([-1, 0, -1], False),
])
def test_all_distinct(ids, distinct):
    from knockoff.match.refstore import all_distinct

    assert all_distinct(np.array(ids, np.int64)) is distinct
