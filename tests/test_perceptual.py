"""The weight-free perceptual engine: shape, invariances to the edits counterfeiters make, views."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from knockoff.embedders import create_embedder
from knockoff.embedders.perceptual import PerceptualEmbedder, content_regions


def photo(seed: int, size: tuple[int, int] = (300, 220)) -> Image.Image:
    """A product-photo-like image: a smooth random background with shapes and text."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = int(rng.integers(15, 90)), int(rng.integers(15, 90))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x, y, x + w, y + h), fill=colour)
    draw.text((10, 10), f"BRAND {seed}", fill=(0, 0, 0))
    return image.filter(ImageFilter.SMOOTH)


def _jpeg(image: Image.Image, quality: int = 30) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _border(image: Image.Image) -> Image.Image:
    return ImageOps.expand(image, border=image.width // 10, fill=(200, 30, 120))


def _pad_square(image: Image.Image) -> Image.Image:
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _watermark(image: Image.Image) -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for i in range(3):
        draw.text((20, 40 + 60 * i), "shop123.com BEST PRICE", fill=(255, 255, 255, 160))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _colour_shift(image: Image.Image) -> Image.Image:
    """Hue turned by 90 degrees, saturation x1.3, brightness x0.85 (what a reseller's filter does)."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32)
    hsv = np.stack([np.mod(hsv[..., 0] + 64, 256), hsv[..., 1] * 1.3, hsv[..., 2] * 0.85], axis=-1)
    return Image.fromarray(np.clip(np.rint(hsv), 0, 255).astype(np.uint8), "HSV").convert("RGB")


GLOBAL_EDITS = {
    "identity": lambda im: im,
    "jpeg-30": _jpeg,
    "resize-120": lambda im: im.resize((120, 88), Image.Resampling.BILINEAR),
    "upscale": lambda im: im.resize((900, 660), Image.Resampling.BICUBIC),
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "colour-shift": _colour_shift,
    "mirror": ImageOps.mirror,
    "border": _border,
    "pad-square": _pad_square,
    "watermark": _watermark,
    "rotate-3": lambda im: im.rotate(3, resample=Image.Resampling.BILINEAR),
    "mirror+jpeg+border": lambda im: _border(_jpeg(ImageOps.mirror(im))),
}

SOURCES = [photo(seed) for seed in range(4)]
UNRELATED = [photo(seed) for seed in range(100, 112)]


@pytest.fixture(scope="module")
def embedder() -> PerceptualEmbedder:
    return PerceptualEmbedder()


def test_shape_norm_dtype_and_registry(embedder: PerceptualEmbedder) -> None:
    vectors = embedder.embed(SOURCES)
    assert vectors.shape == (len(SOURCES), embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)
    assert create_embedder("perceptual").settings() == embedder.settings()
    assert embedder.settings()["version"] >= 2
    assert embedder.dim <= 400


def test_deterministic_and_mode_independent(embedder: PerceptualEmbedder) -> None:
    image = SOURCES[0]
    a = embedder.embed_one(image)
    assert np.array_equal(a, embedder.embed_one(image.copy()))
    gray = image.convert("L")
    assert float(embedder.embed_one(gray) @ embedder.embed_one(gray.convert("RGB"))) > 0.999
    assert float(a @ embedder.embed_one(image.convert("RGBA").convert("RGB"))) > 0.999


def test_flat_and_tiny_images_do_not_crash(embedder: PerceptualEmbedder) -> None:
    vectors = embedder.embed([Image.new("RGB", (50, 50), (255, 255, 255)), Image.new("RGB", (1, 1)), Image.new("RGB", (3, 500))])
    assert np.all(np.isfinite(vectors))


@pytest.mark.parametrize("kind", sorted(GLOBAL_EDITS))
@pytest.mark.parametrize("source", range(len(SOURCES)))
def test_edited_copy_is_closer_than_unrelated(kind: str, source: int, embedder: PerceptualEmbedder) -> None:
    original = embedder.embed_one(SOURCES[source])
    edited = embedder.embed_one(GLOBAL_EDITS[kind](SOURCES[source]))
    others = embedder.embed([*UNRELATED, *(s for i, s in enumerate(SOURCES) if i != source)])
    copy_similarity = float(original @ edited)
    assert copy_similarity > 0.7
    assert copy_similarity > float((others @ edited).max()) + 0.05


def test_mirror_invariance_is_exact(embedder: PerceptualEmbedder) -> None:
    for image in SOURCES:
        assert float(embedder.embed_one(image) @ embedder.embed_one(ImageOps.mirror(image))) > 0.999


def _best_over_views(embedder: PerceptualEmbedder, listing: Image.Image, reference: Image.Image) -> float:
    q = embedder.embed(embedder.query_views(listing))
    r = embedder.embed(embedder.reference_views(reference))
    return float((q @ r.T).max())


def _crop_corner(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((0, 0, int(0.7 * w), int(0.7 * h)))


def _screenshot(image: Image.Image) -> Image.Image:
    w, h = image.size
    frame = Image.new("RGB", (2 * w, int(1.5 * h)), (245, 245, 245))
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, 0, 2 * w, 20), fill=(30, 60, 160))
    frame.paste(image, (15, 40))
    for i in range(5):
        draw.text((w + 40, 50 + 18 * i), f"Product text {i}", fill=(0, 0, 0))
    return frame


def _collage(image: Image.Image) -> Image.Image:
    w, h = image.size
    canvas = Image.new("RGB", (2 * w + 30, 2 * h + 30), (255, 255, 255))
    for i, tile in enumerate([UNRELATED[0], image, UNRELATED[1], UNRELATED[2]]):
        canvas.paste(tile.resize((w, h)), (10 + (i % 2) * (w + 10), 10 + (i // 2) * (h + 10)))
    return canvas


VIEW_EDITS = {
    "crop-corner": _crop_corner,
    "screenshot": _screenshot,
    "collage": _collage,
    "rotate-90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "caption-bar": lambda im: ImageOps.expand(im, border=(0, 0, 0, im.height // 5), fill=(0, 0, 0)),
}


@pytest.mark.parametrize("kind", sorted(VIEW_EDITS))
@pytest.mark.parametrize("source", range(len(SOURCES)))
def test_partial_copies_found_through_views(kind: str, source: int, embedder: PerceptualEmbedder) -> None:
    listing = VIEW_EDITS[kind](SOURCES[source])
    copy = _best_over_views(embedder, listing, SOURCES[source])
    unrelated = max(_best_over_views(embedder, listing, other) for other in UNRELATED[3:9])
    assert copy > unrelated


def test_views_are_images_and_include_the_full_photo(embedder: PerceptualEmbedder) -> None:
    image = SOURCES[0]
    refs = embedder.reference_views(image)
    queries = embedder.query_views(image)
    assert refs[0].size == image.size and queries[0].size[0] / queries[0].size[1] == pytest.approx(image.width / image.height, rel=0.02)
    assert len(refs) > 1 and len(queries) > 1
    assert all(isinstance(v, Image.Image) and min(v.size) >= 8 for v in [*refs, *queries])
    big = image.resize((3000, 2200))
    assert max(embedder.reference_views(big)[0].size) < 600  # reduced before cropping


def test_content_regions_find_the_pasted_photo() -> None:
    shot = _screenshot(SOURCES[1])
    boxes = content_regions(shot)
    assert boxes, "the pasted photo was not found"
    x0, y0, x1, y1 = boxes[0]
    assert abs(x0 - 15) <= 3 and abs(y0 - 40) <= 3
    assert abs((x1 - x0) - SOURCES[1].width) <= 3 and abs((y1 - y0) - SOURCES[1].height) <= 3
    assert content_regions(Image.new("RGB", (100, 100), (255, 255, 255))) == []
