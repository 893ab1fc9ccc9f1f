"""A synthetic labeled set for reading brands printed on products: package-like photos with a brand name
printed in several fonts, sizes, angles and colours on several backgrounds, spelled right or misspelled
("Acme" / "Acne", "Akme", "ACMF"), or with unrelated text only.

:func:`printed_cases` yields the cases in memory (for benchmarks); :func:`make_printed_set` writes them as a
labeled set in DESIGN.md's format (``kind``: ``printed-genuine``, ``printed-misspelled``,
``printed-unrelated``; the note column ``x_printed`` holds the brand text printed). The same arguments give the
same images on the same machine: the fonts are Pillow's built-in one plus the DejaVu fonts when the system has
them (:func:`available_fonts` says which; the ``font`` of each case is recorded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from knockoff.errors import ConfigError, LabeledSetError
from knockoff.evaluate.edits import Font, load_font
from knockoff.evaluate.setfiles import BRANDS_HEADER, LISTINGS_HEADER, REFERENCES_HEADER, prepare_set_dir, write_csv

__all__ = [
    "PRINTED_BRANDS",
    "PRINTED_KINDS",
    "PrintedCase",
    "PrintedSetInfo",
    "available_fonts",
    "make_printed_set",
    "misspell",
    "printed_cases",
]

PRINTED_KINDS: tuple[str, ...] = ("printed-genuine", "printed-misspelled", "printed-unrelated")
PRINTED_BRANDS: tuple[str, ...] = (
    "Acme", "Norda", "Velora", "Brisko", "Tundrel", "Kavista", "Lumeno", "Orvika", "Zephyra", "Montiqo",
    "Quelba", "Fjordan", "Strallo", "Dravenport",
)
"""Invented brand names of 4 to 10 letters (``Acme`` first)."""
_UNRELATED_WORDS = (
    "ORGANIC", "CLASSIC", "NATURAL", "FRESH", "ORIGINAL", "SALE", "NEW", "PREMIUM", "COTTON", "LIGHT", "EXTRA",
    "VANILLA", "STRAWBERRY", "BEST PRICE", "FREE SHIPPING", "100% NATURAL", "500 ml", "1 litre", "MADE IN EU",
    "HANDMADE", "SUMMER", "WINTER", "LIMITED EDITION", "GIFT SET", "FAMILY PACK", "LOW FAT", "SUGAR FREE",
)
_SYSTEM_FONTS = (
    "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSerif-BoldItalic.ttf", "dejavu/DejaVuSansCondensed.ttf",
)
_FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"))
# letters a misspelling may put in, chosen to look unlike what they replace (never an OCR-confusable pair)
_LETTERS = "abcdefghkmnoprstuvwxyz"
_CONFUSABLE = ({"0", "o"}, {"1", "l", "i"}, {"5", "s"}, {"8", "b"})


@lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """The fonts cases are printed in: ``builtin`` (Pillow's) and the DejaVu fonts found on this system."""
    found = ["builtin"]
    for name in _SYSTEM_FONTS:
        for folder in _FONT_DIRS:
            if (folder / name).is_file():
                found.append(str(folder / name))
                break
    return tuple(found)


@lru_cache(maxsize=256)
def _font(name: str, size: int) -> Font:
    if name == "builtin":
        return load_font(size)
    return ImageFont.truetype(name, size)


def _confusable(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in _CONFUSABLE)


def _one_edit(word: str, rng: np.random.Generator) -> str:
    """``word`` with one edit: a letter replaced by one that looks different, an inner letter dropped or
    doubled, or two inner neighbours swapped."""
    lower = word.lower()
    op = str(rng.choice(("replace", "replace", "drop", "double", "swap")))
    if op == "replace" or len(lower) < 4:
        i = int(rng.integers(0, len(lower)))
        options = [c for c in _LETTERS if not _confusable(c, lower[i])]
        return lower[:i] + str(rng.choice(options)) + lower[i + 1:]
    i = int(rng.integers(1, len(lower) - 1))
    if op == "drop":
        return lower[:i] + lower[i + 1:]
    if op == "double":
        return lower[:i] + lower[i] + lower[i:]
    if lower[i] == lower[i + 1] or i + 1 >= len(lower) - 1:
        return lower[:i] + str(rng.choice([c for c in _LETTERS if not _confusable(c, lower[i])])) + lower[i + 1:]
    return lower[:i] + lower[i + 1] + lower[i] + lower[i + 2:]


def misspell(brand: str, rng: np.random.Generator) -> str:
    """A knock-off spelling of ``brand``: one edit (two for names of 6 letters or more, half of the time,
    keeping the first letter), in the brand's letter case, 4 letters or more and within one letter of the
    name's length. Never the brand itself."""
    lower = brand.lower()
    for _ in range(50):
        edits = 2 if len(lower) >= 6 and rng.random() < 0.5 else 1
        candidate = lower
        for _ in range(edits):
            candidate = _one_edit(candidate, rng)
        if edits == 2 and candidate[0] != lower[0]:
            continue
        if candidate != lower and abs(len(candidate) - len(lower)) <= 1 and len(candidate) >= 4:
            return candidate.capitalize() if brand[:1].isupper() else candidate
    raise LabeledSetError(f"could not misspell {brand!r}")  # not reachable for names of 3+ letters


@dataclass(frozen=True)
class PrintedCase:
    """One generated photo: the ``brand`` it imitates, the ``printed`` brand text ("" for unrelated text
    only), its ``kind``, the ``extra`` unrelated words, the ``font``, text height in pixels and angle."""

    case_id: str
    brand: str
    kind: str
    printed: str
    extra: tuple[str, ...]
    font: str
    text_height: int
    angle: float
    image: Image.Image = field(compare=False, repr=False)


def _case_text(brand: str, kind: str, rng: np.random.Generator) -> str:
    if kind == "printed-unrelated":
        return ""
    text = brand if kind == "printed-genuine" else misspell(brand, rng)
    style = str(rng.choice(("as-is", "upper", "upper", "lower")))
    return text.upper() if style == "upper" else text.lower() if style == "lower" else text


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    style = str(rng.choice(("plain", "gradient", "noise")))
    base = rng.integers(0, 256, 3)
    if style == "plain":
        return Image.new("RGB", (size, size), tuple(int(c) for c in base))
    if style == "gradient":
        other = rng.integers(0, 256, 3)
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        rows = base[None, None, :] * (1 - t) + other[None, None, :] * t
        return Image.fromarray(np.broadcast_to(rows, (size, size, 3)).astype(np.uint8))
    noise = rng.normal(0, 40, (size // 8, size // 8, 3)) + base
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)


def _text_layer(text: str, font: Font, ink: tuple[int, int, int], angle: float) -> Image.Image:
    """``text`` drawn on a transparent layer, rotated by ``angle`` degrees."""
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    pad = 4
    size = (int(round(right - left)) + 2 * pad, int(round(bottom - top)) + 2 * pad)
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((pad - left, pad - top), text, font=font, fill=(*ink, 255))
    return layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)


def _paste_centered(canvas: Image.Image, layer: Image.Image, cx: float, cy: float) -> None:
    x = int(round(cx - layer.width / 2))
    y = int(round(cy - layer.height / 2))
    canvas.paste(layer, (x, y), layer)


def _fit(text: str, font_name: str, height: int, max_width: float) -> Font:
    """The font at ``height`` pixels, smaller if ``text`` would not fit in ``max_width``."""
    font = _font(font_name, height)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    while height > 10 and probe.textlength(text, font=font) > max_width:
        height = int(height * 0.85)
        font = _font(font_name, height)
    return font


def _render(brand_text: str, extra: Sequence[str], font_name: str, height: int, angle: float, size: int,
            rng: np.random.Generator) -> Image.Image:
    """A package on a background, with ``brand_text`` large on it and ``extra`` smaller below."""
    canvas = _background(size, rng)
    pack = tuple(int(c) for c in rng.integers(0, 256, 3))
    luma = 0.299 * pack[0] + 0.587 * pack[1] + 0.114 * pack[2]
    ink = (20, 20, 24) if luma > 130 else (245, 244, 238)
    margin = int(size * float(rng.uniform(0.06, 0.14)))
    draw = ImageDraw.Draw(canvas)
    draw.rounded_rectangle((margin, margin, size - margin, size - margin), radius=size // 20, fill=pack)
    width = size - 2 * margin
    if brand_text:
        layer = _text_layer(brand_text, _fit(brand_text, font_name, height, width * 0.9), ink, angle)
        _paste_centered(canvas, layer, size / 2, size * 0.42)
    for k, words in enumerate(extra):
        small = _fit(words, font_name, max(12, height // 2), width * 0.9)
        _paste_centered(canvas, _text_layer(words, small, ink, angle / 2), size / 2, size * (0.64 + 0.12 * k))
    return canvas


def printed_cases(
    n: int, *, seed: int = 0, brands: Sequence[str] = PRINTED_BRANDS, image_size: int = 320
) -> Iterator[PrintedCase]:
    """``n`` cases, the kinds in turn (genuine, misspelled, unrelated), the brands in turn within each."""
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"n must be an integer >= 0, got {n!r}")
    if not 96 <= image_size <= 2048:
        raise ConfigError(f"image_size must be in [96, 2048], got {image_size!r}")
    if not brands or any(len(b) < 4 or not b.isalpha() for b in brands):
        raise ConfigError("brands must be a non-empty list of names of 4 letters or more")
    fonts = available_fonts()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = PRINTED_KINDS[i % len(PRINTED_KINDS)]
        brand = brands[(i // len(PRINTED_KINDS)) % len(brands)]
        text = _case_text(brand, kind, rng)
        n_extra = int(rng.integers(0 if text else 1, 3))
        extra = tuple(str(w) for w in rng.choice(_UNRELATED_WORDS, size=n_extra, replace=False))
        font = fonts[int(rng.integers(0, len(fonts)))]
        height = int(image_size * float(rng.uniform(0.07, 0.18)))
        angle = float(round(rng.uniform(-25, 25), 1)) if rng.random() < 0.6 else 0.0
        image = _render(text, extra, font, height, angle, image_size, rng)
        yield PrintedCase(f"P{i:05d}", brand, kind, text, extra, Path(font).stem, height, angle, image)


@dataclass(frozen=True)
class PrintedSetInfo:
    """What :func:`make_printed_set` wrote."""

    root: Path
    seed: int
    n_listings: int
    fonts: tuple[str, ...]
    label_counts: dict[str, int]
    kind_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "seed": self.seed, "n_listings": self.n_listings,
                "fonts": list(self.fonts), "label_counts": dict(self.label_counts),
                "kind_counts": dict(self.kind_counts)}


_OFFICIAL = "official-store"
_LISTINGS_HEADER = (*LISTINGS_HEADER, "x_printed")  # a note column: the brand text printed


def _write_references(root: Path, brands: Sequence[str], seed: int, image_size: int) -> None:
    rows = []
    for b, brand in enumerate(brands):
        rng = np.random.default_rng([seed, 1_000_003, b])
        image = _render(brand, ("ORIGINAL",), available_fonts()[0], image_size // 7, 0.0, image_size, rng)
        image.save(root / "refs" / f"{brand.lower()}.png", format="PNG")
        rows.append((brand, f"{brand.lower()}-pack", f"{brand} pack", f"refs/{brand.lower()}.png", "20.00", "USD"))
    write_csv(root / "references.csv", REFERENCES_HEADER, rows)
    write_csv(root / "brands.csv", BRANDS_HEADER, [(b, "", _OFFICIAL) for b in brands])


def make_printed_set(
    out_dir: str | Path, *, n_listings: int = 300, seed: int = 0, image_size: int = 320,
    brands: Sequence[str] = PRINTED_BRANDS, overwrite: bool = False,
) -> PrintedSetInfo:
    """Write :func:`printed_cases` as a labeled set: one reference per brand (its name printed on a pack);
    genuine spellings sold by the official store (``genuine``, every other one) or another seller
    (``counterfeit``), misspellings (``counterfeit``), unrelated text (``unrelated``). No titles or prices
    that name a brand: the text in the photo is the only evidence."""
    root = prepare_set_dir(out_dir, overwrite, ("refs", "listings"))
    (root / "refs").mkdir()
    (root / "listings").mkdir()
    _write_references(root, brands, seed, image_size)
    rows: list[tuple[str, ...]] = []
    labels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for n, case in enumerate(printed_cases(n_listings, seed=seed, brands=brands, image_size=image_size)):
        official = case.kind == "printed-genuine" and n % 2 == 0
        label = "unrelated" if case.kind == "printed-unrelated" else "genuine" if official else "counterfeit"
        product = "" if label == "unrelated" else f"{case.brand.lower()}-pack"
        rel = f"listings/{case.case_id}.png"
        case.image.save(root / rel, format="PNG")
        rows.append((case.case_id, rel, "", "", "", _OFFICIAL if official else f"shop{n % 17:02d}", label,
                     product, case.kind, case.printed))
        labels[label] += 1
        kinds[case.kind] += 1
    write_csv(root / "listings.csv", _LISTINGS_HEADER, rows)
    return PrintedSetInfo(root, seed, n_listings, available_fonts(), dict(labels), dict(kinds))
