"""The pixel check of a geometric match (knockoff.match.pixels): copies agree, new photos of one design do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from knockoff.match import verify
from knockoff.match.pixels import copy_agreement, pixel_agreement, thumbnail
from knockoff.match.verify import GeometricVerifier, VerifierSettings

pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV is not installed")

from tests.test_verify import textured  # noqa: E402

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
IDENTITY = np.eye(3)


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def test_thumbnail_keeps_aspect_and_small_images() -> None:
    big = np.zeros((300, 600), dtype=np.uint8)
    assert thumbnail(big, 160).shape == (80, 160)
    small = np.zeros((50, 40), dtype=np.uint8)
    assert thumbnail(small, 160).shape == (50, 40)


def test_identical_photos_agree_everywhere() -> None:
    photo = gray(textured(1))
    assert pixel_agreement(photo, (320, 240), photo, (320, 240), IDENTITY) == 1.0


def test_mirrored_copy_agrees_only_when_mirrored() -> None:
    photo = textured(1)
    mirrored = gray(ImageOps.mirror(photo))
    # the homography of a mirrored match maps the reference into the *mirrored* listing photo
    assert pixel_agreement(mirrored, (320, 240), gray(photo), (320, 240), IDENTITY, mirrored=True) == 1.0
    assert pixel_agreement(mirrored, (320, 240), gray(photo), (320, 240), IDENTITY) < 0.5


def test_shifted_and_scaled_copy_agrees() -> None:
    photo = textured(2)
    # the listing shows the photo at half size, 30 px right and 20 px down, in a grey frame
    frame = Image.new("RGB", (400, 300), (128, 128, 128))
    frame.paste(photo.resize((160, 120), Image.Resampling.BILINEAR), (30, 20))
    h = np.array([[0.5, 0, 30], [0, 0.5, 20], [0, 0, 1.0]])
    agreement = pixel_agreement(thumbnail(gray(frame), 160), (400, 300), thumbnail(gray(photo), 160), (320, 240), h)
    assert agreement is not None and agreement > 0.9


def test_other_content_on_the_same_layout_disagrees() -> None:
    photo = textured(3)
    other = textured(4)
    assert pixel_agreement(gray(other), (320, 240), gray(photo), (320, 240), IDENTITY) < 0.3


def test_flat_reference_is_not_measurable() -> None:
    flat = np.full((120, 160), 200, dtype=np.uint8)
    assert pixel_agreement(flat, (160, 120), flat, (160, 120), IDENTITY) is None


def design(seed: int, panel_seed: int) -> Image.Image:
    """One package design (a textured frame shared by a product line) with a product-specific panel."""
    image = textured(seed, (360, 270))
    image.paste(textured(panel_seed, (260, 190)), (50, 40))
    return image


def test_a_relit_photo_of_a_sibling_design_is_not_a_copy() -> None:
    verifier = GeometricVerifier()
    reference = design(7, panel_seed=100)
    sibling = design(7, panel_seed=200)  # same frame, another product's panel
    listing = ImageEnhance.Brightness(sibling.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(90, 90, 90)))
    listing = listing.enhance(1.2).filter(ImageFilter.GaussianBlur(0.8))
    match = verifier.verify(listing, reference)
    # the shared frame matches under one transform...
    assert match.inliers >= verifier.settings.min_inliers and match.inlier_ratio >= 0.8
    # ...but the pixels of the panel do not
    assert match.pixel_agreement is not None and match.pixel_agreement < verifier.settings.min_pixel_agreement
    assert not match.verified and "pixels do not agree" in (match.failed_check or "")
    # the same edits of the reference itself are a copy
    copy = ImageEnhance.Brightness(reference.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(90, 90, 90)))
    copy_match = verifier.verify(copy.enhance(1.2).filter(ImageFilter.GaussianBlur(0.8)), reference)
    assert copy_match.verified and (copy_match.pixel_agreement or 0) > 0.9
    # with the pixel checks off, the sibling passes the geometric checks alone
    off = VerifierSettings(min_pixel_agreement=0.0, min_colour_agreement=0.0, min_detail_agreement=0.0)
    assert GeometricVerifier(off).verify(listing, reference).verified
    # each of the finer checks rejects it on its own
    only_detail = VerifierSettings(min_pixel_agreement=0.0, min_colour_agreement=0.0)
    failed = GeometricVerifier(only_detail).verify(listing, reference)
    assert failed.proof == "same design" and "small print" in (failed.failed_check or "")


@pytest.mark.skipif(not (REAL / "grocerystore").is_dir(), reason="shared real data not present")
def test_store_photo_of_a_sibling_product_is_not_a_copy() -> None:
    """A shelf photo of Garant's medium-fat milk against the official photo of Garant's standard milk: the same
    carton design, 40-60 matching keypoints under one transform, but another photo (benchmarks/bench_copies.py)."""
    from knockoff.catalog.images import load_image

    root = REAL / "grocerystore" / "dataset"
    listing = load_image(root / "train/Packages/Milk/Garant-Ecological-Medium-Fat-Milk/Garant-Ecological-Medium-Fat-Milk_018.jpg")
    reference = load_image(root / "iconic-images-and-descriptions/Packages/Milk/Garant-Ecological-Standard-Milk/"
                           "Garant-Ecological-Standard-Milk_Iconic.jpg")
    assert not GeometricVerifier().verify(listing, reference).verified
    # matched at their own sizes (no second, enlarged match), the pair
    # passes every geometric check and only the pixel check rejects it
    match = GeometricVerifier(VerifierSettings(enlarge_small_to=0)).verify(listing, reference)
    assert match.inliers >= 30 and not match.verified
    assert match.pixel_agreement is not None and match.pixel_agreement < 0.6


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def carton(panel: tuple[int, int, int], text: str = "MEDIUM FAT 1.5 %", seed: int = 3) -> Image.Image:
    """A package photo: a textured picture, a coloured panel and a line of print."""
    from PIL import ImageDraw

    from knockoff.evaluate.edits import load_font

    image = textured(seed, (320, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 100, 320, 240), fill=panel)
    font = load_font(22)
    for row, line in enumerate((text, text[::-1], text.lower(), text)):
        draw.text((10, 104 + 33 * row), line, fill=(255, 255, 255) if row % 2 else (0, 0, 0), font=font)
    return image


def _hue_shift(image: Image.Image) -> Image.Image:
    hsv = np.asarray(image.convert("HSV"), dtype=np.int32)
    hsv[..., 0] = (hsv[..., 0] + 60) % 256
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


@pytest.mark.parametrize(
    "make_listing, colour_ok, detail_ok",
    [
        (lambda ref: ref, True, True),
        (lambda ref: ImageOps.grayscale(ref).convert("RGB"), True, True),  # one global colour change
        (_hue_shift, True, True),  # the colour-shift edit: one global colour change too
        (lambda ref: carton((40, 160, 40)), False, True),  # the sibling's panel in another colour
        (lambda ref: carton((200, 30, 30), text="STANDARD 3.0 % MILK"), True, False),  # other small print
    ],
    ids=["identical", "grayscale", "hue-shift", "other-panel-colour", "other-small-print"],
)
def test_copy_agreement(make_listing, colour_ok: bool, detail_ok: bool) -> None:
    reference = carton((200, 30, 30))
    listing = make_listing(reference)
    agreement = copy_agreement(rgb(listing), (320, 240), rgb(reference), (320, 240), IDENTITY)
    defaults = VerifierSettings()
    assert agreement.colour is not None and agreement.detail is not None
    assert (agreement.colour >= defaults.min_colour_agreement) is colour_ok, agreement
    assert (agreement.detail >= defaults.min_detail_agreement) is detail_ok, agreement


def test_copy_agreement_of_a_mirrored_and_a_flat_photo() -> None:
    reference = carton((200, 30, 30))
    mirrored = copy_agreement(rgb(ImageOps.mirror(reference)), (320, 240), rgb(reference), (320, 240), IDENTITY,
                              mirrored=True)
    assert mirrored.colour == 1.0 and mirrored.detail == 1.0
    flat = np.full((240, 320, 3), 128, dtype=np.uint8)
    assert copy_agreement(flat, (320, 240), flat, (320, 240), IDENTITY) == (None, None) or \
        copy_agreement(flat, (320, 240), flat, (320, 240), IDENTITY).detail is None


@pytest.mark.parametrize("rows, cols, weakest", [
    (slice(160, 240), slice(213, 320), "bottom right"),
    (slice(0, 80), slice(0, 106), "top left"),
    (slice(80, 160), slice(106, 213), "centre"),
    (None, None, None),  # all of it agrees: the region named is merely the first of equals, the share is 1
])
def test_detail_agreement_names_where_the_print_differs(rows, cols, weakest) -> None:
    from knockoff.match.pixels import REGION_NAMES, copy_agreement, detail_agreement

    reference = rgb(textured(1))
    listing = reference.copy()
    if rows is not None:
        other = np.random.default_rng(5).integers(0, 255, listing[rows, cols].shape[:2], dtype=np.uint8)
        listing[rows, cols] = np.repeat(other[..., None], 3, axis=2)  # another print in one ninth of the photo
    found = detail_agreement(listing, (320, 240), reference, (320, 240), IDENTITY)
    assert found.share is not None and found.weakest in REGION_NAMES
    both = copy_agreement(listing, (320, 240), reference, (320, 240), IDENTITY)  # the copy check's measure: the same
    assert (both.detail, both.detail_weakest) == (found.share, found.weakest)
    if weakest is None:
        assert found.share == 1.0
    else:
        assert 0.5 < found.share < 0.95 and found.weakest == weakest


def test_detail_agreement_of_a_flat_photo_is_not_measurable() -> None:
    from knockoff.match.pixels import detail_agreement

    flat = np.full((240, 320, 3), 128, dtype=np.uint8)
    found = detail_agreement(flat, (320, 240), flat, (320, 240), IDENTITY)
    assert found.share is None and found.weakest is None
