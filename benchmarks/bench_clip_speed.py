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
    python benchmarks/bench_clip_speed.py --quick --alternatives --images path/to/photos

``--alternatives`` adds third-party inference paths for comparison: ONNX Runtime (fp32 and int8 dynamic
quantization, QUInt8 and QInt8 weights), OpenVINO (fp32 with the LATENCY hint, and int8 static quantization with
NNCF), ``torch.compile`` (inductor, freezing) and torchao's PT2E int8 static quantization compiled with inductor.
Their packages are not knockoff dependencies; install them into the environment that runs the benchmark::

    pip install onnxruntime onnx openvino nncf torchao

A case whose package is missing, or that fails, is recorded with its error. The ONNX export (shared by the
onnxruntime and OpenVINO cases) and the quantized models go to a temporary directory. Export, quantization,
calibration and compilation (including the first, compiling call) happen before the timed runs and are reported
separately as setup time. The static int8 cases (NNCF, PT2E) are calibrated on the benchmark's own preprocessed
images (the same batch the agreement is measured on), not on random noise.

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
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knockoff.embedders import clip_fast  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
ALTERNATIVES_INSTALL = "pip install onnxruntime onnx openvino nncf torchao"
ALTERNATIVE_PACKAGES = ("onnxruntime", "onnx", "onnxscript", "openvino", "nncf", "torchao")


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
    parser.add_argument("--alternatives", action="store_true",
                        help="also time onnxruntime, openvino, torch.compile and torchao int8 (optional packages: "
                             f"{ALTERNATIVES_INSTALL})")
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
    alternatives = None
    if args.alternatives:
        alternatives = Alternatives(visual, batch, torch.get_num_threads())
        cases += alternatives.cases()

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
            if kind == "alternative":  # set up (export, quantize, compile) before the timed runs, timed apart
                started = time.perf_counter()
                print(f"setting up {label} ...", flush=True)
                runners[len(rows) - 1] = build(row)
                row["setup_s"] = round(time.perf_counter() - started, 1)
            else:
                runners[len(rows) - 1] = build()
        except Exception as exc:  # noqa: BLE001 - a benchmark records a failed case and goes on
            row["error"] = _error(exc)
    outputs: dict[int, np.ndarray] = {}
    walls: dict[int, list[float]] = {i: [] for i in runners}
    cpus: dict[int, list[float]] = {i: [] for i in runners}
    for round_ in range(args.warmup + args.runs):
        for i, fn in list(runners.items()):
            try:
                wall, cpu, outputs[i] = timed(fn, batch)
            except Exception as exc:  # noqa: BLE001
                rows[i]["error"] = _error(exc)
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
    for row in rows:
        if "setup" in row:
            print(f"setup (not timed) {row['case']}: {row['setup']}", flush=True)

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
    if alternatives is not None:
        alternatives.cleanup()
        result["alternatives"] = {"install": ALTERNATIVES_INSTALL, "versions": alternatives_versions()}
        result["notes"] += [
            "alternatives: export, quantization, calibration and compilation (including the first, compiling call) "
            "happen before the timed runs; their time is listed under the table as setup, not in images/s",
            f"static int8 calibration (NNCF, PT2E) uses the benchmark's own {args.batch_size} preprocessed images "
            f"({images_note}), the same batch the agreement is measured on; no random noise",
            f"alternatives run with {torch.get_num_threads()} threads (onnxruntime intra-op threads, OpenVINO "
            "INFERENCE_NUM_THREADS) like torch",
        ]
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
    setups = [row for row in result["rows"] if "setup" in row]
    if setups:
        lines += ["", "Setup before the timed runs (not in images/s):", ""]
        lines += [f"- {row['case']}: {row['setup']}" for row in setups]
    if "alternatives" in result:
        versions = ", ".join(f"{k} {v}" for k, v in result["alternatives"]["versions"].items())
        lines += ["", f"- alternatives' packages: {versions} (optional: `{result['alternatives']['install']}`)"]
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


def _error(exc: BaseException) -> str:
    """One line for a failed case (a missing optional package says how to install the alternatives)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split()).replace("|", "/")
    if isinstance(exc, ImportError):
        text = f"{text} (optional: {ALTERNATIVES_INSTALL})"
    return text[:300]


def alternatives_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ALTERNATIVE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class Alternatives:
    """The ``--alternatives`` cases: third-party inference paths, each built from the same fp32 image tower.

    A builder takes its result row (it writes what its setup took to ``row["setup"]``), does everything that is
    not inference (export, quantization, calibration, compilation and the first, compiling call) and returns
    ``run(batch) -> numpy``. The ONNX export is done once, into a temporary directory, and shared."""

    def __init__(self, visual: Any, batch: Any, threads: int) -> None:
        self.visual, self.batch, self.threads = visual, batch, threads
        self.tmp = tempfile.TemporaryDirectory(prefix="clip_speed_")
        self._onnx: tuple[str, str] | BaseException | None = None
        self._ov_core = None

    def cases(self) -> list[tuple[str, str, Any]]:
        return [
            ("onnxruntime fp32", "alternative", self.ort_fp32),
            ("onnxruntime int8 dynamic (QUInt8)", "alternative", lambda row: self.ort_int8(row, "QUInt8")),
            ("onnxruntime int8 dynamic (QInt8)", "alternative", lambda row: self.ort_int8(row, "QInt8")),
            ("openvino fp32 (latency hint)", "alternative", self.ov_fp32),
            ("openvino int8 static (NNCF)", "alternative", self.ov_int8),
            ("torch.compile inductor fp32", "alternative", self.compile_fp32),
            ("torchao pt2e int8 + inductor", "alternative", self.pt2e_int8),
        ]

    def cleanup(self) -> None:
        self.tmp.cleanup()

    def onnx_model(self) -> tuple[str, str]:
        """(path, note): the image tower exported to ONNX once (TorchScript exporter, opset 17, dynamic batch)."""
        if self._onnx is None:
            import torch

            path = os.path.join(self.tmp.name, "visual.onnx")
            started = time.perf_counter()
            try:  # not under no_grad: there nn.MultiheadAttention takes its fused path, which has no ONNX op
                torch.onnx.export(
                    copy.deepcopy(self.visual), (self.batch[:1],), path, input_names=["pixels"],
                    output_names=["embedding"], dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
                    opset_version=17, dynamo=False,
                )
            except Exception as exc:  # noqa: BLE001 - remembered, so that every ONNX case reports it
                self._onnx = exc
            else:
                self._onnx = (path, f"ONNX export {time.perf_counter() - started:.1f} s ({_mb(path)}; done once, "
                                    "shared by the onnxruntime and openvino cases)")
        if isinstance(self._onnx, BaseException):
            raise RuntimeError(f"ONNX export failed: {_error(self._onnx)}") from self._onnx
        return self._onnx

    def _first_call(self, run) -> float:
        started = time.perf_counter()
        run(self.batch)
        return time.perf_counter() - started

    # onnxruntime

    def _ort_runner(self, path: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"pixels": x.numpy()})[0]

    def ort_fp32(self, row: dict[str, Any]):
        import onnxruntime  # noqa: F401 - fail early, before the export, when it is missing

        path, export_note = self.onnx_model()
        started = time.perf_counter()
        run = self._ort_runner(path)
        session_s = time.perf_counter() - started
        row["setup"] = f"{export_note}; session {session_s:.1f} s, first call {self._first_call(run):.1f} s"
        return run

    def ort_int8(self, row: dict[str, Any], weight_type: str):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        path, _ = self.onnx_model()
        out = os.path.join(self.tmp.name, f"visual_{weight_type.lower()}.onnx")
        started = time.perf_counter()
        quantize_dynamic(path, out, weight_type=getattr(QuantType, weight_type))
        quantize_s = time.perf_counter() - started
        started = time.perf_counter()
        run = self._ort_runner(out)
        session_s = time.perf_counter() - started
        row["setup"] = (f"quantize_dynamic ({weight_type} weights, per-tensor) {quantize_s:.1f} s ({_mb(out)}), "
                        f"session {session_s:.1f} s, first call {self._first_call(run):.1f} s; from the shared ONNX "
                        "export")
        return run

    # openvino

    def _ov_compile(self, model):
        import openvino as ov

        if self._ov_core is None:
            self._ov_core = ov.Core()
        model.reshape(list(self.batch.shape))
        compiled = self._ov_core.compile_model(
            model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads}
        )
        return lambda x: np.array(compiled(x.numpy())[0])

    def ov_fp32(self, row: dict[str, Any]):
        import openvino as ov

        path, _ = self.onnx_model()
        started = time.perf_counter()
        run = self._ov_compile(ov.convert_model(path))
        convert_s = time.perf_counter() - started
        row["setup"] = (f"convert from the shared ONNX export + compile (static batch {len(self.batch)}, LATENCY "
                        f"hint) {convert_s:.1f} s, first call {self._first_call(run):.1f} s")
        return run

    def ov_int8(self, row: dict[str, Any]):
        import nncf
        import openvino as ov

        path, _ = self.onnx_model()
        model = ov.convert_model(path)
        pixels = self.batch.numpy()
        calibration = nncf.Dataset([pixels[i : i + 1] for i in range(len(pixels))])
        started = time.perf_counter()
        quantized = nncf.quantize(model, calibration, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(pixels))
        quantize_s = time.perf_counter() - started
        started = time.perf_counter()
        run = self._ov_compile(quantized)
        compile_s = time.perf_counter() - started
        row["setup"] = (f"nncf.quantize (ModelType.TRANSFORMER, calibrated on the benchmark's {len(pixels)} "
                        f"preprocessed images) {quantize_s:.1f} s, compile (LATENCY hint) {compile_s:.1f} s, first "
                        f"call {self._first_call(run):.1f} s")
        return run

    # torch.compile / torchao

    def _inductor(self, module, row: dict[str, Any], prefix: str):
        import torch

        compiled = torch.compile(module)

        def run(x):
            with torch.no_grad():
                return compiled(x).float().numpy()

        # compilation happens on the first call; freezing (weights as constants, int8 weights prepacked) must be
        # on then (torch.compile(options=...) did not reach the int8 weight prepacking)
        with torch._inductor.config.patch(freezing=True):
            first_s = self._first_call(run)
        row["setup"] = f"{prefix}torch.compile (inductor, freezing) on the first call {first_s:.1f} s"
        return run

    def compile_fp32(self, row: dict[str, Any]):
        return self._inductor(copy.deepcopy(self.visual), row, "")

    def pt2e_int8(self, row: dict[str, Any]):
        import torch
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        started = time.perf_counter()
        with torch.no_grad():
            exported = torch.export.export(copy.deepcopy(self.visual), (self.batch,)).module()
            quantizer = xiq.X86InductorQuantizer()
            quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
            prepared = prepare_pt2e(exported, quantizer)
            prepared(self.batch)  # calibration on the benchmark's own preprocessed images
            converted = convert_pt2e(prepared)
        prepare_s = time.perf_counter() - started
        return self._inductor(
            converted, row, f"torch.export + prepare_pt2e + calibration on the benchmark's {len(self.batch)} "
                            f"preprocessed images + convert_pt2e {prepare_s:.1f} s, ")


def _mb(path: str) -> str:
    return f"{os.path.getsize(path) / 2**20:.0f} MB"


if __name__ == "__main__":
    sys.exit(main())
