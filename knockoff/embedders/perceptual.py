"""The weight-free perceptual engine: a global descriptor for edited copies of official photos.

It needs no model weights. It is built to find a brand's official photo reused with edits (resize,
recompression, border, colour change, mirror); it cannot recognise the same product in a new photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from knockoff.embedders.base import Embedder, l2_normalize, register_embedder

_GRID = 32
_KEEP = 12


def _trim_uniform_border(gray: Image.Image, tolerance: int = 12) -> Image.Image:
    """Crop away a border of near-uniform colour (padding, frames) around the content."""
    arr = np.asarray(gray, dtype=np.int16)
    corner = int(np.median([arr[0, 0], arr[0, -1], arr[-1, 0], arr[-1, -1]]))
    mask = np.abs(arr - corner) > tolerance
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return gray
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (bottom - top) * (right - left) < 0.2 * arr.size:
        return gray
    return gray.crop((int(left), int(top), int(right), int(bottom)))


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    mat = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    mat[0] /= np.sqrt(2.0)
    return mat


_DCT = _dct_matrix(_GRID)


class PerceptualEmbedder(Embedder):
    """Low-frequency DCT of the border-trimmed, contrast-normalized luminance, made mirror-invariant."""

    kind = "perceptual"
    input_size = 128

    @property
    def name(self) -> str:
        return "perceptual"

    @property
    def dim(self) -> int:
        return _KEEP * _KEEP - 1

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "version": 1}

    def _describe(self, image: Image.Image) -> np.ndarray:
        gray = ImageOps.grayscale(image)
        gray = _trim_uniform_border(gray)
        small = np.asarray(gray.resize((_GRID, _GRID), Image.Resampling.BOX), dtype=np.float64)
        small = (small - small.mean()) / (small.std() + 1e-6)
        coeffs = _DCT @ small @ _DCT.T
        low = coeffs[:_KEEP, :_KEEP]
        # A horizontal mirror flips the sign of odd horizontal frequencies: keep magnitudes there.
        low = low.copy()
        low[:, 1::2] = np.abs(low[:, 1::2])
        return low.ravel()[1:]

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(np.stack([self._describe(image) for image in images]))


def _create(arg: str | None = None, **options: Any) -> PerceptualEmbedder:
    return PerceptualEmbedder()


register_embedder("perceptual", _create, "weight-free descriptor for edited copies of official photos")
