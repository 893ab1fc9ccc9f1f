"""Scan faults found when the tool was attacked (issue 12): odd file names and files, two scans at once,
symbolic links, reruns after edits, photos nothing names, empty input, the results schema."""

import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from knockoff import Catalog, Policy, build_index
from knockoff.catalog.images import iter_image_files, looks_like_image
from knockoff.cli.app import main
from knockoff.errors import NothingToScanError, OutputLockedError, UnsafeOutputError
from knockoff.run.files import LOCK_FILE, FolderLock
from knockoff.run.scan import scan
from knockoff.run.store import ResultsStore, escape_text

from conftest import textured_image, write_csv

HEADER = ["listing_id", "image", "title", "price", "currency", "seller"]


@pytest.fixture
def index(catalog_dir):
    return build_index(Catalog.from_dir(catalog_dir), "perceptual")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def _csv_folder(root: Path, catalog_dir: Path) -> Path:
    folder = root / "dump"
    folder.mkdir()
    with Image.open(catalog_dir / "acme" / "tote_front.png") as ref:
        ref.convert("RGB").save(folder / "a.jpg")
    textured_image(50).save(folder / "b.jpg")
    textured_image(51).save(folder / "c.jpg")
    write_csv(folder / "listings.csv", HEADER, [
        ["L1", "a.jpg", "Acme tote AAA", "45", "USD", "shop123"],
        ["L2", "b.jpg", "bag", "", "", "acme_store"],
        ["L3", "c.jpg", "bag", "", "", "acme_store"],
    ])
    return folder


@pytest.mark.parametrize(("text", "expected"), [
    ("plain.jpg", "plain.jpg"),
    ("caf\u00e9.jpg", "caf\u00e9.jpg"),  # valid UTF-8 stays as it is
    (os.fsdecode(b"caf\xe9.jpg"), "caf\\xe9.jpg"),  # a byte that is not UTF-8: escaped
    ("\ud800x", "\\ud800x"),  # any other lone surrogate
])
def test_escape_text(text, expected):
    assert escape_text(text) == expected
    escape_text(text).encode("utf-8")


def test_a_file_name_that_is_not_utf8_is_recorded_escaped_and_judged(index, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as handle:
        textured_image(200).save(handle, format="JPEG")
    summary = scan(folder, index, tmp_path / "out", workers=0)
    rows = {r["listing_id"]: r for r in _lines(summary.results_path)}
    assert set(rows) == {"ok.jpg", "caf\\xe9.jpg"} and summary.decided == 2
    assert rows["caf\\xe9.jpg"]["verdict"] == "no_match"  # judged like any other photo (unrelated)
    again = scan(folder, index, tmp_path / "out", workers=0)
    assert again.decided == 0 and again.already_done == 2


def test_a_named_pipe_gets_an_error_line_and_does_not_hang(index, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")
    os.mkfifo(folder / "pipe")
    os.mkfifo(folder / "pipe.jpg")
    assert not looks_like_image(folder / "pipe")
    assert [p.name for p in iter_image_files(folder)] == ["ok.jpg", "pipe", "pipe.jpg"]
    done = []
    worker = threading.Thread(target=lambda: done.append(scan(folder, index, tmp_path / "out", workers=0)),
                              daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the scan hangs on a named pipe"
    rows = {r["listing_id"]: r for r in _lines(done[0].results_path)}
    for name in ("pipe", "pipe.jpg"):
        assert rows[name]["verdict"] == "error" and "named pipe" in rows[name]["error"]
    assert rows["ok.jpg"]["verdict"] != "error"


def test_a_second_scan_into_the_same_folder_is_refused_naming_the_holder(index, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")
    out = tmp_path / "out"
    out.mkdir()
    lock = FolderLock(out)
    lock.acquire()
    try:
        with pytest.raises(OutputLockedError, match=f"process {os.getpid()}"):
            scan(folder, index, out, workers=0)
        index_dir = index.save(tmp_path / "index")
        code = main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--no-report"])
        assert code == 2 and f"process {os.getpid()}" in capsys.readouterr().err
    finally:
        lock.release()
    assert scan(folder, index, out, workers=0).decided == 1  # free again


@pytest.mark.parametrize("name", ["results.jsonl", "scan.json", "skipped.jsonl", LOCK_FILE])
def test_a_symlinked_output_file_is_refused(index, tmp_path, name):
    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(outside)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        scan(folder, index, out, workers=0)
    assert outside.read_text() == "precious\n"


def test_a_rerun_decides_again_what_changed_and_says_why(index, catalog_dir, tmp_path):
    folder = _csv_folder(tmp_path, catalog_dir)
    out = tmp_path / "out"
    first = scan(folder, index, out, workers=0)
    assert first.decided == 3 and first.counts["suspect"] == 1 and first.redecided == {}
    write_csv(folder / "listings.csv", HEADER, [
        ["L1", "a.jpg", "Acme tote", "399", "USD", "acme_store"],  # edited row: now an authorized listing
        ["L2", "b.jpg", "bag", "", "", "acme_store"],
        ["L3", "c.jpg", "bag", "", "", "acme_store"],
    ])
    textured_image(52).save(folder / "b.jpg")  # replaced photo
    os.utime(folder / "b.jpg", ns=(1, 1))
    second = scan(folder, index, out, workers=0)
    assert second.decided == 2 and second.redecided == {"changed": 2} and second.already_done == 1
    rows = {r["listing_id"]: r for r in _lines(out / "results.jsonl")}
    assert len(_lines(out / "results.jsonl")) == 3 and rows["L1"]["verdict"] == "authorized"
    third = scan(folder, index, out, workers=0, policy=Policy(price_ratio=0.3))
    assert third.decided == 3 and third.redecided == {"policy": 3}
    assert scan(folder, index, out, workers=0, policy=Policy(price_ratio=0.3)).decided == 0


def test_photos_no_row_names_and_missing_photos_are_listed(index, catalog_dir, tmp_path, capsys):
    folder = _csv_folder(tmp_path, catalog_dir)
    textured_image(60).save(folder / "unnamed.jpg")
    with (folder / "listings.csv").open("a") as handle:
        handle.write("L4,gone.jpg;c.jpg,bag,,,acme_store\nL5,gone2.jpg,bag,,,\nL6,../x.jpg,,,,\n")
    out = folder / "scan"  # inside the scanned folder: its own files are not walked
    summary = scan(folder, index, out, workers=0)
    assert [Path(p).name for p in summary.unlisted_photos] == ["unnamed.jpg"]
    assert sorted(Path(p).name for p in summary.missing_photos) == ["gone.jpg", "gone2.jpg"]
    assert len(summary.bad_rows) == 1 and "escapes" in summary.bad_rows[0]
    skipped = _lines(summary.skipped_path)
    assert sorted(s["kind"] for s in skipped) == ["bad_row", "missing_photo", "missing_photo", "unlisted_photo"]
    assert all(s["schema"] == 2 for s in skipped)
    rows = {r["listing_id"]: r for r in _lines(summary.results_path)}
    assert rows["L4"]["verdict"] != "error" and any("gone.jpg" in s for s in rows["L4"]["skipped_images"])
    assert rows["L5"]["verdict"] == "error"
    index_dir = index.save(tmp_path / "index")
    main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--no-report"])
    text = capsys.readouterr().out
    assert "1 bad rows of the listings file, 1 photos no listing names, 2 missing photos" in text


def test_every_result_line_has_schema_2_and_schema_1_lines_are_read(index, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        textured_image(i).save(folder / f"{i}.jpg")
    out = tmp_path / "out"
    out.mkdir()
    old = [{"listing_id": f"{i}.jpg", "verdict": "no_match", "risk": 0.0} for i in range(2)]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    with ResultsStore.open(out, {"index": {}}) as store:
        assert {k: (v.verdict, v.schema) for k, v in store.results.items()} == {
            "0.jpg": ("no_match", 1), "1.jpg": ("no_match", 1)}
    (out / "scan.json").unlink()
    summary = scan(folder, index, out, workers=0)
    assert summary.redecided == {"old_format": 2} and summary.decided == 3  # no fingerprint: decided again
    lines = _lines(summary.results_path)
    assert len(lines) == 3 and all(r["schema"] == 2 and set(r["fingerprint"]) == {"input", "policy"} for r in lines)


def test_nothing_to_scan_exits_2_and_leaves_no_output_folder(index, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    with pytest.raises(NothingToScanError, match="no photos"):
        scan(empty, index, tmp_path / "out", workers=0)
    refused = tmp_path / "refused"
    refused.mkdir()
    write_csv(refused / "listings.csv", HEADER, [["L1", "../a.jpg", "", "", "", ""], ["L2", "", "", "", "", ""]])
    with pytest.raises(NothingToScanError, match="every row was refused"):
        scan(refused, index, tmp_path / "out", workers=0)
    index_dir = index.save(tmp_path / "index")
    assert main(["scan", str(refused), "--index", str(index_dir), "--out", str(tmp_path / "out")]) == 2
    assert "every row was refused (2 bad rows" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_failed_run_leaves_no_output_folder(index, tmp_path, monkeypatch):
    from knockoff import Detector

    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Detector, "check_decoded", fail)
    with pytest.raises(KeyboardInterrupt):
        scan(folder, index, tmp_path / "new" / "out", workers=0)
    assert not (tmp_path / "new" / "out").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        scan(folder, index, tmp_path / "kept", workers=0)
    assert (tmp_path / "kept").is_dir()  # a folder the user made is left alone


def test_a_photo_folder_reached_through_a_symlink_scans_like_the_real_one(index, catalog_dir, tmp_path):
    folder = _csv_folder(tmp_path, catalog_dir)
    (tmp_path / "link").symlink_to(folder)
    bare = tmp_path / "bare"
    bare.mkdir()
    textured_image(3).save(bare / "x.jpg")
    (tmp_path / "bare-link").symlink_to(bare)
    real = _lines(scan(folder, index, tmp_path / "real", workers=0).results_path)
    linked = _lines(scan(tmp_path / "link", index, tmp_path / "linked", workers=0).results_path)
    assert [(r["listing_id"], r["verdict"]) for r in linked] == [(r["listing_id"], r["verdict"]) for r in real]
    assert [r["listing_id"] for r in _lines(scan(tmp_path / "bare-link", index, tmp_path / "o", workers=0)
                                           .results_path)] == ["x.jpg"]


def test_the_scan_command_ends_with_the_report_path_and_exits_1_on_suspects(index, catalog_dir, tmp_path, capsys):
    folder = _csv_folder(tmp_path, catalog_dir)
    index_dir = index.save(tmp_path / "index")
    out = tmp_path / "out"
    assert main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--backend", "local",
                 "--workers", "0"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"report: {out / 'report.html'}" and (out / "report.html").is_file()
    assert main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--engine", "local"]) == 2


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (12.4, "12 s"), (200, "3 min 20 s"), (7500, "2 h 05 min"), (float("inf"), "unknown"),
])
def test_format_duration(seconds, text):
    from knockoff.run.progress import format_duration

    assert format_duration(seconds) == text


def test_progress_logs_a_line_every_n_listings_or_seconds_with_rate_and_eta(caplog):
    from knockoff.run.progress import Progress

    now = [0.0]
    progress = Progress(100, bar=False, every_s=10, every_n=30, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="knockoff.run.progress"):
        for _ in range(10):  # 10 listings every 2 s: a line at 30 listings (6 s), 60, 90, and at the end
            now[0] += 2.0
            progress.advance(10)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "scanned 30/100 listings (30 %), 5.0 a second, about 14 s left"
    assert len(lines) == 4 and lines[-1].startswith("scanned 100/100 listings (100 %)")
    slow = Progress(100, bar=False, every_s=10, every_n=1000, clock=lambda: now[0])
    caplog.clear()
    with caplog.at_level("INFO", logger="knockoff.run.progress"):
        for _ in range(5):
            now[0] += 4.0
            slow.advance(1)
    assert len(caplog.records) == 1 and "scanned 3/100" in caplog.records[0].getMessage()  # after 12 s


def test_the_scan_command_logs_progress_when_not_on_a_terminal(index, tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    textured_image(1).save(folder / "ok.jpg")
    index_dir = index.save(tmp_path / "index")
    args = ["scan", str(folder), "--index", str(index_dir), "--workers", "0", "--no-report"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 1  # a bare photo has no seller: review
    lines = [r.getMessage() for r in caplog.records if r.name == "knockoff.run.progress"]
    assert len(lines) == 1 and lines[0].startswith("scanned 1/1 listings (100 %)")
    caplog.clear()
    assert main([*args, "--no-progress", "--out", str(tmp_path / "out2")]) == 1
    assert not [r for r in caplog.records if r.name == "knockoff.run.progress"]


def test_the_backend_is_checked(index, tmp_path):
    with pytest.raises(ValueError, match="backend must be one of local, ray"):
        scan(tmp_path, index, tmp_path / "out", backend="spark")
