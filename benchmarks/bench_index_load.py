"""Load time and resident memory of a large reference index (issue 15): synthetic photos, vectors + metadata.

    python benchmarks/bench_index_load.py --sizes 100000            # 10^5 reference photos
    python benchmarks/bench_index_load.py --sizes 100000 1000000    # and 10^6 (about 2 GB of vectors at 512 dims)

Each photo is one 512-dimensional unit vector (a flat index: what ``auto`` picks below 10^6 vectors) and
realistic metadata (1,000 brands, 5 photos a product, a price, a path). No keypoints: extracting them for 10^6
photos takes hours on 2 cores; the index's feature store is empty. For each size: build time (adding the
vectors and metadata, no embedding), save time, bytes on disk per photo (by file), then in a fresh subprocess
``ReferenceIndex.load`` (checksums verified, as the scan does) with and without ``mmap``: wall time and peak
resident memory, and with ``mmap`` but ``verify=False`` (the share of the SHA-256 checksums)
(``VmHWM`` of /proc/self/status: ``getrusage``'s ``ru_maxrss`` would carry over the
building parent's peak through fork), both also for ``import`` alone, the baseline.
Results: printed and written to benchmarks/results/index_load(.SIZES).{json,md}.
"""

from __future__ import annotations

import argparse
import json
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


def build(n: int, dim: int, folder: Path) -> dict[str, Any]:
    from knockoff.catalog.readers import ReferenceImage
    from knockoff.match.index import ReferenceIndex

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    index = ReferenceIndex(_embedder(dim), index_type="flat")
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        vectors = rng.normal(size=(m, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        refs = [ReferenceImage(f"Brand{i % 1000:04d}", f"P{i // 5:07d}", f"Product {i // 5} of brand {i % 1000}",
                               Path(f"/catalog/brand{i % 1000:04d}/p{i // 5:07d}_{i % 5}.jpg"),
                               price=float(10 + i % 490), currency="EUR")
                for i in range(start, start + m)]
        index.add_vectors_batch(refs, vectors)
    built = time.perf_counter() - started
    started = time.perf_counter()
    index.save(folder)
    saved = time.perf_counter() - started
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    return {"build_s": built, "save_s": saved, "files": files}


def measure_load(folder: Path, dim: int, mmap: bool | None, verify: bool = True) -> dict[str, Any]:
    """Load in a fresh interpreter (``mmap`` None: import only, the baseline); wall time and peak RSS."""
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from bench_index_load import _embedder\n"
        "from knockoff.match.index import ReferenceIndex\n"
        "t = time.perf_counter()\n"
        f"if {mmap!r} is not None:\n"
        f"    index = ReferenceIndex.load({str(folder)!r}, _embedder({dim}), mmap=bool({mmap!r}), verify={verify!r})\n"
        "    first = index.references[0]; last = index.references[len(index) - 1]\n"
        "took = time.perf_counter() - t\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(took, int(hwm) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    return {"load_s": float(out[0]), "peak_rss_bytes": int(out[1])}


def run(n: int, dim: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "index"
        built = build(n, dim, folder)
        base = measure_load(folder, dim, None)
        loads = {str(mmap): measure_load(folder, dim, mmap) for mmap in (False, True)}
        unverified = measure_load(folder, dim, True, verify=False)
        shutil.rmtree(folder)
    disk = sum(built["files"].values())
    row = {"photos": n, "dim": dim, "build_us_per_photo": round(1e6 * built["build_s"] / n, 2),
           "save_s": round(built["save_s"], 2), "bytes_per_photo": round(disk / n, 1),
           "bytes_per_photo_by_file": {k: round(v / n, 1) for k, v in sorted(built["files"].items())},
           "import_only_rss_mb": round(base["peak_rss_bytes"] / 2**20)}
    for mmap, load in loads.items():
        tag = "mmap" if mmap == "True" else "read"
        row[f"load_s_{tag}"] = round(load["load_s"], 2)
        row[f"peak_rss_mb_{tag}"] = round(load["peak_rss_bytes"] / 2**20)
    row["load_s_mmap_unverified"] = round(unverified["load_s"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=DIM)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        row = run(n, args.dim)
        print(json.dumps(row), flush=True)
        rows.append(row)
    columns = ["photos", "build_us_per_photo", "save_s", "bytes_per_photo", "import_only_rss_mb",
               "load_s_read", "peak_rss_mb_read", "load_s_mmap", "peak_rss_mb_mmap",
               "load_s_mmap_unverified"]
    table = [[row[c] for c in columns] for row in rows]
    print(text_table(columns, table))
    write_results("index_load" + "".join(f".{n}" for n in args.sizes),
                  {"script": "bench_index_load.py", "rows": rows}, markdown_table(columns, table))


if __name__ == "__main__":
    main()
