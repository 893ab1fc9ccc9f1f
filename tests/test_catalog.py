import json

import pytest

from knockoff.catalog.readers import Brand, Catalog, Listing, read_brands, read_listings, read_references
from knockoff.errors import CatalogError

from conftest import write_csv


def test_catalog_from_dir(catalog_dir):
    catalog = Catalog.from_dir(catalog_dir)
    assert len(catalog.references) == 4
    assert set(catalog.products) == {("Acme", "tote"), ("Acme", "wallet"), ("Globex", "watch")}
    acme = catalog.brand("acme")
    assert acme.aliases == ("Akme", "Acme Co")
    assert acme.is_authorized("BestBags") is True
    assert acme.is_authorized("shop123") is False
    assert catalog.brand("Globex").is_authorized("anyone") is None
    ref = catalog.references[0]
    assert ref.label == "acme/tote_front.png"
    assert ref.price == 399.0 and ref.currency == "USD"
    assert catalog.problems == []


def test_references_jsonl(catalog_dir):
    rows = [{"brand": "Acme", "product_id": "tote", "product_name": "Tote", "image": "acme/tote_front.png",
             "price": 399, "currency": "usd"}]
    (catalog_dir / "references.csv").unlink()
    (catalog_dir / "references.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    catalog = Catalog.from_dir(catalog_dir)
    assert catalog.references[0].currency == "USD"


HEADER = ["brand", "product_id", "product_name", "image", "price", "currency"]


@pytest.mark.parametrize(
    "row, field, problem",
    [
        (["Acme", "", "x", "acme/tote_front.png", "1", "USD"], "product_id", "is empty"),
        (["Acme", "p", "x", "../outside.png", "1", "USD"], "image", "escapes the directory"),
        (["Acme", "p", "x", "/etc/passwd", "1", "USD"], "image", "relative"),
        (["Acme", "p", "x", "acme/missing.png", "1", "USD"], "image", "not found"),
        (["Acme", "p", "x", "acme/tote_front.png", "cheap", "USD"], "price", "not a number"),
        (["Acme", "p", "x", "acme/tote_front.png", "-3", "USD"], "price", ">= 0"),
        (["Acme", "p", "x", "acme/tote_front.png", "3", "dollars"], "currency", "3-letter"),
    ],
)
def test_bad_reference_rows_name_file_line_field(catalog_dir, row, field, problem):
    path = write_csv(catalog_dir / "bad.csv", HEADER, [["Acme", "ok", "ok", "acme/wallet.png", "1", "USD"], row])
    with pytest.raises(CatalogError) as info:
        read_references(path, strict=True)
    error = info.value
    assert error.line == 3 and error.field == field
    assert str(path) in str(error) and "line 3" in str(error) and problem in str(error)


def test_bad_rows_are_skipped_with_one_line_each(catalog_dir, caplog):
    write_csv(catalog_dir / "references.csv", HEADER, [
        ["Acme", "tote", "Tote", "acme/tote_front.png", "399", "USD"],
        ["Acme", "bag", "Bag", "acme/nope.png", "399", "USD"],
        ["Acme", "bag", "Bag", "acme/wallet.png", "lots", "USD"],
    ])
    catalog = Catalog.from_dir(catalog_dir)
    assert len(catalog.references) == 1
    assert [p.line for p in catalog.problems] == [3, 4]
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2


def test_missing_column_is_fatal(tmp_path):
    path = write_csv(tmp_path / "references.csv", ["brand", "image"], [["A", "a.png"]])
    with pytest.raises(CatalogError, match="missing column.*product_id"):
        read_references(path)


def test_duplicate_brand(tmp_path):
    path = write_csv(tmp_path / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["A", "", ""], ["a", "", ""]])
    with pytest.raises(CatalogError, match="listed twice"):
        read_brands(path)


def test_read_listings(tmp_path):
    path = write_csv(tmp_path / "listings.csv", ["listing_id", "image", "title", "price", "currency", "seller", "label"], [
        ["L1", "a.jpg;b.jpg", "Acme tote", "45", "usd", "shop123", "counterfeit"],
        ["L2", "c.jpg", "", "", "", "", ""],
        ["L3", "../x.jpg", "", "", "", "", ""],
        ["L4", "d.jpg", "", "", "", "", "fake"],
    ])
    problems = []
    rows = read_listings(path, problems=problems)
    assert [r.listing.listing_id for r in rows] == ["L1", "L2"]
    assert rows[0].listing.images == ((tmp_path / "a.jpg").resolve(), (tmp_path / "b.jpg").resolve())
    assert rows[0].listing.currency == "USD" and rows[0].label == "counterfeit"
    assert rows[1].listing.price is None and rows[1].label == ""
    assert [(p.line, p.field) for p in problems] == [(4, "image"), (5, "label")]


def test_listing_validation():
    with pytest.raises(ValueError):
        Listing(images=())
    with pytest.raises(ValueError):
        Listing(images=["a.jpg"], price=-1)
    assert Listing(images="a.jpg").listing_id == "a.jpg"
    with pytest.raises(ValueError):
        Brand(" ")
