"""Batch preprocessing for the clip engine without per-image torch tensors.

open_clip's eval transform (``Resize`` shortest side -> ``CenterCrop`` -> ``ToTensor`` -> ``Normalize``) runs two
small torch element-wise ops per image. On a 2-core machine shared with other processes each of those ops can
cost tens of milliseconds (torch's intra-op threads wait on each other; measured in
``benchmarks/bench_clip_e2e.py``), more than the resize itself. :class:`FastPreprocess` does the same steps
with Pillow and numpy: the same Pillow resize and crop, then one vectorised uint8 -> normalized float32 pass
over the whole batch, written straight into a contiguous ``(n, 3, H, W)`` array. The result equals open_clip's
transform to float32 rounding (the same operations in the same order).

Only the configurations whose exact equivalent is written here are taken (resize mode ``shortest`` with a
square size, or ``squash``; nearest, bilinear or bicubic interpolation): :meth:`FastPreprocess.from_cfg`
returns None for the others, and the caller keeps open_clip's transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from knockoff.errors import ConfigError

_INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class FastPreprocess:
    """open_clip's eval preprocessing, batched: ``batch(images) -> float32 (n, 3, H, W)``.

    Args:
        size: output side (square).
        mean, std: per-channel normalization, as open_clip gives them.
        interpolation: ``"bicubic"`` (open_clip's default), ``"bilinear"`` or ``"nearest"``.
        resize_mode: ``"shortest"`` (resize the shorter side to ``size``, then center-crop) or ``"squash"``.
    """

    def __init__(
        self,
        size: int,
        mean: Sequence[float] = OPENAI_MEAN,
        std: Sequence[float] = OPENAI_STD,
        interpolation: str = "bicubic",
        resize_mode: str = "shortest",
    ):
        if interpolation not in _INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
        if resize_mode not in ("shortest", "squash"):
            raise ConfigError(f"resize_mode must be 'shortest' or 'squash', got {resize_mode!r}")
        if int(size) < 1:
            raise ConfigError(f"size must be positive, got {size!r}")
        self.size = int(size)
        self.resample = _INTERPOLATIONS[interpolation]
        self.resize_mode = resize_mode
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> FastPreprocess | None:
        """From an open_clip ``preprocess_cfg`` (``model.visual.preprocess_cfg``); None when not supported here."""
        size = cfg.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(size) != 2 or size[0] != size[1]:
                return None
            size = size[0]
        mode = cfg.get("resize_mode") or "shortest"
        interpolation = cfg.get("interpolation") or "bicubic"
        mean, std = cfg.get("mean") or OPENAI_MEAN, cfg.get("std") or OPENAI_STD
        if cfg.get("mode", "RGB") != "RGB" or mode not in ("shortest", "squash") or interpolation not in _INTERPOLATIONS:
            return None
        if len(mean) != 3 or len(std) != 3:
            return None
        return cls(int(size), mean, std, interpolation, mode)

    def resize_crop(self, image: Image.Image) -> Image.Image:
        """The resized and center-cropped RGB image (``size`` x ``size``), as torchvision would make it."""
        s = self.size
        w, h = image.size
        if self.resize_mode == "squash":
            out = image if (w, h) == (s, s) else image.resize((s, s), self.resample)
        else:
            # torchvision Resize(int): the shorter side becomes s, the longer int(s * long / short).
            if w <= h:
                new_w, new_h = s, int(s * h / w)
            else:
                new_w, new_h = int(s * w / h), s
            out = image if (w, h) == (new_w, new_h) else image.resize((new_w, new_h), self.resample)
            # torchvision CenterCrop: offsets rounded half to even, as Python's round does.
            top, left = int(round((new_h - s) / 2.0)), int(round((new_w - s) / 2.0))
            if (new_w, new_h) != (s, s):
                out = out.crop((left, top, left + s, top + s))
        return out if out.mode == "RGB" else out.convert("RGB")

    def batch(self, images: Sequence[Image.Image], out: np.ndarray | None = None) -> np.ndarray:
        """Preprocess ``images`` into one contiguous float32 array ``(n, 3, size, size)``."""
        s = self.size
        n = len(images)
        pixels = np.empty((n, s, s, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            pixels[i] = np.asarray(self.resize_crop(image))
        return self.normalize(pixels, out=out)

    def normalize(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 ``(n, H, W, 3)`` -> float32 ``(n, 3, H, W)``: ``(x / 255 - mean) / std``, as ToTensor + Normalize."""
        n, h, w, _ = pixels.shape
        if out is None:
            out = np.empty((n, 3, h, w), dtype=np.float32)
        np.divide(pixels.transpose(0, 3, 1, 2), np.float32(255), out=out, dtype=np.float32)
        out -= self.mean
        out /= self.std
        return out

    def __repr__(self) -> str:
        mode = {v: k for k, v in _INTERPOLATIONS.items()}[self.resample]
        return f"FastPreprocess(size={self.size}, resize_mode={self.resize_mode!r}, interpolation={mode!r})"
