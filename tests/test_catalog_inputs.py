"""Issue 12, items 8-13: user files that used to change verdicts without a word."""

from __future__ import annotations

import codecs
import json
import logging

import pytest

from knockoff.catalog import Catalog, read_listings, read_references
from knockoff.catalog.prices import PriceError, parse_price_text
from knockoff.errors import CatalogError

from conftest import write_csv

LISTING_HEADER = ["listing_id", "image", "title", "price", "currency", "seller"]
REF_HEADER = ["brand", "product_id", "product_name", "image", "price", "currency"]


# -- item 8: unknown columns -------------------------------------------------------------------------


@pytest.mark.parametrize("wrong, closest", [
    ("seler", "seller"), ("curency", "currency"), ("titel", "title"), ("Price", "price"), ("pirce", "price"),
])
def test_unknown_listing_column_names_the_closest(tmp_path, wrong, closest):
    header = [wrong if name == closest else name for name in LISTING_HEADER]
    path = write_csv(tmp_path / "listings.csv", header, [["L1", "a.jpg", "Acme tote", "45", "USD", "shop123"]])
    with pytest.raises(CatalogError) as info:
        read_listings(path)
    message = str(info.value)
    assert f"unknown column {wrong!r} in listings.csv (did you mean {closest!r}?" in message
    assert info.value.field == wrong and info.value.line == 1


@pytest.mark.parametrize("file, header, wrong", [
    ("brands.csv", ["brand", "alias", "authorized_sellers"], "alias"),
    ("references.csv", ["brand", "product_id", "product_name", "image", "prise", "currency"], "prise"),
])
def test_unknown_catalog_column(catalog_dir, file, header, wrong):
    (catalog_dir / file).unlink()
    write_csv(catalog_dir / file, header, [["Acme", "x", "y", "acme/tote_front.png", "1", "USD"][: len(header)]])
    with pytest.raises(CatalogError, match=f"unknown column '{wrong}' in {file}"):
        Catalog.from_dir(catalog_dir)


def test_unknown_jsonl_key_is_a_bad_row(catalog_dir):
    rows = [{"brand": "Acme", "product_id": "tote", "image": "acme/tote_front.png", "price": 399},
            {"brand": "Acme", "product_id": "wallet", "image": "acme/wallet.png", "prcie": 150}]
    (catalog_dir / "references.csv").unlink()
    (catalog_dir / "references.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    catalog = Catalog.from_dir(catalog_dir)
    assert [r.product_id for r in catalog.references] == ["tote"]
    assert [(p.line, p.field) for p in catalog.problems] == [(2, "prcie")]
    assert "did you mean 'price'?" in str(catalog.problems[0])


def test_note_columns_and_labeled_set_columns_are_known(tmp_path):
    path = write_csv(tmp_path / "listings.csv", LISTING_HEADER + ["label", "kind", "x_comment"],
                     [["L1", "a.jpg", "t", "", "", "", "genuine", "own-photo", "checked by Ann"]])
    assert read_listings(path, strict=True)[0].kind == "own-photo"


def test_column_given_twice(tmp_path):
    path = write_csv(tmp_path / "listings.csv", ["image", "price", "price"], [["a.jpg", "1", "2"]])
    with pytest.raises(CatalogError, match="given twice"):
        read_listings(path)


# -- item 9: a brand that brands.csv does not list ---------------------------------------------------


def test_reference_brand_not_in_brands_csv(catalog_dir):
    write_csv(catalog_dir / "references.csv", REF_HEADER, [
        ["Acme", "tote", "Tote", "acme/tote_front.png", "399", "USD"],
        ["Acmee", "wallet", "Wallet", "acme/wallet.png", "150", "USD"],
    ])
    catalog = Catalog.from_dir(catalog_dir)
    assert set(catalog.brands) == {"acme", "globex"}  # no new brand
    assert [r.product_id for r in catalog.references] == ["tote"]
    (problem,) = catalog.problems
    assert (problem.line, problem.field) == (3, "brand")
    assert "'Acmee' is not in brands.csv (did you mean 'Acme'?)" in str(problem)
    assert str(catalog_dir / "references.csv") in str(problem)
    with pytest.raises(CatalogError, match="not in brands.csv"):
        Catalog.from_dir(catalog_dir, strict=True)


def test_reference_brand_takes_the_brands_csv_spelling(catalog_dir):
    write_csv(catalog_dir / "references.csv", REF_HEADER, [["ACME", "tote", "Tote", "acme/tote_front.png", "", ""]])
    assert Catalog.from_dir(catalog_dir).references[0].brand == "Acme"


def test_without_brands_csv_references_make_their_brands(catalog_dir):
    (catalog_dir / "brands.csv").unlink()
    assert set(Catalog.from_dir(catalog_dir).brands) == {"acme", "globex"}


# -- item 10: an unbalanced quote --------------------------------------------------------------------


def test_unbalanced_quote_skips_only_its_line(tmp_path):
    lines = [",".join(LISTING_HEADER),
             'L1,a.jpg,"Acme tote 1:1,45,USD,shop1',
             "L2,b.jpg,Acme wallet,30,USD,shop2",
             'L3,c.jpg,"Acme bag, large",99,USD,shop3',
             "L4,d.jpg,plain,10,USD,shop4"]
    path = tmp_path / "listings.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems: list[CatalogError] = []
    rows = read_listings(path, problems=problems)
    assert [r.listing.listing_id for r in rows] == ["L2", "L3", "L4"]
    assert rows[1].listing.title == "Acme bag, large" and rows[0].listing.price == 30
    assert [p.line for p in problems] == [2] and "quote is not closed" in str(problems[0])


def test_stray_text_after_a_quote(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_text('image,title\na.jpg,"Acme" tote\nb.jpg,ok\n', encoding="utf-8")
    problems: list[CatalogError] = []
    assert [r.listing.title for r in read_listings(path, problems=problems)] == ["ok"]
    assert [p.line for p in problems] == [2]


@pytest.mark.parametrize("line, count", [("a.jpg,t,extra", 3), ("a.jpg", 1)])
def test_row_with_wrong_field_count(tmp_path, line, count):
    path = tmp_path / "listings.csv"
    path.write_text(f"image,title\n{line}\nb.jpg,ok\n", encoding="utf-8")
    problems: list[CatalogError] = []
    assert len(read_listings(path, problems=problems)) == 1
    assert f"has {count} fields but the header has 2" in str(problems[0]) and problems[0].line == 2


# -- item 11: prices with thousands separators -------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("1799", 1799.0), ("45", 45.0), ("12.5", 12.5), ("12,50", 12.5), ("1,799.00", 1799.0), ("1.799,00", 1799.0),
    ("1 799", 1799.0), ("1\u00a0799,50", 1799.5), ("1'799.50", 1799.5), ("1,234,567", 1234567.0),
    ("1.234.567", 1234567.0), ("1,234.567", 1234.567), ("0.500", 0.5), ("0,500", 0.5), ("1234,567", 1234.567),
    ("1,23", 1.23), (".5", 0.5), ("1.234,56", 1234.56),
])
def test_price_forms_read(text, value):
    assert parse_price_text(text) == value


@pytest.mark.parametrize("text, problem", [
    ("1,799", "ambiguous"), ("1.234", "ambiguous"), ("12,345", "ambiguous"), ("999.000", "ambiguous"),
    ("1,2,3", "group 3 digits"), ("12,34,567", "group 3 digits"), ("1 2", "group 3 digits"),
    ("1.2.3,4", "group 3 digits"), ("abc", "not a number"), ("inf", "not a number"), ("nan", "not a number"),
    ("1e3", "not a number"), ("$45", "not a number"), ("", "not a number"), (".", "not a number"),
    ("\u0661\u0662", "not a number"),
])
def test_price_forms_refused(text, problem):
    with pytest.raises(PriceError, match=problem):
        parse_price_text(text)


def test_ambiguous_price_names_line_and_field(tmp_path):
    path = write_csv(tmp_path / "listings.csv", LISTING_HEADER, [["L1", "a.jpg", "t", "1,799", "USD", "s"],
                                                                 ["L2", "b.jpg", "t", "1.799,00", "EUR", "s"]])
    problems: list[CatalogError] = []
    rows = read_listings(path, problems=problems)
    assert [r.listing.price for r in rows] == [1799.0]
    assert [(p.line, p.field) for p in problems] == [(2, "price")] and "ambiguous" in str(problems[0])


def test_jsonl_price_number_is_taken_as_is(catalog_dir):
    (catalog_dir / "references.csv").unlink()
    (catalog_dir / "references.jsonl").write_text(json.dumps(
        {"brand": "Acme", "product_id": "tote", "image": "acme/tote_front.png", "price": 1.234}) + "\n")
    assert Catalog.from_dir(catalog_dir).references[0].price == 1.234


# -- item 12: encodings ------------------------------------------------------------------------------


def test_latin1_listings_names_file_and_line(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_bytes("image,title\na.jpg,ok\nb.jpg,caf\u00e9 tote\nc.jpg,fine\n".encode("latin-1"))
    problems: list[CatalogError] = []
    rows = read_listings(path, problems=problems)
    assert [r.listing.title for r in rows] == ["ok", "fine"]
    (problem,) = problems
    assert problem.line == 3 and str(path) in str(problem)
    assert "not valid UTF-8 (byte 0xe9 at column 10)" in str(problem)


@pytest.mark.parametrize("encoding, bom", [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
                                           ("utf-16-be", codecs.BOM_UTF16_BE)])
def test_bom_and_utf16_accepted(tmp_path, encoding, bom):
    path = tmp_path / "listings.csv"
    path.write_bytes(bom + "image,title,price\r\na.jpg,caf\u00e9 \u2013 tote,\"1,799.00\"\r\n".encode(encoding))
    (row,) = read_listings(path, strict=True)
    assert row.listing.title == "caf\u00e9 \u2013 tote" and row.listing.price == 1799.0


def test_damaged_utf16_names_the_line(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "image,title\na.jpg,x\n".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(CatalogError, match="not valid UTF-16") as info:
        read_listings(path)
    assert info.value.line == 3


def test_utf16_without_bom_is_named(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_bytes("image,title\na.jpg,x\n".encode("utf-16-le"))
    with pytest.raises(CatalogError, match="NUL byte"):
        read_listings(path)


# -- item 13: a very long field ----------------------------------------------------------------------


def test_long_field_skips_only_its_row(tmp_path):
    path = write_csv(tmp_path / "listings.csv", ["image", "title"],
                     [["a.jpg", "ok"], ["b.jpg", "x" * 200_000], ["c.jpg", "fine"]])
    problems: list[CatalogError] = []
    assert [r.listing.title for r in read_listings(path, problems=problems)] == ["ok", "fine"]
    assert [p.line for p in problems] == [3] and "longer than" in str(problems[0])


# -- each bad row reported once ----------------------------------------------------------------------


def test_each_bad_row_logged_once(catalog_dir, caplog):
    write_csv(catalog_dir / "references.csv", REF_HEADER, [
        ["Acme", "tote", "Tote", "acme/tote_front.png", "1,799", "USD"],
        ["Nope", "bag", "Bag", "acme/wallet.png", "", ""],
        ["Acme", "bag", "Bag", "acme/tote_side.png", "", ""],
    ])
    with caplog.at_level(logging.WARNING):
        catalog = Catalog.from_dir(catalog_dir)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(catalog.problems) == 2 and len(warnings) == 2
    assert [p.line for p in catalog.problems] == [2, 3]
    assert all(str(p) in w for p, w in zip(catalog.problems, warnings))


def test_strict_reader_raises_the_first_bad_row(tmp_path):
    path = write_csv(tmp_path / "references.csv", REF_HEADER, [["Acme", "p", "x", "a.png", "1,799", "USD"]])
    with pytest.raises(CatalogError, match="ambiguous"):
        read_references(path, strict=True, check_images=False)


# -- Pillow's warnings name the file -----------------------------------------------------------------


def _corrupt_exif() -> bytes:
    import struct

    # orientation 6 (valid), then an ImageDescription whose data lies beyond the block
    entries = struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<HHII", 0x010E, 2, 100, 1000)
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 2) + entries + struct.pack("<I", 0)


def test_pillow_exif_warning_names_the_file_once(tmp_path, caplog):
    from PIL import Image

    from knockoff.catalog import load_image

    path = tmp_path / "bad-exif.jpg"
    Image.new("RGB", (40, 20), "red").save(path, exif=_corrupt_exif())
    with caplog.at_level(logging.WARNING):
        image = load_image(path)  # a raw warning would be an error here (filterwarnings = error)
    assert image.size == (20, 40)  # the orientation was still applied
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith(f"{path}: ") and "Skipping tag 270" in lines[0]


def test_jsonl_repeated_key_and_long_value_are_bad_rows(catalog_dir):
    (catalog_dir / "references.csv").unlink()
    (catalog_dir / "references.jsonl").write_text(
        '{"brand": "Acme", "product_id": "tote", "image": "acme/tote_front.png", "price": 1, "price": 2}\n'
        + json.dumps({"brand": "Acme", "product_id": "w", "image": "acme/wallet.png", "product_name": "x" * 200_000})
        + "\n" + json.dumps({"brand": "Acme", "product_id": "s", "image": "acme/tote_side.png"}) + "\n")
    catalog = Catalog.from_dir(catalog_dir)
    assert [r.product_id for r in catalog.references] == ["s"]
    assert [(p.line, p.field) for p in catalog.problems] == [(1, "price"), (2, "product_name")]
