"""Inference paths for the clip image tower: fp32, bf16 weights, int8 dynamic quantization, fp16 on CUDA.

:func:`prepare` turns an fp32 open_clip image tower into a callable ``runner(batch) -> float32 numpy``.
``precision="auto"`` tries the fast path the device supports and keeps it only when it agrees with fp32 on a
fixed probe batch run through the loaded weights (cosine >= :data:`AGREEMENT_MIN` for every probe image);
otherwise it stays in fp32 and logs why. The candidates, measured with ``benchmarks/bench_clip_speed.py``:

- CUDA: fp16;
- a CPU with native bfloat16 (AVX512-BF16 / AMX on x86, BF16 on Arm): bf16 weights (the fastest CPU path
  where it exists; ``torch.autocast`` to bf16 was slower than fp32 in the issue's measurement);
- other CPUs with a quantized engine (fbgemm/x86/qnnpack): int8 dynamic quantization of every ``nn.Linear``,
  attention projections included (see :func:`linearize_attention`);
- else fp32.

Explicit ``"fp32"``, ``"bf16"``, ``"int8"``, ``"fp16"`` are used as asked (no probe). bf16 on a CPU without native
support is emulated and several times slower than fp32: it works, with a warning. fp16 on a CPU is refused.
int8 scales activations per batch, so an image's vector moves slightly (cosine > 0.999) with the batch it is in.
Only torch is imported here, and only inside functions.
"""

from __future__ import annotations

import copy
import logging
import platform
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from knockoff.errors import EmbedderError

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 matmuls natively (AVX512-BF16 / AMX-BF16 on x86, BF16 on Arm)."""
    flags = cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return True
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and "avx512_bf16" in flags
    except (ImportError, AttributeError, RuntimeError):
        return False


def int8_available() -> bool:
    """True when torch has a dynamic int8 quantization engine for this CPU."""
    try:
        import torch

        return any(e in ("fbgemm", "x86", "qnnpack") for e in torch.backends.quantized.supported_engines)
    except (ImportError, AttributeError):
        return False


AGREEMENT_MIN = 0.995
"""Minimum cosine to fp32, per probe image, for ``auto`` to keep a fast path."""


def auto_candidate(device: torch.device) -> str:
    """The fast path ``auto`` tries on ``device`` (before the agreement probe)."""
    if device.type == "cuda":
        return "fp16"
    if device.type != "cpu":
        return "fp32"
    if cpu_has_native_bf16():
        return "bf16"
    return "int8" if int8_available() else "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision ``device`` cannot run; warn when it runs but slowly."""
    if device.type == "cuda" and precision == "int8":
        raise EmbedderError("precision 'int8' is CPU only; use 'fp16' or 'fp32' on CUDA")
    if device.type == "cpu" and precision == "fp16":
        raise EmbedderError("precision 'fp16' needs a CUDA device; on CPU use 'auto', 'fp32', 'bf16' or 'int8'")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        log.warning("this CPU has no native bfloat16 (avx512_bf16/amx): bf16 is emulated and likely slower than fp32")
    if precision == "int8" and not int8_available():
        raise EmbedderError("precision 'int8' is not available: torch has no quantized engine for this CPU")


@dataclass
class Runner:
    """Runs a prepared image tower: ``runner(batch)`` -> float32 numpy (n, dim), not normalized."""

    module: Any
    device: Any
    dtype: Any
    precision: str
    #: Lowest cosine to fp32 over the probe images when ``auto`` chose this path (None: not probed).
    agreement: float | None = None
    channels_last: bool = False

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = batch.to(self.device, dtype=self.dtype, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = self.module(x)
            return out.float().cpu().numpy()


def _linear_attention_class():
    import torch
    import torch.nn.functional as F  # noqa: N812

    class LinearSelfAttention(torch.nn.Module):
        """``nn.MultiheadAttention`` (self-attention, batch first) with its projections as ``nn.Linear``.

        Same results; the point is that dynamic int8 quantization can then reach the q/k/v and output
        projections, which it skips inside ``nn.MultiheadAttention``.
        """

        def __init__(self, mha: torch.nn.MultiheadAttention):
            super().__init__()
            d = mha.embed_dim
            self.num_heads = mha.num_heads
            self.in_proj = torch.nn.Linear(d, 3 * d, bias=mha.in_proj_bias is not None)
            self.in_proj.weight = torch.nn.Parameter(mha.in_proj_weight.detach().clone(), requires_grad=False)
            if mha.in_proj_bias is not None:
                self.in_proj.bias = torch.nn.Parameter(mha.in_proj_bias.detach().clone(), requires_grad=False)
            self.out_proj = torch.nn.Linear(d, d, bias=mha.out_proj.bias is not None)
            self.out_proj.weight = torch.nn.Parameter(mha.out_proj.weight.detach().clone(), requires_grad=False)
            if mha.out_proj.bias is not None:
                self.out_proj.bias = torch.nn.Parameter(mha.out_proj.bias.detach().clone(), requires_grad=False)

        def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **_: Any):
            b, n, d = query.shape
            qkv = self.in_proj(query).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
            return self.out_proj(out.transpose(1, 2).reshape(b, n, d)), None

    return LinearSelfAttention


def linearize_attention(module: torch.nn.Module) -> int:
    """Replace, in place, the self-attention ``nn.MultiheadAttention`` layers of ``module`` that have the plain
    layout (batch first, packed q/k/v, no extra bias or zero attention) with :func:`LinearSelfAttention`.

    Returns the number replaced. Cross-attention layers (a different key/value size) are left alone.
    """
    import torch

    cls = _linear_attention_class()
    count = 0
    for parent in list(module.modules()):
        for child_name, child in list(parent.named_children()):
            if (
                isinstance(child, torch.nn.MultiheadAttention)
                and child.batch_first
                and child._qkv_same_embed_dim
                and child.bias_k is None
                and not child.add_zero_attn
                and child.dropout == 0.0
                and not hasattr(parent, "ln_1_kv")
            ):
                setattr(parent, child_name, cls(child))
                count += 1
    return count


def quantize_int8(module: torch.nn.Module, inplace: bool = False) -> torch.nn.Module:
    """``module`` (a copy unless ``inplace``) with its ``nn.Linear`` layers dynamically quantized to int8 (CPU)."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization warns that it moves to torchao; the eager dynamic API still works in torch 2.14.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.ao\.quantization.*")
        # ...and that quantized tensor types will go (pytorch issue 184982); they still work in torch 2.14.
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*torch\.quantize_per_tensor.*")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(module if inplace else copy.deepcopy(module), {torch.nn.Linear}, dtype=torch.qint8)


def probe_images(n: int = 4, size: int = 224, seed: int = 0) -> list[Any]:
    """Deterministic photo-like test images (smooth colour fields with shapes and texture) for the probe."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = (int(v) for v in rng.integers(0, size * 3 // 4, 2))
            x1, y1 = x0 + int(rng.integers(10, size // 2)), y0 + int(rng.integers(10, size // 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
        noise = rng.normal(0, 12, (size, size, 3))
        images.append(Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)))
    return images


def _build(visual: torch.nn.Module, device: torch.device, precision: str, copy_module: bool) -> Runner:
    import torch

    source = copy.deepcopy(visual) if copy_module else visual
    if precision == "int8":
        source = source.to("cpu")
        linearize_attention(source)
        return Runner(quantize_int8(source, inplace=True).eval(), torch.device("cpu"), torch.float32, "int8")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Runner(source.to(device=device, dtype=dtype).eval(), device, dtype, precision)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def prepare(
    visual: torch.nn.Module,
    device: torch.device,
    precision: str = "auto",
    probe: torch.Tensor | None = None,
) -> Runner:
    """Make a :class:`Runner` of the fp32 image tower ``visual`` (consumed) on ``device`` in ``precision``.

    With ``precision="auto"`` and a preprocessed ``probe`` batch, the fast candidate is kept only when every
    probe image agrees with fp32 (cosine >= :data:`AGREEMENT_MIN`); without a probe ``auto`` means fp32 on CPU
    and fp16 on CUDA.
    """
    visual = visual.eval()
    if precision != "auto":
        check_precision(precision, device)
        return _build(visual, device, precision, copy_module=False)
    candidate = auto_candidate(device)
    if candidate == "fp32":
        return _build(visual, device, "fp32", copy_module=False)
    if probe is None:
        return _build(visual, device, "fp16" if device.type == "cuda" else "fp32", copy_module=False)
    reference = _build(visual, device, "fp32", copy_module=False)
    expected = reference(probe)
    fast = _build(reference.module, device, candidate, copy_module=True)
    agreement = float(cosine_rows(fast(probe), expected).min())
    if agreement >= AGREEMENT_MIN:
        fast.agreement = agreement
        log.info("precision auto: %s (cosine to fp32 >= %.4f on the probe images)", candidate, agreement)
        return fast
    log.warning(
        "precision auto: %s disagrees with fp32 on these weights (cosine %.4f < %.3f); using fp32",
        candidate, agreement, AGREEMENT_MIN,
    )
    return reference
