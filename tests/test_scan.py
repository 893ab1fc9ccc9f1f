import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from knockoff import Catalog, Detector, build_index
from knockoff.catalog.readers import listings_from_images
from knockoff.cli.app import main
from knockoff.catalog.images import iter_image_files
from knockoff.run.scan import collect_listings, scan

from conftest import textured_image, write_csv

BAD_FILES = {
    "bad/corrupt.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(300), "damaged"),
    "bad/empty.jpg": (b"", "empty"),
    "bad/notes.jpg": (b"shopping list: eggs, milk", "not an image"),
}


def _make_folder(root: Path, catalog_dir: Path, n: int) -> None:
    refs = sorted((catalog_dir).rglob("*.png"))
    for i in range(n):
        sub = root / f"shop{i % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            with Image.open(refs[i % len(refs)]) as ref:
                copy = ImageOps.mirror(ref.convert("RGB")) if i % 2 else ref.convert("RGB").resize((180, 180))
            copy.save(sub / f"l{i:04d}.jpg", quality=85)
        else:
            textured_image(1000 + i, (96, 96)).save(sub / f"l{i:04d}.jpg", quality=85)
    for name, (content, _) in BAD_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    full = root / "bad" / "full.jpg"
    textured_image(7, (200, 200)).save(full, quality=90)
    data = full.read_bytes()
    (root / "bad" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    full.unlink()
    textured_image(8, (96, 96)).save(root / "bad" / "mislabeled.jpg", format="PNG")  # PNG bytes named .jpg


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_killed_scan_resumes_with_every_listing_once(catalog_dir, tmp_path):
    folder = tmp_path / "listings"
    _make_folder(folder, catalog_dir, 240)
    index_dir = build_index(Catalog.from_dir(catalog_dir), "perceptual").save(tmp_path / "brand.index")
    out = tmp_path / "scan"
    args = ["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--workers", "1", "--batch-size", "4",
            "--no-progress", "--no-report"]
    proc = subprocess.Popen([sys.executable, "-c", f"from knockoff.cli.app import main; main({args!r})"])
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_bytes().count(b"\n") >= 40:
            break
        assert proc.poll() is None, "the scan ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = results.read_bytes().count(b"\n")
    assert 40 <= partial < 246, "the scan should be killed part-way"

    # bare photos carry no seller, price or title: a matched one cannot be checked, so it is review (exit 1)
    assert main(args) == 1
    rows = _lines(results)
    ids = Counter(r["listing_id"] for r in rows)
    expected_ids = {p.relative_to(folder).as_posix() for p in iter_image_files(folder)}
    assert set(ids) == expected_ids and max(ids.values()) == 1 and len(rows) == 245

    by_id = {r["listing_id"]: r for r in rows}
    for name, (_, problem) in BAD_FILES.items():
        assert by_id[name]["verdict"] == "error" and problem in by_id[name]["error"] and name in by_id[name]["error"]
    assert by_id["bad/truncated.jpg"]["verdict"] == "error" and "truncated" in by_id["bad/truncated.jpg"]["error"]
    assert by_id["bad/mislabeled.jpg"]["verdict"] != "error"

    # every verdict equals a direct check of the same listing
    detector = Detector(__import__("knockoff").ReferenceIndex.load(index_dir))
    for listing in listings_from_images(iter_image_files(folder), folder):
        direct = detector.check(listing)
        assert by_id[listing.listing_id]["verdict"] == direct.verdict, listing.listing_id
    copies = [r for r in rows if r["listing_id"].startswith("shop") and int(r["listing_id"][-8:-4]) % 3 == 0]
    assert copies and all(r["verdict"] != "no_match" for r in copies)


def test_rerun_on_a_finished_scan_retries_only_the_errors(catalog_dir, tmp_path):
    folder = tmp_path / "listings"
    _make_folder(folder, catalog_dir, 12)
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    first = scan(folder, index, tmp_path / "out", workers=0, batch_size=4)
    assert first.decided == 17 and first.already_done == 0 and first.counts["error"] == 4
    with (tmp_path / "out" / "results.jsonl").open("a") as handle:
        handle.write('{"listing_id": "torn')  # a torn line from a killed writer
    again = scan(folder, index, tmp_path / "out", workers=0)
    # error verdicts are retried (a fixed file gets judged); the rest stands
    assert again.decided == 4 and again.redecided == {"error": 4} and again.already_done == 13
    assert again.counts == first.counts
    assert len(_lines(tmp_path / "out" / "results.jsonl")) == 17
    textured_image(9, (96, 96)).save(folder / "bad" / "empty.jpg")  # the empty file is fixed
    fixed = scan(folder, index, tmp_path / "out", workers=0)
    assert fixed.decided == 4 and fixed.counts["error"] == 3 and len(_lines(fixed.results_path)) == 17


def test_listings_csv_is_joined_and_bad_rows_reported(catalog_dir, tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    with Image.open(catalog_dir / "acme" / "tote_front.png") as ref:
        ref.convert("RGB").save(folder / "a.jpg")
    textured_image(50).save(folder / "b.jpg")
    write_csv(folder / "listings.csv", ["listing_id", "image", "title", "price", "currency", "seller"], [
        ["L1", "a.jpg;b.jpg", "Acme tote AAA", "45", "USD", "shop123"],
        ["L2", "missing.jpg", "", "", "", ""],
        ["L3", "../escape.jpg", "", "", "", ""],
    ])
    collected = collect_listings(folder)
    bad = collected.bad_rows
    assert [l.listing_id for l in collected.listings] == ["L1", "L2"] and len(bad) == 1 and "escapes" in bad[0]
    summary = scan(folder, build_index(Catalog.from_dir(catalog_dir), "perceptual"), tmp_path / "out", workers=0)
    rows = {r["listing_id"]: r for r in _lines(summary.results_path)}
    assert rows["L1"]["verdict"] == "suspect" and rows["L1"]["match"]["product_id"] == "tote"
    assert rows["L2"]["verdict"] == "error" and "missing.jpg" in rows["L2"]["error"]
    assert [Path(p).name for p in summary.missing_photos] == ["missing.jpg"] and summary.unlisted_photos == ()


def test_the_local_scan_does_not_import_the_ray_scan():
    code = "import sys, knockoff.run.scan; print('knockoff.run.ray_scan' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_scan_refuses_an_out_dir_of_another_index(catalog_dir, tmp_path):
    folder = tmp_path / "listings"
    _make_folder(folder, catalog_dir, 3)
    catalog = Catalog.from_dir(catalog_dir)
    scan(folder, build_index(catalog, "perceptual"), tmp_path / "out", workers=0)
    with pytest.raises(Exception, match="another index"):
        scan(folder, build_index(catalog, "test-pixels"), tmp_path / "out", workers=0)
