"""Speed benchmark: images per second end to end for each knockoff engine against pHash/dHash (and PDQ) in
the same run, and the FAISS search alone for growing index sizes.

    python benchmarks/bench_speed.py --quick   # under a minute
    python benchmarks/bench_speed.py           # 10^3..10^5 vectors, more listings
    python benchmarks/bench_speed.py --full    # adds 10^6 vectors (about 2 GB of memory at 512 dimensions)

End to end, per listing photo of a synthetic set: ``e2e`` is ``Detector.check`` (decode, embed, search, the
geometric verification of the best candidates, signals); ``decode+embed+search`` leaves the verification and
the signals out, to compare with the baselines, which decode, hash and search all reference hashes
(brute-force Hamming). A warm-up pass runs before each timed pass. Search alone: an exact inner-product
FAISS index (``IndexFlatIP``, what knockoff builds) over clustered unit vectors, against FAISS's binary index
over 64-bit hashes (``IndexBinaryFlat``), batch of queries, k=10.
Results: printed, and written to benchmarks/results/speed(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import hamming, hash_baselines, markdown_table, text_table, write_results


def _timed(fn, items, warmup: int = 3) -> float:
    for item in items[:warmup]:
        fn(item)
    started = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - started)


def end_to_end(n_listings: int, engines: list[str]) -> list[dict[str, Any]]:
    from knockoff.catalog.readers import Catalog, read_listings
    from knockoff.decide.detector import Detector
    from knockoff.evaluate.synthetic import make_labeled_set
    from knockoff.embedders.base import create_embedder
    from knockoff.catalog.images import load_image
    from knockoff.match.index import build_index

    rows = []
    with tempfile.TemporaryDirectory(prefix="knockoff-speed-") as tmp:
        per_product = 3
        n_brands = max(1, round(n_listings * 0.8 / (3 * per_product)))
        make_labeled_set(Path(tmp) / "s", n_brands=n_brands, products_per_brand=3,
                         listings_per_product=per_product, n_unrelated=max(1, n_listings // 5), seed=0)
        catalog = Catalog.from_dir(Path(tmp) / "s")
        listings = [r.listing for r in read_listings(Path(tmp) / "s" / "listings.csv")][:n_listings]
        for engine in engines:
            try:
                index = build_index(catalog, create_embedder(engine))
                detector = Detector(index)

                def light(listing, detector=detector, index=index):
                    loaded = detector.load(listing)
                    for views in detector.embed(loaded.images):
                        index.search(views, detector.policy.top_k)

                rows.append({"method": f"knockoff-{engine}", "stage": "decode+embed+search",
                             "images_per_s": _timed(light, listings)})
                rows.append({"method": f"knockoff-{engine}", "stage": "e2e (Detector.check)",
                             "images_per_s": _timed(detector.check, listings)})
            except Exception as error:  # noqa: BLE001 - recorded, the sweep goes on
                rows.append({"method": f"knockoff-{engine}", "stage": "error", "error": f"{type(error).__name__}: {error}"})
        for name, fn in hash_baselines().items():
            ref_bits = np.stack([fn(load_image(r.image)) for r in catalog.references])

            def hashed(listing, fn=fn, ref_bits=ref_bits):
                bits = fn(load_image(listing.images[0]))
                return int(np.argmin(hamming(bits[None, :], ref_bits)[0]))

            rows.append({"method": name, "stage": "decode+hash+search", "images_per_s": _timed(hashed, listings)})
    base = next((r["images_per_s"] for r in rows if r["method"] == "phash"), None)
    for r in rows:
        r["vs_phash"] = r["images_per_s"] / base if base and "images_per_s" in r else None
    return rows


def _search_rate(index: Any, queries: np.ndarray, repeats: int = 3, min_seconds: float = 0.2) -> float:
    """Queries per second of ``index.search(queries, 10)``: the best of ``repeats`` timed runs (each repeated
    until it lasts ``min_seconds``), after a warm-up."""
    index.search(queries[:10], 10)
    best = 0.0
    for _ in range(repeats):
        done, t = 0, time.perf_counter()
        while True:
            index.search(queries, 10)
            done += len(queries)
            elapsed = time.perf_counter() - t
            if elapsed >= min_seconds:
                break
        best = max(best, done / elapsed)
    return best


def clustered(n: int, dim: int, rng: np.random.Generator, n_clusters: int = 256) -> np.ndarray:
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, n_clusters, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def search_alone(sizes: list[int], dims: list[int], n_queries: int) -> list[dict[str, Any]]:
    import faiss

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)  # 64-bit hashes
        binary = faiss.IndexBinaryFlat(64)
        binary.add(codes)
        q = codes[rng.integers(0, n, n_queries)]
        hash_qps = _search_rate(binary, q)
        rows.append({"n": n, "index": "IndexBinaryFlat, 64-bit hash", "queries_per_s": hash_qps, "vs_hash": 1.0})
        for dim in dims:
            x = clustered(n, dim, rng)
            index = faiss.IndexFlatIP(dim)
            index.add(x)
            queries = x[rng.integers(0, n, n_queries)] + 0.05 * rng.standard_normal((n_queries, dim)).astype(np.float32)
            qps = _search_rate(index, queries)
            rows.append({"n": n, "index": f"IndexFlatIP, dim {dim}", "queries_per_s": qps, "vs_hash": qps / hash_qps})
            del index, x
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer listings and queries, under a minute")
    parser.add_argument("--full", action="store_true", help="also search 10^6 vectors")
    parser.add_argument("--threads", type=int, default=1,
                        help="FAISS/OpenMP threads (default 1: stable figures on a shared machine; 0 = all)")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    import faiss

    from knockoff.embedders.base import create_embedder
    from knockoff.embedders.clip import default_weights_available

    if args.threads > 0:
        faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    engines = ["perceptual"] + (["clip"] if default_weights_available() else [])
    if "clip" not in engines:
        print("clip engine skipped: its weights are not on this machine (see weights/README.md)", file=sys.stderr)
    e2e = end_to_end(20 if args.quick else 60, engines)
    perceptual_dim = create_embedder("perceptual").dim
    sizes = [10**3, 10**4, 10**5] + ([10**6] if args.full else [])
    search = search_alone(sizes, sorted({perceptual_dim, 512}), 100 if args.quick else 1000)

    e2e_headers = ["method", "stage", "images/s", "x pHash"]
    e2e_rows = [[r["method"], r["stage"], r.get("images_per_s", r.get("error")), r.get("vs_phash")] for r in e2e]
    s_headers = ["vectors", "index", "queries/s", "x hash search"]
    s_rows = [[f"{r['n']:,}", r["index"], r["queries_per_s"], r["vs_hash"]] for r in search]
    threads = faiss.omp_get_max_threads()
    print(text_table(e2e_headers, e2e_rows))
    print()
    print(text_table(s_headers, s_rows))
    print(f"\nFAISS threads: {threads}; total {time.perf_counter() - started:.0f} s")
    if not args.no_write:
        command = "python benchmarks/bench_speed.py" + (" --quick" if args.quick else "") + (" --full" if args.full else "")
        md = ("### End to end, one listing photo at a time\n\n" + markdown_table(e2e_headers, e2e_rows)
              + f"\n\n### Search alone (k=10, exact; FAISS threads {threads})\n\n" + markdown_table(s_headers, s_rows))
        name = "speed.quick" if args.quick else "speed"
        paths = write_results(name, {"script": "bench_speed.py", "command": command, "end_to_end": e2e,
                                     "search": search, "faiss_threads": threads, "perceptual_dim": perceptual_dim},
                              md, args.results_dir)
        print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
