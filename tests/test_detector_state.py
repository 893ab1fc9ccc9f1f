"""A Detector gives right answers after its index is edited (no stale caches, no vectors kept between calls)."""

from __future__ import annotations

from PIL import Image

from knockoff import Catalog, Detector, Listing, ReferenceImage, build_index

from conftest import textured_image


def _copy(src, dst):
    with Image.open(src) as image:
        image.convert("RGB").resize((230, 230)).save(dst, quality=85)
    return dst


def test_remove_then_add_then_check_a_copy_of_the_removed_product(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    detector = Detector(index)
    wallet_copy = _copy(catalog_dir / "acme/wallet.png", tmp_path / "wallet_copy.jpg")
    first = detector.check(Listing([wallet_copy], seller="shop123"))
    assert first.match is not None and first.match.product_id == "wallet" and first.verdict == "suspect"

    assert index.remove_product("Acme", "wallet") == 1
    textured_image(77).save(tmp_path / "belt.png")
    index.add([ReferenceImage("Acme", "belt", "Acme Belt", tmp_path / "belt.png", 80.0, "USD")])
    assert len(index) == 4  # the same size as before: a cache keyed on the size would not notice

    after = detector.check(Listing([wallet_copy], seller="shop123"))
    assert after.match is None or after.match.product_id != "wallet"
    assert after.verdict == "no_match"
    belt_copy = _copy(tmp_path / "belt.png", tmp_path / "belt_copy.jpg")
    belt = detector.check(Listing([belt_copy], seller="shop123"))
    assert belt.match.product_id == "belt" and belt.verdict == "suspect"


def test_generation_changes_on_every_edit(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    seen = {index.generation}
    index.remove_product("Acme", "wallet")
    seen.add(index.generation)
    textured_image(78).save(tmp_path / "x.png")
    index.add([ReferenceImage("Acme", "x", "X", tmp_path / "x.png")])
    seen.add(index.generation)
    assert len(seen) == 3
    assert index.remove_product("Acme", "no-such-product") == 0
    assert index.generation in seen  # nothing removed: nothing changed
