"""Reports: results.jsonl -> results.csv and report.html (and the page checked in headless Chromium)."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import shutil
import socket
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from knockoff import Catalog, Detector, Listing, build_index
from knockoff.report.render import (
    CSV_COLUMNS,
    ReportError,
    make_thumbnail,
    read_results,
    write_csv,
    write_html,
    write_reports,
)

from conftest import textured_image

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory) -> Path:
    """A scan output directory with real results: suspects, authorized, no_match, error; photos beside it."""
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

    def copy(name: str, out: str, edit=None) -> Path:
        with Image.open(catalog_dir / name) as image:
            image = image.convert("RGB")
            image = edit(image) if edit else image
            image.save(photos / out, quality=85)
        return photos / out

    listings = [
        Listing([copy("acme/tote_front.png", "tote1.jpg", ImageOps.mirror)], title=f"Acme tote 1:1 {XSS}",
                price=45, currency="USD", seller="shop123", listing_id="L-tote-replica"),
        Listing([copy("acme/wallet.png", "wallet.jpg")], title="Akme wallet AAA", price=20, currency="USD",
                seller="=HYPERLINK(\"http://x\")", listing_id="L-wallet"),
        Listing([copy("globex/watch.png", "watch.jpg")], title="Globex watch", price=1100, currency="EUR",
                seller="globex_shop", listing_id="L-watch-ok"),
        Listing([copy("acme/tote_front.png", "tote2.jpg")], title="Acme tote", price=390, currency="USD",
                seller="acme_store", listing_id="L-tote-ok"),
    ]
    textured_image(77).save(photos / "other.png")
    listings.append(Listing([photos / "other.png"], title="a lamp", listing_id="L-lamp"))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    listings.append(Listing([photos / "broken.jpg"], title="broken", listing_id="L-broken"))

    rows = [detector.check(listing).to_dict() for listing in listings]
    by_id = {row["listing_id"]: row for row in rows}
    assert by_id["L-tote-replica"]["verdict"] == "suspect"
    assert by_id["L-wallet"]["verdict"] == "suspect"
    assert by_id["L-watch-ok"]["verdict"] == "authorized"
    assert by_id["L-lamp"]["verdict"] == "no_match"
    assert by_id["L-broken"]["verdict"] == "error"
    # As geometric verification reports it: the matched region, in the listing photo's pixels.
    by_id["L-tote-replica"]["match"]["verification"] = {
        "verified": True, "inliers": 57, "reference_box": [[40, 30], [220, 40], [210, 230], [30, 215]],
    }
    out = root / "out"
    out.mkdir()
    with (out / "results.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return out


def _decode_data_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


# -- reading ---------------------------------------------------------------------------------------------------


def test_read_results_from_dir_or_file(scan_dir):
    assert [r["listing_id"] for r in read_results(scan_dir)] == [
        r["listing_id"] for r in read_results(scan_dir / "results.jsonl")]
    assert len(read_results(scan_dir)) == 6


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    lines = [json.dumps({"listing_id": "a", "verdict": "no_match", "risk": 0.0}),
             json.dumps({"listing_id": "b", "verdict": "suspect", "risk": 0.9})]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + '\n{"listing_id": "c", "verd', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.render"):
        rows = read_results(path)
    assert [r["listing_id"] for r in rows] == ["a", "b"]
    assert "line 3" in caplog.text and "torn" in caplog.text


def test_duplicate_listing_last_line_wins_and_blank_lines_are_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(
        json.dumps({"listing_id": "a", "verdict": "error", "risk": 0.0}) + "\n\n"
        + json.dumps({"listing_id": "b", "verdict": "no_match", "risk": 0.0}) + "\n"
        + json.dumps({"listing_id": "a", "verdict": "suspect", "risk": 0.8}) + "\n", encoding="utf-8")
    rows = read_results(path)
    assert len(rows) == 2
    assert {r["listing_id"]: r["verdict"] for r in rows} == {"a": "suspect", "b": "no_match"}


def test_missing_results_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no results file"):
        read_results(tmp_path)


# -- CSV -------------------------------------------------------------------------------------------------------


def test_csv_columns_order_and_content(scan_dir, tmp_path):
    path = write_csv(read_results(scan_dir), tmp_path / "results.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    ids = [r["listing_id"] for r in rows]
    assert ids[:2] == sorted(ids[:2], key=lambda i: -float(next(r["risk"] for r in rows if r["listing_id"] == i)))
    assert [r["verdict"] for r in rows] == ["suspect", "suspect", "authorized", "authorized", "no_match", "error"]
    risks = [float(r["risk"]) for r in rows[:2]]
    assert risks == sorted(risks, reverse=True)
    tote = next(r for r in rows if r["listing_id"] == "L-tote-replica")
    assert tote["brand"] == "Acme" and tote["product_id"] == "tote" and tote["tier"] == "near-copy"
    assert tote["price"] == "45.0" and tote["currency"] == "USD" and tote["reference_price"] == "399.0"
    assert tote["seller"] == "shop123" and tote["title"] == f"Acme tote 1:1 {XSS}"
    assert tote["listing_image"].endswith("tote1.jpg") and tote["reference_image"].endswith("tote_front.png")
    assert " | " in tote["reasons"] and "seller shop123 is not an authorized Acme seller" in tote["reasons"]
    broken = next(r for r in rows if r["listing_id"] == "L-broken")
    assert broken["error"] and broken["brand"] == "" and broken["similarity"] == ""
    # A cell that a spreadsheet would run as a formula is neutralised.
    wallet = next(r for r in rows if r["listing_id"] == "L-wallet")
    assert wallet["seller"].startswith("'=HYPERLINK")


# -- HTML ------------------------------------------------------------------------------------------------------


def test_html_escapes_user_strings_and_is_self_contained(scan_dir, tmp_path):
    results = read_results(scan_dir)
    results[0]["listing"]["seller"] = '"><img src=x onerror=alert(2)>'
    results[0]["match"]["brand"] = 'Ac"me<b>'
    page = write_html(results, tmp_path / "report.html").read_text(encoding="utf-8")
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert 'data-brand="Ac&quot;me&lt;b&gt;"' in page
    assert page.count("<script>") == 1  # only ours
    assert "http://" not in page.replace('http://x', '') and "https://" not in page  # no external assets
    assert 'src="data:image/jpeg;base64,' in page


def test_html_rows_summary_and_filters(scan_dir, tmp_path):
    page = write_html(read_results(scan_dir), tmp_path / "report.html").read_text(encoding="utf-8")
    order = [page.index(f'data-verdict="{v}"') for v in ("suspect", "authorized", "no_match", "error")]
    assert order == sorted(order)
    assert page.count('class="row ') == 6
    assert 'id="f-brand"' in page and 'id="f-verdict"' in page
    assert '<option value="Acme">Acme</option>' in page and '<option value="Globex">Globex</option>' in page
    summary = page[page.index('id="summary"'):page.index('id="per-brand"')]
    assert "<b>2</b><span>suspect</span>" in summary and "<b>1</b><span>errors</span>" in summary
    assert "reference 399 USD (11%)" in page
    assert "57 matched keypoints" in page


def test_thumbnail_of_missing_or_broken_photo_is_a_placeholder(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    for path in (None, tmp_path / "nope.jpg", tmp_path / "bad.jpg"):
        uri, problem = make_thumbnail(path, 64)
        assert problem
        with _decode_data_uri(uri) as image:
            assert image.size == (64, 64)
            assert image.getpixel((32, 5)) == pytest.approx((200, 200, 200), abs=6)


def test_thumbnail_draws_the_verified_region_scaled(tmp_path):
    Image.new("RGB", (400, 200), (255, 255, 255)).save(tmp_path / "white.png")
    box = [[100, 50], [300, 50], [300, 150], [100, 150]]  # in the 400x200 photo
    uri, problem = make_thumbnail(tmp_path / "white.png", 100, box=box)
    assert problem is None
    with _decode_data_uri(uri) as image:
        assert image.size == (100, 50)
        r, g, b = image.getpixel((50, 13))  # top edge at y = 50 / 4
        assert r > 180 and g < 120 and b > 120
        assert image.getpixel((50, 25)) == pytest.approx((255, 255, 255), abs=8)  # inside stays clear


@pytest.mark.parametrize("frame", [None, "ab", [0, 0], ["x", 1]])
def test_thumbnail_ignores_a_bad_box_frame(tmp_path, frame):
    Image.new("RGB", (400, 200), (255, 255, 255)).save(tmp_path / "white.png")
    uri, problem = make_thumbnail(tmp_path / "white.png", 100, box=[[0, 0], [400, 0], [400, 200], [0, 200]],
                                  box_frame=frame)
    assert problem is None
    with _decode_data_uri(uri) as image:
        assert image.size == (100, 50)


def test_failed_verification_draws_no_box_and_says_why(scan_dir, tmp_path):
    results = read_results(scan_dir)
    row = next(r for r in results if r["listing_id"] == "L-tote-replica")
    row["match"]["verification"] = {"verified": False, "failed_check": "too few inliers (5 < 12)", "inliers": 5,
                                    "reference_box": [[0, 0], [255, 0], [255, 255], [0, 255]]}
    page = write_html([row], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "geometric check failed: too few inliers (5 &lt; 12)" in page
    boxed, _ = make_thumbnail(row["match"]["listing_image"], 160, box=[[0, 0], [255, 0], [255, 255], [0, 255]])
    plain, _ = make_thumbnail(row["match"]["listing_image"], 160)
    assert plain in page and boxed not in page


def test_page_limits_keep_large_scans_small(tmp_path):
    rows = [{"listing_id": f"L{i:05d}", "verdict": "no_match", "risk": 0.0, "match": None, "reasons": [],
             "listing": {"images": [str(tmp_path / "missing.jpg")], "title": f"t{i}"}} for i in range(300)]
    page = write_html(rows, tmp_path / "r.html", max_rows=100, max_thumbnails=10).read_text(encoding="utf-8")
    assert page.count('class="row ') == 100
    assert page.count("data:image/jpeg") == 10
    assert "first 100 of 300 listings" in page and "<b>300</b><span>listings</span>" in page


def test_write_reports_writes_both_files(scan_dir):
    csv_path, html_path = write_reports(scan_dir)
    assert csv_path == scan_dir / "results.csv" and html_path == scan_dir / "report.html"
    assert csv_path.read_text(encoding="utf-8").count("\n") == 7
    assert html_path.stat().st_size > 1000
    assert not list(scan_dir.glob(".*.tmp"))


# -- in a real browser -----------------------------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first_existing(paths) -> str | None:
    return next((p for p in paths if Path(p).exists()), None) or None


@pytest.mark.slow
def test_report_in_headless_chromium(scan_dir, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (.ci/install-browser.sh)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    chromium = _first_existing(CHROMIUM_CANDIDATES) or shutil.which("chromium")
    driver_path = _first_existing(CHROMEDRIVER_CANDIDATES) or shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    _, html_path = write_reports(scan_dir)

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1400"):
        options.add_argument(flag)
    with socket.socket() as probe:  # a free port for chromedriver, so selenium never looks for one itself
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = Service(executable_path=driver_path, port=port, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        browser.set_page_load_timeout(30)
        browser.get(html_path.resolve().as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.row")
        assert len(rows) == 6
        assert [r.get_attribute("data-verdict") for r in rows] == [
            "suspect", "suspect", "authorized", "authorized", "no_match", "error"]
        risks = [float(r.get_attribute("data-risk")) for r in rows]
        assert risks[:2] == sorted(risks[:2], reverse=True) and min(risks[:2]) > max(risks[2:])
        images = browser.find_elements(By.CSS_SELECTOR, "img.thumb")
        with_match = sum(1 for r in read_results(scan_dir) if r["match"])
        assert len(images) == 6 + with_match  # every listing photo; the reference photo of every match
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('img.thumb')).map("
            "i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width])")
        assert all(complete and natural > 0 and shown > 0 for complete, natural, shown in sizes), sizes
        assert XSS in rows[0].text or XSS in rows[1].text  # shown as text, not run
        assert browser.execute_script("return document.title") == "knockoff report"
        shot = tmp_path / "report.png"
        browser.save_screenshot(str(shot))

        Select(browser.find_element(By.ID, "f-brand")).select_by_value("Globex")
        visible = [r.get_attribute("data-listing") for r in rows if r.is_displayed()]
        globex = [r["listing_id"] for r in read_results(scan_dir) if (r["match"] or {}).get("brand") == "Globex"]
        assert "L-watch-ok" in visible and sorted(visible) == sorted(globex)
        Select(browser.find_element(By.ID, "f-brand")).select_by_value("*")
        Select(browser.find_element(By.ID, "f-verdict")).select_by_value("suspect")
        visible = [r.get_attribute("data-verdict") for r in rows if r.is_displayed()]
        assert visible == ["suspect", "suspect"]
        assert browser.find_element(By.ID, "shown").text == "2 of 6 rows shown"
        Select(browser.find_element(By.ID, "f-brand")).select_by_value("Globex")
        assert not [r for r in rows if r.is_displayed()]
        browser.save_screenshot(str(tmp_path / "report_filtered.png"))
    finally:
        browser.quit()
