"""Issue 15: an index's checksums need not re-read every byte at each load: file stamps (knockoff.match.stamps)."""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knockoff import Catalog, ReferenceIndex, build_index
from knockoff.cli.app import main
from knockoff.errors import ConfigError, IndexCorruptError
from knockoff.match import stamps
from knockoff.match.index_check import verify_index
from knockoff.match.manifest import read_manifest
from knockoff.match.stamps import IndexCheck, check_files, stamp_dir, verify_mode

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def stamp_place(tmp_path, monkeypatch):
    """A stamp folder of this test; files may be stamped as soon as they are hashed (no settling time)."""
    place = tmp_path / "stamps"
    monkeypatch.setenv("KNOCKOFF_STAMP_DIR", str(place))
    monkeypatch.setattr(stamps, "SETTLE_NS", 0)
    return place


@pytest.fixture
def saved(catalog_dir, tmp_path, stamp_place):
    folder = build_index(Catalog.from_dir(catalog_dir), "test-pixels").save(tmp_path / "brand.index")
    time.sleep(0.05)  # past the file system's clock tick: a change from now on gets another ctime
    return folder


def files_of(folder: Path) -> set[str]:
    return set(json.loads((folder / "manifest.json").read_text())["checksums"])


def stamped_load(folder: Path) -> ReferenceIndex:
    """Load once (hashing and stamping every file), then wait out the clock tick before the test changes one."""
    index = ReferenceIndex.load(folder)
    time.sleep(0.05)
    return index


def rewrite_in_place(file: Path, flip: bool) -> None:
    """Rewrite a file's bytes in place (one byte flipped, or the same bytes), its size kept and its access and
    modification times restored: only its ctime shows it."""
    before = file.stat()
    data = bytearray(file.read_bytes())
    if flip:
        data[len(data) // 2] ^= 0x01
    with file.open("r+b") as handle:
        handle.write(data)
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size and file.stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("verify, mode", [(True, "stamps"), ("stamps", "stamps"), ("full", "full"),
                                          (False, "none"), ("none", "none")])
def test_verify_modes(verify, mode):
    assert verify_mode(verify) == mode


@pytest.mark.parametrize("verify", ["fast", 1, None, "FULL"])
def test_an_unknown_verify_mode_is_refused(verify):
    with pytest.raises(ConfigError, match="verify must be"):
        verify_mode(verify)


@pytest.mark.parametrize("check, words", [
    (IndexCheck("none"), "not checked"),
    (IndexCheck("full", hashed=("a", "b")), "hashed now (2 files)"),
    (IndexCheck("stamps", unchanged=("a",), checked_at="2026-01-02T03:04:05+00:00"),
     "unchanged since a full check at 2026-01-02T03:04:05+00:00, by file stamps"),
    (IndexCheck("stamps", hashed=("b",), unchanged=("a",), checked_at="T"), "1 files hashed now (b), 1 unchanged"),
])
def test_what_a_check_says(check, words):
    assert words in check.describe() and check.to_dict()["summary"] == check.describe()


def test_a_check_of_unchanged_files_needs_the_time_of_the_full_check():
    with pytest.raises(ConfigError):
        IndexCheck("stamps", unchanged=("a",))


def test_stamps_are_written_after_a_full_check_and_then_spare_the_hashing(saved, stamp_place):
    first = stamped_load(saved)
    assert first.checked.mode == "stamps" and set(first.checked.hashed) == files_of(saved)
    assert first.checked.unchanged == ()
    [store] = list(stamp_place.glob("*.json"))
    recorded = json.loads(store.read_text())
    assert recorded["index"] == os.path.realpath(saved) and set(recorded["files"]) == files_of(saved)
    second = ReferenceIndex.load(saved)
    assert second.checked.hashed == () and set(second.checked.unchanged) == files_of(saved)
    assert "unchanged since a full check at" in second.checked.describe()
    assert second.checked.checked_at == min(e["checked_at"] for e in recorded["files"].values())
    assert len(second) == len(first) == 4


def test_full_verification_hashes_every_file_whatever_the_stamps(saved):
    stamped_load(saved)
    full = ReferenceIndex.load(saved, verify="full")
    assert full.checked.mode == "full" and set(full.checked.hashed) == files_of(saved)
    assert ReferenceIndex.load(saved, verify=False).checked.describe().startswith("checksums not checked")


@pytest.mark.parametrize("name", ["references_price.npy", "index.faiss", "brands.json"])
def test_a_byte_flipped_in_place_with_the_mtime_restored_is_caught(saved, name):
    stamped_load(saved)
    rewrite_in_place(saved / name, flip=True)
    with pytest.raises(IndexCorruptError, match=f"{name} is damaged"):
        ReferenceIndex.load(saved)


def test_a_file_rewritten_with_the_same_bytes_is_hashed_again(saved):
    stamped_load(saved)
    rewrite_in_place(saved / "references_rows.npy", flip=False)
    again = ReferenceIndex.load(saved)
    assert again.checked.hashed == ("references_rows.npy",)
    assert "references_rows.npy" not in again.checked.unchanged


def test_bit_rot_that_changes_no_stamp_is_caught_only_by_a_full_check(saved, stamp_place):
    """What the docstring says: a stamp cannot see damage that leaves the file's times alone. Simulated by
    writing the flipped file's stamp into the store: the default load trusts it, `index verify` does not."""
    stamped_load(saved)
    rewrite_in_place(saved / "brands.json", flip=True)
    [store] = list(stamp_place.glob("*.json"))
    recorded = json.loads(store.read_text())
    st = os.stat(saved / "brands.json")
    recorded["files"]["brands.json"]["stamp"] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    store.write_text(json.dumps(recorded))
    assert "brands.json" in ReferenceIndex.load(saved).checked.unchanged
    with pytest.raises(IndexCorruptError, match="brands.json is damaged"):
        verify_index(saved)
    assert main(["index", "verify", str(saved)]) == 2


@pytest.mark.parametrize("how", ["copy elsewhere", "copy over the same path"])
def test_a_copied_index_is_hashed_again(saved, tmp_path, how):
    stamped_load(saved)
    target = tmp_path / "copy.index"
    if how == "copy over the same path":
        shutil.move(saved, tmp_path / "moved.index")
        shutil.copytree(tmp_path / "moved.index", saved)  # copy2: the modification times are kept
        target = saved
    else:
        shutil.copytree(saved, target)
    loaded = ReferenceIndex.load(target)
    assert set(loaded.checked.hashed) == files_of(saved) and loaded.checked.unchanged == ()


def test_a_file_changed_just_before_its_hash_is_not_stamped(catalog_dir, tmp_path, monkeypatch):
    """A file written within SETTLE_NS of its check may change again in the same clock tick: no stamp."""
    monkeypatch.setenv("KNOCKOFF_STAMP_DIR", str(tmp_path / "stamps"))
    folder = build_index(Catalog.from_dir(catalog_dir), "test-pixels").save(tmp_path / "fresh.index")
    assert stamps.SETTLE_NS >= 1_000_000_000
    ReferenceIndex.load(folder)
    again = ReferenceIndex.load(folder)
    assert set(again.checked.hashed) == files_of(folder) and again.checked.unchanged == ()


@pytest.mark.parametrize("content", ["not json", "[]", '{"version": 1, "index": "/elsewhere", "files": {}}',
                                     '{"version": 99, "files": {}}'])
def test_a_damaged_or_foreign_stamp_file_is_ignored_and_replaced(saved, stamp_place, content):
    stamped_load(saved)
    [store] = list(stamp_place.glob("*.json"))
    store.write_text(content)
    loaded = ReferenceIndex.load(saved)
    assert set(loaded.checked.hashed) == files_of(saved)
    assert set(json.loads(store.read_text())["files"]) == files_of(saved)


def test_an_unwritable_stamp_place_falls_back_to_hashing_with_a_log_line(saved, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KNOCKOFF_STAMP_DIR", str(blocker / "stamps"))
    with caplog.at_level(logging.WARNING, logger="knockoff.match.stamps"):
        first = ReferenceIndex.load(saved)
        second = ReferenceIndex.load(saved)
    assert set(first.checked.hashed) == set(second.checked.hashed) == files_of(saved)
    assert "cannot write index stamps" in first.checked.stamp_problem
    assert any("cannot write index stamps" in r.getMessage() and "hashes all its files" in r.getMessage()
               for r in caplog.records)


def test_a_missing_file_is_named_even_when_the_others_are_stamped(saved):
    stamped_load(saved)
    (saved / "brands.json").unlink()
    with pytest.raises(IndexCorruptError, match="file brands.json is missing"):
        ReferenceIndex.load(saved)


_HAMMER = """
import sys
from pathlib import Path
from knockoff.match import stamps
from knockoff.match.manifest import read_manifest
stamps.SETTLE_NS = 0
root = Path(sys.argv[1])
checksums = read_manifest(root, ("flat", "hnsw", "ivfpq"))["checksums"]
for _ in range(int(sys.argv[2])):
    assert len(stamps.check_files(root, checksums, "full").hashed) == len(checksums)
"""


def test_two_processes_loading_at_once_leave_a_whole_stamp_file(saved, stamp_place):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    workers = [subprocess.Popen([sys.executable, "-c", _HAMMER, str(saved), "40"], env=env) for _ in range(2)]
    seen = 0
    while any(w.poll() is None for w in workers):
        for store in stamp_place.glob("*.json"):
            try:
                text = store.read_text()
            except FileNotFoundError:
                continue
            assert set(json.loads(text)["files"]) == files_of(saved)  # never a half-written file
            seen += 1
    assert [w.wait() for w in workers] == [0, 0] and seen > 0
    assert [p.name for p in stamp_place.iterdir() if not p.name.endswith(".json")] == []  # no temporary left
    assert set(ReferenceIndex.load(saved).checked.unchanged) == files_of(saved)


def test_index_verify_hashes_everything_and_names_a_damaged_file(saved, capsys):
    stamped_load(saved)
    assert main(["index", "verify", str(saved)]) == 0
    out = capsys.readouterr().out
    assert f"all {len(files_of(saved))} files hashed" in out and "4 reference photos" in out
    rewrite_in_place(saved / "references_text.npy", flip=True)
    assert main(["index", "verify", str(saved)]) == 2
    assert "references_text.npy is damaged" in capsys.readouterr().err


def test_check_files_keeps_the_stamps_of_files_no_longer_listed_out(saved, stamp_place):
    checksums = read_manifest(saved, ("flat", "hnsw", "ivfpq"))["checksums"]
    check_files(saved, checksums, "stamps")
    fewer = {k: v for k, v in checksums.items() if k != "brands.json"}
    check_files(saved, fewer, "full")
    [store] = list(stamp_place.glob("*.json"))
    assert set(json.loads(store.read_text())["files"]) == set(fewer)


def test_the_stamp_place_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("KNOCKOFF_STAMP_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert stamp_dir() == tmp_path / "cache" / "knockoff" / "index-stamps"
    monkeypatch.setenv("KNOCKOFF_STAMP_DIR", str(tmp_path / "mine"))
    assert stamp_dir() == tmp_path / "mine"


def test_the_scan_records_how_the_index_was_checked_and_the_report_keeps_its_scan_id(saved, tmp_path, capsys):
    from knockoff.report.build import scan_id
    from knockoff.run.scan import scan

    from conftest import textured_image

    folder = tmp_path / "listings"
    folder.mkdir()
    textured_image(70, (96, 96)).save(folder / "a.jpg")
    out = tmp_path / "out"
    stamped_load(saved)
    first = scan(folder, saved, out, workers=0)
    meta = json.loads((out / "scan.json").read_text())
    assert meta["index_check"]["mode"] == "stamps" and set(meta["index_check"]["unchanged"]) == files_of(saved)
    assert "unchanged since a full check" in first.index_check == meta["index_check"]["summary"]
    assert first.to_dict()["index_check"] == first.index_check
    ident = scan_id(out)
    (out / "scan.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "index_check"}, indent=1))
    assert scan_id(out) == ident  # as before scan.json recorded the check: saved decisions stay with the scan
    again = scan(folder, ReferenceIndex.load(saved, verify="full"), out, workers=0)
    assert again.index_check.startswith("hashed now") and scan_id(out) == ident
    assert json.loads((out / "scan.json").read_text())["index_check"]["mode"] == "full"
    assert main(["scan", str(folder), "--index", str(saved), "--out", str(out), "--no-report"]) in (0, 1)
    assert "index checksums: unchanged since a full check" in capsys.readouterr().out


def test_a_scan_maps_the_index_it_loads_from_a_folder(saved):
    """A scan only reads its index: loaded from a folder it is memory-mapped (about 1 GB resident for a
    10^6-photo index instead of about 5 GB), and an index object given to it is used as it is."""
    from knockoff.run.job import load_index

    mapped = load_index(saved)
    assert mapped.read_only and mapped.checked is not None
    given = ReferenceIndex.load(saved)
    assert not given.read_only and load_index(given) is given


def test_the_report_says_how_the_index_was_checked(saved, tmp_path):
    from knockoff.report.build import index_check_note, write_reports
    from knockoff.run.scan import scan

    from conftest import textured_image

    folder = tmp_path / "listings"
    folder.mkdir()
    textured_image(71, (96, 96)).save(folder / "a.jpg")
    out = tmp_path / "out"
    scan(folder, ReferenceIndex.load(saved, verify="full"), out, workers=0)
    note = index_check_note(out)
    assert note is not None and note.startswith("index checksums: hashed now")
    write_reports(out)
    assert html.escape(note) in (out / "report.html").read_text(encoding="utf-8")
    (out / "scan.json").write_text("{not json")
    assert index_check_note(out) is None
