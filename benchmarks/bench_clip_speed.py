"""CLIP image-tower speed on this machine: open_clip's plain eager fp32 baseline vs knockoff's inference paths.

Model only (preprocessed tensors in, vectors out). The baseline is open_clip used as its README shows:
``model.encode_image(batch)`` under ``torch.no_grad()``, float32, a batch of 32. Every case is measured in the
same run as the baseline (warm-up, then timed runs) and reported as images/s, the ratio to the baseline, and
the per-image cosine to the fp32 vectors (min and mean over the benchmark batch).

The model is created with random weights (``pretrained=None``, seeded): speed does not depend on weight values,
but the agreement figures are measured on random weights, not on trained ones; a user with weights can pass
``--checkpoint`` to measure agreement on them. Agreement images: ``--images DIR`` (photos) or synthetic ones.

    python benchmarks/bench_clip_speed.py --quick
    python benchmarks/bench_clip_speed.py --images path/to/photos --runs 5

Writes ``benchmarks/results/clip_speed_<date>.json`` and ``.md``. A failed case is recorded with its error.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knockoff.embedders import clip_fast  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def load_images(directory: str | None, n: int, size: int) -> tuple[list[Any], str]:
    from PIL import Image, UnidentifiedImageError

    if directory:
        paths = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        images = []
        for path in paths:
            try:
                with Image.open(path) as im:
                    im.draft("RGB", (size, size))
                    images.append(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
            if len(images) == n:
                break
        if images:
            while len(images) < n:
                images.extend(images[: n - len(images)])
            return images, f"{len(set(map(id, images)))} photos from {directory}"
    return clip_fast.probe_images(n, size, seed=1), "synthetic images (clip_fast.probe_images)"


def machine_info() -> dict[str, Any]:
    import open_clip
    import torch

    flags = clip_fast.cpu_flags()
    return {
        "cpu": clip_fast.cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": clip_fast.cpu_has_native_bf16(),
        "int8_engines": list(torch.backends.quantized.supported_engines),
        "flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"}),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def timed(fn, batch) -> tuple[float, float, np.ndarray]:
    """(wall seconds, process CPU seconds, output) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(batch)
    return time.perf_counter() - wall, time.process_time() - cpu, np.asarray(out, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up, 3 timed runs, skip slow emulated cases")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--checkpoint", help="measure agreement on these weights instead of random ones")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", help="directory of photos for the agreement figures")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (slow to compile)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.runs = 1, 3

    import open_clip
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = open_clip.create_model(args.model, pretrained=args.checkpoint).eval()
    weights = args.checkpoint or "random init (pretrained=None, seed 0)"
    size = model.visual.preprocess_cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    preprocess = open_clip.image_transform(
        size, is_train=False, mean=model.visual.preprocess_cfg["mean"], std=model.visual.preprocess_cfg["std"]
    )
    images, images_note = load_images(args.images, args.batch_size, size)
    batch = torch.stack([preprocess(im) for im in images])

    def baseline(x):
        with torch.no_grad():
            return model.encode_image(x).numpy()

    visual = model.visual
    native_bf16 = clip_fast.cpu_has_native_bf16()
    def knockoff_path(precision: str):
        return lambda: clip_fast.prepare(copy.deepcopy(visual), torch.device("cpu"), precision)

    cases: list[tuple[str, str, Any]] = [
        ("knockoff fp32", "fp32", knockoff_path("fp32")),
        ("int8 dynamic, MLP only", "int8", lambda: _int8_mlp_only(visual)),
        ("int8 dynamic, all linears (knockoff int8)", "int8", knockoff_path("int8")),
        ("bf16 weights (knockoff bf16)", "bf16", knockoff_path("bf16")),
        ("bf16 autocast", "bf16-autocast", lambda: _autocast(visual)),
    ]
    if args.compile:
        cases.append(("fp32 torch.compile", "compile", lambda: _compiled(visual)))

    print(f"machine: {clip_fast.cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"native bf16 {native_bf16}, load average {os.getloadavg() if hasattr(os, 'getloadavg') else '?'}",
          flush=True)
    print(f"model {args.model}, weights: {weights}; agreement on {images_note}", flush=True)

    # Build every case, warm each up, then time them interleaved (run 1 of every case, run 2 of every case...),
    # so that load from other processes falls on all cases alike.
    rows: list[dict[str, Any]] = [{"case": "baseline: open_clip eager fp32 encode_image"}]
    runners: dict[int, Any] = {0: baseline}
    for label, kind, build in cases:
        row: dict[str, Any] = {"case": label}
        rows.append(row)
        if kind.startswith("bf16") and not native_bf16 and args.quick:
            row["skipped"] = "no native bf16 on this CPU (emulated, several times slower); run without --quick"
            continue
        try:
            runners[len(rows) - 1] = build()
        except Exception as exc:  # noqa: BLE001 - a benchmark records a failed case and goes on
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
    outputs: dict[int, np.ndarray] = {}
    walls: dict[int, list[float]] = {i: [] for i in runners}
    cpus: dict[int, list[float]] = {i: [] for i in runners}
    for round_ in range(args.warmup + args.runs):
        for i, fn in list(runners.items()):
            try:
                wall, cpu, outputs[i] = timed(fn, batch)
            except Exception as exc:  # noqa: BLE001
                rows[i]["error"] = f"{type(exc).__name__}: {exc}"[:300]
                del runners[i]
                continue
            if round_ >= args.warmup:
                walls[i].append(wall)
                cpus[i].append(cpu)
    if 0 not in runners:
        print(f"baseline failed: {rows[0].get('error')}", file=sys.stderr)
        return 1
    base_wall, base_cpu = float(np.median(walls[0])), float(np.median(cpus[0]))
    base_best = min(walls[0])
    for i in runners:
        wall, cpu, best = float(np.median(walls[i])), float(np.median(cpus[i])), min(walls[i])
        cos = clip_fast.cosine_rows(outputs[i], outputs[0])
        rows[i].update(
            images_per_s=args.batch_size / wall, ratio=base_wall / wall,
            best_images_per_s=args.batch_size / best, best_ratio=base_best / best,
            cpu_ms_per_image=1000 * cpu / args.batch_size, cpu_ratio=base_cpu / cpu,
            cos_min=float(cos.min()), cos_mean=float(cos.mean()), wall_s_runs=[round(w, 3) for w in walls[i]],
        )
    for row in rows:
        if "images_per_s" in row:
            print(f"{row['case']:45s} {row['images_per_s']:6.2f} img/s x{row['ratio']:.2f} | best run "
                  f"{row['best_images_per_s']:6.2f} img/s x{row['best_ratio']:.2f} | cpu-time x{row['cpu_ratio']:.2f}"
                  f" | cos min {row['cos_min']:.5f}", flush=True)
        else:
            print(f"{row['case']:45s} {row.get('skipped') or row.get('error')}", flush=True)

    result = {
        "benchmark": "bench_clip_speed",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "model": args.model, "weights": weights, "batch_size": args.batch_size,
        "warmup": args.warmup, "runs": args.runs,
        "timing": "cases timed interleaved; images/s from the median wall time per batch, 'best' from the fastest "
                  "run; cpu = process CPU time (less sensitive to other processes on a shared machine)",
        "agreement_images": images_note, "machine": machine_info(), "rows": rows,
        "notes": [
            "model only: preprocessed tensors in, vectors out (decoding and preprocessing not included)",
            "agreement (cosine to the fp32 baseline per image) measured on random weights unless --checkpoint",
            "timings on a shared machine can be noisy: compare ratios within one run, not across runs",
        ],
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out_dir / f"clip_speed_{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / f"clip_speed_{stamp}.md").write_text(to_markdown(result))
    print(f"wrote {out_dir / f'clip_speed_{stamp}'}.json/.md")
    return 0


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# CLIP speed, {result['model']}, batch {result['batch_size']} ({result['date']})",
        "",
        f"- machine: {m['cpu']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}, capability "
        f"{m['cpu_capability']}, native bf16: {m['native_bf16']}, load average at start {m['load_average_at_start']}",
        f"- versions: python {m['python']}, torch {m['torch']}, open_clip {m['open_clip']}, numpy {m['numpy']}",
        f"- weights: {result['weights']}; agreement on {result['agreement_images']}",
        f"- {result['warmup']} warm-up, {result['runs']} timed runs; {result['timing']}; command `{result['command']}`",
        "",
        "| case | images/s (median) | ratio | images/s (best run) | ratio (best) | CPU ms/image | CPU-time ratio "
        "| cosine min | cosine mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if "images_per_s" in row:
            lines.append(f"| {row['case']} | {row['images_per_s']:.2f} | {row['ratio']:.2f} | "
                         f"{row['best_images_per_s']:.2f} | {row['best_ratio']:.2f} | {row['cpu_ms_per_image']:.0f} | "
                         f"{row['cpu_ratio']:.2f} | "
                         f"{row['cos_min']:.5f} | {row['cos_mean']:.5f} |")
        else:
            lines.append(f"| {row['case']} | - | - | - | - | - | - | - | {row.get('skipped') or row.get('error')} |")
    lines += ["", *(f"- {n}" for n in result["notes"]), ""]
    return "\n".join(lines)


def _int8_mlp_only(visual):
    import torch

    return clip_fast.Runner(clip_fast.quantize_int8(visual), torch.device("cpu"), torch.float32, "int8-mlp")


def _autocast(visual):
    import torch

    module = copy.deepcopy(visual)

    def run(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return module(x).float().numpy()

    return run


def _compiled(visual):
    import torch

    module = torch.compile(copy.deepcopy(visual))

    def run(x):
        with torch.inference_mode():
            return module(x).float().numpy()

    return run


if __name__ == "__main__":
    sys.exit(main())
