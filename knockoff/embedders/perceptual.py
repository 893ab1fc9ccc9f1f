"""The weight-free perceptual engine: a global descriptor for edited copies of official photos.

It needs no model weights. It is built to find a brand's official photo reused with edits: resize,
recompression, pad to square, border, watermark or text overlay, colour change, grayscale, mirror, a small
rotation. It cannot recognise the same product in a new photo (that needs local features, see
:mod:`knockoff.match.verify`, or a learned model).

The descriptor (version 2), computed on luminance only so that colour shifts and grayscale do not matter:

1. the image is reduced to at most 256 pixels a side and a uniform border (padding, frame, letterbox) is
   trimmed away;
2. it is resized to 64 x 64 and contrast-normalized (zero mean, unit variance);
3. **layout**: the low-frequency 2-D DCT (10 x 10 coefficients, DC dropped) of a 32 x 32 version; a
   horizontal mirror only flips the sign of odd horizontal frequencies, so those are kept as magnitudes;
4. **gradients**: a 4 x 4 grid of 8-bin unsigned gradient-orientation histograms. A mirror maps cell
   (row, col) to (row, 3 - col) and orientation t to pi - t; with ``H`` the histograms and ``M(H)`` the
   mirrored ones, ``H + M(H)`` and ``|H - M(H)|`` are both mirror-invariant and keep the left/right detail.
   Each half is square-rooted (Hellinger) and L2-normalized.

The parts are weighted and concatenated into one L2-normalized float32 vector of dimension 227, searched by
inner product (cosine).

A copy that shows only part of the official photo (a crop, a photo pasted into a screenshot or a collage) is
found through views: :meth:`PerceptualEmbedder.reference_views` indexes the full photo plus overlapping crops
at two scales, and :meth:`PerceptualEmbedder.query_views` searches the full listing photo plus its halves
and quadrants and its 90-degree rotations. The caller keeps the best score over all views.

A copy rotated by 5-20 degrees or warped in perspective often ranks too low here to be verified; the
detector adds the references that the listing's RootSIFT keypoints vote for (:mod:`knockoff.match.keypoints`) to
the verification shortlist, so that such copies are still found and proved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageChops

from knockoff.embedders.base import Embedder, l2_normalize
from knockoff.errors import EmbedderError

VERSION = 2

_WORK = 256  # images are reduced to at most this many pixels a side before anything else
_SIDE = 64  # side of the normalized square the descriptor is computed on
_DCT_GRID = 32
_DCT_KEEP = 10
_CELLS = 4
_BINS = 8
_DCT_WEIGHT = 1.0
_GRAD_WEIGHT = 1.0

_DIM = (_DCT_KEEP * _DCT_KEEP - 1) + 2 * _CELLS * (_CELLS // 2) * _BINS


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    mat = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    mat[0] /= np.sqrt(2.0)
    return mat.astype(np.float32)


_DCT = _dct_matrix(_DCT_GRID)[:_DCT_KEEP]


def _reduce(image: Image.Image, target: int = _WORK) -> Image.Image:
    """Shrink by an integer factor (fast box filter) so that the longer side is near ``target``."""
    factor = max(image.size) // target
    if factor >= 2:
        image = image.reduce(factor)
    return image


def _trim_once(arr: np.ndarray, tolerance: float) -> np.ndarray:
    h, w = arr.shape
    if h < 8 or w < 8:
        return arr
    ring = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    colour = float(np.median(ring))
    off = np.abs(arr - colour) > tolerance
    # A row or column is border when at most 2 % of its pixels differ from the border colour.
    r_idx = np.flatnonzero(off.mean(axis=1) > 0.02)
    c_idx = np.flatnonzero(off.mean(axis=0) > 0.02)
    if r_idx.size == 0 or c_idx.size == 0:
        return arr
    top, bottom, left, right = r_idx[0], r_idx[-1] + 1, c_idx[0], c_idx[-1] + 1
    if (bottom - top) * (right - left) < 0.2 * h * w:
        return arr
    return arr[top:bottom, left:right]


def _trim_uniform_border(arr: np.ndarray, tolerance: float = 10.0, rounds: int = 3) -> np.ndarray:
    """Crop away near-uniform borders (padding, frame, letterbox) from a 2-D luminance array.

    The border colour is the median of the outermost ring; rows and columns are removed from each side while
    almost all their pixels stay within ``tolerance`` of it. Repeated (a coloured frame around a photo on a
    white background is trimmed in two rounds) while at least 20 % of the area is left.
    """
    for _ in range(rounds):
        trimmed = _trim_once(arr, tolerance)
        if trimmed.shape == arr.shape:
            break
        arr = trimmed
    return arr


def _resize_array(arr: np.ndarray, side: int) -> np.ndarray:
    img = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(img.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.float32)


def _mirror_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Index maps of the gradient histogram under a horizontal mirror, for the left half of the grid."""
    rows, cols, bins = np.meshgrid(np.arange(_CELLS), np.arange(_CELLS // 2), np.arange(_BINS), indexing="ij")
    left = (rows * _CELLS + cols) * _BINS + bins
    mirrored = (rows * _CELLS + (_CELLS - 1 - cols)) * _BINS + (_BINS - 1 - bins)
    return left.ravel(), mirrored.ravel()


_LEFT, _MIRRORED = _mirror_pairs()


def _gradient_histograms(square: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(square)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    # Image rows grow downwards; a mirror maps (gx, gy) to (-gx, gy), i.e. the angle t to pi - t.
    position = angle / np.pi * _BINS
    low = np.floor(position - 0.5).astype(np.int64)
    frac = (position - 0.5) - low
    cell = _SIDE // _CELLS
    cy = (np.arange(_SIDE) // cell)[:, None]
    cx = (np.arange(_SIDE) // cell)[None, :]
    base = (cy * _CELLS + cx) * _BINS
    size = _CELLS * _CELLS * _BINS
    hist = np.bincount((base + np.mod(low, _BINS)).ravel(), (magnitude * (1 - frac)).ravel(), minlength=size)
    hist += np.bincount((base + np.mod(low + 1, _BINS)).ravel(), (magnitude * frac).ravel(), minlength=size)
    return hist


def describe_luminance(gray: np.ndarray) -> np.ndarray:
    """The (unnormalized-part, then normalized) descriptor of a 2-D luminance array; see the module docstring."""
    arr = _trim_uniform_border(np.asarray(gray, dtype=np.float32))
    square = _resize_array(arr, _SIDE)
    square = (square - square.mean()) / (square.std() + 1e-3)

    small = square.reshape(_DCT_GRID, _SIDE // _DCT_GRID, _DCT_GRID, _SIDE // _DCT_GRID).mean(axis=(1, 3))
    coeffs = _DCT @ small @ _DCT.T
    coeffs[:, 1::2] = np.abs(coeffs[:, 1::2])
    layout = coeffs.ravel()[1:]
    layout = layout / (np.linalg.norm(layout) + 1e-9)

    hist = _gradient_histograms(square)
    total = hist.sum() + 1e-9
    hist = np.sqrt(hist / total)
    both = hist[_LEFT] + hist[_MIRRORED]
    diff = np.abs(hist[_LEFT] - hist[_MIRRORED])
    # Centred, so that two unrelated photos (whose histograms are all positive) are not similar by default.
    both = both - both.mean()
    diff = diff - diff.mean()
    grads = np.concatenate([both / (np.linalg.norm(both) + 1e-9), 0.5 * diff / (np.linalg.norm(diff) + 1e-9)])
    return np.concatenate([_DCT_WEIGHT * layout, _GRAD_WEIGHT * grads / np.linalg.norm([1.0, 0.5])])


def _to_luminance(image: Image.Image) -> np.ndarray:
    """Half luminance, half HSV value (the largest channel): a hue rotation keeps the value and a grayscale
    conversion keeps the luminance, so both edits keep most of the signal."""
    image = _reduce(image, _SIDE * 2)
    if image.mode == "L":
        return np.asarray(image, dtype=np.float32)
    image = image.convert("RGB")
    red, green, blue = image.split()
    value = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    mixed = Image.blend(image.convert("L"), value, 0.5)
    return np.asarray(mixed, dtype=np.float32)


# Reference views: the full photo, then windows of 70 % of each side (4 corners + centre) and of 50 % of
# each side (a 3 x 3 grid with 25 % steps), so that a crop keeping about half the area, or a listing that
# shows only part of the photo, still meets a view that it mostly overlaps.
_REFERENCE_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    *((x, y, x + 0.7, y + 0.7) for y in (0.0, 0.3) for x in (0.0, 0.3)),
    (0.15, 0.15, 0.85, 0.85),
    *((x, y, x + 0.5, y + 0.5) for y in (0.0, 0.25, 0.5) for x in (0.0, 0.25, 0.5)),
)

# Query views: the full listing photo, its four halves and four quadrants (a collage cell, a product photo
# in one half of a screenshot), and the photo turned by 90 degrees either way.
_QUERY_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.5, 1.0),
    (0.5, 0.0, 1.0, 1.0),
    (0.0, 0.0, 1.0, 0.5),
    (0.0, 0.5, 1.0, 1.0),
    (0.0, 0.0, 0.5, 0.5),
    (0.5, 0.0, 1.0, 0.5),
    (0.0, 0.5, 0.5, 1.0),
    (0.5, 0.5, 1.0, 1.0),
)


def _windows(image: Image.Image, windows: Sequence[tuple[float, float, float, float]]) -> list[Image.Image]:
    w, h = image.size
    out = []
    for x0, y0, x1, y1 in windows:
        box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
        if box[2] - box[0] >= 8 and box[3] - box[1] >= 8:
            out.append(image.crop(box))
    return out


def content_regions(image: Image.Image, max_regions: int = 3) -> list[tuple[int, int, int, int]]:
    """Boxes of solid blocks that stand out from the background (a photo pasted into a screenshot or collage).

    The background is the most common luminance of the image's outer ring; pixels that differ from it form
    connected blocks, and a block counts when its box covers 5-85 % of the image and it fills at least 60 %
    of its box (text and thin lines do not). Largest first. Empty when OpenCV is not installed.
    """
    try:
        import cv2
    except ImportError:
        return []
    arr = np.asarray(image.convert("L"), dtype=np.int16)
    h, w = arr.shape
    if h < 16 or w < 16:
        return []
    ring = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    background = int(np.bincount(ring // 8).argmax()) * 8 + 4
    mask = (np.abs(arr - background) > 12).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    boxes = []
    for x, y, bw, bh, area in stats[1:count]:
        box_area = int(bw) * int(bh)
        if 0.05 * h * w <= box_area <= 0.85 * h * w and area >= 0.6 * box_area:
            boxes.append((box_area, (int(x), int(y), int(x + bw), int(y + bh))))
    boxes.sort(reverse=True)
    return [box for _, box in boxes[:max_regions]]


class PerceptualEmbedder(Embedder):
    """Weight-free global descriptor: low-frequency DCT layout + mirror-invariant gradient-orientation grid.

    Survives resize, JPEG recompression, colour shift and grayscale, pad to square, borders, mirror,
    watermark or text overlays and small rotations. Partial copies are found through :meth:`reference_views`
    and :meth:`query_views`. It cannot recognise the same product in a different photo.
    """

    kind = "perceptual"
    input_size = _WORK

    @property
    def name(self) -> str:
        return "perceptual"

    @property
    def dim(self) -> int:
        return _DIM

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "version": VERSION}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(np.stack([describe_luminance(_to_luminance(image)) for image in images]))

    def reference_views(self, image: Image.Image) -> list[Image.Image]:
        """The full photo plus 14 overlapping windows (70 % and 50 % of each side) that a crop may show."""
        image = _reduce(image)
        return [image, *_windows(image, _REFERENCE_WINDOWS)]

    def query_views(self, image: Image.Image) -> list[Image.Image]:
        """The full listing photo, its halves and quadrants, and its two 90-degree rotations."""
        image = _reduce(image, _SIDE * 2)
        return [
            image,
            *_windows(image, _QUERY_WINDOWS),
            *(image.crop(box) for box in content_regions(image)),
            image.transpose(Image.Transpose.ROTATE_90),
            image.transpose(Image.Transpose.ROTATE_270),
        ]


def create_perceptual_embedder(arg: str | None = None, **options: Any) -> PerceptualEmbedder:
    """The ``perceptual`` engine's factory; it takes no argument and no options."""
    if arg:
        raise EmbedderError(f"the perceptual engine takes no argument after 'perceptual:', got {arg!r}")
    return PerceptualEmbedder()

