"""Issue 15: the keypoint shortlist is part of the index: built with it, saved, checksummed, loaded (not trained
again), kept in step by add and remove; an index saved without one still works (built in memory, logged)."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
from PIL import Image

from knockoff import Catalog, Detector, Listing, Policy, ReferenceIndex, build_index
from knockoff.decide.policy import ShortlistSettings
from knockoff.errors import ConfigError, IndexCorruptError
from knockoff.match import keypoints
from knockoff.match.keypoints import SHORTLIST_FILE, SHORTLIST_REFS, IndexPlan, ShortlistParams
from knockoff.match.manifest import sha256
from knockoff.match.verify import GeometricVerifier, opencv_available

pytestmark = pytest.mark.skipif(not opencv_available(), reason="OpenCV is not installed")

#: tiny thresholds, so that four photos of 300 descriptors make a product-quantized (IVF-PQ) shortlist
SMALL_PQ = ShortlistParams(per_reference=300, flat_limit=100, compress_above=100, pq_bytes=32)
SMALL_POLICY = Policy(shortlist=ShortlistSettings(per_reference=300, flat_limit=100, compress_above=100))


def _rotated(catalog_dir, name="acme/tote_front.png", angle=15):
    """A rotated copy (found by the vote; the photos are too small for the verifier to prove it) or, with
    ``angle`` 0, a plain copy (proven)."""
    with Image.open(catalog_dir / name) as image:
        return image.convert("RGB").rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")


def _top(index, image):
    votes = index.keypoint_shortlist.vote(GeometricVerifier()._listing_features(image), top=3)
    return votes[0][0] if votes else None


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the shortlist was trained again")

    monkeypatch.setattr(keypoints, "_faiss_index", refuse)


@pytest.fixture
def built(catalog_dir):
    return build_index(Catalog.from_dir(catalog_dir), "perceptual", shortlist=SMALL_PQ)


@pytest.mark.parametrize("params, kind", [(None, "flat"), (SMALL_PQ, "ivfpq"),
                                          (ShortlistParams(per_reference=300, flat_limit=100), "ivf")])
def test_build_stores_the_shortlist_under_the_checksums(catalog_dir, tmp_path, params, kind):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual", shortlist=params)
    root = index.save(tmp_path / "i")
    manifest = json.loads((root / "manifest.json").read_text())
    entry = manifest["shortlist"]
    assert entry["plan"]["kind"] == kind and entry["references"] == 4
    assert entry["params"] == vars(params or ShortlistParams())
    assert 4 <= entry["descriptors"] <= 4 * entry["params"]["per_reference"]
    assert {SHORTLIST_FILE, SHORTLIST_REFS} <= set(manifest["checksums"])
    refs = np.load(root / SHORTLIST_REFS)
    assert sorted(refs[:, 0].tolist()) == sorted(index.references) and refs[:, 1].sum() == entry["descriptors"]


@pytest.mark.parametrize("mmap", [False, True])
def test_load_uses_the_stored_shortlist_without_training(built, catalog_dir, tmp_path, monkeypatch, caplog, mmap):
    root = built.save(tmp_path / "i")
    tote = built.references.find("acme", "tote")[0]
    _no_training(monkeypatch)
    loaded = ReferenceIndex.load(root, mmap=mmap)
    assert loaded.keypoint_shortlist.index_plan.kind == "ivfpq"
    assert _top(loaded, _rotated(catalog_dir)) == tote
    with caplog.at_level(logging.WARNING):
        verdict = Detector(loaded, SMALL_POLICY).check(Listing([_save(_rotated(catalog_dir, angle=0), tmp_path)],
                                                               seller="shop123"))  # votes: trained, it fails
    assert verdict.verdict == "suspect" and verdict.match.product_id == "tote"
    assert not any("built in memory" in r.message for r in caplog.records)
    if mmap:  # a mapped shortlist is saved as a copy of its file
        again = ReferenceIndex.load(loaded.save(tmp_path / "copy"))
        assert sha256(tmp_path / "copy" / SHORTLIST_FILE) == sha256(root / SHORTLIST_FILE)
        assert _top(again, _rotated(catalog_dir)) == tote


def _save(image, tmp_path, name="listing.jpg"):
    image.save(tmp_path / name, quality=85)
    return tmp_path / name


def test_pickled_index_ships_its_shortlist(built, catalog_dir, tmp_path, monkeypatch):
    mapped = ReferenceIndex.load(built.save(tmp_path / "i"), mmap=True)
    _no_training(monkeypatch)
    for index in (built, mapped):
        copy = ReferenceIndex.from_state(pickle.loads(pickle.dumps(index.to_state())), index.embedder)
        assert copy.keypoint_shortlist.descriptor_count == index.keypoint_shortlist.descriptor_count
        assert _top(copy, _rotated(catalog_dir)) == built.references.find("acme", "tote")[0]


@pytest.mark.parametrize("params", [None, SMALL_PQ])
def test_add_and_remove_keep_the_shortlist_in_step(catalog_dir, tmp_path, params):
    catalog = Catalog.from_dir(catalog_dir)
    index = build_index(catalog, "perceptual", shortlist=params)
    tote = index.references.find("acme", "tote")
    before = index.keypoint_shortlist.descriptor_count
    assert _top(index, _rotated(catalog_dir)) == tote[0]
    index.remove_product("acme", "tote")
    assert not set(tote) & set(index.keypoint_shortlist.references()[:, 0].tolist())
    assert _top(index, _rotated(catalog_dir)) not in tote
    loaded = ReferenceIndex.load(index.save(tmp_path / "i"))
    entry = json.loads((tmp_path / "i" / "manifest.json").read_text())["shortlist"]
    assert entry["references"] == 2 and entry["descriptors"] < before
    assert loaded.keypoint_shortlist.descriptor_count == entry["descriptors"]
    loaded.add([catalog.references[0]])
    (new_id,) = loaded.references.find("acme", "tote")
    assert _top(loaded, _rotated(catalog_dir)) == new_id
    again = ReferenceIndex.load(loaded.save(tmp_path / "i"))
    assert again.keypoint_shortlist.descriptor_count == loaded.keypoint_shortlist.descriptor_count
    assert _top(again, _rotated(catalog_dir)) == new_id


def _rechecksum(root):
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["checksums"] = {n: sha256(root / n) for n in manifest["checksums"]}
    (root / "manifest.json").write_text(json.dumps(manifest))


def _flip_byte(path, offset=-20):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_shortlist_file_fails_its_checksum(built, tmp_path):
    root = built.save(tmp_path / "i")
    _flip_byte(root / SHORTLIST_FILE)
    with pytest.raises(IndexCorruptError, match=f"{SHORTLIST_FILE} is damaged") as info:
        ReferenceIndex.load(root)
    assert str(root) in str(info.value)


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / SHORTLIST_FILE).write_bytes((root / SHORTLIST_FILE).read_bytes()[:100]),
     "cannot read the keypoint shortlist"),
    (lambda root: np.save(root / SHORTLIST_REFS, np.load(root / SHORTLIST_REFS)[:1]), "damaged"),
    (lambda root: np.save(root / SHORTLIST_REFS, np.load(root / SHORTLIST_REFS) + [[100, 0]]), "lacks"),
    (lambda root: _edit(root, lambda e: e.update(descriptors=e["descriptors"] + 1)), "the manifest says"),
    (lambda root: _edit(root, lambda e: e["plan"].update(kind="flat")), "not the flat index"),
    (lambda root: _edit(root, lambda e: e["plan"].update(kind="hnsw")), "not a shortlist plan"),
    (lambda root: _edit(root, lambda e: e["params"].update(pq_bytes=0)), "pq_bytes"),
    (lambda root: _edit(root, lambda e: e.pop("params")), "shortlist parameters"),
])
def test_a_shortlist_that_disagrees_with_the_manifest_is_refused(built, tmp_path, damage, message):
    root = built.save(tmp_path / "i")
    damage(root)
    _rechecksum(root)
    with pytest.raises(IndexCorruptError, match=message):
        ReferenceIndex.load(root)


def _edit(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest["shortlist"])
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_saved_without_a_shortlist_builds_one_in_memory_and_says_so(built, catalog_dir, tmp_path, caplog):
    root = built.save(tmp_path / "i")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["shortlist"]
    for name in (SHORTLIST_FILE, SHORTLIST_REFS):
        del manifest["checksums"][name]
        (root / name).unlink()
    (root / "manifest.json").write_text(json.dumps(manifest))
    old = ReferenceIndex.load(root)
    assert old.keypoint_shortlist is None
    photo = _save(_rotated(catalog_dir, angle=0), tmp_path)
    # (stop_at_copy off: a plain copy is proven by the global shortlist, and the vote would not run)
    with caplog.at_level(logging.WARNING):
        verdict = Detector(old, Policy(shortlist=ShortlistSettings(stop_at_copy=False))).check(
            Listing([photo], seller="shop123"))
    assert verdict.verdict == "suspect"
    assert any("built in memory" in r.message and "saved before" in r.message for r in caplog.records)
    resaved = ReferenceIndex.load(old.save(tmp_path / "j"))  # saving it again stores one
    assert resaved.keypoint_shortlist is not None and (tmp_path / "j" / SHORTLIST_FILE).is_file()


def test_a_policy_with_other_build_settings_gets_a_shortlist_in_memory(built, catalog_dir, tmp_path, caplog):
    photo = _save(_rotated(catalog_dir, angle=0), tmp_path)
    with caplog.at_level(logging.WARNING):
        verdict = Detector(built, Policy(shortlist=ShortlistSettings(per_reference=200, stop_at_copy=False))).check(
            Listing([photo], seller="shop123"))
    assert verdict.verdict == "suspect"
    assert any("built in memory" in r.message and "differ" in r.message for r in caplog.records)


def test_the_cli_builds_the_shortlist_with_the_policy(catalog_dir, tmp_path):
    from knockoff.cli.app import main

    (tmp_path / "p.json").write_text(json.dumps({"shortlist": {"per_reference": 300, "flat_limit": 100}}))
    assert main(["index", "build", str(catalog_dir), "--out", str(tmp_path / "i"), "--engine", "perceptual",
                 "--policy", str(tmp_path / "p.json")]) == 0
    entry = json.loads((tmp_path / "i" / "manifest.json").read_text())["shortlist"]
    assert entry["params"]["per_reference"] == 300 and entry["plan"]["kind"] == "ivf"


@pytest.mark.parametrize("data", [
    {"kind": "flat", "descriptors": 0, "nlist": 0, "nprobe": 0, "pq_bytes": 0, "train_size": 0},
    {"kind": "ivfpq", "descriptors": 9, "nlist": 256, "nprobe": 16, "pq_bytes": 32, "train_size": 9},
])
def test_plan_round_trips(data):  # (plans written before the graph fields: those read as their defaults)
    assert {k: v for k, v in vars(IndexPlan.from_dict(data)).items() if k in data} == data


@pytest.mark.parametrize("data", [
    None, {"kind": "flat"}, {"kind": "hnsw", "descriptors": 0, "nlist": 0, "nprobe": 0, "pq_bytes": 0, "train_size": 0},
    {"kind": "ivf", "descriptors": 9, "nlist": 0, "nprobe": 16, "pq_bytes": 0, "train_size": 9},
    {"kind": "ivfpq", "descriptors": 9, "nlist": 256, "nprobe": 16, "pq_bytes": 0, "train_size": 9},
    {"kind": "flat", "descriptors": -1, "nlist": 0, "nprobe": 0, "pq_bytes": 0, "train_size": 0},
    {"kind": "flat", "descriptors": True, "nlist": 0, "nprobe": 0, "pq_bytes": 0, "train_size": 0},
])
def test_bad_plans_are_refused(data):
    with pytest.raises(ConfigError, match="not a shortlist plan"):
        IndexPlan.from_dict(data)


@pytest.mark.parametrize("field, value", [("per_reference", 0), ("flat_limit", 1.5), ("compress_above", True),
                                          ("pq_bytes", 129)])
def test_bad_shortlist_params_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        ShortlistParams(**{field: value})


def test_policy_defaults_build_the_stored_shortlist_defaults():
    # an index built without a policy must match a detector with the default policy (no rebuild in memory)
    from knockoff.decide.policy import ShortlistSettings

    assert ShortlistSettings().build_params() == ShortlistParams()
