"""The counterfeiters' edits: each returns a new RGB image of a sensible size, changed, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from knockoff.evaluate import edits
from knockoff.evaluate.edits import EDIT_KINDS, apply_edit

EXPECTED_KINDS = (
    "crop", "pad-square", "border", "watermark-text", "watermark-logo", "caption-bar", "screenshot", "collage",
    "mirror", "rotate-small", "rotate-90", "perspective", "grayscale", "color-shift", "jpeg-30", "resize-200",
)


def _photo(width: int = 256, height: int = 192) -> Image.Image:
    """A small asymmetric, colourful test picture (so that mirror, rotate and grayscale all change it)."""
    ys, xs = np.mgrid[0:height, 0:width]
    arr = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1).astype(np.uint8)
    image = Image.fromarray(arr)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 30, 90, 120), fill=(200, 20, 40))
    draw.ellipse((150, 40, 230, 150), fill=(20, 160, 60))
    return image


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_edit_kinds_are_the_documented_names():
    assert EDIT_KINDS == EXPECTED_KINDS


@pytest.mark.parametrize("kind", EXPECTED_KINDS)
def test_edit_returns_a_changed_rgb_image_of_sensible_size(kind):
    photo = _photo()
    before = photo.copy()
    out = apply_edit(photo, kind, np.random.default_rng(0))
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB"
    assert out is not photo
    assert _pixels(photo).tobytes() == _pixels(before).tobytes(), "the input must not be modified"
    width, height = out.size
    assert 64 <= min(width, height) and max(width, height) <= 4 * max(photo.size)
    if out.size == photo.size:
        assert np.abs(_pixels(out) - _pixels(photo)).mean() > 1.0, f"{kind} did not change the image"


@pytest.mark.parametrize("kind", EXPECTED_KINDS)
def test_edit_is_deterministic_for_a_seed(kind):
    photo = _photo()
    first = apply_edit(photo, kind, np.random.default_rng(7))
    second = apply_edit(photo, kind, np.random.default_rng(7))
    assert first.size == second.size
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("kind", ["crop", "watermark-text", "watermark-logo", "caption-bar", "collage", "screenshot",
                                  "rotate-small", "perspective", "color-shift", "border"])
def test_random_edits_vary_with_the_seed(kind):
    photo = _photo()
    outs = {apply_edit(photo, kind, np.random.default_rng(seed)).tobytes() for seed in range(4)}
    assert len(outs) > 1


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("mirror", (256, 192)),
        ("rotate-90", (192, 256)),
        ("grayscale", (256, 192)),
        ("jpeg-30", (256, 192)),
        ("resize-200", (200, 150)),
        ("pad-square", (256, 256)),
        ("border", (256 + 2 * 19, 192 + 2 * 19)),
        ("perspective", (256, 192)),
    ],
)
def test_edit_sizes(kind, expected):
    assert apply_edit(_photo(), kind, np.random.default_rng(0)).size == expected


def test_crop_keeps_about_half_the_area():
    photo = _photo()
    for seed in range(10):
        out = edits.crop(photo, np.random.default_rng(seed))
        ratio = out.width * out.height / (photo.width * photo.height)
        assert 0.45 <= ratio <= 0.55
        assert out.width <= photo.width and out.height <= photo.height


def test_pad_square_of_a_square_photo_still_pads():
    square = _photo(200, 200)
    out = edits.pad_square(square, np.random.default_rng(0))
    assert out.width == out.height > 200


def test_screenshot_puts_the_photo_at_about_half_the_width():
    photo = _photo()
    for seed in range(5):
        out = edits.screenshot(photo, np.random.default_rng(seed))
        assert 0.4 <= photo.width / out.width <= 0.6
        assert out.height > photo.height


def test_rotate_small_grows_the_canvas():
    photo = _photo()
    out = edits.rotate_small(photo, np.random.default_rng(0))
    assert out.width > photo.width and out.height > photo.height


def test_mirror_is_its_own_inverse():
    photo = _photo()
    assert edits.mirror(edits.mirror(photo)).tobytes() == photo.tobytes()


def test_grayscale_has_equal_channels():
    arr = np.asarray(edits.grayscale(_photo()))
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_non_rgb_input_is_converted():
    gray = _photo().convert("L")
    rgba = _photo().convert("RGBA")
    assert apply_edit(gray, "border", np.random.default_rng(0)).mode == "RGB"
    assert apply_edit(rgba, "collage", np.random.default_rng(0)).mode == "RGB"


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown edit kind 'blur'.*crop.*resize-200"):
        apply_edit(_photo(), "blur", np.random.default_rng(0))


def test_edits_are_fast_at_512_pixels():
    import time

    photo = _photo(512, 512)
    for kind in EDIT_KINDS:  # warm up (fonts)
        apply_edit(photo, kind, np.random.default_rng(0))
    start = time.perf_counter()
    for kind in EDIT_KINDS:
        apply_edit(photo, kind, np.random.default_rng(1))
    assert (time.perf_counter() - start) / len(EDIT_KINDS) < 0.1  # a few ms each; generous for slow CI
