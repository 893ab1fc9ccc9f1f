"""The edits counterfeiters make to a brand's official photo before reusing it in a listing.

Every edit is a pure function ``edit(image, rng) -> image`` on a PIL RGB image: it never changes its input,
always returns a new RGB image, and is deterministic given the state of the ``numpy.random.Generator``
(edits that need no randomness accept and ignore it). :func:`apply_edit` dispatches on the edit's name;
:data:`EDIT_KINDS` lists the names. Text is drawn with Pillow's built-in font, so no font file is needed.

Used by the synthetic labeled-set generator (:mod:`knockoff.evaluate.synthetic`) and by tests and benchmarks that
check how robust an engine is to each edit.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from knockoff.errors import ConfigError

__all__ = [
    "EDIT_KINDS",
    "apply_edit",
    "border",
    "caption_bar",
    "collage",
    "color_shift",
    "crop",
    "grayscale",
    "jpeg_30",
    "load_font",
    "mirror",
    "pad_square",
    "perspective",
    "resize_200",
    "rotate_90",
    "rotate_small",
    "screenshot",
    "watermark_logo",
    "watermark_text",
]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_SHOP_NAMES = (
    "shop123.com", "BEST-DEALS", "luxoutlet88", "www.cheapbrands.hk", "TOP QUALITY", "@replica_king",
    "mega-store", "FASHION4U", "dealzone.net", "HOT SALE", "brandhub_online", "SAMPLE",
)
_CAPTIONS = (
    "ONLY $39.99", "SALE -70%", "FREE SHIPPING", "NEW ARRIVAL", "BEST PRICE", "LIMITED STOCK",
    "HOT SALE 2 FOR 1", "100% QUALITY", "ORDER NOW", "$24.50 TODAY", "TOP SELLER", "WHOLESALE PRICE",
)
_PLAIN_FILLS = ((255, 255, 255), (0, 0, 0), (240, 240, 240), (30, 30, 30), (250, 245, 235), (220, 228, 240))


# -- helpers -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def load_font(size: int) -> Font:
    """Pillow's built-in font at ``size`` pixels (a fixed-size bitmap font on Pillow builds without FreeType)."""
    try:
        return ImageFont.load_default(size=max(6, int(size)))
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or no FreeType support
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[int, int]:
    """Width and height of ``text`` drawn with ``font``."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: Font,
    fill: tuple[int, ...],
    *,
    center: bool = True,
    stroke: tuple[int, tuple[int, ...]] | None = None,
) -> None:
    """Draw ``text`` with its bounding box centred on ``xy`` (or its top-left corner at ``xy``).

    ``stroke`` is an optional outline ``(width, colour)``.
    """
    width, stroke_fill = stroke if stroke is not None else (0, None)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=width)
    x, y = xy
    if center:
        x -= (left + right) / 2
        y -= (top + bottom) / 2
    else:
        x -= left
        y -= top
    draw.text((round(x), round(y)), text, font=font, fill=fill, stroke_width=width, stroke_fill=stroke_fill)


def _rgb(image: Image.Image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ConfigError(f"expected a PIL image, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def _color(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    r, g, b = rng.integers(low, high, size=3)
    return int(r), int(g), int(b)


def _plain_fill(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.7:
        return _PLAIN_FILLS[int(rng.integers(len(_PLAIN_FILLS)))]
    return _color(rng)


def _contrasting(color: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (20, 20, 20) if luminance > 140 else (245, 245, 245)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _overlay(base: Image.Image, layer: Image.Image) -> Image.Image:
    """Alpha-composite an RGBA ``layer`` of the same size over an RGB ``base``."""
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


# -- geometry ----------------------------------------------------------------------------------------------


def crop(image: Image.Image, rng: np.random.Generator, *, area: float = 0.5) -> Image.Image:
    """Crop to about ``area`` of the photo (random aspect and position)."""
    image = _rgb(image)
    if not 0.05 <= area < 1.0:
        raise ConfigError(f"area must be in [0.05, 1), got {area}")
    width, height = image.size
    side = float(np.sqrt(area))
    width_frac = float(rng.uniform(side * 0.85, min(1.0, side / 0.85)))  # aspect within ~1.4 of the photo's
    height_frac = area / width_frac
    crop_w = max(1, round(width * width_frac))
    crop_h = max(1, round(height * min(1.0, height_frac)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return image.crop((left, top, left + crop_w, top + crop_h))


def pad_square(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Pad to a square with a plain colour, the photo placed at a random offset.

    A photo that is already square gets a margin of 8-15 % of its side, so the edit is never a no-op.
    """
    image = _rgb(image)
    width, height = image.size
    side = max(width, height)
    if width == height:
        side = round(side * float(rng.uniform(1.08, 1.15)))
    canvas = Image.new("RGB", (side, side), _plain_fill(rng))
    left = int(rng.integers(0, side - width + 1)) if rng.random() < 0.3 else (side - width) // 2
    top = int(rng.integers(0, side - height + 1)) if rng.random() < 0.3 else (side - height) // 2
    canvas.paste(image, (left, top))
    return canvas


def border(image: Image.Image, rng: np.random.Generator, *, fraction: float = 0.1) -> Image.Image:
    """Add a plain border ``fraction`` of the shorter side wide on every side."""
    image = _rgb(image)
    width = max(1, round(min(image.size) * fraction))
    return ImageOps.expand(image, border=width, fill=_plain_fill(rng))


def mirror(image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
    """Flip left to right."""
    return ImageOps.mirror(_rgb(image))


def rotate_small(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate by 5-20 degrees either way; the canvas grows and the corners are filled with a plain colour."""
    image = _rgb(image)
    angle = float(rng.uniform(5.0, 20.0)) * (1 if rng.random() < 0.5 else -1)
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=_plain_fill(rng))


def rotate_90(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate by a quarter turn, clockwise or anticlockwise."""
    image = _rgb(image)
    turn = Image.Transpose.ROTATE_90 if rng.random() < 0.5 else Image.Transpose.ROTATE_270
    return image.transpose(turn)


def _perspective_coeffs(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Coefficients that map output points ``dst`` to input points ``src`` (Pillow's PERSPECTIVE)."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    solution = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
    return tuple(float(c) for c in solution)


def perspective(image: Image.Image, rng: np.random.Generator, *, strength: float = 0.12) -> Image.Image:
    """A mild perspective warp: the corners move inwards by up to ``strength`` of the size, as if tilted."""
    image = _rgb(image)
    width, height = image.size
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    # Tilt about a random axis: one side shrinks more than the other, plus some jitter.
    shrink = rng.uniform(0.3, 1.0, size=4) * strength
    side = int(rng.integers(4))
    shrink[side] = strength
    shrink[(side + 1) % 4] = max(shrink[(side + 1) % 4], 0.6 * strength)
    dx, dy = width * shrink, height * shrink
    dst = np.array(
        [[dx[0], dy[3]], [width - dx[1], dy[1]], [width - dx[2], height - dy[2]], [dx[3], height - dy[0]]]
    )
    coeffs = _perspective_coeffs(src, dst)
    return image.transform(
        image.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR, fillcolor=_plain_fill(rng)
    )


def resize_200(image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
    """Resize so that the longer side is 200 pixels, keeping the aspect ratio."""
    image = _rgb(image)
    width, height = image.size
    scale = 200.0 / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


# -- colour and compression --------------------------------------------------------------------------------


def grayscale(image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
    """Convert to gray (returned as RGB)."""
    return _rgb(image).convert("L").convert("RGB")


def color_shift(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate the hue by 20-160 degrees and change saturation (x0.6-1.4) and brightness (x0.75-0.9 or 1.1-1.25)."""
    image = _rgb(image)
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32)
    hue_shift = float(rng.uniform(20, 160)) * (1 if rng.random() < 0.5 else -1) * 256 / 360
    saturation = float(rng.uniform(0.6, 1.4))
    brightness = float(rng.uniform(1.1, 1.25) if rng.random() < 0.5 else rng.uniform(0.75, 0.9))
    hsv[..., 0] = np.mod(hsv[..., 0] + hue_shift, 256)
    hsv[..., 1] = hsv[..., 1] * saturation
    hsv[..., 2] = hsv[..., 2] * brightness
    out = np.clip(np.rint(hsv), 0, 255).astype(np.uint8)
    return Image.frombytes("HSV", image.size, out.tobytes()).convert("RGB")


def jpeg_30(image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
    """Recompress as JPEG at quality 30."""
    buffer = io.BytesIO()
    _rgb(image).save(buffer, format="JPEG", quality=30)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


# -- overlays ----------------------------------------------------------------------------------------------


def watermark_text(image: Image.Image, rng: np.random.Generator, *, text: str | None = None) -> Image.Image:
    """Semi-transparent shop text, either tiled diagonally over the whole photo or placed once, large."""
    image = _rgb(image)
    width, height = image.size
    text = text or _pick(rng, _SHOP_NAMES)
    color = (255, 255, 255) if rng.random() < 0.6 else (0, 0, 0)
    alpha = int(rng.integers(90, 160))
    if rng.random() < 0.5:  # tiled: one rotated stamp, repeated on a staggered grid
        font = load_font(max(10, min(width, height) // 14))
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        text_w, text_h = text_size(probe, text, font)
        stamp = Image.new("RGBA", (text_w + 4, text_h + 4), (0, 0, 0, 0))
        draw_text(ImageDraw.Draw(stamp), (2, 2), text, font, (*color, alpha), center=False)
        angle = float(rng.uniform(20, 45)) * (1 if rng.random() < 0.5 else -1)
        stamp = stamp.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
        step_x = stamp.width + max(8, text_w // 3)
        step_y = max(text_h * 3, stamp.height // 2)
        pad_x, pad_y = stamp.width + step_x, stamp.height + step_y
        layer = Image.new("RGBA", (width + 2 * pad_x, height + 2 * pad_y), (0, 0, 0, 0))
        offset_x, offset_y = int(rng.integers(0, step_x)), int(rng.integers(0, step_y))
        for row, y in enumerate(range(offset_y, height + pad_y, step_y)):
            shift = offset_x + (step_x // 2 if row % 2 else 0)
            for x in range(shift, width + pad_x, step_x):
                layer.alpha_composite(stamp, dest=(x, y))
        layer = layer.crop((pad_x, pad_y, pad_x + width, pad_y + height))
    else:  # once, large, somewhere in the middle band
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        font = load_font(max(12, width // max(6, len(text) // 2 + 2)))
        text_w, text_h = text_size(draw, text, font)
        cx = width / 2 + float(rng.uniform(-0.15, 0.15)) * width
        cy = height * float(rng.uniform(0.3, 0.7))
        cx = min(max(cx, text_w / 2), width - text_w / 2) if text_w < width else width / 2
        draw_text(draw, (cx, cy), text, font, (*color, alpha))
    return _overlay(image, layer)


def _star(cx: float, cy: float, radius: float, points: int = 5) -> list[tuple[float, float]]:
    out = []
    for i in range(points * 2):
        r = radius if i % 2 == 0 else radius * 0.45
        angle = np.pi * i / points - np.pi / 2
        out.append((cx + r * np.cos(angle), cy + r * np.sin(angle)))
    return out


def watermark_logo(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A drawn semi-transparent logo (a shape with a letter or two) over part of the photo."""
    image = _rgb(image)
    width, height = image.size
    radius = min(width, height) * float(rng.uniform(0.12, 0.2))
    cx = float(rng.uniform(radius, width - radius))
    cy = float(rng.uniform(radius, height - radius))
    color = _color(rng, 0, 256)
    alpha = int(rng.integers(110, 180))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shape = _pick(rng, ("circle", "star", "shield", "ring", "hexagon"))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=(*color, alpha))
    elif shape == "ring":
        draw.ellipse(box, outline=(*color, alpha), width=max(3, int(radius * 0.25)))
    elif shape == "star":
        draw.polygon(_star(cx, cy, radius), fill=(*color, alpha))
    elif shape == "hexagon":
        draw.regular_polygon((cx, cy, radius), 6, rotation=float(rng.uniform(0, 60)), fill=(*color, alpha))
    else:
        draw.polygon(
            [(cx - radius, cy - radius), (cx + radius, cy - radius), (cx + radius, cy + 0.2 * radius),
             (cx, cy + radius), (cx - radius, cy + 0.2 * radius)],
            fill=(*color, alpha),
        )
    letters = "".join(chr(int(c)) for c in rng.integers(ord("A"), ord("Z") + 1, size=int(rng.integers(1, 3))))
    font = load_font(max(8, int(radius * 0.8)))
    draw_text(draw, (cx, cy), letters, font, (*_contrasting(color), min(255, alpha + 60)))
    return _overlay(image, layer)


def caption_bar(image: Image.Image, rng: np.random.Generator, *, text: str | None = None) -> Image.Image:
    """A solid bar with a caption or price text on the top or bottom, over the photo or added below/above it."""
    image = _rgb(image)
    width, height = image.size
    bar_h = max(12, round(height * float(rng.uniform(0.12, 0.18))))
    bar_color = _color(rng) if rng.random() < 0.6 else _plain_fill(rng)
    on_top = rng.random() < 0.5
    extend = rng.random() < 0.5
    if extend:
        canvas = Image.new("RGB", (width, height + bar_h), bar_color)
        canvas.paste(image, (0, bar_h if on_top else 0))
        bar_y = 0 if on_top else height
    else:
        canvas = image.copy()
        bar_y = 0 if on_top else height - bar_h
        ImageDraw.Draw(canvas).rectangle((0, bar_y, width, bar_y + bar_h - 1), fill=bar_color)
    draw = ImageDraw.Draw(canvas)
    text = text or _pick(rng, _CAPTIONS)
    font = load_font(max(8, int(bar_h * 0.6)))
    text_w, _ = text_size(draw, text, font)
    if text_w > width * 0.95:
        font = load_font(max(6, int(bar_h * 0.6 * width * 0.95 / text_w)))
    draw_text(draw, (width / 2, bar_y + bar_h / 2), text, font, _contrasting(bar_color))
    return canvas


def _random_tile(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """An unrelated-looking picture: a gradient with a few random shapes."""
    width, height = size
    top, bottom = np.array(_color(rng), dtype=np.float32), np.array(_color(rng), dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    grad = top * (1 - ramp) + bottom * ramp
    tile = Image.fromarray(np.repeat(grad, width, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(tile)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, size=2) * width)
        y0, y1 = sorted(rng.uniform(-0.1, 1.1, size=2) * height)
        x1, y1 = max(x1, x0 + 4), max(y1, y0 + 4)
        fill = _color(rng)
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
    return tile


def collage(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo as one tile of a 2x2 grid (3 or 4 tiles) or a row of 3, the other tiles unrelated pictures."""
    image = _rgb(image)
    width, height = image.size
    gap = max(2, min(width, height) // 80)
    layout = _pick(rng, ("grid", "grid", "row"))
    if layout == "grid":
        tile_w, tile_h = (width - gap) // 2, (height - gap) // 2
        cells = [(col * (tile_w + gap), row * (tile_h + gap)) for row in range(2) for col in range(2)]
        canvas_size = (2 * tile_w + gap, 2 * tile_h + gap)
        n_tiles = 4 if rng.random() < 0.6 else 3
    else:
        tile_w, tile_h = (width - 2 * gap) * 2 // 3, (height * 2) // 3
        tile_w = min(tile_w, width)
        cells = [(i * (tile_w + gap), 0) for i in range(3)]
        canvas_size = (3 * tile_w + 2 * gap, tile_h)
        n_tiles = 3
    canvas = Image.new("RGB", canvas_size, _plain_fill(rng))
    mine = int(rng.integers(n_tiles))
    for i in range(n_tiles):
        if i == mine:
            tile = ImageOps.fit(image, (tile_w, tile_h), Image.Resampling.BILINEAR)
        else:
            tile = _random_tile((tile_w, tile_h), rng)
        canvas.paste(tile, cells[i])
    return canvas


def screenshot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo at ~50 % of the width of a shop page: header bar, title and price lines, buttons, thumbnails."""
    image = _rgb(image)
    width, height = image.size
    page_w = round(width / float(rng.uniform(0.45, 0.55)))
    unit = max(4, page_w // 64)
    header_h = unit * 4
    margin = unit * 2
    thumb = max(8, (width - 3 * unit) // 4)
    page_h = header_h + margin + height + unit + thumb + margin
    background = (255, 255, 255) if rng.random() < 0.7 else (244, 244, 246)
    page = Image.new("RGB", (page_w, page_h), background)
    draw = ImageDraw.Draw(page)
    accent = _color(rng, 20, 230)
    # Header bar: site name, a search box, a cart icon.
    draw.rectangle((0, 0, page_w, header_h), fill=accent)
    font = load_font(max(8, int(header_h * 0.45)))
    draw_text(draw, (margin, header_h / 2 - unit), _pick(rng, _SHOP_NAMES), font, _contrasting(accent), center=False)
    draw.rounded_rectangle(
        (page_w * 0.4, header_h * 0.25, page_w * 0.8, header_h * 0.75), radius=unit, fill=(255, 255, 255)
    )
    draw.ellipse((page_w - margin - header_h * 0.5, header_h * 0.25, page_w - margin, header_h * 0.75),
                 fill=_contrasting(accent))
    # The photo, at the left.
    photo_x, photo_y = margin, header_h + margin
    page.paste(image, (photo_x, photo_y))
    # Thumbnails of other photos below it: the first a small copy, the others other pictures.
    for i in range(4):
        x = photo_x + i * (thumb + unit)
        y = photo_y + height + unit
        tile = image.resize((thumb, thumb), Image.Resampling.BILINEAR) if i == 0 else _random_tile((thumb, thumb), rng)
        page.paste(tile, (x, y))
        draw.rectangle((x, y, x + thumb - 1, y + thumb - 1), outline=(200, 200, 200))
    # Text lines, a price, buttons on the right.
    text_x = photo_x + width + margin
    text_w = page_w - text_x - margin
    y = photo_y
    gray = (60, 60, 60)
    line_font = load_font(max(7, unit * 2))
    draw_text(draw, (text_x, y), "Product details", line_font, gray, center=False)
    y += unit * 4
    for _ in range(int(rng.integers(2, 4))):
        draw.rectangle((text_x, y, text_x + text_w * float(rng.uniform(0.6, 1.0)), y + unit), fill=(90, 90, 90))
        y += unit * 2
    price_font = load_font(max(8, unit * 3))
    draw_text(draw, (text_x, y + unit), f"${int(rng.integers(9, 99))}.99", price_font, (200, 30, 30), center=False)
    y += unit * 6
    for _ in range(int(rng.integers(3, 6))):
        draw.rectangle((text_x, y, text_x + text_w * float(rng.uniform(0.4, 0.95)), y + unit // 2 + 1),
                       fill=(170, 170, 170))
        y += unit + unit // 2
    y += unit
    for label, fill in (("Add to cart", accent), ("Buy now", (240, 150, 20))):
        if y + unit * 4 > page_h - margin:
            break
        draw.rounded_rectangle((text_x, y, text_x + text_w * 0.8, y + unit * 4), radius=unit, fill=fill)
        draw_text(draw, (text_x + text_w * 0.4, y + unit * 2), label, line_font, _contrasting(fill))
        y += unit * 5
    return page


# -- registry ----------------------------------------------------------------------------------------------

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]

_EDITS: dict[str, Edit] = {
    "crop": crop,
    "pad-square": pad_square,
    "border": border,
    "watermark-text": watermark_text,
    "watermark-logo": watermark_logo,
    "caption-bar": caption_bar,
    "screenshot": screenshot,
    "collage": collage,
    "mirror": mirror,
    "rotate-small": rotate_small,
    "rotate-90": rotate_90,
    "perspective": perspective,
    "grayscale": grayscale,
    "color-shift": color_shift,
    "jpeg-30": jpeg_30,
    "resize-200": resize_200,
}

EDIT_KINDS: tuple[str, ...] = tuple(_EDITS)
"""The names :func:`apply_edit` accepts, in a stable order."""


def apply_edit(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Apply the edit named ``kind`` (one of :data:`EDIT_KINDS`) and return a new RGB image."""
    try:
        edit = _EDITS[kind]
    except KeyError:
        raise ConfigError(f"unknown edit kind {kind!r}; valid kinds: {', '.join(EDIT_KINDS)}") from None
    return edit(image, rng)
