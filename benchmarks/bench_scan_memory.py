"""Peak memory of a folder scan at two folder sizes: it must stay flat as the folder grows.

Each scan runs in its own process (decoding in worker processes, as `knockoff scan` does); the peak
resident memory of the scanning process and of its largest worker are read with getrusage. The figure
that matters is the ratio large/small, measured in the same run.

    python benchmarks/bench_scan_memory.py            # 300 and 1,200 photos of 1200x900
    python benchmarks/bench_scan_memory.py --quick    # 100 and 400 photos
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

_CHILD = r"""
import json, resource, sys
from knockoff import Catalog, build_index
from knockoff.run.scan import scan
catalog_dir, folder, out = sys.argv[1:4]
index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
summary = scan(folder, index, out, workers=1, batch_size=32, progress=False)
print(json.dumps({
    "decided": summary.decided,
    "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "seconds": summary.seconds,
}))
"""


def _photo(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        draw.ellipse((x0, y0, x0 + int(rng.integers(20, 300)), y0 + int(rng.integers(20, 300))),
                     fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def make_folder(folder: Path, n: int, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    templates = [_photo(rng, size) for _ in range(20)]  # reuse a few large images: making them is the slow part
    for i in range(n):
        image = templates[i % len(templates)].rotate(float(rng.uniform(-3, 3)))
        image.save(folder / f"listing_{i:06d}.jpg", quality=85)


def make_catalog(root: Path) -> None:
    from knockoff.evaluate.synthetic import make_labeled_set

    make_labeled_set(root, seed=0)


def measure(catalog: Path, folder: Path, out: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", _CHILD, str(catalog), str(folder), str(out)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    sizes = (100, 400) if args.quick else (300, 1200)
    photo = (1200, 900)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_catalog(root / "catalog")
        for n in sizes:
            make_folder(root / f"photos{n}", n, photo, seed=n)
            row = {"photos": n, **measure(root / "catalog", root / f"photos{n}", root / f"out{n}")}
            rows.append(row)
            print(f"{n:>6} photos: main peak {row['main_peak_mib']:.0f} MiB, worker peak "
                  f"{row['worker_peak_mib']:.0f} MiB, {row['decided'] / row['seconds']:.1f} listings/s")
    small, large = rows
    ratio_main = large["main_peak_mib"] / small["main_peak_mib"]
    ratio_worker = large["worker_peak_mib"] / small["worker_peak_mib"]
    print(f"peak memory ratio for {large['photos'] // small['photos']}x the photos: main {ratio_main:.2f}, "
          f"worker {ratio_worker:.2f} (1.00 = flat)")
    sys.path.insert(0, str(Path(__file__).parent))
    from common import write_results  # type: ignore[import-not-found]

    command = "python benchmarks/bench_scan_memory.py" + (" --quick" if args.quick else "")
    lines = ["| photos | main peak MiB | largest worker peak MiB | listings/s |", "|---|---|---|---|"]
    lines += [f"| {r['photos']} | {r['main_peak_mib']:.0f} | {r['worker_peak_mib']:.0f} | "
              f"{r['decided'] / r['seconds']:.1f} |" for r in rows]
    lines.append("")
    lines.append(f"Peak memory ratio for {large['photos'] // small['photos']}x the photos ({photo[0]}x{photo[1]} JPEGs): "
                 f"main {ratio_main:.2f}, worker {ratio_worker:.2f} (1.00 = flat).")
    payload = {"script": "bench_scan_memory.py", "command": command, "photo_size": photo, "rows": rows,
               "ratio_main": ratio_main, "ratio_worker": ratio_worker}
    write_results("scan_memory", payload, "\n".join(lines), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
