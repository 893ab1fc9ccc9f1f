"""Geometric verification (knockoff.match.verify): copies verify, unrelated photos do not, settings, text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from knockoff.match import verify
from knockoff.match.verify import GeometricMatch, GeometricVerifier, VerifierSettings

pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def textured(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like image with many corners: smoothed noise, random shapes and text."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = int(rng.integers(8, 60)), int(rng.integers(8, 60))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0))
        else:
            draw.ellipse((x, y, x + w, y + h), fill=colour, outline=(255, 255, 255))
    for i in range(6):
        draw.text((int(rng.integers(0, size[0] - 60)), int(rng.integers(0, size[1] - 12))), f"BRAND{seed}{i}", fill=(0, 0, 0))
    return image.filter(ImageFilter.SMOOTH)


def _crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((int(0.2 * w), int(0.15 * h), int(0.9 * w), int(0.85 * h)))


def _screenshot(image: Image.Image) -> Image.Image:
    w, h = image.size
    frame = Image.new("RGB", (2 * w, int(1.6 * h)), (240, 240, 240))
    ImageDraw.Draw(frame).rectangle((0, 0, 2 * w, 30), fill=(30, 60, 160))
    frame.paste(image, (20, 50))
    for i in range(6):
        ImageDraw.Draw(frame).text((w + 60, 60 + 20 * i), f"product line {i}", fill=(0, 0, 0))
    return frame


def _rotate(image: Image.Image) -> Image.Image:
    return image.rotate(12, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))


def _jpeg_small(image: Image.Image) -> Image.Image:
    import io

    buffer = io.BytesIO()
    image.resize((200, 150), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=30)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


COPIES = {
    "identity": (lambda im: im, False),
    "crop": (_crop, False),
    "mirror": (ImageOps.mirror, True),
    "screenshot": (_screenshot, False),
    "rotate": (_rotate, False),
    "grayscale": (lambda im: ImageOps.grayscale(im).convert("RGB"), False),
    "jpeg-small": (_jpeg_small, False),
    "mirror-crop": (lambda im: ImageOps.mirror(_crop(im)), True),
}


@pytest.fixture(scope="module")
def verifier() -> GeometricVerifier:
    return GeometricVerifier()


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return textured(1)


@pytest.mark.parametrize("kind", sorted(COPIES))
def test_copies_verify(kind: str, verifier: GeometricVerifier, original: Image.Image) -> None:
    edit, mirrored = COPIES[kind]
    listing = edit(original)
    match = verifier.verify(listing, original)
    assert match.verified, match
    assert match.failed_check is None
    assert match.mirrored is mirrored
    assert match.inliers >= verifier.settings.min_inliers
    assert len(match.reference_box) == 4
    xs = [p[0] for p in match.reference_box]
    ys = [p[1] for p in match.reference_box]
    # The quad is in listing pixels and overlaps the listing photo.
    assert min(xs) < listing.width and max(xs) > 0 and min(ys) < listing.height and max(ys) > 0


def test_coverage_of_crop_and_screenshot(verifier: GeometricVerifier, original: Image.Image) -> None:
    crop = verifier.verify(_crop(original), original)
    assert 0.35 < crop.reference_coverage < 0.65  # the crop keeps 0.7 x 0.7 = 49 % of the photo
    assert crop.listing_coverage > 0.95
    shot = verifier.verify(_screenshot(original), original)
    assert shot.reference_coverage > 0.95
    assert 0.2 < shot.listing_coverage < 0.4  # 1 / (2 x 1.6) of the frame
    assert 0.9 < shot.scale < 1.1
    rotated = verifier.verify(_rotate(original), original)
    assert abs(abs(rotated.rotation_deg) - 12) < 2


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_unrelated_images_do_not_verify(seed: int, verifier: GeometricVerifier, original: Image.Image) -> None:
    match = verifier.verify(textured(seed), original)
    assert not match.verified
    assert isinstance(match.failed_check, str) and match.failed_check


def test_blank_and_tiny_images_do_not_verify(verifier: GeometricVerifier, original: Image.Image) -> None:
    blank = Image.new("RGB", (300, 200), (255, 255, 255))
    assert not verifier.verify(blank, original).verified
    assert not verifier.verify(original, blank).verified
    assert not verifier.verify(Image.new("RGB", (3, 3)), original).verified


def test_features_are_reusable(verifier: GeometricVerifier, original: Image.Image) -> None:
    reference = verifier.features(original)
    listing = verifier.features(ImageOps.mirror(_crop(original)), with_mirror=True)
    assert len(reference) > 50 and reference.descriptors.shape == (len(reference), 128)
    assert np.allclose(np.linalg.norm(reference.descriptors, axis=1), 1.0, atol=1e-4)  # RootSIFT rows
    match = verifier.verify(listing, reference)
    assert match.verified and match.mirrored
    without_mirror = verifier.features(ImageOps.mirror(original))
    assert not verifier.verify(without_mirror, reference).verified


def test_large_images_are_resized(original: Image.Image) -> None:
    v = GeometricVerifier(VerifierSettings(max_side=256))
    big = original.resize((1280, 960))
    features = v.features(big)
    assert max(features.work_size) == 256 and features.image_size == (1280, 960)
    match = v.verify(big, original)
    assert match.verified
    # reference_box is in the big listing's pixels
    assert max(p[0] for p in match.reference_box) > 1000


@pytest.mark.parametrize(
    "field, value",
    [
        ("min_inliers", 3),
        ("min_inliers", 10.5),
        ("min_inlier_ratio", 1.5),
        ("min_inlier_ratio", -0.1),
        ("max_scale", 1.0),
        ("min_coverage", 2.0),
        ("max_side", 32),
        ("max_anisotropy", 0.5),
        ("min_inlier_spread", -1.0),
        ("ratio", 0.0),
        ("ransac_threshold", 0.0),
        ("max_features", 4),
        ("enlarge_small_to", -1),
        ("min_pixel_agreement", 1.5),
        ("thumbnail_side", 16),
        ("min_colour_agreement", 1.2),
        ("min_colour_agreement", -0.1),
        ("min_detail_agreement", 2.0),
        ("colour_side", 32),
    ],
)
def test_settings_validation(field: str, value: object) -> None:
    from knockoff.errors import KnockoffError, PolicyError

    with pytest.raises(PolicyError, match=field) as raised:
        VerifierSettings(**{field: value})
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, KnockoffError)


def _match(**changes: object) -> GeometricMatch:
    values: dict[str, object] = dict(
        inliers=412, matches=450, inlier_ratio=0.9156, reference_coverage=0.63, listing_coverage=0.5,
        mirrored=True, rotation_deg=0.4, scale=0.8, verified=True, failed_check=None,
        reference_box=((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)),
    )
    values.update(changes)
    return GeometricMatch(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, "412 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg, mirrored"),
        ({"mirrored": False}, "412 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg"),
        (
            {"mirrored": False, "rotation_deg": -90.0},
            "412 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg, rotated 90°",
        ),
        (
            {"pixel_agreement": 0.974},
            "412 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg, mirrored; "
            "97 % of the shown part agrees pixel for pixel",
        ),
        (
            {"mirrored": False, "pixel_agreement": 0.974, "colour_agreement": 0.9, "detail_agreement": 0.95},
            "412 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg; "
            "97 % of the shown part agrees pixel for pixel, 90 % in colour and 95 % in its small print",
        ),
        (
            {"mirrored": False, "verified": False, "failed_check": "too few inliers (9 < 12)", "inliers": 9},
            "9 matching keypoints; the listing shows 63 % of official photo acme/tote_front.jpg "
            "(not verified: too few inliers (9 < 12))",
        ),
    ],
)
def test_describe(changes: dict, expected: str) -> None:
    assert _match(**changes).describe("acme/tote_front.jpg") == expected


@pytest.mark.parametrize(
    "changes, proof",
    [
        ({}, "copy"),
        ({"verified": False, "geometry_verified": True, "failed_check": "the small print does not agree"}, "same design"),
        ({"verified": False, "geometry_verified": False, "failed_check": "too few inliers (9 < 12)"}, "none"),
    ],
)
def test_proof_and_evidence(changes: dict, proof: str) -> None:
    match = _match(pixel_agreement=0.9, colour_agreement=0.85, detail_agreement=0.95, **changes)
    assert match.proof == proof and match.is_copy is (proof == "copy")
    assert match.evidence() == {
        "keypoints": 412, "official_photo_shown": 0.63, "pixel_agreement": 0.9, "colour_agreement": 0.85,
        "detail_agreement": 0.95, "proof": proof,
    }
    data = match.to_dict()
    assert data["proof"] == proof and data["is_copy"] is (proof == "copy")


def test_to_dict_is_json() -> None:
    data = _match().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["reference_box"] == [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
    assert data["verified"] is True and data["inliers"] == 412


@pytest.mark.skipif(not (REAL / "jenssegers-imagehash").is_dir(), reason="shared real data not present")
def test_real_copies_and_hard_negative(verifier: GeometricVerifier) -> None:
    from knockoff.catalog.images import load_image

    root = REAL / "jenssegers-imagehash" / "tests" / "images"
    original = load_image(root / "forest" / "forest-high.jpg")
    for name in ("forest-copyright.jpg", "forest-cropped.jpg", "forest-low.jpg", "forest-thumb.jpg"):
        match = verifier.verify(load_image(root / "forest" / name), original)
        assert match.verified and match.is_copy and match.proof == "copy", name
        # the copy proof's evidence is all there: the copyright line is semi-transparent, the print survives
        assert min(match.pixel_agreement or 0, match.colour_agreement or 0, match.detail_agreement or 0) >= 0.8, name
    man = load_image(root / "office" / "tumblr_ndyfnr7lk21tubinno1_1280.jpg")
    woman = load_image(root / "office" / "tumblr_ndyfq386o41tubinno1_1280.jpg")
    # Same room, different photos: not a copy.
    assert not verifier.verify(man, woman).verified
    assert not verifier.verify(man, original).verified


@pytest.mark.parametrize("allow_mirrored", [False, True])
def test_small_photos_get_enlarged_features_for_a_second_match(original: Image.Image, allow_mirrored: bool) -> None:
    v = GeometricVerifier(packaging=verify.PackagingSettings(allow_mirrored=allow_mirrored))
    small = original.resize((200, 150))
    features = v.features(small, with_mirror=True)
    assert features.work_size == (200, 150)
    enlarged = v.enlarged(features)
    assert enlarged is not None and enlarged.work_size == (400, 300) and enlarged.image_size == (200, 150)
    assert len(enlarged) > len(features)
    # the second look matches the enlarged photo unmirrored unless the packaging check accepts a mirrored match
    assert (enlarged.mirrored is not None) is allow_mirrored
    assert v.enlarged(features) is enlarged  # computed once
    assert v.enlarged(v.features(original.resize((640, 480)))) is None
    assert GeometricVerifier(VerifierSettings(enlarge_small_to=0)).features(small).small_gray is None
    # a copy of the small photo verifies, with its box in the listing photo's own pixels
    match = v.verify(_screenshot(small), small)
    assert match.verified and max(p[0] for p in match.reference_box) <= 2 * 200 + 1


@pytest.mark.parametrize("listing, reference, plain_listing", [
    ("textured", "textured", False),  # a copy: both photos have detail
    ("sky", "textured", True),  # a near-uniform photo: (almost) no keypoints of its own
    ("other", "textured", False),
])
def test_a_match_counts_both_photos_keypoints(listing, reference, plain_listing):
    sky = Image.new("RGB", (320, 240), (120, 170, 230))
    photos = {"textured": textured(1), "other": textured(2), "sky": sky}
    match = GeometricVerifier().verify(photos[listing], photos[reference])
    needed = VerifierSettings().min_inliers
    assert match.reference_keypoints is not None and match.reference_keypoints >= needed
    assert match.listing_keypoints is not None and (match.listing_keypoints < needed) is plain_listing
    assert match.verified is (listing == reference)
    assert {"listing_keypoints", "reference_keypoints"} <= set(match.to_dict())
