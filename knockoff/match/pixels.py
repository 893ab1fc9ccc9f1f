"""Pixel checks of a geometric match: do the two photos agree pixel for pixel, colour and small print, once aligned?

A copy of an official photo, however edited (colour shift, recompression, a caption or a watermark over part
of it), keeps the photo's pixels: aligned with the fitted homography, small cells of the two photos correlate
almost perfectly, except under the overlays. A *new* photo of the same printed design (a seller's shelf photo
of the brand's sibling product, a re-shot scene) matches keypoints just as well, but its cells do not
correlate: other light, a curved package, other text on the same layout. :func:`pixel_agreement` measures
the fraction of the reference's textured cells that agree; see ``VerifierSettings.min_pixel_agreement``.

The official photo of a *sibling product* (the same carton template in another colour, with another flavour
picture or variant text) passes that coarse grayscale check. Two finer checks, on colour thumbnails, tell it
apart (:func:`copy_agreement`): the **colour agreement** fits one global colour map (an affine map of the RGB
channels: a grayscale or colour-shifted copy is one) and counts the cells whose mean colour it explains; the
**detail agreement** counts the small textured cells whose pixels the listing reproduces almost perfectly
(correlation >= 0.9 with the best linear mix of the listing cell's colour channels, allowing a one-pixel
misalignment): a copy keeps its small print, a sibling's variant text and picture do not.

Both photos are compared as thumbnails (:func:`thumbnail`), so that a reference costs a few hundred
kilobytes at most to keep and the checks a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "REGION_NAMES", "CopyAgreement", "DetailAgreement", "copy_agreement", "detail_agreement", "jacobian_at",
    "pixel_agreement", "thumbnail",
]

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

#: colour check: cell side (pixels of the colour thumbnail), the largest colour error (RGB distance) of an
#: agreeing cell after the global colour map, the share of cells the robust fit keeps, and the chroma
#: (max - min channel) above which a flat cell still says something (a coloured panel)
COLOUR_CELL = 12
COLOUR_TOLERANCE = 30.0
COLOUR_FIT_KEEP = 0.7
CHROMA = 20.0
#: detail check: cell side, the NCC an agreeing cell reaches, the texture a cell needs (gray levels, std),
#: and the misalignment (pixels) forgiven
DETAIL_CELL = 8
DETAIL_NCC = 0.9
DETAIL_STD = 6.0
DETAIL_SHIFT = 1
#: fewer cells than this: colour or detail agreement is not measurable
MIN_COLOUR_CELLS = 8

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (uint8, H x W gray or H x W x 3 RGB) shrunk so that its longer side is at most ``side``."""
    import cv2

    height, width = image.shape[:2]
    factor = min(1.0, side / max(height, width, 1))
    if factor >= 1.0:
        return np.ascontiguousarray(image, dtype=np.uint8)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


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


def _aligned(
    listing_thumb: np.ndarray, listing_work_size: tuple[int, int], reference_thumb: np.ndarray,
    reference_work_size: tuple[int, int], homography: np.ndarray, mirrored: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(reference, listing warped onto it, covered mask), float32, in a frame of the reference shrunk to the
    listing's resolution of it (so that sharp pixels are not compared with blurred ones); ``None`` when the
    homography is degenerate at the reference's centre."""
    import cv2

    listing = np.ascontiguousarray(np.fliplr(listing_thumb) if mirrored else listing_thumb)
    ref_h, ref_w = reference_thumb.shape[:2]
    lst_h, lst_w = listing.shape[:2]
    to_listing_thumb = _scaling(lst_w / listing_work_size[0], lst_h / listing_work_size[1])
    from_reference_thumb = _scaling(reference_work_size[0] / ref_w, reference_work_size[1] / ref_h)
    h = to_listing_thumb @ np.asarray(homography, dtype=np.float64).reshape(3, 3) @ from_reference_thumb
    jacobian = jacobian_at(h, ref_w / 2.0, ref_h / 2.0)  # listing pixels per reference pixel at the centre
    if jacobian is None:
        return None
    scale = math.sqrt(abs(float(np.linalg.det(jacobian))))
    if not math.isfinite(scale) or scale <= 0:
        return None
    shrink = min(1.0, scale)
    out_w, out_h = max(MIN_CELL * 4, round(ref_w * shrink)), max(MIN_CELL * 4, round(ref_h * shrink))
    frame_to_listing = h @ np.linalg.inv(_scaling(out_w / ref_w, out_h / ref_h))
    listing_f = listing.astype(np.float32)
    warped = cv2.warpPerspective(listing_f, frame_to_listing, (out_w, out_h),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    covered = cv2.warpPerspective(np.ones(listing.shape[:2], np.float32), frame_to_listing, (out_w, out_h),
                                  flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    reference = cv2.resize(reference_thumb.astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_AREA)
    return reference, warped, covered


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

    aligned = _aligned(listing_thumb, listing_work_size, reference_thumb, reference_work_size, homography, mirrored)
    if aligned is None:
        return None
    reference, warped, covered = aligned
    out_h, out_w = reference.shape[:2]
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
            a = reference[y0:y1, x0:x1]
            if covered[y0:y1, x0:x1].mean() < MIN_COVERED or a.std() < FLAT_STD:
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


@dataclass(frozen=True)
class CopyAgreement:
    """The colour and small-print evidence of one aligned pair (``None``: not measurable)."""

    #: share of the reference's informative cells (textured or coloured) whose mean colour one global colour
    #: map of the whole shown part explains
    colour: float | None
    #: share of the reference's small textured cells whose pixels, colour-mapped, correlate almost perfectly
    detail: float | None
    #: the region of the reference where that detail agrees least (:class:`DetailAgreement`)
    detail_weakest: str | None = None


def _cells(image: np.ndarray, cell: int, offset: int = 0, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Non-overlapping ``cell`` x ``cell`` blocks of ``image`` from (offset, offset), as (n, cell * cell[, c])."""
    rows, cols = shape if shape is not None else (image.shape[0] // cell, image.shape[1] // cell)
    part = image[offset:offset + rows * cell, offset:offset + cols * cell]
    blocks = part.reshape(rows, cell, cols, cell, *part.shape[2:]).swapaxes(1, 2)
    return blocks.reshape(rows * cols, cell * cell, *part.shape[2:])


def _robust_colour_map(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine colour map (4 x 3) that best takes ``source`` colours (n x 3) to ``target``'s, refitted on
    the best-explained :data:`COLOUR_FIT_KEEP` share (overlays and differing parts are left out), and every
    colour's error under it."""
    features = np.hstack([source, np.ones((len(source), 1), dtype=source.dtype)])
    keep = np.ones(len(source), dtype=bool)
    for _ in range(3):
        mapping = np.linalg.lstsq(features[keep], target[keep], rcond=None)[0]
        error = np.linalg.norm(features @ mapping - target, axis=1)
        keep = error <= np.quantile(error, COLOUR_FIT_KEEP)
    return mapping, error


def _colour_agreement(reference: np.ndarray, warped: np.ndarray, covered: np.ndarray) -> float | None:
    """The colour agreement: the better of mapping reference to listing and back (a grayscale reference
    cannot be mapped to a colour copy, the copy to it can)."""
    full = _cells(covered, COLOUR_CELL).mean(axis=1) >= MIN_COVERED
    ref_cells, lst_cells = _cells(reference, COLOUR_CELL)[full], _cells(warped, COLOUR_CELL)[full]
    if len(ref_cells) < MIN_COLOUR_CELLS:
        return None
    ref_mean, lst_mean = ref_cells.mean(axis=1), lst_cells.mean(axis=1)
    chroma = ref_mean.max(axis=1) - ref_mean.min(axis=1)
    informative = (((ref_cells @ _LUMA).std(axis=1) >= FLAT_STD) | (chroma >= CHROMA))
    if informative.sum() < MIN_COLOUR_CELLS:
        return None
    errors = (_robust_colour_map(ref_mean, lst_mean)[1], _robust_colour_map(lst_mean, ref_mean)[1])
    return max(float((error[informative] <= COLOUR_TOLERANCE).mean()) for error in errors)


def _detail_agreement(reference: np.ndarray, warped: np.ndarray, covered: np.ndarray) -> float | None:
    """Share of the reference's small textured cells whose gray pixels the listing's colour pixels reproduce:
    the correlation of the reference cell with the best linear combination of the listing cell's channels
    (so a colour change, global or a hue rotation that is only locally linear, keeps the print) reaches
    :data:`DETAIL_NCC`, at the best of the shifts up to :data:`DETAIL_SHIFT` pixels."""
    return _detail_of((reference, warped, covered)).share


def _detail_of(aligned: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> DetailAgreement:
    """:class:`DetailAgreement` of an aligned pair (:func:`_aligned`'s result; None: not measurable)."""
    cells = None if aligned is None else _detail_cells(*aligned)
    if cells is None:
        return DetailAgreement(None, None)
    return DetailAgreement(float(cells[0].mean()), _weakest_region(*cells))


def _detail_cells(reference: np.ndarray, warped: np.ndarray,
                  covered: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
    """Of :func:`_detail_agreement`: whether each compared cell agrees, the cells' positions (row-major in the
    grid of :data:`DETAIL_CELL` cells) and that grid's (rows, columns); None below :data:`MIN_COLOUR_CELLS`."""
    import cv2

    a = cv2.GaussianBlur(np.ascontiguousarray(reference @ _LUMA), (0, 0), 1.0)
    b = cv2.GaussianBlur(np.ascontiguousarray(warped), (0, 0), 1.0)
    s, cell = DETAIL_SHIFT, DETAIL_CELL
    shape = ((a.shape[0] - 2 * s) // cell, (a.shape[1] - 2 * s) // cell)
    ref_cells = _cells(a, cell, s, shape)
    textured = (_cells(covered, cell, s, shape).mean(axis=1) >= MIN_COVERED) & (ref_cells.std(axis=1) >= DETAIL_STD)
    if textured.sum() < MIN_COLOUR_CELLS:
        return None
    y = ref_cells[textured] - ref_cells[textured].mean(axis=1, keepdims=True)  # (n, k)
    best = np.zeros(len(y), dtype=np.float64)
    # the unshifted comparison first; only the cells it does not settle try the shifts
    for dy, dx in sorted(((dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)), key=lambda d: d != (0, 0)):
        todo = np.flatnonzero(best < DETAIL_NCC)
        if len(todo) == 0:
            break
        x = _cells(b[s + dy:, s + dx:], cell, 0, shape)[textured][todo]
        best[todo] = np.maximum(best[todo], _channel_correlation(y[todo], x))
    return best >= DETAIL_NCC, np.flatnonzero(textured), shape


#: the names of a 3 x 3 grid's regions, row by row (where a photo's small print agrees least)
REGION_NAMES = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")
#: a region is compared only with at least this many small textured cells
MIN_REGION_CELLS = 6


def _weakest_region(agrees: np.ndarray, positions: np.ndarray, shape: tuple[int, int]) -> str | None:
    """The region of a 3 x 3 grid over the reference where the least of its compared cells agree (None: fewer
    than two regions have :data:`MIN_REGION_CELLS` cells)."""
    rows, cols = shape
    region = (positions // cols * 3 // max(rows, 1)) * 3 + (positions % cols * 3 // max(cols, 1))
    shares = {k: float(agrees[region == k].mean()) for k in range(9) if (region == k).sum() >= MIN_REGION_CELLS}
    if len(shares) < 2:
        return None
    return REGION_NAMES[min(shares, key=lambda k: (shares[k], k))]


def _channel_correlation(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per cell, the correlation of ``y`` (n x k, centred) with the best linear mix of ``x``'s channels
    (n x k x 3): the square root of the share of ``y``'s variance that a least-squares fit explains."""
    x = x.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    energy = (y * y).sum(axis=1)
    gram = np.einsum("nki,nkj->nij", x, x) + np.eye(3) * 1e-3 * (1.0 + energy[:, None, None] / y.shape[1])
    xy = np.einsum("nki,nk->ni", x, y)
    explained = np.einsum("ni,ni->n", xy, np.linalg.solve(gram, xy[..., None])[..., 0])
    return np.sqrt(np.clip(explained / np.maximum(energy, 1e-9), 0.0, 1.0))


def copy_agreement(
    listing_rgb: np.ndarray,
    listing_work_size: tuple[int, int],
    reference_rgb: np.ndarray,
    reference_work_size: tuple[int, int],
    homography: np.ndarray,
    *,
    mirrored: bool = False,
) -> CopyAgreement:
    """The colour and detail agreement of two RGB thumbnails (uint8, H x W x 3) aligned by ``homography``
    (as in :func:`pixel_agreement`). See the module's docstring for what each measures."""
    aligned = _aligned(listing_rgb, listing_work_size, reference_rgb, reference_work_size, homography, mirrored)
    if aligned is None:
        return CopyAgreement(None, None)
    detail = _detail_of(aligned)
    return CopyAgreement(_colour_agreement(*aligned), detail.share, detail.weakest)


def detail_agreement(
    listing_rgb: np.ndarray,
    listing_work_size: tuple[int, int],
    reference_rgb: np.ndarray,
    reference_work_size: tuple[int, int],
    homography: np.ndarray,
    *,
    mirrored: bool = False,
) -> DetailAgreement:
    """The detail agreement of :func:`copy_agreement` alone (the small print; ``share`` None: not measurable),
    with the region of the official photo where it agrees least."""
    return _detail_of(_aligned(listing_rgb, listing_work_size, reference_rgb, reference_work_size, homography,
                               mirrored))


@dataclass(frozen=True)
class DetailAgreement:
    """How much of an official photo's small print a photo reproduces once aligned (``share``, None: not
    measurable) and where it reproduces least (``weakest``: a region of a 3 x 3 grid, :data:`REGION_NAMES`)."""

    share: float | None
    weakest: str | None
