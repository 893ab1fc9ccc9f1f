"""The int8 OCR models (:mod:`knockoff.match.ocr_derive`) and the text they are calibrated on.

Static quantisation needs the range of each convolution's input on typical inputs. They are measured here on
images rendered with Pillow (its built-in font and the system's DejaVu fonts when found), from a fixed seed:
photos with words of many sizes, colours and angles over gradients, shapes and noise for the detector, single
lines of words for the recogniser, both prepared exactly as the reader prepares its own inputs
(:func:`~knockoff.match.ocr_models.det_input`, :func:`~knockoff.match.ocr_models.rec_input`). No photo of any
evaluation set is used, so that the models are not fitted to one.
"""

from __future__ import annotations

import logging
import platform
import string
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from knockoff.match.ocr_derive import (
    cpu_flags,
    derived_model,
    derived_path,
    prune_classes,
    quantize_int8,
    reduce_range,
)
from knockoff.match.ocr_models import det_input, rec_input

__all__ = ["CALIBRATION_LINES", "CALIBRATION_PHOTOS", "calibration_lines", "calibration_photos", "int8_models"]

CALIBRATION_PHOTOS = ((384, 384), (384, 288), (288, 384), (448, 320), (320, 448), (384, 384))
CALIBRATION_LINES = 24
SEED = 20261202
_LETTERS = string.ascii_letters + string.digits + "&-.,'%"
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
Font = Any

log = logging.getLogger(__name__)


def _fonts() -> list[str]:
    """DejaVu font files on this system (may be none; Pillow's built-in font is always used too)."""
    found = sorted({p for folder in _FONT_DIRS if folder.is_dir() for p in folder.glob("DejaVu*.ttf")
                    if "Math" not in p.name})
    return [str(p) for p in found[:6]]


def _font(files: list[str], rng: np.random.Generator, size: int) -> Font:
    choice = int(rng.integers(0, len(files) + 1))
    try:
        if choice < len(files):
            return ImageFont.truetype(files[choice], size)
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _word(rng: np.random.Generator) -> str:
    words = ["".join(rng.choice(list(_LETTERS), size=int(rng.integers(2, 10)))) for _ in range(int(rng.integers(1, 3)))]
    text = " ".join(words)
    return text.upper() if rng.random() < 0.4 else text


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A background colour and a text colour that stands out from it."""
    back = rng.integers(0, 256, 3)
    ink = rng.integers(0, 96, 3) if back.mean() > 128 else rng.integers(160, 256, 3)
    return tuple(int(v) for v in back), tuple(int(v) for v in ink)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A gradient between two colours with a few filled shapes on it."""
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    pixels = np.broadcast_to(start + (end - start) * ramp, (height, width, 3))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = (x0, y0, x0 + int(rng.integers(20, width)), y0 + int(rng.integers(20, height)))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def _noisy(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """The image as a BGR uint8 array with camera-like noise."""
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, 5.0, (image.height, image.width, 3))
    return np.ascontiguousarray(np.clip(pixels, 0, 255).astype(np.uint8)[:, :, ::-1])


def _photo(rng: np.random.Generator, width: int, height: int, fonts: list[str]) -> np.ndarray:
    """A photo-like image with words of several sizes, colours and angles."""
    image = _background(rng, width, height)
    for _ in range(int(rng.integers(3, 9))):
        back, ink = _colours(rng)
        font = _font(fonts, rng, int(rng.choice([11, 14, 18, 24, 32, 44, 60])))
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        xy = (int(rng.integers(0, width * 3 // 4)), int(rng.integers(0, height * 7 // 8)))
        text = _word(rng)
        if rng.random() < 0.4:  # a label: text on its own patch
            left, top, right, bottom = draw.textbbox(xy, text, font=font)
            draw.rectangle((left - 4, top - 4, right + 4, bottom + 4), fill=(*back, 255))
        draw.text(xy, text, font=font, fill=(*ink, 255))
        angle = float(rng.uniform(-25, 25)) if rng.random() < 0.3 else 0.0
        image.paste(layer.rotate(angle, resample=Image.Resampling.BICUBIC), (0, 0), layer.rotate(angle))
    return _noisy(image, rng)


def _line(rng: np.random.Generator, fonts: list[str]) -> np.ndarray:
    """One line of words on a plain background, cut with a small margin, as a detected box is."""
    back, ink = _colours(rng)
    font = _font(fonts, rng, int(rng.integers(14, 64)))
    text = _word(rng)
    bbox = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font)
    left, top, right, bottom = (int(v) for v in bbox)
    margin = max(2, (bottom - top) // 5)
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), back)
    ImageDraw.Draw(image).text((margin - left, margin - top), text, font=font, fill=ink)
    return _noisy(image, rng)


def calibration_photos() -> list[np.ndarray]:
    """The detector's calibration inputs (1 x 3 x H x W tensors)."""
    rng, fonts = np.random.default_rng(SEED), _fonts()
    return [det_input(_photo(rng, width, height, fonts)) for width, height in CALIBRATION_PHOTOS]


def calibration_lines() -> list[np.ndarray]:
    """The recogniser's calibration inputs (1 x 3 x 48 x W tensors)."""
    rng, fonts = np.random.default_rng(SEED + 1), _fonts()
    return [rec_input(_line(rng, fonts))[0] for _ in range(CALIBRATION_LINES)]


def int8_models(det: Path, rec: Path, folder: Path | None = None) -> dict[str, bytes]:
    """The int8 detector and the int8 recogniser with its output cut to :data:`~knockoff.match.ocr_derive.KEPT_RANGES`,
    derived from the models at ``det`` and ``rec`` (cached; raises what deriving raises). Weights have 7 bits on
    x86 CPUs without VNNI (:func:`~knockoff.match.ocr_derive.reduce_range`; the recipe's name says which)."""
    seven = reduce_range(cpu_flags(), platform.machine())
    bits = "int7" if seven else "int8"
    missing = [path for path in (derived_path(det, bits, folder), derived_path(rec, f"latin-pointwise-{bits}", folder))
               if not path.is_file()]
    if missing:  # ~10-20 s of silence otherwise, on the first check of a machine
        log.info("preparing the %s models that read text in photos, once (some 10-30 s; cached in %s for later runs)",
                 bits, missing[0].parent)

    def pruned(model: Any) -> bytes:
        meta = {p.key: p.value for p in model.metadata_props}
        characters = meta.get("character", "").splitlines()
        return quantize_int8(prune_classes(model, characters), calibration_lines(), seven, pointwise_only=True)

    return {"det": derived_model(det, bits, lambda model: quantize_int8(model, calibration_photos(), seven), folder),
            "rec": derived_model(rec, f"latin-pointwise-{bits}", pruned, folder)}
