"""Reports: results.jsonl -> results.csv and the reviewer's page (one file, or a page with a data folder)."""

from __future__ import annotations

import copy
import csv
import json
import logging
import re
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from knockoff import Catalog, Detector, Listing, build_index
from knockoff.report import ReportError, read_results, write_csv, write_reports
from knockoff.report.csvfile import BASE_COLUMNS, cell
from knockoff.report.data import js_json
from knockoff.report.entry import NOT_CHECKED, entry_from_result
from knockoff.report.thumbs import Thumbnails

from conftest import textured_image

XSS = "<script>alert(1)</script>"
UNCOMPARABLE = "price 0.7 USD cannot be compared with 2.3 EUR (no exchange rate given)"


def _review_row(row: dict) -> dict:
    """A match whose seller could not be checked: the ``review`` verdict of the shared contract."""
    row = copy.deepcopy(row)
    row.update(listing_id="L-review", verdict="review", risk=0.5, schema=2)
    row["listing"]["seller"] = None
    row["listing"]["currency"], row["listing"]["price"] = "USD", 0.7
    for signal in row["signals"]:
        if signal["code"] == "UNAUTHORIZED_SELLER":
            signal.update(state="unknown", message="the listing names no seller", details={})
        if signal["code"] == "PRICE_IMPLAUSIBLE":
            signal.update(state="unknown", message=UNCOMPARABLE, details={})
    row["reasons"] = [r for r in row["reasons"] if r["code"] == "VISUAL_MATCH"]
    return row


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory) -> Path:
    """A scan output directory with real results (suspect, authorized, no_match, error) plus a review row."""
    root = tmp_path_factory.mktemp("scan")
    catalog_dir = root / "refs"
    (catalog_dir / "acme").mkdir(parents=True)
    (catalog_dir / "globex").mkdir(parents=True)
    for name, seed in (("acme/tote_front.png", 1), ("acme/wallet.png", 3), ("globex/watch.png", 4)):
        textured_image(seed).save(catalog_dir / name)
    (catalog_dir / "brands.csv").write_text(
        "brand,aliases,authorized_sellers\nAcme,Akme,acme_store\nGlobex,,globex_shop\n", encoding="utf-8")
    (catalog_dir / "references.csv").write_text(
        "brand,product_id,product_name,image,price,currency\n"
        "Acme,tote,Acme Tote,acme/tote_front.png,399,USD\n"
        "Acme,wallet,Acme Wallet,acme/wallet.png,150,USD\n"
        "Globex,watch,Globex Watch,globex/watch.png,1200,EUR\n", encoding="utf-8")
    detector = Detector(build_index(Catalog.from_dir(catalog_dir), "perceptual"), verifier=None)
    photos = root / "listings"
    photos.mkdir()

    def copy_photo(name: str, out: str, edit=None) -> Path:
        with Image.open(catalog_dir / name) as image:
            image = image.convert("RGB")
            (edit(image) if edit else image).save(photos / out, quality=85)
        return photos / out

    textured_image(77).save(photos / "other.png")
    textured_image(78, (200, 300)).save(photos / "second.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    listings = [
        Listing([copy_photo("acme/tote_front.png", "tote1.jpg", ImageOps.mirror), photos / "second.png"],
                title=f"Acme tote 1:1 {XSS}", price=45, currency="USD", seller="shop123", listing_id="L-tote-replica"),
        Listing([copy_photo("acme/wallet.png", "wallet.jpg")], title="=cmd|' /C calc'!A0 Akme wallet AAA", price=20,
                currency="USD", seller="=HYPERLINK(\"http://x\")", listing_id="L-wallet"),
        Listing([copy_photo("globex/watch.png", "watch.jpg")], title="Globex watch", price=1100, currency="EUR",
                seller="globex_shop", listing_id="L-watch-ok"),
        Listing([copy_photo("acme/tote_front.png", "tote2.jpg")], title="Acme tote", price=390, currency="USD",
                seller="acme_store", listing_id="L-tote-ok"),
        Listing([photos / "other.png"], title="a lamp \"quoted\" 'single'", seller="shop123", listing_id="L-lamp"),
        Listing([photos / "broken.jpg"], title="broken", listing_id="L-broken"),
    ]
    rows = [detector.check(listing).to_dict() for listing in listings]
    by_id = {row["listing_id"]: row for row in rows}
    assert [by_id[i]["verdict"] for i in ("L-tote-replica", "L-wallet", "L-watch-ok", "L-lamp", "L-broken")] == [
        "suspect", "suspect", "authorized", "no_match", "error"]
    # As geometric verification reports it: the matched region, in the listing photo's pixels.
    by_id["L-tote-replica"]["match"]["verification"] = {
        "verified": True, "inliers": 57, "pixel_agreement": 0.93, "reference_coverage": 0.8,
        "reference_box": [[40, 30], [220, 40], [210, 230], [30, 215]], "listing_size": [256, 256]}
    # A no_match row with its nearest reference (the detector keeps it when a candidate was below the bar).
    by_id["L-lamp"]["match"] = dict(by_id["L-watch-ok"]["match"], tier=None, similarity=0.31)
    rows.append(_review_row(by_id["L-tote-ok"]))
    out = root / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or ()), list(reader)


def _page_data(page: str) -> dict:
    """The meta and rows a one-file page carries (parsed from its KO.* calls)."""
    meta = json.loads(re.search(r"KO\.setMeta\((.*?)\);</script>", page).group(1))
    index = [r for m in re.finditer(r"KO\.index\(\d+,(.*?)\);</script>", page) for r in json.loads(m.group(1))]
    detail = [r for m in re.finditer(r"KO\.detail\(\d+,(.*?)\);</script>", page) for r in json.loads(m.group(1))]
    return {"meta": meta, "index": index, "detail": detail}


# -- reading ---------------------------------------------------------------------------------------------------


def test_read_results_from_dir_or_file(scan_dir):
    assert [r["listing_id"] for r in read_results(scan_dir)] == [
        r["listing_id"] for r in read_results(scan_dir / "results.jsonl")]
    assert len(read_results(scan_dir)) == 7


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    lines = [json.dumps({"listing_id": "a", "verdict": "no_match", "risk": 0.0}),
             json.dumps({"listing_id": "b", "verdict": "suspect", "risk": 0.9})]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + '\n{"listing_id": "c", "verd', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.results"):
        rows = read_results(path)
    assert [r["listing_id"] for r in rows] == ["a", "b"]
    assert "line 3" in caplog.text and "torn" in caplog.text


def test_duplicate_listing_last_line_wins_and_unknown_schema_warns(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    path.write_text(
        json.dumps({"listing_id": "a", "verdict": "error", "risk": 0.0}) + "\n\n"
        + json.dumps({"listing_id": "b", "verdict": "no_match", "risk": 0.0, "schema": 9}) + "\n"
        + json.dumps({"listing_id": "a", "verdict": "suspect", "risk": 0.8, "schema": 2}) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.results"):
        rows = read_results(path)
    assert {r["listing_id"]: r["verdict"] for r in rows} == {"a": "suspect", "b": "no_match"}
    assert "1 lines have a schema" in caplog.text


def test_missing_results_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no results file"):
        read_results(tmp_path)


# -- what the reports say about a listing ------------------------------------------------------------------------


def test_entry_states_price_note_and_brand_only_for_matches(scan_dir):
    entries = {e.listing_id: e for e in map(entry_from_result, read_results(scan_dir))}
    review, lamp, tote = entries["L-review"], entries["L-lamp"], entries["L-tote-replica"]
    assert review.signal_state("UNAUTHORIZED_SELLER") == "unknown" and review.price_note == UNCOMPARABLE
    assert review.price_ratio is None and review.brand == "Acme"
    assert lamp.brand == "" and lamp.match["brand"] == "Globex" and not lamp.matched  # nearest, not a match
    assert lamp.signal_state("UNAUTHORIZED_SELLER") == NOT_CHECKED
    assert tote.signal_state("UNAUTHORIZED_SELLER") == "hit" and tote.price_ratio == pytest.approx(45 / 399, abs=1e-3)
    assert len(tote.images) == 2 and tote.listing_image.endswith("tote1.jpg")


# -- CSV -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("plain", "plain"), (None, ""), (0.5, 0.5), ("a=b", "a=b"),
])
def test_csv_cell_neutralises_formulas(value, expected):
    assert cell(value) == expected


def test_csv_columns_order_states_and_truth(scan_dir, tmp_path):
    header, rows = _csv_rows(write_csv(read_results(scan_dir), tmp_path / "results.csv"))
    assert header[:len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert {"signal_VISUAL_MATCH", "signal_UNAUTHORIZED_SELLER", "signal_PRICE_IMPLAUSIBLE"} <= set(header)
    assert [r["verdict"] for r in rows] == ["suspect", "suspect", "review", "authorized", "authorized", "no_match",
                                            "error"]
    risks = [float(r["risk"]) for r in rows[:2]]
    assert risks == sorted(risks, reverse=True)
    by_id = {r["listing_id"]: r for r in rows}
    tote = by_id["L-tote-replica"]
    assert tote["brand"] == "Acme" and tote["product_id"] == "tote" and tote["title"] == f"Acme tote 1:1 {XSS}"
    assert tote["signal_UNAUTHORIZED_SELLER"] == "hit" and tote["price_ratio"] == "0.1128"
    assert "seller shop123 is not an authorized Acme seller" in tote["reasons"]
    review = by_id["L-review"]
    assert review["signal_UNAUTHORIZED_SELLER"] == "unknown" and review["price_note"] == UNCOMPARABLE
    assert "UNAUTHORIZED_SELLER unknown: the listing names no seller" in review["signals"]
    lamp = by_id["L-lamp"]  # its nearest reference is no match: no brand, no product, no reference price
    assert lamp["brand"] == lamp["product_id"] == lamp["reference_price"] == ""
    assert lamp["nearest_reference"].endswith("watch.png") and lamp["signal_UNAUTHORIZED_SELLER"] == NOT_CHECKED
    assert by_id["L-broken"]["error"] and by_id["L-broken"]["signal_VISUAL_MATCH"] == NOT_CHECKED
    wallet = by_id["L-wallet"]
    assert wallet["seller"].startswith("'=HYPERLINK") and wallet["title"].startswith("'=cmd")
