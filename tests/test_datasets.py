"""The synthetic labeled-set generator writes DESIGN.md's format, deterministically, with sane labels."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from knockoff.evaluate.synthetic import (
    BRANDS_HEADER,
    LISTINGS_HEADER,
    REFERENCES_HEADER,
    COPY_WORDS,
    LabeledSetInfo,
    make_labeled_set,
)
from knockoff.evaluate.edits import EDIT_KINDS

SMALL = dict(n_brands=3, products_per_brand=2, listings_per_product=3, n_unrelated=4, image_size=128)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    return header, rows


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory) -> LabeledSetInfo:
    return make_labeled_set(tmp_path_factory.mktemp("demo") / "set", seed=3)


@pytest.fixture(scope="module")
def hard_set(tmp_path_factory) -> LabeledSetInfo:
    return make_labeled_set(tmp_path_factory.mktemp("hard") / "set", seed=5, difficulty="hard", n_brands=5,
                            products_per_brand=4, listings_per_product=3, n_unrelated=12, image_size=160)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("difficulty", ["demo", "hard"])
def test_same_seed_gives_byte_identical_files(tmp_path, difficulty):
    make_labeled_set(tmp_path / "a", seed=11, difficulty=difficulty, **SMALL)
    make_labeled_set(tmp_path / "b", seed=11, difficulty=difficulty, **SMALL)
    make_labeled_set(tmp_path / "c", seed=12, difficulty=difficulty, **SMALL)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a["listings.csv"] != c["listings.csv"]


def test_csv_headers_are_exact(demo_set):
    assert _read(demo_set.brands_csv)[0] == list(BRANDS_HEADER) == ["brand", "aliases", "authorized_sellers"]
    assert _read(demo_set.references_csv)[0] == list(REFERENCES_HEADER) == [
        "brand", "product_id", "product_name", "image", "price", "currency"]
    assert _read(demo_set.listings_csv)[0] == list(LISTINGS_HEADER) == [
        "listing_id", "image", "title", "price", "currency", "seller", "label", "product_id", "kind"]


@pytest.mark.parametrize("which", ["demo_set", "hard_set"])
def test_every_image_exists_inside_the_set_and_opens(which, request):
    info: LabeledSetInfo = request.getfixturevalue(which)
    root = info.root.resolve()
    _, refs = _read(info.references_csv)
    _, listings = _read(info.listings_csv)
    paths = [r["image"] for r in refs] + [r["image"] for r in listings]
    assert len(paths) == info.n_reference_images + info.n_listings
    for rel in paths:
        assert not Path(rel).is_absolute() and ".." not in Path(rel).parts
        path = (root / rel).resolve()
        assert path.is_relative_to(root) and path.is_file(), rel
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) >= 32
    for row in refs:
        assert row["image"].startswith(f"refs/{row['product_id'].split('-')[0]}/")
        assert row["image"].endswith(".png")
    assert all(r["image"].startswith("listings/") for r in listings)


def test_counts_are_as_requested(demo_set):
    assert demo_set.n_brands == 4 and demo_set.n_products == 12
    assert demo_set.n_listings == 12 * 3 + 10
    assert 40 <= demo_set.n_listings <= 60
    _, brands = _read(demo_set.brands_csv)
    _, refs = _read(demo_set.references_csv)
    _, listings = _read(demo_set.listings_csv)
    assert len(brands) == 4
    assert len({r["product_id"] for r in refs}) == 12
    assert len(refs) == demo_set.n_reference_images
    per_product = {}
    for r in refs:
        per_product[r["product_id"]] = per_product.get(r["product_id"], 0) + 1
    assert set(per_product.values()) <= {1, 2}
    assert len(listings) == demo_set.n_listings
    assert sum(r["label"] == "unrelated" for r in listings) == 10
    assert demo_set.label_counts == {"counterfeit": 24, "genuine": 12, "unrelated": 10}
    assert sum(demo_set.kind_counts.values()) == demo_set.n_listings
    assert len({r["listing_id"] for r in listings}) == len(listings)


def test_to_dict_is_json(demo_set):
    data = json.loads(json.dumps(demo_set.to_dict()))
    assert data["n_listings"] == demo_set.n_listings
    assert data["root"] == str(demo_set.root)


@pytest.mark.parametrize("which", ["demo_set", "hard_set"])
def test_labels_kinds_and_risk_signals(which, request):
    info: LabeledSetInfo = request.getfixturevalue(which)
    _, brands = _read(info.brands_csv)
    _, refs = _read(info.references_csv)
    _, listings = _read(info.listings_csv)
    sellers = {b["brand"]: set(b["authorized_sellers"].split(";")) for b in brands}
    product_brand = {r["product_id"]: r["brand"] for r in refs}
    product_price = {r["product_id"]: float(r["price"]) for r in refs}
    product_currency = {r["product_id"]: r["currency"] for r in refs}
    copy_kinds = {f"copy-{k}" for k in EDIT_KINDS}
    for row in listings:
        title = row["title"].lower()
        has_replica = any(term.lower() in title for term in COPY_WORDS)
        assert row["label"] in {"counterfeit", "genuine", "unrelated"}
        if row["label"] == "unrelated":
            assert row["kind"] == "unrelated" and row["product_id"] == ""
            assert not has_replica
            continue
        pid = row["product_id"]
        assert pid in product_brand
        assert row["currency"] == product_currency[pid]
        ratio = float(row["price"]) / product_price[pid]
        authorized = row["seller"] in sellers[product_brand[pid]]
        if row["label"] == "genuine":
            assert row["kind"] in ({"genuine-copy", "own-photo"} if info.difficulty == "hard" else {"genuine-copy"})
            assert authorized and 0.7 <= ratio <= 1.0 and not has_replica
        else:
            kinds = copy_kinds | ({"own-photo"} if info.difficulty == "hard" else set())
            assert row["kind"] in kinds
            assert 0.2 <= ratio <= 0.6
            unauthorized = bool(row["seller"]) and not authorized
            assert unauthorized or ratio < 0.5 or has_replica, row


def test_demo_counterfeits_are_copies_and_cover_every_edit(demo_set):
    _, listings = _read(demo_set.listings_csv)
    kinds = {r["kind"] for r in listings if r["label"] == "counterfeit"}
    assert kinds == {f"copy-{k}" for k in EDIT_KINDS}


def test_titles_use_brand_aliases_misspellings_and_replica_terms(hard_set):
    _, brands = _read(hard_set.brands_csv)
    _, listings = _read(hard_set.listings_csv)
    names = [b["brand"].lower() for b in brands]
    aliases = [a.lower() for b in brands for a in b["aliases"].split(";")]
    assert all(b["aliases"] and b["authorized_sellers"] for b in brands)
    counterfeit_titles = [r["title"].lower() for r in listings if r["label"] == "counterfeit"]
    assert any(any(n in t for n in names) for t in counterfeit_titles)
    assert any(any(a in t for a in aliases) for t in counterfeit_titles)
    assert any(any(term.lower() in t for term in COPY_WORDS) for t in counterfeit_titles)
    hidden = [t for t in counterfeit_titles if not any(n in t for n in names) and not any(a in t for a in aliases)]
    assert hidden, "some counterfeit titles hide the brand"


def test_hard_mode_has_own_photos_and_lookalikes(hard_set):
    _, listings = _read(hard_set.listings_csv)
    labels_of_own = {r["label"] for r in listings if r["kind"] == "own-photo"}
    assert labels_of_own == {"counterfeit", "genuine"}
    pairs = _front_photo_differences(hard_set)
    lookalikes = [(a, b) for diff, a, b in pairs if diff < 8 and a.split("/")[1] != b.split("/")[1]]
    assert lookalikes, "hard mode has products of different brands whose photos differ only by wordmark and logo"


def _front_photo_differences(info: LabeledSetInfo) -> list[tuple[float, str, str]]:
    """Mean absolute pixel difference between every two official front photos of the same size."""
    _, refs = _read(info.references_csv)
    fronts = sorted({r["image"] for r in refs if r["image"].endswith("_front.png")})
    pixels = {}
    for rel in fronts:
        with Image.open(info.root / rel) as image:
            pixels[rel] = np.asarray(image, dtype=np.int16)
    return [
        (float(np.abs(pixels[a] - pixels[b]).mean()), a, b)
        for i, a in enumerate(fronts) for b in fronts[i + 1:]
        if pixels[a].shape == pixels[b].shape
    ]


def test_demo_official_photos_are_visually_distinct(demo_set):
    for diff, a, b in _front_photo_differences(demo_set):
        assert diff > 10, f"{a} and {b} look too much alike ({diff:.1f})"


def test_default_demo_set_is_fast(tmp_path):
    start = time.perf_counter()
    make_labeled_set(tmp_path / "set")
    assert time.perf_counter() - start < 10.0  # about a second on a laptop; generous for shared CI


def test_refuses_a_non_empty_directory_unless_overwrite(tmp_path):
    out = tmp_path / "set"
    first = make_labeled_set(out, **SMALL)
    with pytest.raises(FileExistsError):
        make_labeled_set(out, **SMALL)
    second = make_labeled_set(out, overwrite=True, **{**SMALL, "n_unrelated": 0, "listings_per_product": 1})
    assert second.n_listings < first.n_listings
    assert len(list((out / "listings").iterdir())) == second.n_listings


def test_edit_kinds_can_be_restricted(tmp_path):
    info = make_labeled_set(tmp_path / "set", edit_kinds=["mirror", "border"], **SMALL)
    _, listings = _read(info.listings_csv)
    assert {r["kind"] for r in listings if r["label"] == "counterfeit"} == {"copy-mirror", "copy-border"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"difficulty": "easy"},
        {"n_brands": 0},
        {"products_per_brand": 0},
        {"listings_per_product": -1},
        {"n_unrelated": -1},
        {"seed": -1},
        {"image_size": 16},
        {"edit_kinds": ["blur"]},
        {"edit_kinds": []},
    ],
)
def test_bad_arguments_are_value_errors(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_labeled_set(tmp_path / "set", **kwargs)
