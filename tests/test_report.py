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


def _photo_text_signal(image: str) -> dict:
    """A BRAND_IN_PHOTO hit as the detector writes it: the mention, and the boxes read in a 512-px decode."""
    boxes = [{"text": "ACME", "score": 0.98, "box": [[100, 60], [300, 60], [300, 120], [100, 120]]},
             {"text": "Sommarfil 1,5 L", "score": 0.9, "box": [[80, 400], [420, 400], [420, 440], [80, 440]]}]
    mention = {"brand": "Acme", "how": "exact", "read": "ACME", "spelling": "Acme", "distance": 0, "score": 0.98,
               "photo": 0, "boxes": [0]}
    return {"code": "BRAND_IN_PHOTO", "state": "hit", "message": "the photo shows 'ACME'",
            "details": {"brand": "Acme", "mentions": [mention], "photo_text": [
                {"photo": 0, "image": image, "size": [512, 512], "engine": "rapidocr", "unavailable": None,
                 "boxes": boxes}]}}


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
    tote = by_id["L-tote-replica"]  # as with Policy.text on: the text read from its first photo
    tote["signals"].append(_photo_text_signal(tote["listing"]["images"][0]))
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
    meta = json.loads(re.search(r"KO\.setMeta\((.*?)\);\s*</script>", page).group(1))
    index = [r for m in re.finditer(r"KO\.index\(\d+,(.*?)\);\s*</script>", page) for r in json.loads(m.group(1))]
    detail = [r for m in re.finditer(r"KO\.detail\(\d+,(.*?)\);\s*</script>", page) for r in json.loads(m.group(1))]
    return {"meta": meta, "index": index, "detail": detail}


# -- reading ---------------------------------------------------------------------------------------------------


def test_read_results_from_dir_or_file(scan_dir):
    assert [r.listing_id for r in read_results(scan_dir)] == [
        r.listing_id for r in read_results(scan_dir / "results.jsonl")]
    assert len(read_results(scan_dir)) == 7


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    lines = [json.dumps({"listing_id": "a", "verdict": "no_match", "risk": 0.0}),
             json.dumps({"listing_id": "b", "verdict": "suspect", "risk": 0.9})]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + '\n{"listing_id": "c", "verd', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.results"):
        rows = read_results(path)
    assert [r.listing_id for r in rows] == ["a", "b"]
    assert "line 3" in caplog.text and "torn" in caplog.text


def test_duplicate_listing_last_line_wins_and_unknown_schema_warns(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    path.write_text(
        json.dumps({"listing_id": "a", "verdict": "error", "risk": 0.0}) + "\n\n"
        + json.dumps({"listing_id": "b", "verdict": "no_match", "risk": 0.0, "schema": 9}) + "\n"
        + json.dumps({"listing_id": "a", "verdict": "suspect", "risk": 0.8, "schema": 2}) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.results"):
        rows = read_results(path)
    assert {r.listing_id: r.verdict for r in rows} == {"a": "suspect", "b": "no_match"}
    assert "1 lines have a schema" in caplog.text


@pytest.mark.parametrize("bad, why", [
    ({"listing_id": "x", "verdict": "maybe", "risk": 0.1}, "verdict must be one of"),
    ({"listing_id": "x", "verdict": "suspect", "risk": 1.5}, "risk must be in [0, 1]"),
    ({"listing_id": "x", "verdict": "suspect", "risk": 0.5, "colour": "red"}, "unknown field(s) colour"),
    ({"listing_id": "x", "verdict": "suspect"}, "field 'risk' is missing"),
    ({"verdict": "suspect", "risk": 0.5}, "no listing_id"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_a_malformed_line_is_skipped_naming_file_and_line(tmp_path, caplog, bad, why):
    good = {"listing_id": "a", "verdict": "no_match", "risk": 0.0, "schema": 2}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.results"):
        files = write_reports(tmp_path)
    assert f"{path}, line 2: skipped" in caplog.text and why in caplog.text
    _, rows = _csv_rows(files.csv)
    assert [r["listing_id"] for r in rows] == ["a"]


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


# -- the page's HTML and data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [XSS, "</script><script>alert(2)</script>", "<!-- x", "a\u2028b", "&amp;"])
def test_js_json_cannot_end_a_script_element(text):
    encoded = js_json({"t": text})
    assert "<" not in encoded and ">" not in encoded and "&" not in encoded and "\u2028" not in encoded
    assert json.loads(encoded) == {"t": text}


def test_one_file_page_escapes_and_tells_the_truth(scan_dir, tmp_path):
    results = [v.to_dict() for v in read_results(scan_dir)]
    results[0]["listing"]["seller"] = '"><img src=x onerror=alert(2)>'
    out = tmp_path / "scan"
    out.mkdir()
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results), encoding="utf-8")
    files = write_reports(out, base_dir=scan_dir)
    page = files.html.read_text(encoding="utf-8")
    assert files.folder is None and not (out / "report").exists()
    assert XSS not in page and "<img src=x" not in page and "alert(1)" in page  # only inside escaped JSON
    assert page.count("<script") == page.count("</script>") == 2 + 1 + 1 + 1 + 1  # ours only
    assert "http://" not in page.replace("http://x", "").replace("http://www.w3.org/2000/svg", "")
    per_brand = page[page.index('id="per-brand"'):page.index("</table>", page.index('id="per-brand"'))]
    assert "<td>Acme</td><td>2</td><td>1</td><td>1</td><td>4</td>" in per_brand
    assert "<td>Globex</td><td>0</td><td>0</td><td>1</td><td>1</td>" in per_brand  # not the lamp's nearest
    data = _page_data(page)
    index = {row[0]: row for row in data["index"]}
    lamp = data["detail"][list(index).index("L-lamp")]
    assert "m" not in lamp and lamp["n"]["b"] == "Globex" and index["L-lamp"][3] == -1
    review = data["detail"][list(index).index("L-review")]
    assert review["pr"][2] == UNCOMPARABLE and ["UNAUTHORIZED_SELLER", "unknown", "the listing names no seller"] in review["s"]
    tote = data["detail"][list(index).index("L-tote-replica")]
    assert len(tote["p"]) == 2 and tote["m"]["ver"]["box"][0] == [40.0, 30.0] and tote["m"]["ver"]["fr"] == [256, 256]
    assert all(p[0] in page for p in tote["p"])  # both photos' thumbnails inline
    assert data["meta"]["verdicts"] == ["suspect", "review", "authorized", "no_match", "error"]


def test_failed_verification_draws_no_box(scan_dir, tmp_path):
    results = [v.to_dict() for v in read_results(scan_dir)]
    row = next(r for r in results if r["listing_id"] == "L-tote-replica")
    row["match"]["verification"] = {"verified": False, "failed_check": "too few inliers (5 < 12)", "inliers": 5,
                                    "reference_box": [[0, 0], [255, 0], [255, 255], [0, 255]]}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    data = _page_data(write_reports(tmp_path).html.read_text(encoding="utf-8"))
    ver = data["detail"][0]["m"]["ver"]
    assert ver["ok"] is False and "box" not in ver and ver["fail"] == "too few inliers (5 < 12)"


def test_text_read_is_searchable_and_its_boxes_go_to_their_photo(scan_dir, tmp_path):
    entries = {e.listing_id: e for e in map(entry_from_result, read_results(scan_dir))}
    tote = entries["L-tote-replica"]
    assert tote.photo_text == "ACME Sommarfil 1,5 L"  # the text of the boxes, not the entries' repr
    (image, width, height, boxes, hits), = tote.text_boxes
    assert image == tote.images[0] and (width, height) == (512, 512) and hits == (0,)
    assert boxes[1] == ((80, 400, 420, 400, 420, 440, 80, 440), "Sommarfil 1,5 L")
    assert all(not e.text_boxes and not e.photo_text for i, e in entries.items() if i != "L-tote-replica")
    (tmp_path / "results.jsonl").write_bytes((scan_dir / "results.jsonl").read_bytes())
    data = _page_data(write_reports(tmp_path, base_dir=scan_dir).html.read_text(encoding="utf-8"))
    index = {row[0]: row for row in data["index"]}
    assert index["L-tote-replica"][8] == "ACME Sommarfil 1,5 L"
    details = dict(zip(index, data["detail"]))
    assert details["L-tote-replica"]["t"] == [[0, 512, 512, [[100, 60, 300, 60, 300, 120, 100, 120, "ACME"],
                                                             [80, 400, 420, 400, 420, 440, 80, 440, "Sommarfil 1,5 L"]],
                                               [0]]]
    assert all("t" not in d for i, d in details.items() if i != "L-tote-replica")  # no bytes for listings without


@pytest.mark.parametrize("details, text, drawn", [
    ({"ocr_text": "  Abibas  "}, "Abibas", 0),
    ({"photo_text": ["FUMA", "", "3"]}, "FUMA 3", 0),
    ({"photo_text": [{"image": "a.jpg", "size": [10, 10], "boxes": [{"text": "X", "box": [[0, 0], [1, 0]]}]}]}, "X", 0),
    ({"photo_text": [{"image": "a.jpg", "size": None, "boxes": [{"text": "Y", "box": [[0, 0]] * 4}]}]}, "Y", 0),
    ({"photo_text": [{"image": "a.jpg", "size": [10, 10], "boxes": [{"text": "Z", "box": [[0, 0]] * 4}]}]}, "Z", 1),
    ({"photo_text": [{"image": "a.jpg", "size": [10, 10], "boxes": []}]}, "", 0),
])
def test_photo_text_shapes(details, text, drawn):
    from knockoff.decide.verdict import Verdict

    row = {"listing_id": "x", "verdict": "no_match", "risk": 0.0, "match": None, "reasons": [], "engine": "e",
           "signals": [{"code": "BRAND_IN_PHOTO", "state": "clear", "message": "m", "details": details}],
           "listing": None, "skipped_images": [], "error": None}
    entry = entry_from_result(Verdict.from_dict(row))
    assert entry.photo_text == text and len(entry.text_boxes) == drawn


def _synthetic(n: int, photo: Path) -> list[dict]:
    rows = []
    for i in range(n):
        verdict = ("suspect", "review", "authorized", "no_match", "error")[i % 5]
        match = None if verdict in ("no_match", "error") else {
            "brand": f"Brand{i % 7}", "product_id": f"p{i % 50}", "product_name": f"Product {i % 50}",
            "reference_image": str(photo), "reference_label": "brand/ref.png", "similarity": 0.93, "tier": "near-copy",
            "listing_image": str(photo), "reference_price": 120.0, "reference_currency": "EUR",
            "verification": {"verified": True, "inliers": 40, "reference_box": [[1, 1], [50, 1], [50, 50], [1, 50]]}}
        signals = [{"code": c, "state": s, "message": f"{c.lower()} says something of length", "details": {}}
                   for c, s in (("VISUAL_MATCH", "hit"), ("UNAUTHORIZED_SELLER", "unknown"),
                                ("PRICE_IMPLAUSIBLE", "hit"), ("BRAND_MISUSE", "clear"), ("REPLICA_TERMS", "clear"))]
        rows.append({"schema": 2, "listing_id": f"L{i:07d}", "verdict": verdict, "risk": round((i % 100) / 100, 2),
                     "match": match, "reasons": [{"code": s["code"], "message": s["message"]} for s in signals[:3]],
                     "signals": signals if match else [], "engine": "perceptual",
                     "listing": {"listing_id": f"L{i:07d}", "images": [str(photo)], "title": f"Item {i} replica",
                                 "price": 30.0, "currency": "EUR", "seller": f"seller{i % 300}"},
                     "skipped_images": [], "error": "unreadable" if verdict == "error" else None})
    return rows


def test_folder_report_bytes_per_listing_and_thumbnail_reuse(tmp_path):
    textured_image(5).save(tmp_path / "photo.png")
    out = tmp_path / "scan"
    out.mkdir()
    n = 1_000
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _synthetic(n, tmp_path / "photo.png")),
                                       encoding="utf-8")
    files = write_reports(out)
    assert files.folder == out / "report" and files.thumbnails_made == 1  # one shared photo, made once
    data = sorted((out / "report" / "data").glob("*.js"))
    assert [p.name for p in data][:2] == ["d-00000.js", "d-00001.js"] and len(data) == 2 + n // 100
    html_and_data = files.html.stat().st_size + sum(p.stat().st_size for p in data)
    assert html_and_data / n <= 3_000, html_and_data / n
    assert len(list((out / "report" / "thumbs").rglob("*.jpg"))) == 2  # small and large
    again = write_reports(out)
    assert again.thumbnails_made == 0 and again.thumbnails_reused == 1
    assert not list(out.rglob("*.tmp")) and not (out / "report" / "data.new").exists()


def test_thumbnails_of_missing_or_broken_photos_say_why(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    Image.new("RGB", (400, 200), (255, 255, 255)).save(tmp_path / "white.png")
    thumbs = Thumbnails(tmp_path / "thumbs", None, small=40, large=100)
    for name in ("", str(tmp_path / "nope.jpg"), str(tmp_path / "bad.jpg")):
        photo = thumbs.photo(name)
        assert photo.key is None and photo.problem
    photo = thumbs.photo(str(tmp_path / "white.png"))
    assert (photo.width, photo.height, photo.problem) == (400, 200, "")
    small, large = thumbs.paths(photo.key)
    with Image.open(small) as s, Image.open(large) as big:
        assert s.size == (40, 20) and big.size == (100, 50)
    with pytest.raises(ValueError):
        Thumbnails(None, None, small=200, large=100)


# -- in a real browser -----------------------------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def open_chromium(profile: Path, downloads: Path | None = None):
    """A headless Chromium driven by selenium (skips the test when either is not installed)."""
    import shutil
    import socket

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (.ci/install-browser.sh)")
    from selenium.webdriver.chrome.service import Service

    chromium = next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None) or shutil.which("chromium")
    driver = next((p for p in CHROMEDRIVER_CANDIDATES if Path(p).exists()), None) or shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1500,1300"):
        options.add_argument(flag)
    if downloads is not None:
        # the preferences alone set the download folder: a DevTools call for it once hung chromedriver (waiting
        # for the first navigation) in a CI run
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False,
                                                  "download.directory_upgrade": True})
    with socket.socket() as probe:  # a free port for chromedriver, so selenium never looks for one itself
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver, port=port,
                                                                log_output=str(profile.parent / "chromedriver.log")))
    browser.set_page_load_timeout(60)
    return browser


def wait_for(condition, timeout: float = 10.0):
    """Poll ``condition()`` until it is truthy; its value, or an AssertionError after ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > end:
            assert value, "timed out"
            return value
        time.sleep(0.05)


class Page:
    """The report page in a browser, as a reviewer uses it."""

    def __init__(self, browser, url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        self.browser, self.url, self.By, self.Select = browser, url, By, Select

    def load(self) -> None:
        self.browser.get(self.url)
        wait_for(lambda: self.browser.execute_script("return window.KO_READY === true"))
        wait_for(lambda: not self.browser.find_elements(self.By.CSS_SELECTOR, "#rows .loading"))

    def ids(self) -> list[str]:
        return self.browser.execute_script(
            "return Array.from(document.querySelectorAll('#rows tr.row')).map(r => r.dataset.listing)")

    def select(self, element_id: str, value: str) -> None:
        self.Select(self.browser.find_element(self.By.ID, element_id)).select_by_value(value)
        wait_for(lambda: not self.browser.find_elements(self.By.CSS_SELECTOR, "#rows .loading"))

    def search(self, text: str) -> list[str]:
        box = self.browser.find_element(self.By.ID, "q")
        from selenium.webdriver.common.keys import Keys

        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)  # as typed, so that the page hears it (clear() fires no input event)
        if text:
            box.send_keys(text)
        import time

        time.sleep(0.5)  # the page searches 150 ms after the last key
        return self.ids()

    def row(self, listing_id: str):
        return self.browser.find_element(self.By.CSS_SELECTOR, f'#rows tr.row[data-listing="{listing_id}"]')


@pytest.mark.slow
def test_reviewer_uses_the_page_in_headless_chromium(scan_dir, tmp_path):
    from knockoff.report.decisions import read_decisions

    out = tmp_path / "scan"
    out.mkdir()
    (out / "results.jsonl").write_bytes((scan_dir / "results.jsonl").read_bytes())
    files = write_reports(out, one_file=False, base_dir=scan_dir)  # the folder kind: details load on demand
    results = {r.listing_id: r.to_dict() for r in read_results(scan_dir)}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = open_chromium(tmp_path / "profile", downloads)
    page = Page(browser, files.html.resolve().as_uri())
    By = page.By
    try:
        page.load()
        assert page.ids() == [r.listing_id for r in _review_order(results)]
        assert XSS in page.row("L-tote-replica").text and browser.execute_script("return document.title") == "knockoff report"
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # photos load lazily
        shown = ("return Array.from(document.querySelectorAll('img.thumb')).filter(i => !i.closest('details'))"
                 ".map(i => [i.complete, i.naturalWidth])")
        sizes = wait_for(lambda: (lambda s: s if all(d and w > 0 for d, w in s) else None)(browser.execute_script(shown)))
        assert len(sizes) == 2 * 5 + 1 + 1  # 5 matches: photo + official; the tote's 2nd photo; the lamp
        browser.execute_script("window.scrollTo(0, 0)")
        # the truth: no match first, the nearest reference folded away; review's own colour; price note
        lamp = page.row("L-lamp").find_element(By.CSS_SELECTOR, "td.match")
        assert lamp.text.startswith("no match") and "nearest reference (not a match)" in lamp.text
        assert not lamp.find_element(By.CSS_SELECTOR, "details").get_attribute("open")
        review = page.row("L-review")
        assert "review" in review.get_attribute("class") and UNCOMPARABLE in review.text
        colours = {v: browser.execute_script(f"return getComputedStyle(document.querySelector('.badge.{v}'))"
                                             ".backgroundColor") for v in ("suspect", "review", "authorized")}
        assert len(set(colours.values())) == 3
        states = [(li.get_attribute("data-code"), li.get_attribute("data-state"))
                  for li in review.find_elements(By.CSS_SELECTOR, "li.signal")]
        assert ("UNAUTHORIZED_SELLER", "unknown") in states and ("VISUAL_MATCH", "hit") in states
        browser.save_screenshot(str(tmp_path / "report.png"))
        _search_sort_filter(page, results)
        _enlarge(page)
        _decide_reload_export(page, downloads, read_decisions)
    finally:
        browser.quit()


def _review_order(results: dict) -> list:
    from knockoff.decide.verdict import Verdict
    from knockoff.report import sort_results

    return sort_results(map(Verdict.from_dict, results.values()))


def _search_sort_filter(page: Page, results: dict) -> None:
    assert page.search("lamp") == ["L-lamp"]
    assert sorted(page.search("SHOP123")) == ["L-lamp", "L-tote-replica"]  # seller, any case
    assert page.search("l-watch") == ["L-watch-ok"]  # listing id
    assert page.search("") == [r.listing_id for r in _review_order(results)]
    page.select("sort", "risk")
    risks = [float(page.row(i).get_attribute("data-risk")) for i in page.ids()]
    assert risks == sorted(risks, reverse=True)
    page.select("sort", "ratio")
    assert page.ids()[:4] == ["L-tote-replica", "L-wallet", "L-watch-ok", "L-tote-ok"]  # 11 %, 13 %, 92 %, 98 %
    page.select("sort", "seller")
    sellers = [((results[i]["listing"] or {}).get("seller") or "\uffff").lower() for i in page.ids()]
    assert sellers == sorted(sellers)
    page.select("sort", "brand")
    brands = [results[i]["match"]["brand"] if results[i]["verdict"] in ("suspect", "review", "authorized") else "~"
              for i in page.ids()]
    assert brands == sorted(brands)
    page.select("sort", "review")
    for value, verdict in enumerate(("suspect", "review", "authorized", "no_match", "error")):
        page.select("f-verdict", str(value))
        assert sorted(page.ids()) == sorted(i for i, r in results.items() if r["verdict"] == verdict)
    page.select("f-verdict", "-1")
    options = {o.text: o.get_attribute("value") for o in page.browser.find_elements(page.By.CSS_SELECTOR, "#f-brand option")}
    page.select("f-brand", options["Globex"])
    assert page.ids() == ["L-watch-ok"]  # not the lamp, whose nearest reference is a Globex photo
    page.select("f-brand", "-1")
    codes = {o.text: o.get_attribute("value") for o in page.browser.find_elements(page.By.CSS_SELECTOR, "#f-code option")}
    page.select("f-code", codes["UNAUTHORIZED_SELLER"])
    assert sorted(page.ids()) == ["L-tote-replica", "L-wallet"]
    page.select("f-code", "-1")
    page.browser.find_element(page.By.CSS_SELECTOR, 'button.seller-filter[data-seller="shop123"]').click()
    wait_for(lambda: sorted(page.ids()) == ["L-lamp", "L-tote-replica"])
    assert page.browser.find_element(page.By.ID, "shown").text == "2 of 7 listings shown"
    page.browser.find_element(page.By.ID, "f-seller").clear()
    page.browser.execute_script("document.getElementById('f-seller').dispatchEvent(new Event('change'))")
    wait_for(lambda: len(page.ids()) == 7)


def _enlarge(page: Page) -> None:
    By = page.By
    _click(page, page.row("L-tote-replica").find_element(By.CSS_SELECTOR, "td.photos .frame"))
    viewer = page.browser.find_element(By.ID, "viewer")
    wait_for(viewer.is_displayed)
    images = viewer.find_elements(By.CSS_SELECTOR, "img.large")
    assert len(images) == 2 and "official photo" in viewer.text and "57 matched keypoints" in viewer.text
    wait_for(lambda: all(page.browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 160",
                                                     i) for i in images))
    points = viewer.find_element(By.CSS_SELECTOR, "polygon").get_attribute("points")
    assert points.split() == ["40,30", "220,40", "210,230", "30,215"]
    text = viewer.find_element(By.CSS_SELECTOR, "svg.text-boxes")  # the text read, in the photo it was read in
    view = page.browser.execute_script("return arguments[0].getAttribute('viewBox')", text)
    assert view == "0 0 512 512" and "text read: ACME · Sommarfil 1,5 L" in viewer.text
    drawn = [(p.get_attribute("class"), p.get_attribute("points")) for p in text.find_elements(By.CSS_SELECTOR, "polygon")]
    assert drawn == [("tb hit", "100,60 300,60 300,120 100,120"), ("tb", "80,400 420,400 420,440 80,440")]
    frame, svg = (page.browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", e)
                  for e in (viewer.find_element(By.CSS_SELECTOR, "img.large"), text))
    assert abs(frame["width"] - svg["width"]) <= 2 and abs(frame["height"] - svg["height"]) <= 2  # scaled to it
    page.browser.save_screenshot(str(Path(page.url[len("file://"):]).parent.parent / "viewer.png"))
    page.browser.find_element(By.ID, "viewer-close").click()
    assert not viewer.is_displayed()


def _click(page: Page, element) -> None:
    """Click ``element`` once it is scrolled to the middle of the window, not under the sticky filter bar."""
    page.browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _decide_reload_export(page: Page, downloads: Path, read_decisions) -> None:
    By = page.By
    marks = {"L-tote-replica": "counterfeit", "L-watch-ok": "not_counterfeit", "L-lamp": "unsure"}
    for listing_id, decision in marks.items():
        _click(page, page.row(listing_id).find_element(By.CSS_SELECTOR, f'button[data-d="{decision}"]'))
    note = page.row("L-lamp").find_element(By.CSS_SELECTOR, "input.note")
    note.send_keys('=cmd, "a lamp"')
    _click(page, page.row("L-wallet"))  # clicked away from the note: the note is kept when it loses focus
    assert page.browser.find_element(By.ID, "decided").text == "3 decided"
    page.load()  # a reload keeps the marks
    for listing_id, decision in marks.items():
        on = page.row(listing_id).find_elements(By.CSS_SELECTOR, "button.on")
        assert [b.get_attribute("data-d") for b in on] == [decision]
    assert page.row("L-lamp").find_element(By.CSS_SELECTOR, "input.note").get_attribute("value") == '=cmd, "a lamp"'
    page.select("f-decision", "none")
    assert sorted(page.ids()) == ["L-broken", "L-review", "L-tote-ok", "L-wallet"]
    page.browser.find_element(By.ID, "export").click()
    exported = wait_for(lambda: [p for p in downloads.glob("decisions*.csv")])
    with exported[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["listing_id"]: r["decision"] for r in rows} == marks
    assert next(r for r in rows if r["listing_id"] == "L-lamp")["note"] == '\'=cmd, "a lamp"'  # formula guard
    decisions = read_decisions(exported[0], strict=True)
    assert decisions.by_listing["L-lamp"].note == '=cmd, "a lamp"' and decisions.by_listing["L-lamp"].when


@pytest.mark.parametrize("flag, folder", [("--one-file", False), ("--folder", True)])
def test_cli_report_layout(scan_dir, tmp_path, capsys, flag, folder):
    from knockoff.cli import main

    out = tmp_path / "scan"
    out.mkdir()
    (out / "results.jsonl").write_bytes((scan_dir / "results.jsonl").read_bytes())
    assert main(["report", str(out), flag, "--title", "Day 1 <b>"]) == 0
    assert (out / "report" / "data" / "meta.js").exists() == folder
    assert "<title>Day 1 &lt;b&gt;</title>" in (out / "report.html").read_text(encoding="utf-8")
    assert "7 listings" in capsys.readouterr().out
