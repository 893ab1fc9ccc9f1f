"""Decoding workers: a worker that dies is replaced and its listing recorded as an error; workers die with
the scan; SIGINT/SIGTERM stop a scan cleanly (one line, no traceback) and a rerun resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knockoff import Catalog, build_index
from knockoff.catalog.readers import Listing
from knockoff.decide.detector import decode_listing
from knockoff.run.decode import WORKER_DIED, Decoder

from conftest import textured_image

pytestmark = pytest.mark.slow


def decode_or_die(listing: Listing, **kwargs):
    """A decoding function whose worker is killed (SIGKILL, as the OOM killer does) on a 'poison' photo."""
    if any("poison" in p.name for p in listing.images):
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_listing(listing, **kwargs)


def _photos(folder: Path, n: int, poison: tuple[int, ...] = ()) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / (f"poison{i:03d}.jpg" if i in poison else f"p{i:03d}.jpg")
        textured_image(300 + i, (64, 64)).save(path)
        paths.append(path)
    return paths


def test_a_dead_worker_is_replaced_and_its_listing_recorded_as_an_error(tmp_path):
    paths = _photos(tmp_path / "photos", 12, poison=(3, 9))
    decoder = Decoder(2, min_side=8, max_side=256, max_pixels=None, in_flight=6, decode=decode_or_die)
    try:
        out = list(decoder.map([Listing(images=(p,)) for p in paths]))
    finally:
        decoder.close()
    assert [listing.images[0] for listing, _ in out] == paths  # every listing, in order
    for listing, decoded in out:
        if "poison" in listing.images[0].name:
            assert decoded.images == [] and decoded.problems == [WORKER_DIED]
        else:
            assert len(decoded.images) == 1 and not decoded.problems
    assert decoder.restarts >= 2


def test_a_scan_goes_on_after_a_worker_dies(catalog_dir, tmp_path, monkeypatch):
    import knockoff.run.decode as decode_module
    from knockoff.run.scan import scan

    _photos(tmp_path / "photos", 8, poison=(2,))
    monkeypatch.setattr(decode_module, "decode_listing", decode_or_die)
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    summary = scan(tmp_path / "photos", index, tmp_path / "out", workers=1, batch_size=2)
    rows = {r["listing_id"]: r for r in map(json.loads, summary.results_path.read_text().splitlines())}
    assert len(rows) == 8 and rows["poison002.jpg"]["verdict"] == "error"
    assert "decoding worker died" in rows["poison002.jpg"]["error"]
    assert sum(r["verdict"] == "error" for r in rows.values()) == 1


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _start_scan(catalog_dir: Path, tmp_path: Path, n: int = 150) -> tuple[subprocess.Popen, Path, list[str]]:
    _photos(tmp_path / "photos", n)
    index_dir = build_index(Catalog.from_dir(catalog_dir), "perceptual").save(tmp_path / "index")
    out = tmp_path / "out"
    args = ["scan", str(tmp_path / "photos"), "--index", str(index_dir), "--out", str(out), "--workers", "2",
            "--batch-size", "2", "--no-report"]
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; from knockoff.cli.app import main; "
                             f"sys.exit(main({args!r}))"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    results = out / "results.jsonl"
    while not (results.exists() and results.read_bytes().count(b"\n") >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, "the scan ended before it could be stopped"
        time.sleep(0.05)
    return proc, out, args


def _wait_gone(pids: set[int], seconds: float = 15.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_scan(catalog_dir, tmp_path):
    proc, _, _ = _start_scan(catalog_dir, tmp_path)
    children = _children(proc.pid)
    assert len(children) >= 2  # the decoding workers (and the resource tracker)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _wait_gone(children) == set(), "orphaned decoding workers"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_a_scan_cleanly_and_a_rerun_resumes(catalog_dir, tmp_path, signum, code):
    from knockoff.cli.app import main

    proc, out, args = _start_scan(catalog_dir, tmp_path)
    children = _children(proc.pid)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    lines = err.decode().strip().splitlines()
    assert "Traceback" not in err.decode() and len(lines) == 1 and "run the same command again" in lines[0]
    assert _wait_gone(children) == set()
    done = (out / "results.jsonl").read_bytes().count(b"\n")
    assert 10 <= done < 150
    assert main(args) == 0
    ids = [json.loads(line)["listing_id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 150
