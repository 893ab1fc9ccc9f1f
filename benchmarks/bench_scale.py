"""Scale benchmark: index types (flat, hnsw, ivfpq) on synthetic clustered vectors, and a Ray scan's throughput.

    python benchmarks/bench_scale.py --quick   # 10^4 and 10^5 vectors at 256 dimensions, a 120-listing scan
    python benchmarks/bench_scale.py           # adds 10^6 vectors (and 512 dimensions below 10^6)

Vectors: unit vectors around many centres (one a thousand vectors), each a centre plus a low-rank spread (a
32-dimensional latent) and a little isotropic noise: closer to image embeddings than uniform noise, where
every neighbour is about as far as every other. Queries are new draws of the same distribution. For each
size and dimension the exact search (flat, measured in the same run) gives the ground truth; each type's
recall@10 is the overlap of its top 10 reference ids with the exact top 10, queries per second are through
``ReferenceIndex.search`` in batches of 16 queries after a warm-up, memory is the written index size and the
process RSS growth while building, and the QPS ratio is against flat in the same run.
Ray: the same folder of listings (perceptual engine) scanned locally and by ``scan_with_ray`` with 1 and 2
actors on one local Ray instance of 4 logical CPUs; the ratio is 2 actors over 1.
Results: printed, and written to benchmarks/results/scale(.quick).{json,md}.

``--check`` (issue 15) measures the full default check instead (``Detector.check_decoded`` in batches of 8:
perceptual engine, global search, keypoint vote, geometric, pixel, colour and small-print proof, signals):

    python benchmarks/bench_scale.py --check --baseline-tree DIR        # 10^3 and 10^4 reference photos
    python benchmarks/bench_scale.py --check --check-sizes 1000,100000 --check-keypoints 30

- Catalog: the 59 real copy sources of bench_copies, then distractor reference photos up to each size, made from
  ``--check-bases`` real grocerystore *train* store photos: their perceptual vectors with noise, and
  ``--check-keypoints`` of their RootSIFT descriptors with noise at random positions (stored keypoints, as
  bench_shortlist makes them: SIFT on 10^5 real photos is out of reach here). The index is sized for the catalog
  (``expected_references``, and the global index's type picked from the photos' views, as ``build_index`` does:
  ``--check-index-type auto``, hnsw from 10^6 vectors; results before this option used flat), saved (its keypoint shortlist trained and filled with it)
  and loaded back, as a user's scan gets it: the checks use the stored shortlist and train nothing (build, save
  and load timed apart; ``--check-output NAME`` names the results files).
- Speed: ``--check-listings`` listings, half copies of the sources (one edit each, the 16 kinds in turn), half
  unrelated (grocerystore *val* store photos and synthetic package-like images). The baseline is the check
  before issue 15, in the same run, on the same catalog and listings, at the first size: with
  ``--baseline-tree DIR`` (main's ``knockoff/`` at commit eaf2b9e, e.g. ``git archive eaf2b9e knockoff | tar -x
  -C DIR``) main's own code in a subprocess; and always this code with the old settings, which the policy keeps
  reachable (``shortlist.stop_at_copy`` false, ``query_features`` 1,000, ``flat_limit`` 400,000; only the
  listing photo's mirrored SIFT, now computed when a mirror is first tried, is not a setting). Targets:
  default / baseline >= 3 at 10^3; at the larger sizes >= 0.5 of the speed at 10^3.
- Recall: each source edited ``--recall-kinds`` ways plus ``--recall-unrelated`` unrelated photos, checked
  against the sources alone (default and baseline settings) and against the largest catalog (default): a copy
  is found when the verdict matches its own source at a visual tier; an unrelated photo is matched when it
  gets any visual tier. Target: recall among the distractors within 0.01 of the recall against the sources
  alone, 0 unrelated matched. This is the Detector's recall (a copy that the pixel checks refute is no match),
  lower than bench_copies' pairwise figure, which also counts a global similarity above its threshold.
Results: benchmarks/results/check_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import markdown_table, text_table, write_results  # noqa: E402

from knockoff.catalog.readers import ReferenceImage
from knockoff.embedders.base import Embedder
from knockoff.match.index import ReferenceIndex

K = 10
QUERY_BATCH = 16


class _VectorsOnly(Embedder):
    """Stands for an embedder of a given dimension: the benchmark adds vectors, it embeds no image."""

    kind = "bench"

    def __init__(self, dim: int):
        self._dim = dim

    @property
    def name(self) -> str:
        return f"bench:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, images):  # pragma: no cover - never called
        raise NotImplementedError


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def clustered(n: int, dim: int, seed: int, n_centres: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345 + dim).normal(size=(n_centres, dim)).astype(np.float32)
    mixing = np.random.default_rng(54321 + dim).normal(size=(32, dim)).astype(np.float32) / np.sqrt(32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, n_centres, m)]
        x += 0.8 * rng.normal(size=(m, 32)).astype(np.float32) @ mixing
        x += 0.15 * rng.normal(size=(m, dim)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _top_ids(index: ReferenceIndex, queries: np.ndarray) -> tuple[np.ndarray, float]:
    for start in range(0, min(len(queries), 2 * QUERY_BATCH), QUERY_BATCH):  # warm-up
        index.search(queries[start : start + QUERY_BATCH], K)
    ids = np.full((len(queries), K), -1, np.int64)
    started = time.perf_counter()
    for start in range(0, len(queries), QUERY_BATCH):
        for row, hits in enumerate(index.search(queries[start : start + QUERY_BATCH], K)):
            ids[start + row, : len(hits)] = [h.reference_id for h in hits]
    return ids, len(queries) / (time.perf_counter() - started)


def bench_index(index_type: str, params: dict[str, Any], base: np.ndarray, queries: np.ndarray,
                truth: np.ndarray | None) -> tuple[dict[str, Any], np.ndarray]:
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    index = ReferenceIndex(_VectorsOnly(base.shape[1]), index_type=index_type,
                           params={**params, **({"expected_vectors": len(base)} if index_type == "ivfpq" else {})})
    reference = ReferenceImage("Bench", "p", "P", "/bench/p.png")
    for start in range(0, len(base), 100_000):  # batches: what a large catalog build does
        chunk = base[start : start + 100_000]
        index.add_vectors_batch([reference] * len(chunk), chunk)
    index.search(queries[:1], K)  # an ivfpq index trains on its buffer here at the latest
    build_s = time.perf_counter() - started
    grown = rss_bytes() - before
    with tempfile.TemporaryDirectory() as tmp:
        import faiss

        path = Path(tmp) / "index.faiss"
        faiss.write_index(index._faiss, str(path))
        size = path.stat().st_size
    ids, qps = _top_ids(index, queries)
    truth = ids if truth is None else truth
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(ids, truth)]))
    row = {"type": index_type, "params": dict(index.params), "recall@10": round(recall, 4), "qps": round(qps, 1),
           "index_bytes": size, "rss_delta_bytes": grown, "build_s": round(build_s, 2)}
    del index
    gc.collect()
    return row, ids


def index_sweep(sizes: list[int], dims: list[int], n_queries: int) -> list[dict[str, Any]]:
    rows = []
    for dim in dims:
        for n in sizes:
            if dim > 256 and n >= 1_000_000:
                continue  # 4 GB of vectors and a long hnsw build: 256 dimensions only at this size
            base = clustered(n, dim, seed=1, n_centres=max(100, n // 1000))
            queries = clustered(n_queries, dim, seed=2, n_centres=max(100, n // 1000))
            truth = None
            flat_qps = None
            for index_type, params in (("flat", {}), ("hnsw", {}), ("ivfpq", {})):
                print(f"  n={n} dim={dim} {index_type} ...", file=sys.stderr, flush=True)
                try:
                    row, ids = bench_index(index_type, params, base, queries, truth)
                except Exception as exc:  # a failed case is recorded, the sweep goes on  # noqa: BLE001
                    rows.append({"n": n, "dim": dim, "type": index_type, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                if index_type == "flat":
                    truth, flat_qps = ids, row["qps"]
                row.update(n=n, dim=dim, qps_vs_flat=round(row["qps"] / flat_qps, 2) if flat_qps else None)
                rows.append(row)
                print(f"    {row}", file=sys.stderr, flush=True)
            del base
            gc.collect()
    return rows


def ray_throughput(n_listings: int) -> dict[str, Any]:
    """Local scan, then the Ray scan with 1 and 2 actors, on one folder of listings."""
    from PIL import Image

    from knockoff import Catalog, build_index
    from knockoff.run.ray_scan import scan_with_ray
    from knockoff.run.scan import scan

    try:
        import ray
    except ImportError:
        return {"error": "ray is not installed (pip install 'knockoff[ray]')"}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        refs = root / "refs"
        refs.mkdir()
        lines = ["brand,product_id,product_name,image,price,currency"]
        photos = []
        for i in range(8):
            image = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).resize((256, 256))
            image.save(refs / f"r{i}.png")
            photos.append(image)
            lines.append(f"Acme,p{i},P{i},r{i}.png,100,USD")
        (refs / "references.csv").write_text("\n".join(lines) + "\n")
        (refs / "brands.csv").write_text("brand,aliases,authorized_sellers\nAcme,,\n")
        folder = root / "listings"
        folder.mkdir()
        for i in range(n_listings):
            image = photos[i % 8].resize((200, 200)) if i % 3 == 0 else Image.fromarray(
                rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((200, 200))
            image.save(folder / f"l{i:05d}.jpg", quality=85)
        index = build_index(Catalog.from_dir(refs), "perceptual")
        out: dict[str, Any] = {"listings": n_listings, "engine": "perceptual", "ray_cpus": 4}
        local = scan(folder, index, root / "local", workers=1, progress=False)
        out["local_listings_per_s"] = round(local.decided / local.seconds, 2)
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        try:
            for actors in (1, 2):
                summary = scan_with_ray(folder, index, root / f"ray{actors}", num_actors=actors, progress=False,
                                        timeout_s=300)
                out[f"ray_{actors}_listings_per_s"] = round(summary.decided / summary.seconds, 2)
        finally:
            ray.shutdown()
    out["ray_2_over_1"] = round(out["ray_2_listings_per_s"] / out["ray_1_listings_per_s"], 2)
    return out


# -- the full check at catalog scale (issue 15) -------------------------------------------------------------

#: the check before issue 15, kept reachable through the policy: every candidate verified, the keypoint vote
#: always run with 1,000 query keypoints, exact vote up to 400,000 descriptors
def baseline_policy() -> Any:
    from dataclasses import replace

    from knockoff import Policy

    return replace(Policy(), shortlist=replace(Policy().shortlist, stop_at_copy=False, query_features=1000,
                                               flat_limit=400_000))


def check_catalog(n_refs: int, keypoints: int, bases: int, seed: int = 0,
                  index_type: str = "auto") -> tuple[ReferenceIndex, list[Path]]:
    """An index of ``n_refs`` reference photos (perceptual): the real copy sources of bench_copies, then
    distractors made from ``bases`` real grocerystore store photos (their perceptual vectors with noise, and
    ``keypoints`` of their RootSIFT descriptors with noise at random positions, as bench_shortlist makes them).
    ``index_type`` ``auto`` is sized as ``build_index`` sizes it (from the photos' views): what a user gets."""
    from bench_copies import DEFAULT_DATA, source_paths, unrelated_paths

    from knockoff.catalog.images import load_image
    from knockoff.catalog.readers import Brand
    from knockoff.embedders.base import create_embedder
    from knockoff.match.index import PreparedBatch
    from knockoff.match.refstore import StoredFeatures
    from knockoff.match.verify import GeometricVerifier

    from PIL import Image

    embedder = create_embedder("perceptual")
    probe = Image.new("RGB", (2 * embedder.input_size, 2 * embedder.input_size))
    views = len(embedder.reference_views(probe))
    sources = source_paths(DEFAULT_DATA)
    index = ReferenceIndex(embedder, [Brand("Official", (), ("official_store",))], index_type=index_type,
                           params={"expected_vectors": max(n_refs, len(sources)) * views},
                           expected_references=n_refs)  # as build_index sizes it: the shortlist streams in
    index.add([ReferenceImage("Official", f"p{i}", f"p{i}", p, price=10.0, currency="EUR")
               for i, p in enumerate(sources)])
    rng, verifier = np.random.default_rng(seed), GeometricVerifier()
    store = unrelated_paths(DEFAULT_DATA)[:864]  # grocerystore train: never a listing here
    made = []
    for path in store[:: max(1, len(store) // bases)][:bases] if n_refs > len(sources) else []:
        image = load_image(path)
        made.append((embedder.embed(embedder.reference_views(image)), verifier.features(image)))
    for start in range(len(sources), n_refs, 2000):
        owners, vectors, counts, features = [], [], [], []
        for j in range(start, min(n_refs, start + 2000)):
            vec, f = made[int(rng.integers(len(made)))]
            v = vec + rng.normal(0, 0.05, vec.shape).astype(np.float32)
            vectors.append(v / np.linalg.norm(v, axis=1, keepdims=True))
            pick = rng.choice(len(f.descriptors), min(keypoints, len(f.descriptors)), replace=False)
            d = np.clip(f.descriptors[pick] + rng.normal(0, 0.03, (len(pick), 128)).astype(np.float32), 0, None)
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
            points = (rng.random((len(pick), 2)) * np.array(f.work_size)).astype(np.float32)
            features.append(StoredFeatures(points, rng.random(len(pick)).astype(np.float32),
                                           np.clip(np.rint(d * 512), 0, 255).astype(np.uint8), f.work_size,
                                           f.image_size, f.thumbnail, None, f.colour))
            owners.append(ReferenceImage("Official", f"d{j}", f"d{j}", Path(f"/distractor/d{j}.jpg"), price=10.0,
                                         currency="EUR"))
            counts.append(len(v))
        index.add_prepared(PreparedBatch(owners, np.concatenate(vectors), counts, features, [None] * len(owners), []))
    return index, sources


def stored(index: ReferenceIndex, folder: Path) -> tuple[ReferenceIndex, float, float]:
    """The index as a user's scan gets it: saved (its keypoint shortlist with it: trained and filled there) and
    loaded back (the shortlist read from the folder, never trained in the checking process); (index, save s,
    load s)."""
    t = time.perf_counter()
    index.save(folder)
    saved = time.perf_counter() - t
    t = time.perf_counter()
    loaded = ReferenceIndex.load(folder)
    return loaded, round(saved, 1), round(time.perf_counter() - t, 1)


def check_listings(sources: list[Path], kinds_per_source: int, unrelated: int, seed: int = 1) -> list[tuple]:
    """(photo, own source or None, kind): each source edited ``kinds_per_source`` ways (the 16 kinds in turn),
    then ``unrelated`` grocerystore val store photos and synthetic package-like images."""
    from bench_copies import DEFAULT_DATA, _synthetic_unrelated, unrelated_paths

    from knockoff.catalog.images import load_image
    from knockoff.evaluate.edits import EDIT_KINDS, apply_edit

    rng, out, turn = np.random.default_rng(seed), [], 0
    for i, path in enumerate(sources):
        image = load_image(path)
        for _ in range(kinds_per_source):
            kind = EDIT_KINDS[turn % len(EDIT_KINDS)]
            turn += 1
            out.append((apply_edit(image, kind, rng), i, kind))
    val = unrelated_paths(DEFAULT_DATA)[864:]
    photos = [load_image(p) for p in val[: unrelated - unrelated // 8]]
    photos += [_synthetic_unrelated(k) for k in range(unrelated // 8)]
    return out + [(photo, None, "unrelated") for photo in photos]


def run_check(index: ReferenceIndex, policy: Any, items: list[tuple], batch: int = 8) -> dict[str, Any]:
    """Check every listing with ``Detector.check_decoded`` (batches of ``batch``) after a warm-up that builds
    the keypoint shortlist (timed apart); listings/s, copies found (own source at a visual tier), unrelated
    photos matched (any visual tier)."""
    from PIL import Image

    from knockoff import Detector, Listing
    from knockoff.decide.detector import ListingImages

    detector = Detector(index, policy)
    decoded = []
    for k, (photo, _, _) in enumerate(items):
        photo = photo.convert("RGB")
        if max(photo.size) > detector.max_side:
            photo.thumbnail((detector.max_side, detector.max_side), Image.Resampling.BILINEAR)
        path = Path(f"/listing/{k}.jpg")
        decoded.append((Listing([path], listing_id=f"L{k}", title="carton", price=10, currency="EUR",
                                seller="shop123"), ListingImages([path], [photo])))
    started = time.perf_counter()
    unrelated = [d for d, item in zip(decoded, items) if item[1] is None][:1]
    detector.check_decoded(unrelated)  # builds (trains) the keypoint shortlist: the vote runs
    warm_s = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = [v for s in range(0, len(decoded), batch) for v in detector.check_decoded(decoded[s:s + batch])]
    seconds = time.perf_counter() - started
    found = [v.match is not None and v.match.tier is not None and v.match.product_id == f"p{src}"
             for v, (_, src, _) in zip(verdicts, items) if src is not None]
    false = sum(1 for v, (_, src, _) in zip(verdicts, items) if src is None and v.match and v.match.tier)
    return {"listings": len(items), "listings_per_s": round(len(items) / seconds, 3), "seconds": round(seconds, 1),
            "warm_up_s": round(warm_s, 1), "copies": len(found), "copies_found": int(sum(found)),
            "recall": round(float(np.mean(found)), 4) if found else None, "unrelated": len(items) - len(found),
            "unrelated_matched": false}


def check_worker(params: dict[str, Any]) -> dict[str, Any]:
    """One run of :func:`run_check` with the default policy of whatever knockoff is imported (a subprocess
    runs it with another checkout's knockoff: the baseline of ``--baseline-tree``)."""
    import knockoff
    from knockoff import Policy

    index, sources = check_catalog(params["size"], params["keypoints"], params["bases"],
                                   index_type=params.get("index_type", "auto"))
    if params["what"] == "recall":
        items = check_listings(sources, params["recall_kinds"], params["recall_unrelated"])
    else:
        items = speed_listings(sources, params["listings"])
    return {**run_check(index, Policy(), items), "knockoff": str(Path(knockoff.__file__).parent)}


def baseline_in_tree(tree: Path, params: dict[str, Any]) -> dict[str, Any]:
    """:func:`check_worker` in a subprocess that imports knockoff from ``tree`` (e.g. a ``git worktree`` of
    main), run now, in this run."""
    import json
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); import knockoff; sys.path.insert(0, {here!r}); "
            f"import bench_scale; print('ROW', json.dumps(bench_scale.check_worker({params!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("ROW ")][-1][4:])


def speed_listings(sources: list[Path], count: int) -> list[tuple]:
    """The speed set: ``count // 2`` copies spread over the sources and edit kinds, ``count // 2`` unrelated."""
    every = check_listings(sources, 1, count // 2, seed=2)
    copies = [item for item in every if item[1] is not None]
    return copies[:: max(1, len(copies) // (count // 2))][: count // 2] + [i for i in every if i[1] is None]


def check_benchmark(args: argparse.Namespace) -> int:
    """The full default check at catalog sizes (issue 15); see the module docstring."""
    sizes = [int(v) for v in args.check_sizes.split(",")]
    started = time.perf_counter()
    sources_index, sources = check_catalog(0, args.check_keypoints, args.check_bases, index_type=args.check_index_type)
    workdir = Path(tempfile.mkdtemp(prefix="bench_check_"))
    try:
        return _check_sizes(args, sizes, sources_index, sources, workdir, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # a 10^5 catalog's store is tens of GB: never left behind


def _check_sizes(args: argparse.Namespace, sizes: list[int], sources_index: ReferenceIndex, sources: list[Path],
                 workdir: Path, started: float) -> int:
    from knockoff import Policy

    rows: list[dict[str, Any]] = []
    builds: dict[int, Any] = {}
    sources_index, _, _ = stored(sources_index, workdir / "sources")
    recall_items = check_listings(sources, args.recall_kinds, args.recall_unrelated)
    speed_items = speed_listings(sources, args.check_listings)
    policies = {"default": Policy(), "old settings": baseline_policy()}
    params = {"keypoints": args.check_keypoints, "bases": args.check_bases, "recall_kinds": args.recall_kinds,
              "recall_unrelated": args.recall_unrelated, "listings": args.check_listings,
              "index_type": args.check_index_type}

    def record(what: str, size: int, name: str, row: dict[str, Any]) -> None:
        rows.append({"what": what, "references": size, "policy": name, **row})
        print(rows[-1], flush=True)

    for name, policy in policies.items():
        record("recall", len(sources), name, run_check(sources_index, policy, recall_items))
    if args.baseline_tree:
        record("recall", len(sources), BASELINE_TREE, baseline_in_tree(
            args.baseline_tree, {**params, "size": 0, "what": "recall"}))
    for size in sizes:
        if args.baseline_tree and size == sizes[0]:
            record("speed", size, BASELINE_TREE, baseline_in_tree(args.baseline_tree,
                                                                  {**params, "size": size, "what": "speed"}))
        t = time.perf_counter()
        index, _ = check_catalog(size, args.check_keypoints, args.check_bases, index_type=args.check_index_type)
        built = round(time.perf_counter() - t, 1)
        saved = loaded = None  # --check-in-memory: the shortlist the index built while photos were added
        if not args.check_in_memory:
            index, saved, loaded = stored(index, workdir / str(size))
        builds[size] = {"build s": built, "save s": saved, "load s": loaded, "index type": index.index_type,
                        "shortlist": str(index.keypoint_shortlist.index_plan if index.keypoint_shortlist else None)}
        print(size, builds[size], flush=True)
        for name, policy in policies.items():
            if name == "default" or size == sizes[0]:
                record("speed", size, name, run_check(index, policy, speed_items))
        if size == sizes[-1]:
            record("recall", size, "default", run_check(index, Policy(), recall_items))
        del index
        shutil.rmtree(workdir / str(size), ignore_errors=True)
    return _check_report(args, rows, builds, sizes, time.perf_counter() - started)


BASELINE_TREE = "main (--baseline-tree)"


def _check_report(args: argparse.Namespace, rows: list[dict[str, Any]], builds: dict[int, float],
                  sizes: list[int], seconds: float) -> int:
    speed = {(r["references"], r["policy"]): r["listings_per_s"] for r in rows if r["what"] == "speed"}
    base = speed.get((sizes[0], BASELINE_TREE), speed[(sizes[0], "old settings")])
    new = speed[(sizes[0], "default")]
    recall = {(r["references"], r["policy"]): r["recall"] for r in rows if r["what"] == "recall"}
    n_sources = min(r["references"] for r in rows)
    summary = {
        f"speedup at {sizes[0]} references (default / baseline, same run)": round(new / base, 2),
        f"speedup at {sizes[0]} references (default / old settings, same run)":
            round(new / speed[(sizes[0], "old settings")], 2),
        **{f"speed at {n} / speed at {sizes[0]}": round(speed[(n, "default")] / new, 2) for n in sizes[1:]},
        f"recall at {sizes[-1]} minus recall at {n_sources} (sources alone)":
            round(recall[(sizes[-1], "default")] - recall[(n_sources, "default")], 4),
        "unrelated matched (any run)": sum(r["unrelated_matched"] for r in rows),
    }
    headers = ["what", "references", "policy", "listings", "listings/s", "warm-up s", "copies found", "recall",
               "unrelated matched"]
    table = [[r["what"], r["references"], r["policy"], r["listings"], r["listings_per_s"], r["warm_up_s"],
              f'{r["copies_found"]}/{r["copies"]}', r["recall"], f'{r["unrelated_matched"]}/{r["unrelated"]}']
             for r in rows]
    print(text_table(headers, table))
    print(summary)
    markdown = ("## The full check at catalog scale\n\n" + markdown_table(headers, table) + "\n\n"
                + "\n".join(f"- {k}: **{v}**" for k, v in summary.items())
                + f"\n- catalog build, save (shortlist trained and filled), load (s): {builds}; distractor "
                  f"keypoints {args.check_keypoints}; the checks run on the loaded index (stored shortlist)\n")
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    write_results(args.check_output, {"script": "bench_scale.py", "command": command, "rows": rows,
                                  "summary": summary, "build_s": builds, "seconds": round(seconds, 1)}, markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 vectors, 256 dimensions")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--listings", type=int, help="listings of the Ray scan (default 120 quick, 300 full)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray scan")
    parser.add_argument("--sizes", help="comma-separated vector counts (overrides --quick's)")
    parser.add_argument("--dims", help="comma-separated dimensions (overrides --quick's)")
    parser.add_argument("--check", action="store_true", help="the full check at catalog sizes (issue 15) instead")
    parser.add_argument("--check-sizes", default="1000,10000", help="reference photos (the first: the baseline's)")
    parser.add_argument("--check-keypoints", type=int, default=150, help="stored keypoints of a distractor")
    parser.add_argument("--check-bases", type=int, default=60, help="store photos the distractors are made from")
    parser.add_argument("--check-listings", type=int, default=24, help="listings of a speed run (half copies)")
    parser.add_argument("--recall-kinds", type=int, default=4, help="edits of each source in the recall set")
    parser.add_argument("--recall-unrelated", type=int, default=48, help="unrelated photos in the recall set")
    parser.add_argument("--check-in-memory", action="store_true",
                        help="check the built index without saving it (its shortlist is still built with it, "
                             "streamed in while photos are added): the saved pixel store of 10^5 distractors "
                             "(about 330 KB a photo) does not fit in memory here")
    parser.add_argument("--check-index-type", default="auto", choices=("auto", "flat", "hnsw", "ivfpq"),
                        help="the global index of the catalogs (auto: as build_index picks it for the size; runs "
                             "before this option used flat)")
    parser.add_argument("--check-output", default="check_scale", help="results name (benchmarks/results/NAME.md)")
    parser.add_argument("--baseline-tree", type=Path,
                        help="a checkout of main (git worktree add DIR eaf2b9e): its check is the baseline, run here")
    args = parser.parse_args(argv)
    if args.check:
        return check_benchmark(args)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    dims = [256] if args.quick else [256, 512]
    sizes = [int(v) for v in args.sizes.split(",")] if args.sizes else sizes
    dims = [int(v) for v in args.dims.split(",")] if args.dims else dims
    started = time.perf_counter()
    rows = index_sweep(sizes, dims, args.queries)
    ray_row = None if args.no_ray else ray_throughput(args.listings or (120 if args.quick else 300))
    headers = ["n", "dim", "type", "recall@10", "QPS", "QPS vs flat", "index MB", "RSS +MB", "build s", "params"]
    table = [
        [r["n"], r["dim"], r["type"], r.get("recall@10"), r.get("qps"), r.get("qps_vs_flat"),
         round(r["index_bytes"] / 1e6, 1) if "index_bytes" in r else None,
         round(r["rss_delta_bytes"] / 1e6, 1) if "rss_delta_bytes" in r else None, r.get("build_s"),
         r.get("error") or ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items() if k != "train_size")]
        for r in rows
    ]
    print(text_table(headers, table))
    markdown = "## Index types\n\n" + markdown_table(headers, table) + "\n"
    if ray_row is not None:
        print(ray_row)
        markdown += "\n## Ray scan throughput (listings per second, this machine)\n\n" + markdown_table(
            list(ray_row), [list(ray_row.values())]) + "\n"
    name = "scale.quick" if args.quick else "scale"
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    write_results(name, {"script": "bench_scale.py", "command": command, "rows": rows, "ray": ray_row,
                         "seconds": round(time.perf_counter() - started, 1)}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
