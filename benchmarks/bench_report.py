"""The reviewer's report at scale: build time, bytes per listing and page load time in headless Chromium.

    python benchmarks/bench_report.py            # 100,000 synthetic results (a few minutes)
    python benchmarks/bench_report.py --quick    # 10,000

Synthetic results look like a scan's (every field, five signals with messages of real length, a verified
match with its box) but share a pool of 64 small generated photos, so the thumbnails are made 64 times, not
100,000: the thumbnail cost per real photo is measured apart, on grocerystore photos when present.
Baseline, in the same run: the one-file report of the previous release (``knockoff/report/render.py`` at
commit bc726ae, read with git) on 1,000 of the same results, in the same browser. Results go to
``benchmarks/results/report{.quick}.json|md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REAL_DATA, REPO, markdown_table, write_results  # noqa: E402

from knockoff.report import write_reports  # noqa: E402
from knockoff.report.thumbs import Thumbnails  # noqa: E402

BASELINE_COMMIT = "bc726ae"
VERDICTS = ("suspect", "review", "authorized", "no_match", "error")
WORDS = "acme tote bag leather wallet watch replica original new sale genuine quality mirror 1:1 cheap".split()


def _photos(folder: Path, count: int = 64) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        image = Image.new("RGB", (320, 240), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x, y = int(rng.integers(0, 280)), int(rng.integers(0, 200))
            draw.rectangle((x, y, x + 40, y + 30), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        paths.append(folder / f"p{i:02d}.jpg")
        image.save(paths[-1], quality=85)
    return paths


def _signals(i: int, seller: str, brand: str) -> list[dict[str, Any]]:
    price_state = ("hit", "clear", "unknown")[i % 3]
    return [
        {"code": "VISUAL_MATCH", "state": "hit", "message": f"photo is a verified copy of {brand.lower()}/product-{i % 40}"
         f"_front.jpg (similarity 0.81): 64 matching keypoints; the listing shows 71 % of official photo", "details": {}},
        {"code": "UNAUTHORIZED_SELLER", "state": ("hit", "unknown")[i % 2], "details": {},
         "message": (f"seller {seller} is not an authorized {brand} seller", "the listing names no seller")[i % 2]},
        {"code": "PRICE_IMPLAUSIBLE", "state": price_state, "details": {"share": 0.31} if price_state != "unknown" else {},
         "message": "price 35 EUR is 31% of the reference price 112 EUR" if price_state != "unknown"
         else "price 35 USD cannot be compared with 112 EUR (no exchange rate given)"},
        {"code": "BRAND_MISUSE", "state": "clear", "message": f"title names {brand}", "details": {}},
        {"code": "REPLICA_TERMS", "state": "hit", "message": "title advertises a copy: 'mirror quality'", "details": {}},
    ]


def synthetic_result(i: int, photos: list[Path], rng: np.random.Generator) -> dict[str, Any]:
    """One results line as a scan writes it (schema 2)."""
    verdict = VERDICTS[int(rng.choice(5, p=(0.1, 0.1, 0.2, 0.55, 0.05)))]
    brand, seller = f"Brand {i % 50:02d}", f"shop-{int(rng.integers(0, 5000)):04d}"
    photo = str(photos[i % len(photos)])
    match = {"brand": brand, "product_id": f"P{i % 40:03d}", "product_name": f"{brand} product {i % 40}",
             "reference_image": str(photos[(i * 7) % len(photos)]), "reference_label": f"refs/p{i % 40}.jpg",
             "similarity": round(float(rng.uniform(0.3, 1)), 4), "tier": "near-copy", "listing_image": photo,
             "reference_price": 112.0, "reference_currency": "EUR",
             "verification": {"inliers": 64, "matches": 90, "inlier_ratio": 0.71, "reference_coverage": 0.71,
                              "listing_coverage": 0.5, "mirrored": False, "rotation_deg": 1.5, "scale": 0.9,
                              "verified": True, "failed_check": None, "anisotropy": 1.1, "inlier_spread": 0.6,
                              "pixel_agreement": 0.93, "listing_size": [320, 240],
                              "reference_box": [[20.5, 10.2], [300.1, 12.7], [296.4, 230.9], [18.8, 228.3]]}}
    signals = _signals(i, seller, brand) if verdict not in ("no_match", "error") else []
    if verdict == "no_match":
        match = dict(match, tier=None, verification=None)
    title = " ".join(str(w) for w in rng.choice(WORDS, 6)) + f" #{i}"
    return {"schema": 2, "listing_id": f"L{i:07d}", "verdict": verdict, "risk": round(float(rng.uniform()), 4),
            "match": None if verdict == "error" else match, "engine": "perceptual",
            "reasons": [{"code": s["code"], "message": s["message"]} for s in signals if s["state"] == "hit"],
            "signals": signals, "skipped_images": [], "error": "cannot read file" if verdict == "error" else None,
            "listing": {"listing_id": f"L{i:07d}", "images": [photo] + ([str(photos[0])] if i % 4 == 0 else []),
                        "title": title, "price": 35.0, "currency": "EUR", "seller": seller}}


def write_scan(folder: Path, n: int, photos: list[Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    with (folder / "results.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps(synthetic_result(i, photos, rng)) + "\n")
    return folder


def page_bytes(out: Path) -> int:
    """report.html plus its data files (not the thumbnails, not the CSV)."""
    data = out / "report" / "data"
    return (out / "report.html").stat().st_size + sum(p.stat().st_size for p in data.glob("*.js"))


def build_new(out: Path, one_file: bool | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    files = write_reports(out, one_file=one_file)
    seconds = time.perf_counter() - started
    size = page_bytes(out)
    return {"seconds": round(seconds, 2), "bytes": size, "bytes_per_listing": round(size / files.listings),
            "listings": files.listings, "thumbnails_made": files.thumbnails_made,
            "thumbnail_files_bytes": sum(p.stat().st_size for p in (out / "report" / "thumbs").rglob("*.jpg"))
            if (out / "report" / "thumbs").exists() else 0}


def old_renderer() -> Any:
    """The previous release's one-file renderer, read from git (None when git or the commit is missing)."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:knockoff/report/render.py"],
                                capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_render.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_old(module: Any, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    module.write_reports(out)
    seconds = time.perf_counter() - started
    size = (out / "report.html").stat().st_size
    listings = sum(1 for _ in (out / "results.jsonl").open(encoding="utf-8"))
    return {"seconds": round(seconds, 2), "bytes": size, "bytes_per_listing": round(size / listings),
            "listings": listings}


def browser(profile: Path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_report import open_chromium  # the tests' driver set-up: Debian chromium + chromedriver

    return open_chromium(profile)


def load_time(driver: Any, page: Path, ready: str, runs: int = 3) -> dict[str, Any]:
    """Wall seconds from navigation to ``ready`` being true (best and median of ``runs``)."""
    times = []
    for _ in range(runs):
        driver.get("about:blank")
        started = time.perf_counter()
        driver.get(page.resolve().as_uri())
        while not driver.execute_script(f"return !!({ready})"):
            time.sleep(0.01)
        times.append(time.perf_counter() - started)
    return {"best_s": round(min(times), 3), "median_s": round(float(np.median(times)), 3)}


INTERACTIONS = {
    "search": "document.getElementById('q').value='replica #9'; document.getElementById('q')"
              ".dispatchEvent(new Event('change'));",
    "sort by seller": "var s=document.getElementById('sort'); s.value='seller'; s.dispatchEvent(new Event('change'));",
    "filter verdict review": "var s=document.getElementById('f-verdict'); s.value='1';"
                             "s.dispatchEvent(new Event('change'));",
    "next page": "document.getElementById('next').click();",
}


def interactions(driver: Any) -> dict[str, float]:
    """Milliseconds each reviewer action takes on the loaded page (the page's own work, measured in it)."""
    out = {}
    for name, script in INTERACTIONS.items():
        out[name] = round(driver.execute_script(f"var t=performance.now(); {script} return performance.now()-t;"), 1)
    return out


def thumbnail_cost(old: Any, folder: Path, count: int = 40) -> dict[str, Any] | None:
    """Seconds per real photo: list + enlarged thumbnail files (new) vs one inline 160-px thumbnail (old)."""
    photos = sorted((REAL_DATA / "grocerystore").rglob("*.jpg"))[:count] if REAL_DATA.exists() else []
    if not photos:
        return None
    thumbs = Thumbnails(folder, None)
    started = time.perf_counter()
    for path in photos:
        thumbs.photo(str(path))
    new = (time.perf_counter() - started) / len(photos)
    out: dict[str, Any] = {"photos": len(photos), "new_s_per_photo": round(new, 4),
                           "new_bytes_per_photo": round(sum(p.stat().st_size for p in folder.rglob("*.jpg"))
                                                        / len(photos))}
    if old is not None:
        started = time.perf_counter()
        for path in photos:
            old.make_thumbnail(path, 160)
        out["old_s_per_photo"] = round((time.perf_counter() - started) / len(photos), 4)
        out["new_over_old"] = round(new / max(out["old_s_per_photo"], 1e-9), 2)
    return out


def measure_pages(work: Path, n: int, old: Any, photos: list[Path], shot: Path | None) -> dict[str, Any]:
    big, small, base = work / "big", work / "small", work / "old"
    write_scan(big, n, photos)
    write_scan(small, 1_000, photos)
    shutil.copy(small / "results.jsonl", write_scan(base, 0, photos) / "results.jsonl")
    figures: dict[str, Any] = {"new": build_new(big), "new_1000": build_new(small)}
    if old is not None:
        figures["old_1000"] = build_old(old, base)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    driver = browser(work / "profile")
    try:
        figures["new"]["load"] = load_time(driver, big / "report.html", "window.KO_READY")
        figures["new"]["interactions_ms"] = interactions(driver)
        if shot is not None:
            driver.get((big / "report.html").resolve().as_uri())
            while not driver.execute_script("return !!window.KO_READY && !document.querySelector('#rows .loading')"):
                time.sleep(0.05)
            time.sleep(1.0)
            driver.save_screenshot(str(shot))
        figures["new_1000"]["load"] = load_time(driver, small / "report.html", "window.KO_READY")
        if old is not None:
            figures["old_1000"]["load"] = load_time(driver, base / "report.html", "document.readyState==='complete'")
    finally:
        driver.quit()
    return figures


def markdown(figures: dict[str, Any], n: int) -> str:
    rows = []
    for key, label in (("new", f"new, {n:,} listings (page + data folder)"), ("new_1000", "new, 1,000 listings"),
                       ("old_1000", "previous one-file report, 1,000 listings (baseline)")):
        f = figures.get(key)
        if f:
            rows.append([label, f["seconds"], f["bytes_per_listing"], f["load"]["best_s"], f["load"]["median_s"]])
    text = markdown_table(["report", "build s", "HTML+data bytes/listing", "load s (best)", "load s (median)"], rows)
    if "old_1000" in figures:
        old = figures["old_1000"]
        text += (f"\n\nRatios to the baseline in this run: load of {n:,} listings / old load of 1,000 = "
                 f"{figures['new']['load']['best_s'] / old['load']['best_s']:.2f}; bytes per listing new / old = "
                 f"{figures['new']['bytes_per_listing'] / old['bytes_per_listing']:.3f}.")
    text += f"\n\nPage actions at {n:,} listings (ms, measured in the page): {figures['new']['interactions_ms']}"
    if figures.get("thumbnails"):
        text += f"\n\nThumbnails per real photo: {figures['thumbnails']}"
    return text + f"\n\nPeak memory of the build process: {figures['peak_rss_mb']} MB.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 listings instead of 100,000")
    parser.add_argument("--n", type=int, help="listings (overrides --quick)")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the large page here")
    args = parser.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    old = old_renderer()
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        work = Path(tmp)
        (work / "photos").mkdir()
        photos = _photos(work / "photos")
        figures = measure_pages(work, n, old, photos, args.screenshot)
        figures["thumbnails"] = thumbnail_cost(old, work / "real_thumbs")
    figures["n"] = n
    figures["synthetic_photos"] = "64 generated 320x240 JPEGs shared by every row (thumbnails made once each)"
    text = markdown(figures, n)
    print(text)
    figures["script"] = "bench_report.py"
    figures["command"] = "python benchmarks/bench_report.py " + " ".join(sys.argv[1:])
    write_results("report.quick" if n < 100_000 else "report", figures, text)


if __name__ == "__main__":
    main()
