"""Pixel check of a geometric match: do the two photos agree pixel for pixel once aligned?

A copy of an official photo, however edited (colour shift, recompression, a caption or a watermark over part
of it), keeps the photo's pixels: aligned with the fitted homography, small cells of the two photos correlate
almost perfectly, except under the overlays. A *new* photo of the same printed design (a seller's shelf photo
of the brand's sibling product, a re-shot scene) matches keypoints just as well, but its cells do not
correlate: other light, a curved package, other text on the same layout. :func:`pixel_agreement` measures
the fraction of the reference's textured cells that agree; see ``VerifierSettings.min_pixel_agreement``.

Both photos are compared as small grayscale thumbnails (:func:`thumbnail`), so that a reference costs a few
kilobytes to keep and the check a millisecond or two.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["jacobian_at", "pixel_agreement", "thumbnail"]

#: a cell agrees when the normalized cross-correlation of its pixels is at least this
CELL_AGREEMENT = 0.5
#: cells whose reference pixels vary less than this (gray levels, standard deviation) say nothing: skipped
FLAT_STD = 4.0
#: a cell is compared only when at least this fraction of it is covered by the listing photo
MIN_COVERED = 0.95
#: cells along the longer side, and their smallest side in pixels
GRID = 12
MIN_CELL = 6
#: fewer textured cells than this: the agreement is not measurable
MIN_CELLS = 4


def thumbnail(gray: np.ndarray, side: int) -> np.ndarray:
    """``gray`` (uint8, H x W) shrunk so that its longer side is at most ``side``."""
    import cv2

    height, width = gray.shape
    factor = min(1.0, side / max(height, width, 1))
    if factor >= 1.0:
        return np.ascontiguousarray(gray, dtype=np.uint8)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def jacobian_at(h: np.ndarray, x: float, y: float) -> np.ndarray | None:
    """The 2 x 2 derivative of homography ``h`` at point (x, y): the local linear map (scale, rotation,
    shear) there. ``None`` where the point maps to infinity."""
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    if not math.isfinite(w) or abs(w) < 1e-12:
        return None
    mapped = (h[:2, :2] @ np.array([x, y]) + h[:2, 2]) / w
    return (h[:2, :2] - np.outer(mapped, h[2, :2])) / w


def _scaling(factor_x: float, factor_y: float) -> np.ndarray:
    return np.diag([factor_x, factor_y, 1.0])


def pixel_agreement(
    listing_thumb: np.ndarray,
    listing_work_size: tuple[int, int],
    reference_thumb: np.ndarray,
    reference_work_size: tuple[int, int],
    homography: np.ndarray,
    *,
    mirrored: bool = False,
) -> float | None:
    """Fraction of the reference's textured cells whose pixels agree with the aligned listing photo.

    ``homography`` maps reference pixels to listing pixels in the verifier's resized images (sizes
    ``*_work_size``, width x height), of the mirrored listing photo when ``mirrored``. The listing photo is
    warped into the reference's frame; where it shows the reference smaller than the thumbnail, both are
    shrunk to the listing's resolution first, so that the comparison is not between sharp and blurred
    pixels. ``None`` when fewer than :data:`MIN_CELLS` textured cells are covered.
    """
    import cv2

    listing = np.fliplr(listing_thumb) if mirrored else listing_thumb
    ref_h, ref_w = reference_thumb.shape
    lst_h, lst_w = listing.shape
    to_listing_thumb = _scaling(lst_w / listing_work_size[0], lst_h / listing_work_size[1])
    from_reference_thumb = _scaling(reference_work_size[0] / ref_w, reference_work_size[1] / ref_h)
    h = to_listing_thumb @ np.asarray(homography, dtype=np.float64).reshape(3, 3) @ from_reference_thumb

    # listing pixels per reference pixel at the reference's centre
    jacobian = jacobian_at(h, ref_w / 2.0, ref_h / 2.0)
    if jacobian is None:
        return None
    scale = math.sqrt(abs(float(np.linalg.det(jacobian))))
    if not math.isfinite(scale) or scale <= 0:
        return None
    # the comparison frame: the reference thumbnail, shrunk to the listing's resolution of it
    shrink = min(1.0, scale)
    out_w, out_h = max(MIN_CELL * 4, round(ref_w * shrink)), max(MIN_CELL * 4, round(ref_h * shrink))
    to_frame = _scaling(out_w / ref_w, out_h / ref_h)
    frame_to_listing = h @ np.linalg.inv(to_frame)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    listing_f = listing.astype(np.float32)
    warped = cv2.warpPerspective(listing_f, frame_to_listing, (out_w, out_h), flags=flags)
    covered = cv2.warpPerspective(np.ones_like(listing_f), frame_to_listing, (out_w, out_h),
                                  flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    reference = cv2.resize(reference_thumb.astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_AREA)
    reference = cv2.GaussianBlur(reference, (0, 0), 1.0)
    warped = cv2.GaussianBlur(warped, (0, 0), 1.0)

    cells_long = max(1, min(GRID, max(out_w, out_h) // MIN_CELL))
    cell = max(out_w, out_h) / cells_long
    rows, cols = max(1, round(out_h / cell)), max(1, round(out_w / cell))
    compared = agreeing = 0
    for i in range(rows):
        y0, y1 = i * out_h // rows, (i + 1) * out_h // rows
        for j in range(cols):
            x0, x1 = j * out_w // cols, (j + 1) * out_w // cols
            if covered[y0:y1, x0:x1].mean() < MIN_COVERED:
                continue
            a = reference[y0:y1, x0:x1]
            if a.std() < FLAT_STD:
                continue
            b = warped[y0:y1, x0:x1]
            a = a - a.mean()
            b = b - b.mean()
            denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
            compared += 1
            if denominator > 0 and float((a * b).sum()) / denominator >= CELL_AGREEMENT:
                agreeing += 1
    if compared < MIN_CELLS:
        return None
    return agreeing / compared
