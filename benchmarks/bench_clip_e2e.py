"""End-to-end CLIP speed: decode 1-2 megapixel JPEGs, embed, search a 100,000-reference flat index.

Baseline (what a user writes from open_clip's README): a plain loop over the files in batches of 32:
``Image.open(path).convert("RGB")``, open_clip's ``preprocess``, ``model.encode_image`` (eager float32,
``torch.no_grad``), then one FAISS ``IndexFlatIP`` search of the batch.

knockoff:
- ``scan``: :func:`knockoff.scan.scan` over the folder (decoding in 1 worker process, draft-mode JPEG decoding,
  batched embedding with the engine's ``precision="auto"``, per-listing search and verdict, results.jsonl),
  with geometric verification off so that it does the same work as the baseline (the default ``Detector``
  verifies clip candidates too when OpenCV is installed and ``Policy.verify_top > 0``);
- ``lean``: the same pieces without the per-listing detector: ``load_image(min_side=224)`` in 1 worker
  process overlapped with ``ClipEmbedder.embed`` of batches of 32 and one ``ReferenceIndex.search`` per batch.

Both use the same model: ViT-B-32 with RANDOM weights (``open_clip.create_model("ViT-B-32", pretrained=None)``,
seeded), saved as a safetensors checkpoint in a temp dir and loaded through knockoff's real loading path
(``create_embedder("clip:ViT-B-32/laion2b_s34b_b79k", checkpoint=path)``; no sha256 is known for that file,
so none is checked). Speed does not depend on weight values; the agreement figures are on random weights.

Images: photos from ``shared/data/real`` (read in place) upscaled to 1600x1200 with a little grain, saved as
JPEG quality 90 in a temp dir. The index: 100,000 random unit vectors plus one reference per benchmark image
(the fp32 vector of its original, un-upscaled photo), so that top-1 means something.

Cases are interleaved (the order rotates every round) and reported as ratios to the baseline of the same run,
in wall time and in process CPU time (main process + decoding workers): the machine is shared.

    python benchmarks/bench_clip_e2e.py --quick          # ~2-3 minutes on a shared 2-core machine
    python benchmarks/bench_clip_e2e.py                  # 128 images, 3 rounds, + a scan with verification

Writes ``benchmarks/results/clip_e2e[.quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import REAL_DATA, markdown_table, text_table, write_results  # noqa: E402

MODEL, TAG = "ViT-B-32", "laion2b_s34b_b79k"
BATCH = 32


# -- setup ---------------------------------------------------------------------------------------------------


def source_photos(root: Path, n: int) -> list[Path]:
    """Real photos, the largest first (at least 40,000 pixels), read in place."""
    from PIL import Image

    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, ValueError):
            continue
        if w * h >= 40_000:
            found.append((-(w * h), str(path)))
    found.sort()
    return [Path(p) for _, p in found[:n]]


def make_jpegs(folder: Path, n: int, sources: list[Path], seed: int = 0) -> list[Path]:
    """``n`` 1600x1200 JPEGs (quality 90): the source photos upscaled, with grain; synthetic when none."""
    from PIL import Image

    from knockoff.embedders.clip_fast import probe_images

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        if sources:
            with Image.open(sources[i % len(sources)]) as src:
                image = src.convert("RGB")
        else:
            image = probe_images(1, 300, seed=seed + i)[0]
        image = image.resize((1600, 1200), Image.Resampling.BICUBIC)
        if i % 3 == 1:  # some portrait listings
            image = image.transpose(Image.Transpose.ROTATE_90)
        grain = rng.normal(0, 4, (image.size[1], image.size[0], 1))
        image = Image.fromarray(np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8))
        path = folder / f"listing_{i:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def save_random_checkpoint(folder: Path) -> Path:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(MODEL, pretrained=None)
    path = folder / f"{MODEL}__random-init.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


# -- the timed pipelines --------------------------------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds of this process and its finished children (decoding workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_baseline(paths: list[Path], model: Any, preprocess: Any, faiss_index: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from PIL import Image

    vectors, top1 = [], []
    for start in range(0, len(paths), BATCH):
        batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[start : start + BATCH]])
        with torch.no_grad():
            feats = model.encode_image(batch)
        feats = torch.nn.functional.normalize(feats, dim=-1).numpy()
        _, ids = faiss_index.search(feats, 10)
        vectors.append(feats)
        top1.append(ids[:, 0])
    return np.concatenate(vectors), np.concatenate(top1)


def run_lean(paths: list[Path], index: Any) -> tuple[np.ndarray, np.ndarray]:
    """Decode in a worker process (two batches in flight) while the main process embeds and searches."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:  # started inside, as scan does
        return _lean(paths, index, pool)


def _lean(paths: list[Path], index: Any, pool: ProcessPoolExecutor) -> tuple[np.ndarray, np.ndarray]:
    from knockoff.catalog.images import load_image

    embedder = index.embedder
    futures = [pool.submit(load_image, str(p), min_side=224) for p in paths[: 2 * BATCH]]
    submitted = len(futures)
    vectors, top1 = [], []
    for start in range(0, len(paths), BATCH):
        images = [f.result() for f in futures[start : start + BATCH]]
        futures += [pool.submit(load_image, str(p), min_side=224) for p in paths[submitted : submitted + BATCH]]
        submitted = min(submitted + BATCH, len(paths))
        vecs = embedder.embed(images)
        hits = index.search(vecs, 10)
        vectors.append(vecs)
        top1.append([h[0].reference_id if h else -1 for h in hits])
    return np.concatenate(vectors), np.concatenate(top1)


def run_scan(folder: Path, index: Any, out_dir: Path, verify: bool) -> dict[str, Any]:
    from knockoff.decide.detector import Detector
    from knockoff.run.scan import scan

    shutil.rmtree(out_dir, ignore_errors=True)
    detector = Detector(index) if verify else Detector(index, verifier=None)
    summary = scan(folder, index, out_dir, workers=1, batch_size=BATCH, progress=False, detector=detector)
    return summary.to_dict()


# -- stage breakdown ------------------------------------------------------------------------------------------


def stages(paths: list[Path], model: Any, preprocess: Any, faiss_index: Any, index: Any) -> list[dict[str, Any]]:
    """Each step alone, in this process, on one batch of ``len(paths)``: ms per image (wall and CPU)."""
    import torch
    from PIL import Image

    from knockoff.decide.detector import Detector, decode_listing
    from knockoff.catalog.readers import Listing
    from knockoff.catalog.images import load_image

    embedder = index.embedder
    fast = embedder._fast_preprocess
    batch_paths = list(paths)
    rows = []

    def timed(name: str, fn: Any, n: int = len(batch_paths), note: str = "", repeat: int = 2) -> Any:
        """The fastest of ``repeat`` runs (wall) and its CPU time; the model steps run once after a warm-up."""
        wall, cpu = float("inf"), float("inf")
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            w, c = time.perf_counter() - t0, time.process_time() - c0
            if w < wall:
                wall, cpu = w, c
        rows.append({"stage": name, "ms_per_image": 1e3 * wall / n, "cpu_ms_per_image": 1e3 * cpu / n, "note": note})
        return out

    full = timed("decode, full size (Image.open + convert RGB)",
                 lambda: [Image.open(p).convert("RGB") for p in batch_paths])
    draft = timed("decode, draft mode (load_image min_side=224)",
                  lambda: [load_image(p, min_side=224) for p in batch_paths],
                  note=f"decoded at {draft_size(batch_paths[0])}")
    timed("open_clip preprocess of the full-size image", lambda: [preprocess(im) for im in full])
    timed("open_clip preprocess of the draft image", lambda: [preprocess(im) for im in draft])
    x = timed("knockoff FastPreprocess of the draft images (batched numpy)",
              lambda: torch.from_numpy(fast.batch(draft)))
    with torch.no_grad():
        model.encode_image(x)  # warm-up
        timed(f"model: open_clip encode_image, eager fp32, batch {len(x)}", lambda: model.encode_image(x), repeat=1)
    embedder.embed_tensor(x)  # warm-up
    vecs = timed(f"model: knockoff embed_tensor ({embedder.precision}), batch {len(x)}", lambda: embedder.embed_tensor(x),
                 repeat=1)
    timed(f"search: faiss IndexFlatIP {faiss_index.ntotal:,}, one call of {len(x)} queries", lambda: faiss_index.search(vecs, 10))
    timed(f"search: ReferenceIndex.search, one call of {len(x)} queries", lambda: index.search(vecs, 10))
    detector = Detector(index, verifier=None)
    listings = [Listing(images=(p,), listing_id=p.stem) for p in batch_paths]
    loaded = [decode_listing(li, min_side=224) for li in listings]
    timed("detector.decide per listing (1 search of 1 query each + verdict), no verification",
          lambda: [detector.decide(li, ld, [v[None]]) for li, ld, v in zip(listings, loaded, vecs)])
    return rows


def draft_size(path: Path) -> str:
    from knockoff.catalog.images import load_image

    w, h = load_image(path, min_side=224).size
    return f"{w}x{h}"


def pool_startup() -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(_decode_noop).result()
    return time.perf_counter() - t0


def _decode_noop() -> int:
    import knockoff.decide.detector  # noqa: F401  (what a scan worker imports)

    return 0


# -- main -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="48 images, 1 round, stages on 16 images, no verification case")
    parser.add_argument("--images", type=int, help="benchmark images (default 128; 48 with --quick)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--refs", type=int, default=100_000, help="synthetic references in the index")
    parser.add_argument("--source", type=Path, default=REAL_DATA, help="folder of photos to upscale")
    parser.add_argument("--verify-case", action=argparse.BooleanOptionalAction, default=None,
                        help="also time a scan with the default Detector (geometric verification on)")
    parser.add_argument("--name", help="results file name (default clip_e2e or clip_e2e.quick)")
    args = parser.parse_args(argv)
    n_images = args.images or (48 if args.quick else 128)
    rounds = args.rounds or (1 if args.quick else 3)
    verify_case = (not args.quick) if args.verify_case is None else args.verify_case
    name = args.name or ("clip_e2e.quick" if args.quick else "clip_e2e")
    command = "python benchmarks/bench_clip_e2e.py " + " ".join(argv if argv is not None else sys.argv[1:])

    import faiss
    import open_clip
    import torch

    from knockoff.catalog.readers import ReferenceImage
    from knockoff.embedders import create_embedder
    from knockoff.embedders.clip_fast import cosine_rows
    from knockoff.match.index import ReferenceIndex

    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="knockoff_e2e_"))
    try:
        t0 = time.perf_counter()
        sources = source_photos(args.source, n_images) if args.source.is_dir() else []
        folder = tmp / "listings"
        paths = make_jpegs(folder, n_images, sources)
        megapixels = 1600 * 1200 / 1e6
        jpeg_kb = float(np.mean([p.stat().st_size for p in paths]) / 1024)
        ckpt = save_random_checkpoint(tmp)
        embedder = create_embedder(f"clip:{MODEL}/{TAG}", checkpoint=ckpt)
        embedder.weights_sha256  # noqa: B018  (hash the checkpoint once, outside the timings, as an index build does)
        model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=str(ckpt))
        model.eval()
        print(f"setup: {n_images} JPEGs ({jpeg_kb:.0f} KB each) from {len(sources)} photos, "
              f"knockoff precision {embedder.precision}, {time.perf_counter() - t0:.1f} s", flush=True)

        # The index: random unit vectors + the fp32 vector of each listing's original photo.
        rng = np.random.default_rng(0)
        refs = rng.standard_normal((args.refs, embedder.dim)).astype(np.float32)
        refs /= np.linalg.norm(refs, axis=1, keepdims=True)
        from PIL import Image

        originals = [sources[i % len(sources)] for i in range(n_images)] if sources else paths
        with torch.no_grad():
            own = []
            for start in range(0, len(originals), BATCH):
                batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in originals[start : start + BATCH]])
                own.append(torch.nn.functional.normalize(model.encode_image(batch), dim=-1).numpy())
        own_vecs = np.concatenate(own)
        all_vecs = np.concatenate([refs, own_vecs])
        own_ids = np.arange(args.refs, args.refs + n_images)
        faiss_index = faiss.IndexFlatIP(embedder.dim)
        faiss_index.add(all_vecs)
        index = ReferenceIndex(embedder)
        references = [ReferenceImage("synthetic", f"p{i}", f"product {i}", Path(f"synthetic/{i}.jpg"))
                      for i in range(args.refs)]
        references += [ReferenceImage("bench", f"own{i}", f"original of listing {i}", Path(p))
                       for i, p in enumerate(originals)]
        index.add_vectors_batch(references, all_vecs)

        startup = pool_startup()
        cases = ["baseline", "knockoff scan", "knockoff lean"]
        timings: dict[str, list[tuple[float, float]]] = {c: [] for c in cases}
        outputs: dict[str, Any] = {}
        for r in range(rounds):
            order = cases[r % len(cases):] + cases[: r % len(cases)]
            for case in order:
                t0, c0 = time.perf_counter(), _cpu()
                if case == "baseline":
                    outputs[case] = run_baseline(paths, model, preprocess, faiss_index)
                elif case == "knockoff lean":
                    outputs[case] = run_lean(paths, index)
                else:
                    outputs[case] = run_scan(folder, index, tmp / "scan_out", verify=False)
                wall = time.perf_counter() - t0
                cpu = _cpu() - c0
                timings[case].append((wall, cpu))
                print(f"round {r + 1}: {case}: {n_images / wall:.2f} images/s, CPU {1e3 * cpu / n_images:.0f} ms/image",
                      flush=True)
        if verify_case:
            t0, c0 = time.perf_counter(), _cpu()
            outputs["verify"] = run_scan(folder, index, tmp / "scan_verify", verify=True)
            timings["knockoff scan, default Detector (verification on)"] = [(time.perf_counter() - t0, _cpu() - c0)]
        print("stage breakdown...", flush=True)
        stage_n = 16 if args.quick else BATCH
        stage_rows = stages(paths[:stage_n], model, preprocess, faiss_index, index)
        load_end = os.getloadavg()

        # Agreement: knockoff's end-to-end vectors (draft decode, FastPreprocess, fast precision) vs the baseline.
        base_vecs, base_top1 = outputs["baseline"]
        lean_vecs, lean_top1 = outputs["knockoff lean"]
        cos_e2e = cosine_rows(lean_vecs, base_vecs)
        # Model only (same preprocessed inputs), and preprocessing only (draft + FastPreprocess, fp32 model).
        from knockoff.catalog.images import load_image

        sample = paths[:stage_n]
        x_full = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in sample])
        x_draft = torch.from_numpy(embedder._fast_preprocess.batch([load_image(p, min_side=224) for p in sample]))
        with torch.no_grad():
            fp32_full = model.encode_image(x_full).numpy()
            fp32_draft = model.encode_image(x_draft).numpy()
        cos_model = cosine_rows(embedder.embed_tensor(x_full), fp32_full)
        cos_pre = cosine_rows(fp32_draft, fp32_full)
        mismatches = []
        for i in np.flatnonzero(lean_top1 != base_top1).tolist():
            a, b = int(base_top1[i]), int(lean_top1[i])
            mismatches.append({
                "image": paths[i].name, "baseline_top1": a, "knockoff_top1": b,
                "baseline_similarities": [float(base_vecs[i] @ all_vecs[a]), float(base_vecs[i] @ all_vecs[b])],
                "knockoff_similarities": [float(lean_vecs[i] @ all_vecs[a]), float(lean_vecs[i] @ all_vecs[b])],
            })
        off_diag = base_vecs @ base_vecs.T
        inter_image = float(off_diag[~np.eye(len(off_diag), dtype=bool)].mean())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base_wall = float(np.median([w for w, _ in timings["baseline"]]))
    base_cpu = float(np.median([c for _, c in timings["baseline"]]))
    rows = []
    for case, runs in timings.items():
        wall = float(np.median([w for w, _ in runs]))
        best = float(min(w for w, _ in runs))
        cpu = float(np.median([c for _, c in runs]))
        rows.append({
            "case": case, "runs": len(runs), "images_per_s": n_images / wall, "images_per_s_best": n_images / best,
            "ratio": base_wall / wall, "cpu_ms_per_image": 1e3 * cpu / n_images, "cpu_ratio": base_cpu / cpu,
        })
    agreement = {
        "weights": "random init (open_clip ViT-B-32, pretrained=None, torch seed 0), NOT trained weights",
        "e2e_cosine_min": float(cos_e2e.min()), "e2e_cosine_mean": float(cos_e2e.mean()),
        "model_only_cosine_min": float(cos_model.min()),
        "preprocess_only_cosine_min": float(cos_pre.min()),
        "same_top1_as_baseline": int((lean_top1 == base_top1).sum()), "images": n_images,
        "baseline_top1_is_own_original": int((base_top1 == own_ids).sum()),
        "knockoff_top1_is_own_original": int((lean_top1 == own_ids).sum()),
        "mean_cosine_between_different_images": inter_image,
        "top1_mismatches": mismatches,
    }
    data = {
        "script": "bench_clip_e2e.py", "command": command, "quick": args.quick,
        "model": f"{MODEL} random init, loaded as clip:{MODEL}/{TAG} from a temp checkpoint (no sha256 checked)",
        "knockoff_precision": embedder.precision, "probe_agreement": embedder.precision_agreement,
        "torch_threads": torch.get_num_threads(), "images": n_images, "image_size": "1600x1200 (or 1200x1600)",
        "megapixels": megapixels, "jpeg_quality": 90, "jpeg_kb_mean": jpeg_kb, "source_photos": len(sources),
        "references": args.refs + n_images, "rounds": rounds, "load_average_start": load_start,
        "load_average_end": load_end, "worker_pool_startup_s": startup,
        "cases": rows, "stages": stage_rows, "agreement": agreement,
        "scan_summary": outputs.get("knockoff scan"),
    }
    headers = ["case", "runs", "images/s (median)", "ratio", "images/s (best)", "CPU ms/image", "CPU-time ratio"]
    table = [[r["case"], r["runs"], r["images_per_s"], r["ratio"], r["images_per_s_best"], r["cpu_ms_per_image"],
              r["cpu_ratio"]] for r in rows]
    stage_table = [[s["stage"], s["ms_per_image"], s["cpu_ms_per_image"], s["note"]] for s in stage_rows]
    a = agreement
    md = f"""# CLIP end to end: decode, embed, search ({n_images} JPEGs, {args.refs + n_images:,} references)

- **Model: ViT-B-32 with random weights** (open_clip `pretrained=None`, seeded), saved as a checkpoint and loaded
  through `create_embedder("clip:{MODEL}/{TAG}", checkpoint=...)`; knockoff precision `{embedder.precision}`
  (auto, probe cosine {embedder.precision_agreement}); torch threads {torch.get_num_threads()}.
- Images: {n_images} JPEGs, 1600x1200 ({megapixels:.2f} MP, a third portrait), quality 90, {jpeg_kb:.0f} KB mean,
  upscaled from {len(sources)} photos of shared/data/real. Index: flat inner product, {args.refs:,} random unit
  vectors + {n_images} originals.
- Baseline: plain loop of `Image.open().convert("RGB")`, open_clip `preprocess`, `encode_image` (eager fp32,
  batch {BATCH}), one FAISS search per batch. knockoff scan: `scan(folder, index, out, workers=1)` with
  verification off; lean: `load_image(min_side=224)` in 1 worker process + `ClipEmbedder.embed` + one
  `ReferenceIndex.search` per batch.
- {rounds} interleaved round(s); load average at start {load_start[0]:.1f}, at end {load_end[0]:.1f} on a
  shared machine: compare ratios within this run. CPU = process CPU time incl. decoding workers.
  A worker pool's start (spawn + imports) took {startup:.2f} s, inside the scan's time.

{markdown_table(headers, table)}

## Where the time goes (one batch of {stage_n}, each step alone in one process; best of 2, model steps 1 run)

{markdown_table(["stage", "ms/image", "CPU ms/image", "note"], stage_table)}

## Agreement with the fp32 baseline (random weights, not trained ones)

- end to end (draft decode + FastPreprocess + {embedder.precision} vs full decode + open_clip preprocess + fp32):
  cosine min {a['e2e_cosine_min']:.5f}, mean {a['e2e_cosine_mean']:.5f} over {n_images} images
- model only ({embedder.precision} vs fp32, same inputs): cosine min {a['model_only_cosine_min']:.5f};
  preprocessing only (draft decode + FastPreprocess vs full decode + open_clip, fp32): min {a['preprocess_only_cosine_min']:.5f}
- same top-1 reference as the baseline: {a['same_top1_as_baseline']}/{n_images}; top-1 is the listing's own
  original photo: baseline {a['baseline_top1_is_own_original']}/{n_images}, knockoff {a['knockoff_top1_is_own_original']}/{n_images}
- top-1 differences: {'; '.join(f"{m['image']}: baseline similarities to its top-1 / knockoff's top-1 {m['baseline_similarities'][0]:.4f} / {m['baseline_similarities'][1]:.4f}" for m in mismatches) or 'none'}
- caveat: random weights map different images close together (mean cosine between different listings
  {a['mean_cosine_between_different_images']:.3f}), so these figures say little about trained weights; rerun with them.
"""
    json_path, md_path = write_results(name, data, md)
    print(text_table(headers, table))
    print(text_table(["stage", "ms/image", "CPU ms/image", "note"], stage_table))
    print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in agreement.items()})
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
