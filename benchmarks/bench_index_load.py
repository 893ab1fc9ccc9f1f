"""Load time and resident memory of a large reference index (issue 15): synthetic photos, vectors, metadata and
keypoints.

    python benchmarks/bench_index_load.py --sizes 100000            # 10^5 reference photos, no keypoints
    python benchmarks/bench_index_load.py --sizes 100000 1000000    # and 10^6 (about 2 GB of vectors at 512 dims)
    python benchmarks/bench_index_load.py --sizes 100000 --keypoints 50 --shortlist 50   # with keypoints
    python benchmarks/bench_index_load.py --sizes 1000000 --keypoints 50 --keep DIR      # build kept in DIR; run
                                                                   # again: only the loads, of that build

Each photo is one 512-dimensional unit vector (a flat index: what ``auto`` picks below 10^6 vectors) and
realistic metadata (1,000 brands, 5 photos a product, a price, a path). With ``--keypoints K``, each photo also
stores K keypoints for verification (position, response, uint8 RootSIFT: the index folder's format) and its
``--shortlist P`` strongest descriptors go into the stored keypoint shortlist (``shortlist.faiss``, its plan
chosen by size as ``knockoff index build`` does: IVF-PQ above 2.5M descriptors). SIFT on 10^6 photos takes
days on 2 cores, so the descriptors are synthetic: noisy replicas (Gaussian noise 0.03 a component, clipped,
renormalised) of the real RootSIFT descriptors of ``--base-photos`` grocerystore photos, as in
bench_shortlist.py. The pixel thumbnails the verifier also stores (about 20 KB grayscale and up to 300 KB of
colour a photo) are not included. For each size: build time (adding the vectors, metadata and keypoints, no
embedding or SIFT, nor the making of the synthetic descriptors; the shortlist trained and filled), save time,
bytes on disk per photo (by file), then, each in a fresh subprocess, ``ReferenceIndex.load`` (:func:`measure_all`):
memory-mapped with every file hashed (``verify="full"``, which records the files' stamps: knockoff.match.stamps),
memory-mapped as a scan loads (``verify=True``: files whose stamps are unchanged are not hashed), read into memory,
memory-mapped without checksums (``verify=False``), then with the page cache dropped (``/proc/sys/vm/drop_caches``,
root only; the results say whether it was) before each: as a scan loads, and with every file hashed. For each:
wall time, peak resident memory (``VmHWM`` of /proc/self/status: ``getrusage``'s ``ru_maxrss`` would carry over
the building parent's peak through fork) and how the checksums were checked; ``import`` alone is the baseline.
The build runs in a forked child, so that its memory is given back before the loads; the shortlist's training
time is logged. ``--keep DIR`` builds into DIR and keeps the build (with its build figures in
``<name>.build.json``); run again with the same ``--keep``, the build is reused and only the loads are measured.
The machine's load average during the loads is recorded.
Results: printed and written to benchmarks/results/index_load(.SIZES).{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import markdown_table, text_table, write_results

DIM = 512
CHUNK = 100_000
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def _embedder(dim: int) -> Any:
    from knockoff.embedders.base import Embedder

    class VectorsOnly(Embedder):
        """Stands for an embedder of a given dimension: the benchmark adds vectors, it embeds no image."""

        kind = "bench"

        @property
        def name(self) -> str:
            return f"bench:{dim}"

        @property
        def dim(self) -> int:
            return dim

        def embed(self, images: Any) -> np.ndarray:  # pragma: no cover - never called
            raise NotImplementedError

    return VectorsOnly()


def base_descriptors(count: int) -> list[np.ndarray]:
    """RootSIFT descriptors (float32) of ``count`` real grocerystore photos, with their SIFT responses."""
    from knockoff.catalog.images import load_image
    from knockoff.match.verify import GeometricVerifier

    paths = sorted((REAL / "grocerystore" / "dataset" / "train").rglob("*.jpg"))[:: 7][:count]
    if not paths:
        raise SystemExit(f"real photos not found under {REAL}: --keypoints needs them")
    verifier = GeometricVerifier()
    return [verifier.features(load_image(p)).descriptors for p in paths]


def synthetic_features(bases: list[np.ndarray], keep: int, rng: np.random.Generator) -> Any:
    """One photo's stored features: ``keep`` noisy replicas of a random real photo's descriptors."""
    from knockoff.match.refstore import StoredFeatures

    base = bases[int(rng.integers(len(bases)))]
    pick = rng.choice(len(base), min(keep, len(base)), replace=False)
    d = np.clip(base[pick] + rng.normal(0, 0.03, (len(pick), 128)).astype(np.float32), 0, None)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    points = (rng.random((len(d), 2)) * 800).astype(np.float32)
    return StoredFeatures(points, rng.random(len(d)).astype(np.float32),
                          np.clip(np.rint(d * 512), 0, 255).astype(np.uint8), (800, 600), (1600, 1200), None, None)


def build(n: int, dim: int, folder: Path, keypoints: int = 0, shortlist: int = 0,
          bases: list[np.ndarray] | None = None) -> dict[str, Any]:
    from knockoff.catalog.readers import ReferenceImage
    from knockoff.match.index import PreparedBatch, ReferenceIndex
    from knockoff.match.keypoints import ShortlistParams

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    synthesis = 0.0  # making the synthetic descriptors: not part of the build time
    params = ShortlistParams(per_reference=shortlist) if shortlist else None
    index = ReferenceIndex(_embedder(dim), index_type="flat", shortlist=params, expected_references=n)
    if not keypoints:
        index._features, index._shortlist = None, None  # vectors and metadata only, as before keypoints
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        vectors = rng.normal(size=(m, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        refs = [ReferenceImage(f"Brand{i % 1000:04d}", f"P{i // 5:07d}", f"Product {i // 5} of brand {i % 1000}",
                               Path(f"/catalog/brand{i % 1000:04d}/p{i // 5:07d}_{i % 5}.jpg"),
                               price=float(10 + i % 490), currency="EUR")
                for i in range(start, start + m)]
        t = time.perf_counter()
        features = [synthetic_features(bases, keypoints, rng) for _ in range(m)] if keypoints and bases else [None] * m
        synthesis += time.perf_counter() - t
        index.add_prepared(PreparedBatch(refs, vectors, [1] * m, features, [None] * m, []))
        print(f"  {start + m} photos added, {time.perf_counter() - started:.0f}s", flush=True)
    if index.keypoint_shortlist is not None:
        index.keypoint_shortlist.vote(synthetic_features(bases or [], 10, rng).to_local(), top=1)  # trains / fills it
    built = time.perf_counter() - started - synthesis
    started = time.perf_counter()
    index.save(folder)
    saved = time.perf_counter() - started
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    manifest = json.loads((folder / "manifest.json").read_text())
    return {"build_s": built, "save_s": saved, "files": files, "shortlist": manifest.get("shortlist")}


def measure_load(folder: Path, dim: int, mmap: bool | None, verify: bool | str = True) -> dict[str, Any]:
    """Load in a fresh interpreter (``mmap`` None: import only, the baseline); wall time, peak RSS, and how the
    checksums were checked (files hashed, files taken as unchanged by their stamps)."""
    code = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from bench_index_load import _embedder\n"
        "from knockoff.match.index import ReferenceIndex\n"
        "t = time.perf_counter()\n"
        "found = vote_s = checked = None\n"
        f"if {mmap!r} is not None:\n"
        f"    index = ReferenceIndex.load({str(folder)!r}, _embedder({dim}), mmap=bool({mmap!r}), verify={verify!r})\n"
        "    first = index.references[0]; last = index.references[len(index) - 1]\n"
        "    checked = index.checked.to_dict()\n"
        "took = time.perf_counter() - t\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        f"s = index.keypoint_shortlist if {mmap!r} is not None else None\n"
        "if s is not None and s.descriptor_count:  # one vote, after the load: the last photo's keypoints find it\n"
        "    t = time.perf_counter()\n"
        "    votes = s.vote(index._features.get(len(index) - 1).to_local(), top=1, min_votes=1)\n"
        "    vote_s = time.perf_counter() - t\n"
        "    found = bool(votes) and votes[0][0] == len(index) - 1\n"
        "print(json.dumps([took, int(hwm) * 1024, found, vote_s, checked]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    took, hwm, found, vote_s, checked = json.loads(out.strip().splitlines()[-1])
    return {"load_s": took, "peak_rss_bytes": hwm, "vote_finds_itself": str(found), "first_vote_s": str(vote_s),
            "checked": checked}


def drop_page_cache() -> str:
    """Empty the kernel's page cache (root only), so that the next load reads the files from disk: '' when done,
    else why not."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return ""
    except OSError as exc:
        return f"page cache not dropped: {exc}"


def _build_child(args: tuple[Any, ...], results: Any) -> None:
    results.put(build(*args))


def build_apart(*args: Any) -> dict[str, Any]:
    """:func:`build` in a child process (forked: ``bases`` are not copied), so that the memory the build took is
    given back before the loads are measured (at 10^6 photos the build holds about 12 GB)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_build_child, args=(args, results))
    child.start()
    built = results.get()
    child.join()
    if child.exitcode:
        raise SystemExit(f"the build failed (exit code {child.exitcode})")
    return built


def kept_build(keep: Path, n: int, dim: int, keypoints: int, shortlist: int,
               bases: list[np.ndarray] | None) -> tuple[Path, dict[str, Any]]:
    """The index of this size in the kept folder ``keep``: built there (with its build figures in
    ``<name>.build.json`` beside it) unless a finished build is already there, which is then only loaded."""
    name = f"index.{n}.d{dim}" + (f".kp{keypoints}.sl{shortlist}" if keypoints else "")
    folder, record = keep / name, keep / f"{name}.build.json"
    if record.is_file() and (folder / "manifest.json").is_file():
        print(f"  reusing the build in {folder}", flush=True)
        return folder, json.loads(record.read_text())
    if folder.exists():
        raise SystemExit(f"{folder} exists but holds no finished build ({record.name} missing): delete it first")
    keep.mkdir(parents=True, exist_ok=True)
    built = build_apart(n, dim, folder, keypoints, shortlist, bases)
    record.write_text(json.dumps(built))
    return folder, built


def measure_all(folder: Path, dim: int) -> dict[str, Any]:
    """The loads measured, in this order: import only; memory-mapped with every file hashed (``verify="full"``,
    which records the files' stamps); memory-mapped as a scan loads (``verify=True``: the stamps spare the
    hashing); read into memory (stamps); without checksums; then with the page cache dropped before each: as a
    scan loads (stamps) and with every file hashed. Stamps go into a folder beside the index."""
    os.environ["KNOCKOFF_STAMP_DIR"] = str(folder.parent / f"{folder.name}.stamps")
    shutil.rmtree(os.environ["KNOCKOFF_STAMP_DIR"], ignore_errors=True)
    time.sleep(2.5)  # files written within 2 s of their check get no stamp (knockoff.match.stamps.SETTLE_NS)
    before = os.getloadavg()
    loads: dict[str, Any] = {"import": measure_load(folder, dim, None), "mmap_full": measure_load(folder, dim, True, "full"),
             "mmap": measure_load(folder, dim, True), "read": measure_load(folder, dim, False),
             "mmap_unverified": measure_load(folder, dim, True, verify=False)}
    problem = drop_page_cache()
    loads["mmap_cold"] = measure_load(folder, dim, True)
    problem = problem or drop_page_cache()
    loads["mmap_cold_full"] = measure_load(folder, dim, True, "full")
    loads["cold"] = problem or "page cache dropped before each cold load (the others: warm)"
    loads["load_average"] = f"{before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (1-minute, {os.cpu_count()} CPUs)"
    return loads


def run(n: int, dim: int, keypoints: int = 0, shortlist: int = 0, bases: list[np.ndarray] | None = None,
        tmp_root: str | None = None, keep: Path | None = None, build_only: bool = False) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        if keep is not None:
            folder, built = kept_build(keep, n, dim, keypoints, shortlist, bases)
        else:
            folder = Path(tmp) / "index"
            built = build_apart(n, dim, folder, keypoints, shortlist, bases)
        print(f"  built {built['build_s']:.0f}s, saved {built['save_s']:.0f}s", flush=True)
        if build_only:
            return None
        loads = measure_all(folder, dim)
        if keep is None:
            shutil.rmtree(folder)
    disk = sum(built["files"].values())
    row = {"photos": n, "dim": dim, "keypoints": keypoints, "shortlist_per_photo": shortlist,
           "shortlist": built["shortlist"], "build_us_per_photo": round(1e6 * built["build_s"] / n, 2),
           "save_s": round(built["save_s"], 2), "bytes_per_photo": round(disk / n, 1),
           "bytes_per_photo_by_file": {k: round(v / n, 1) for k, v in sorted(built["files"].items())},
           "load_average_during_loads": loads.pop("load_average")}
    for tag, load in loads.items():
        if tag == "cold":
            row["cold"] = load
            continue
        row[f"load_s_{tag}"] = round(load["load_s"], 2)
        row[f"peak_rss_mb_{tag}"] = round(load["peak_rss_bytes"] / 2**20)
        if tag != "import":
            row[f"checked_{tag}"] = (f"{load['checked']['mode']}: {len(load['checked']['hashed'])} hashed, "
                                     f"{len(load['checked']['unchanged'])} unchanged by stamps")
        if tag in ("read", "mmap"):
            row[f"vote_finds_itself_{tag}"] = load["vote_finds_itself"]
            row[f"first_vote_s_{tag}"] = load["first_vote_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--keypoints", type=int, default=0, help="keypoints stored a photo (0: none)")
    parser.add_argument("--shortlist", type=int, default=0,
                        help="descriptors a photo in the stored shortlist (default: --keypoints)")
    parser.add_argument("--base-photos", type=int, default=100, help="real photos whose descriptors are replicated")
    parser.add_argument("--tmp", help="where to build the index (default: the system's temporary folder)")
    parser.add_argument("--keep", type=Path, help="build into this folder and keep the build there; a finished "
                        "build of the same size found there is reused: only its loads are measured")
    parser.add_argument("--build-only", action="store_true", help="with --keep: build, measure no load")
    args = parser.parse_args()
    if args.build_only and args.keep is None:
        parser.error("--build-only needs --keep")
    logging.basicConfig(format="  %(asctime)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("knockoff.match.keypoints").setLevel(logging.INFO)  # the shortlist's training time
    shortlist = args.shortlist or args.keypoints
    bases = base_descriptors(args.base_photos) if args.keypoints else None
    rows = []
    for n in args.sizes:
        row = run(n, args.dim, args.keypoints, shortlist, bases, args.tmp, args.keep, args.build_only)
        if row is None:
            continue
        print(json.dumps(row), flush=True)
        rows.append(row)
    if not rows:
        return
    columns = ["photos", "keypoints", "shortlist_per_photo", "build_us_per_photo", "save_s", "bytes_per_photo",
               "peak_rss_mb_import", "load_s_mmap_full", "load_s_mmap", "peak_rss_mb_mmap", "load_s_read",
               "peak_rss_mb_read", "load_s_mmap_unverified", "load_s_mmap_cold", "peak_rss_mb_mmap_cold",
               "load_s_mmap_cold_full"]
    table = [[row[c] for c in columns] for row in rows]
    print(text_table(columns, table))
    command = "python " + " ".join(["benchmarks/bench_index_load.py", *sys.argv[1:]])
    by_file = "\n".join(f"- {row['photos']} photos, bytes a photo by file: {row['bytes_per_photo_by_file']}; "
                        f"shortlist: {row['shortlist']}; cold loads: {row['cold']}; machine load average: "
                        f"{row['load_average_during_loads']}; checksums: "
                        + "; ".join(f"{k[8:]}: {v}" for k, v in row.items() if k.startswith("checked_"))
                        for row in rows)
    name = "index_load" + "".join(f".{n}" for n in args.sizes) + (f".kp{args.keypoints}" if args.keypoints else "")
    write_results(name + (f".sl{shortlist}" if args.keypoints and shortlist != args.keypoints else ""),
                  {"script": "bench_index_load.py", "command": command, "rows": rows},
                  markdown_table(columns, table) + "\n\n" + by_file)


if __name__ == "__main__":
    main()
