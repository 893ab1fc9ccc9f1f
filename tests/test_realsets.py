"""Labeled sets built from the real images in ../shared/data/real (skipped when the folder is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knockoff.catalog.readers import Catalog, read_listings
from knockoff.evaluate.realsets import RealDataMissingError, classify_relation, make_copy_set, make_grocery_set

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data not present at {REAL}")


@pytest.mark.parametrize(
    ("relation", "kind"),
    [
        ("blur a little", "copy-filter"),
        ("square 128x128", "copy-resize"),
        ("dihedral transform: rotate-90", "copy-rotate-flip"),
        ("PIL mode conversion to original saved as jpg (original)", "copy-colour-mode"),
        ("letterboxed (black borders added)", "copy-border"),
        ('text watermark "copyright" overlaid', "copy-watermark"),
        ("crop", "copy-crop"),
        ("byte-identical copy of original", "copy-exact"),
        ("same JPEG bytes, misleading .bmp extension", "copy-exact"),
        ("low JPEG quality re-encode", "copy-recompress"),
        ("DIFFERENT photo of the same coaster with a different pen (same object, not a copy)", "own-photo"),
        ("something new", "copy-other"),
    ],
)
def test_classify_relation(relation, kind):
    assert classify_relation(relation) == kind


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RealDataMissingError, match="not here"):
        make_copy_set(tmp_path / "out", tmp_path / "nowhere")
    with pytest.raises(RealDataMissingError, match="grocerystore"):
        make_grocery_set(tmp_path / "out", tmp_path)
    with pytest.raises(ValueError, match="sources"):
        make_copy_set(tmp_path / "out", tmp_path, sources=("nope",))


def _check_valid(root: Path) -> list:
    catalog = Catalog.from_dir(root, strict=True)
    rows = read_listings(root / "listings.csv", strict=True, check_images=True)
    resolved = root.resolve()
    for path in [r.image for r in catalog.references] + [p for row in rows for p in row.listing.images]:
        assert resolved in path.parents and not os.path.islink(path)
    products = {r.product_id for r in catalog.references}
    for row in rows:
        assert row.label in ("counterfeit", "unrelated") and row.kind
        if row.label == "counterfeit":
            assert row.product_id in products and row.listing.seller
    return rows


@needs_real
def test_copy_set_is_valid(tmp_path):
    info = make_copy_set(tmp_path / "copies", REAL)
    rows = _check_valid(tmp_path / "copies")
    assert info.n_listings == len(rows) > 50
    assert info.label_counts["counterfeit"] > 40 and info.label_counts["unrelated"] >= 10
    assert "copy-rotate-flip" in info.kind_counts and "hard-negative" in info.kind_counts
    assert any("not decodable" in s for s in info.skipped)  # the corrupt file is left out, with its reason
    assert len({row.listing.images[0].read_bytes() for row in rows}) == len(rows)  # no duplicate listing
    with pytest.raises(FileExistsError):
        make_copy_set(tmp_path / "copies", REAL)
    make_copy_set(tmp_path / "copies", REAL, sources=("jenssegers-imagehash",), overwrite=True)
    assert len(read_listings(tmp_path / "copies" / "listings.csv")) < len(rows)


@needs_real
def test_grocery_set_is_valid(tmp_path):
    info = make_grocery_set(tmp_path / "g", REAL, max_listings=8, seed=1)
    rows = _check_valid(tmp_path / "g")
    assert info.n_references == 31 and info.n_listings == 8 == len(rows)
    assert {row.kind for row in rows} == {"own-photo"}
    again = make_grocery_set(tmp_path / "g2", REAL, max_listings=8, seed=1)
    assert again.n_listings == 8
    assert [r.listing.listing_id for r in read_listings(tmp_path / "g2" / "listings.csv")] == [
        r.listing.listing_id for r in rows
    ]
