"""Issue 12, items 1, 16 and 18: where an index may be written, a self-contained index, a tampered index."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from knockoff import Catalog, Detector, Listing, ReferenceIndex, build_index
from knockoff.cli.app import main
from knockoff.errors import IndexCorruptError, IndexPathError
from knockoff.match.manifest import checksum_matches, file_checksum, sha256, xxh3_128
from knockoff.match.verify import GeometricVerifier, VerifierSettings, opencv_available

from conftest import write_csv

needs_cv = pytest.mark.skipif(not opencv_available(), reason="OpenCV is not installed")


@pytest.fixture
def saved(catalog_dir, tmp_path):
    return build_index(Catalog.from_dir(catalog_dir), "test-pixels").save(tmp_path / "brand.index")


# -- item 1: --out must be a new folder or an existing index -----------------------------------------


def test_cli_refuses_an_existing_folder_and_deletes_nothing(catalog_dir, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["index", "build", str(catalog_dir), "--out", str(folder), "--engine", "test-pixels"]) == 2
    assert (folder / "notes.txt").read_text() == "keep me"
    assert str(folder) in capsys.readouterr().err


def test_cli_refuses_the_catalog_folder_itself(catalog_dir, capsys):
    before = sorted(p.name for p in catalog_dir.rglob("*"))
    assert main(["index", "build", str(catalog_dir), "--out", str(catalog_dir), "--engine", "test-pixels"]) == 2
    assert sorted(p.name for p in catalog_dir.rglob("*")) == before
    assert "not a knockoff index" in capsys.readouterr().err


def test_cli_refuses_a_file(catalog_dir, tmp_path, capsys):
    file = tmp_path / "index.txt"
    file.write_text("x")
    assert main(["index", "build", str(catalog_dir), "--out", str(file), "--engine", "test-pixels"]) == 2
    assert file.read_text() == "x" and "not a folder" in capsys.readouterr().err


def test_cli_replaces_an_existing_index_and_fills_an_empty_folder(catalog_dir, tmp_path, saved):
    assert main(["index", "build", str(catalog_dir), "--out", str(saved), "--engine", "test-pixels"]) == 0
    assert len(ReferenceIndex.load(saved)) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["index", "build", str(catalog_dir), "--out", str(empty), "--engine", "test-pixels"]) == 0


def test_cli_checks_out_before_building(catalog_dir, tmp_path, monkeypatch):
    import knockoff.match.index as module

    def boom(*a, **k):
        raise AssertionError("built before checking --out")

    monkeypatch.setattr(module, "build_index", boom)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    assert main(["index", "build", str(catalog_dir), "--out", str(folder), "--engine", "test-pixels"]) == 2


def test_save_refuses_an_index_folder_holding_other_files(saved):
    (saved / "my-notes.txt").write_text("keep")
    index = ReferenceIndex.load(saved)
    with pytest.raises(IndexPathError, match="my-notes.txt"):
        index.save(saved)
    assert (saved / "my-notes.txt").exists()


def test_stale_staging_of_a_dead_process_is_removed(catalog_dir, tmp_path, saved):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".brand.index.saving-{pid}"
    stale.mkdir()
    (stale / "index.faiss").write_bytes(b"half")
    alive = tmp_path / f".brand.index.saving-{os.getppid()}"  # a live process: left alone
    alive.mkdir()
    other = tmp_path / f".other.saving-{pid}"  # another index's: left alone
    other.mkdir()
    ReferenceIndex.load(saved).save(saved)
    assert not stale.exists() and alive.exists() and other.exists()


# -- item 16: the index is self-contained ------------------------------------------------------------


def _rich_image(seed: int, size: int = 400) -> Image.Image:
    """Many small shapes: enough keypoints for the geometric proof."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(3, 25, 2))
        draw.ellipse((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


@needs_cv
def test_moved_catalog_gives_the_same_verdicts(tmp_path, caplog):
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    for i in range(3):
        _rich_image(i).save(catalog_dir / f"r{i}.png")
    write_csv(catalog_dir / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["Acme", "", "acme_store"]])
    write_csv(catalog_dir / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", f"p{i}", f"P{i}", f"r{i}.png", "399", "USD"] for i in range(3)])
    index_dir = build_index(Catalog.from_dir(catalog_dir), "perceptual").save(tmp_path / "brand.index")
    listings = []
    for name, edit in (("rotated", lambda im: im.rotate(15, expand=True, fillcolor=(255, 255, 255))),
                       ("cropped", lambda im: im.crop((50, 50, 300, 330)))):
        edit(Image.open(catalog_dir / "r0.png")).save(tmp_path / f"{name}.jpg", quality=85)
        listings.append(Listing([tmp_path / f"{name}.jpg"], title="Acme", price=45, currency="USD", seller="s1"))
    before = [v.to_dict() for v in _check_all(Detector(ReferenceIndex.load(index_dir)), listings)]
    assert [(v["verdict"], v["match"]["product_id"], v["match"]["verification"]["verified"]) for v in before] \
        == [("suspect", "p0", True)] * 2

    shutil.move(catalog_dir, tmp_path / "catalog-moved-away")
    copied = shutil.copytree(index_dir, tmp_path / "elsewhere" / "copied.index")
    with caplog.at_level(logging.WARNING):
        after = [v.to_dict() for v in _check_all(Detector(ReferenceIndex.load(copied)), listings)]
    assert after == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@needs_cv
def test_stored_features_equal_computed_ones(catalog_dir, tmp_path):
    catalog = Catalog.from_dir(catalog_dir)
    index = ReferenceIndex.load(build_index(catalog, "test-pixels").save(tmp_path / "i"))
    ref_id, ref = next(iter(index.references.items()))
    stored = index.reference_features(ref_id)
    computed = GeometricVerifier().features(Image.open(ref.image).convert("RGB"))
    assert np.array_equal(stored.points, computed.points) and stored.work_size == computed.work_size
    assert np.abs(stored.descriptors - computed.descriptors).max() <= 0.5 / 512 + 1e-6
    assert np.array_equal(index.reference_thumbnail(ref_id), computed.thumbnail)
    assert index.reference_features(ref_id, VerifierSettings(max_side=256)) is None  # other settings: compute
    vectors = index.reference_vectors(ref_id)
    views = index.embedder.embed(index.embedder.reference_views(Image.open(ref.image).convert("RGB")))
    assert np.allclose(vectors, views, atol=1e-6)


@needs_cv
def test_features_follow_remove_and_add(catalog_dir, tmp_path):
    catalog = Catalog.from_dir(catalog_dir)
    index = build_index(catalog, "test-pixels")
    index.remove_product("acme", "tote")
    loaded = ReferenceIndex.load(index.save(tmp_path / "i"))
    assert json.loads((tmp_path / "i" / "manifest.json").read_text())["features"]["count"] == 2
    loaded.add([catalog.references[0]])
    again = ReferenceIndex.load(loaded.save(tmp_path / "i"))
    assert all(again.reference_features(r) is not None for r in again.references)


@needs_cv
def test_features_travel_with_a_pickled_index(catalog_dir):
    import pickle

    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    copy = pickle.loads(pickle.dumps(index))
    assert np.array_equal(copy.reference_features(0).descriptors, index.reference_features(0).descriptors)


# -- item 18: a tampered index gives a clear error ---------------------------------------------------


def _edit_manifest(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _rechecksum(root):
    _edit_manifest(root, lambda m: m["checksums"].update({n: sha256(root / n) for n in m["checksums"]}))


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.update(embedder="perceptual"), "'embedder' must be an object"),
    (lambda m: m.update(count={}), "'count' must be an object"),
    (lambda m: m.update(count={"references": "4", "vectors": 4}), "'count'"),
    (lambda m: m.update(dim=-1), "'dim'"),
    (lambda m: m.update(checksums=[]), "'checksums' must be an object"),
    (lambda m: m["checksums"].pop("index.faiss"), "lacks index.faiss"),
    (lambda m: m["checksums"].update({"../../etc/passwd": "0" * 64}), "not a file of the index"),
    (lambda m: m["checksums"].update({"index.faiss": "md5:" + "0" * 32}), "neither an XXH3-128 nor a SHA-256"),
    (lambda m: m["checksums"].update({"index.faiss": "xxh3-128:" + "0" * 31}), "neither an XXH3-128 nor a SHA-256"),
    (lambda m: m.update(index_type=["flat"]), "'index_type'"),
    (lambda m: m.update(features=5), "'features'"),
    (lambda m: m.update(format_version=True), "format version"),
])
def test_manifest_shapes_are_validated(saved, change, problem):
    _edit_manifest(saved, change)
    with pytest.raises(IndexCorruptError, match=problem) as info:
        ReferenceIndex.load(saved)
    assert str(saved) in str(info.value)


def test_deeply_nested_manifest(saved):
    (saved / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IndexCorruptError, match="nested too deeply|damaged"):
        ReferenceIndex.load(saved)


def test_checksums_are_xxh3_and_a_damaged_file_is_named(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    assert all(value.startswith("xxh3-128:") for value in manifest["checksums"].values())
    with (saved / "references_price.npy").open("r+b") as handle:  # one byte flipped, the size unchanged
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(IndexCorruptError, match="references_price.npy is damaged"):
        ReferenceIndex.load(saved)


def test_a_manifest_with_sha256_checksums_still_loads(saved):
    _rechecksum(saved)  # writes SHA-256 hex, as manifests did before XXH3
    assert len(ReferenceIndex.load(saved)) == len(ReferenceIndex.load(saved, mmap=True))
    (saved / "brands.json").write_text("{}")
    with pytest.raises(IndexCorruptError, match="brands.json is damaged"):
        ReferenceIndex.load(saved)


@pytest.mark.parametrize("content", [b"", b"x", bytes(range(256)) * 70_000])
def test_file_checksum_of_any_size(tmp_path, content):
    import xxhash

    file = tmp_path / "f.bin"
    file.write_bytes(content)
    assert xxh3_128(file) == xxhash.xxh3_128(content).hexdigest()
    assert checksum_matches(file, file_checksum(file)) and checksum_matches(file, sha256(file))
    assert not checksum_matches(file, "xxh3-128:" + "0" * 32) and not checksum_matches(file, "0" * 64)


def test_references_cut_short_with_checksums_recomputed(saved):
    rows, price = np.load(saved / "references_rows.npy"), np.load(saved / "references_price.npy")
    np.save(saved / "references_rows.npy", rows[:2])
    np.save(saved / "references_price.npy", price[:2])
    _rechecksum(saved)
    with pytest.raises(IndexCorruptError, match="2 references but the manifest says 4"):
        ReferenceIndex.load(saved)
    _edit_manifest(saved, lambda m: m["count"].update(references=2))  # the count edited too: the ids disagree
    with pytest.raises(IndexCorruptError, match="vectors|reference ids"):
        ReferenceIndex.load(saved)


def _swap_ids(rows):
    rows[[0, 1], 0] = rows[[1, 0], 0]


def _zero_views(rows):
    rows[0, 1] = 0


def _string_beyond_blob(rows):
    rows[0, 3] = 10**9


def _null_brand(rows):
    rows[0, 3] = -1


@pytest.mark.parametrize("damage, message", [
    (_swap_ids, "not increasing"), (_zero_views, "view count"), (_string_beyond_blob, "outside"),
    (_null_brand, "outside"), (lambda rows: rows[:, :3], "columns"),
])
def test_damaged_reference_table(saved, damage, message):
    rows = np.load(saved / "references_rows.npy")
    changed = damage(rows)
    np.save(saved / "references_rows.npy", rows if changed is None else np.ascontiguousarray(changed))
    _rechecksum(saved)
    with pytest.raises(IndexCorruptError, match=message):
        ReferenceIndex.load(saved)


def test_damaged_reference_price(saved):
    price = np.load(saved / "references_price.npy")
    price[0] = -5.0
    np.save(saved / "references_price.npy", price)
    _rechecksum(saved)
    with pytest.raises(IndexCorruptError, match="price"):
        ReferenceIndex.load(saved)


def test_format_1_index_is_refused_with_a_clear_error_and_can_be_overwritten(saved, catalog_dir):
    index = build_index(Catalog.from_dir(catalog_dir), "test-pixels")
    for name in ("references_rows.npy", "references_price.npy", "references_text.npy"):
        (saved / name).unlink()
    (saved / "references.jsonl").write_text("{}\n")
    _edit_manifest(saved, lambda m: m.update(format_version=1))
    with pytest.raises(IndexCorruptError, match="format version 1 is not supported.*rebuild"):
        ReferenceIndex.load(saved)
    index.save(saved)  # an old index's folder may be replaced by a new one
    assert len(ReferenceIndex.load(saved)) == len(index)


@needs_cv
def test_damaged_feature_table(saved):
    table = np.load(saved / "features_table.npy")
    table[0, 2] = 10**9  # a keypoint range beyond the file
    np.save(saved / "features_table.npy", table)
    _rechecksum(saved)
    with pytest.raises(IndexCorruptError, match="stored reference features are damaged"):
        ReferenceIndex.load(saved)


def test_cli_tampered_index_exits_2_without_traceback(saved, tmp_path, capsys):
    _edit_manifest(saved, lambda m: m.update(count={}))
    photo = tmp_path / "x.png"
    Image.new("RGB", (64, 64), "red").save(photo)
    assert main(["check", str(photo), "--index", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "manifest.json is damaged" in err


def _check_all(detector, listings):
    return [detector.check(listing) for listing in listings]
