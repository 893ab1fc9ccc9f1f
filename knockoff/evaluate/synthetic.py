"""Synthetic labeled sets: brands, official product photos and marketplace listings, drawn with Pillow.

:func:`make_labeled_set` writes a directory in the labeled-set format of DESIGN.md (``brands.csv``,
``references.csv``, ``listings.csv`` with ``label``, ``product_id`` and ``kind`` columns, and the images).
Nothing is downloaded and no weights are needed; the same seed gives byte-identical files.

How the listings are made, and so what their labels mean:

- ``counterfeit``: an official photo reused with one counterfeiter's edit from :mod:`knockoff.evaluate.edits` (kind
  ``copy-<edit>``, e.g. ``copy-crop``), or in ``hard`` mode also the product photographed anew (kind
  ``own-photo``). Every counterfeit carries at least one risk signal by construction: an unauthorized seller,
  a price below 50 % of the reference price, replica terms in the title, or the brand named (or misspelt) by
  an unauthorized seller, or hidden while the photo shows it.
- ``genuine``: an authorized seller at 70-100 % of the reference price, with a lightly edited official photo
  (resize, recompression, padding; kind ``genuine-copy``), or in ``hard`` mode its own photo (``own-photo``).
- ``unrelated``: a picture of something else, never derived from an official photo (kind ``unrelated``). In
  ``hard`` mode some are no-name products of the same kinds (a tote, a bottle) in other colours.

``hard`` mode also adds look-alike products across brands: the same shape, colours and pattern under another
brand's wordmark and logo, so that a detector must read the brand, not only the silhouette.
"""

from __future__ import annotations

import colorsys
import logging
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from knockoff.errors import ConfigError, LabeledSetError
from knockoff.evaluate.edits import EDIT_KINDS, apply_edit, draw_text, load_font, text_size
from knockoff.evaluate.setfiles import BRANDS_HEADER, LISTINGS_HEADER, REFERENCES_HEADER, prepare_set_dir, write_csv

__all__ = [
    "BRANDS_HEADER",
    "DIFFICULTIES",
    "LISTINGS_HEADER",
    "PRODUCT_KINDS",
    "REFERENCES_HEADER",
    "COPY_WORDS",
    "LabeledSetInfo",
    "make_labeled_set",
]

log = logging.getLogger(__name__)

DIFFICULTIES: tuple[str, ...] = ("demo", "hard")
PRODUCT_KINDS: tuple[str, ...] = ("tote", "handbag", "bottle", "shoebox", "watch", "tshirt")
COPY_WORDS: tuple[str, ...] = ("replica", "1:1", "AAA", "mirror quality", "dupe")
"""Words the generator puts in counterfeit titles (never in genuine or unrelated ones); a subset of the policy's
``replica_terms`` (the signal with code ``REPLICA_TERMS`` looks for those)."""

_GENUINE_EDITS = ("resize-200", "jpeg-30", "pad-square")
_PRICE_RANGES = {
    "tote": (240, 900), "handbag": (600, 3200), "bottle": (70, 260),
    "shoebox": (140, 520), "watch": (450, 6000), "tshirt": (60, 320),
}
_KIND_NOUNS = {
    "tote": ("Tote", "Shopper", "Carryall"), "handbag": ("Handbag", "Shoulder Bag", "Top Handle"),
    "bottle": ("Eau de Parfum 50ml", "Cologne 100ml", "Elixir 30ml"), "shoebox": ("Sneakers", "Runners", "Loafers"),
    "watch": ("Chronograph", "Automatic 40mm", "Diver Watch"), "tshirt": ("Logo T-Shirt", "Tee", "Crew T-Shirt"),
}
_GENERIC_NOUNS = {
    "tote": "tote bag", "handbag": "handbag", "bottle": "perfume", "shoebox": "sneakers",
    "watch": "watch", "tshirt": "t-shirt",
}
_STYLE_WORDS = (
    "Riviera", "Classic", "Nocturne", "Soleil", "Atelier", "Monaco", "Heritage", "Aurora", "Vega", "Sierra",
    "Lumen", "Orbit", "Solstice", "Marais", "Cortina", "Palma", "Nova", "Estate", "Meridian", "Ember",
)
_PATTERNS = ("plain", "stripes", "dots", "checks", "monogram", "chevron", "blocks", "diagonal")
_LOGO_SHAPES = ("circle", "triangle", "diamond", "star", "hexagon", "square", "shield", "ring")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cl", "dr", "qu", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "a", "o", "e")
_CODAS = ("", "", "", "n", "r", "l", "s", "x")
_BRAND_WORDS_BEFORE = ("Maison", "Studio", "Casa", "House of")
_BRAND_WORDS_AFTER = ("Milano", "Paris", "& Co", "London", "Atelier")
_UNAUTHORIZED_SELLERS = (
    "shop123", "luxdeals88", "cheap_brands_hk", "bestprice-outlet", "fashion4less", "topmirror_store",
    "wholesale_king", "dealzone", "brandhub_online", "trendy-bargains", "outlet-direct", "style_mart_24",
    "global_fashion_mall", "bagsnshoes", "discount-lux", "happybuy2024",
)
_RETAILERS = ("galeria-online", "modehaus", "prime_retail", "northgate-dept", "lux_avenue")
_UNRELATED_SELLERS = ("homegoods_4u", "garden_world", "posterland", "kitchenpro", "toybox_shop", "artprints")
_HIDDEN_BRAND_TITLES = (
    "Designer {noun} top quality", "Luxury {noun} famous brand", "Premium {noun}, same as original",
    "Famous brand {noun} best price", "Inspired {noun} - you know the brand",
)
_GENUINE_TITLES = (
    "{brand} {product}", "{brand} {product} - authentic", "New {brand} {product}",
    "{brand} {product}, official store", "{brand} {product} (season collection)",
)
_CURRENCIES = ("USD", "EUR", "GBP")


# -- the plan: brands, products, listings (no pixels yet) --------------------------------------------------


RGB = tuple[int, int, int]


def _rgb(values: Iterable[Any]) -> RGB:
    """Three channel values as an RGB tuple of ints."""
    red, green, blue = (int(v) for v in values)
    return red, green, blue


@dataclass(frozen=True)
class LabeledSetInfo:
    """What :func:`make_labeled_set` wrote: where, and how many of each."""

    root: Path
    brands_csv: Path
    references_csv: Path
    listings_csv: Path
    seed: int
    difficulty: str
    n_brands: int
    n_products: int
    n_reference_images: int
    n_listings: int
    label_counts: dict[str, int] = field(default_factory=dict)
    kind_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "brands_csv": str(self.brands_csv),
            "references_csv": str(self.references_csv),
            "listings_csv": str(self.listings_csv),
            "seed": self.seed,
            "difficulty": self.difficulty,
            "n_brands": self.n_brands,
            "n_products": self.n_products,
            "n_reference_images": self.n_reference_images,
            "n_listings": self.n_listings,
            "label_counts": dict(self.label_counts),
            "kind_counts": dict(self.kind_counts),
        }


@dataclass(frozen=True)
class _Brand:
    name: str
    slug: str
    core: str  # the distinctive word of the name ("Veltora" in "Maison Veltora")
    aliases: tuple[str, ...]
    misspellings: tuple[str, ...]
    sellers: tuple[str, ...]
    currency: str
    primary: RGB
    secondary: RGB
    accent: RGB
    ink: RGB
    studio: tuple[RGB, RGB]  # background of official photos (top, bottom)
    logo_shape: str
    wordmark: str
    plate: bool  # wordmark drawn on a plate (a label) rather than straight on the product


@dataclass(frozen=True)
class _Design:
    kind: str
    body: RGB
    trim: RGB
    pattern: str
    pattern_color: RGB
    pattern_scale: float
    pattern_angle: int
    accents: tuple[tuple[str, float, float, float, RGB], ...]  # (shape, x, y, radius) in [0, 1] of the object
    texture_seed: int
    tag: str  # a small model code printed on the product


@dataclass(frozen=True)
class _View:
    size: tuple[int, int]
    background: str
    bg_colors: tuple[RGB, RGB]
    scale: float
    center: tuple[float, float]
    angle: float = 0.0
    squash: float = 1.0
    light: float = 0.0
    light_angle: float = 0.0
    shadow: bool = False
    noise: float = 0.0


@dataclass(frozen=True)
class _Product:
    brand: _Brand
    product_id: str
    name: str
    design: _Design
    price: float
    views: tuple[_View, ...]  # one per official image
    lookalike_of: str | None = None


@dataclass(frozen=True)
class _ListingPlan:
    label: str
    kind: str
    title: str
    price: float
    currency: str
    seller: str
    product: _Product | None
    source_view: int = 0  # which official image a copy reuses
    edit: str | None = None  # the edit applied to it
    own_view: _View | None = None
    unrelated_scene: str | None = None


def _key(part: str | int) -> int:
    return zlib.crc32(part.encode("utf-8")) if isinstance(part, str) else int(part)


def _rng(seed: int, *parts: str | int) -> np.random.Generator:
    """A generator for one purpose, so that adding listings does not change the brands or the products."""
    return np.random.default_rng([seed, *(_key(p) for p in parts)])


def _choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _luma(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _ink_for(c: RGB) -> RGB:
    return (24, 22, 20) if _luma(c) > 140 else (245, 242, 236)


def _brand_word(rng: np.random.Generator) -> str:
    syllables = int(rng.integers(2, 4))
    word = "".join(_choice(rng, _ONSETS) + _choice(rng, _VOWELS) for _ in range(syllables))
    word += _choice(rng, _CODAS)
    return word.capitalize()


def _misspellings(word: str, rng: np.random.Generator, count: int) -> tuple[str, ...]:
    """Common misspellings of a brand word: a doubled, dropped or swapped letter, a changed vowel, a digit."""
    lower = word.lower()
    candidates: list[str] = []
    for i in range(1, len(lower) - 1):
        candidates.append(lower[:i] + lower[i] + lower[i:])  # doubled letter
        candidates.append(lower[:i] + lower[i + 1:])  # dropped letter
        candidates.append(lower[:i] + lower[i + 1] + lower[i] + lower[i + 2:])  # swapped letters
        if lower[i] in "aeiou":
            candidates.extend(lower[:i] + v + lower[i + 1:] for v in "aeiou" if v != lower[i])
    for src, dst in (("o", "0"), ("i", "1"), ("e", "3"), ("a", "4")):
        if src in lower:
            candidates.append(lower.replace(src, dst, 1))
    unique = sorted({c.capitalize() for c in candidates if c != lower and len(c) >= 3})
    order = rng.permutation(len(unique))
    return tuple(unique[int(i)] for i in order[:count])


def _plan_brands(seed: int, n_brands: int) -> list[_Brand]:
    rng = _rng(seed, "brands")
    cores: list[str] = []
    while len(cores) < n_brands:
        word = _brand_word(rng)
        if 4 <= len(word) <= 9 and not any(word.lower() in c.lower() or c.lower() in word.lower() for c in cores):
            cores.append(word)
    hue_offset = float(rng.random())
    brands = []
    taken_slugs: set[str] = set()
    for b, core in enumerate(cores):
        r = _rng(seed, "brand", b)
        style = float(r.random())
        if style < 0.25:
            name = f"{_choice(r, _BRAND_WORDS_BEFORE)} {core}"
        elif style < 0.5:
            name = f"{core} {_choice(r, _BRAND_WORDS_AFTER)}"
        else:
            name = core
        slug = core.lower()
        taken_slugs.add(slug)
        misspellings = _misspellings(core, r, 3)
        aliases: list[str] = []
        if name != core:
            aliases.append(core)
        else:
            half = len(core) // 2
            aliases.append(f"{core[:half]} {core[half:].lower()}")  # "Vel tora"
        aliases.extend(misspellings[:2])
        hue = (hue_offset + b / n_brands + float(r.uniform(-0.03, 0.03))) % 1.0
        primary = _hsv(hue, float(r.uniform(0.55, 0.95)), float(r.uniform(0.35, 0.8)))
        secondary = _hsv(hue + _choice(r, (0.5, 0.08, -0.08, 0.33)), float(r.uniform(0.2, 0.7)),
                         float(r.uniform(0.6, 0.95)))
        accent = _choice(r, ((212, 175, 55), (192, 192, 200), (176, 110, 60), (30, 30, 30), (245, 245, 240)))
        light = _hsv(hue, float(r.uniform(0.02, 0.12)), float(r.uniform(0.9, 1.0)))
        studio = (light, light) if r.random() < 0.5 else (light, _hsv(hue, 0.15, float(r.uniform(0.75, 0.9))))
        n_own = int(r.integers(1, 3))
        sellers = [f"{slug}_official"] + ([f"{slug}-store"] if n_own > 1 else [])
        sellers.append(_choice(r, _RETAILERS))
        wordmark = name.upper() if r.random() < 0.6 else name
        brands.append(_Brand(
            name=name, slug=slug, core=core, aliases=tuple(aliases), misspellings=misspellings,
            sellers=tuple(sellers), currency=_choice(r, _CURRENCIES), primary=primary, secondary=secondary,
            accent=accent, ink=_ink_for(primary), studio=studio, logo_shape=_LOGO_SHAPES[b % len(_LOGO_SHAPES)]
            if n_brands <= len(_LOGO_SHAPES) else _choice(r, _LOGO_SHAPES), wordmark=wordmark,
            plate=bool(r.random() < 0.4),
        ))
    return brands


def _plan_design(brand: _Brand, kind: str, pattern: str, rng: np.random.Generator) -> _Design:
    neutrals = ((20, 20, 22), (236, 228, 212), (190, 150, 110), (245, 245, 245), (60, 62, 70))
    colors = [brand.primary, brand.secondary, _choice(rng, neutrals)]
    order = rng.permutation(3)
    body = colors[int(order[0])]
    trim = colors[int(order[1])]
    jitter = rng.integers(-18, 19, size=3)
    body = tuple(int(min(255, max(0, c + j))) for c, j in zip(body, jitter))
    pattern_color = brand.accent if abs(_luma(brand.accent) - _luma(body)) > 50 else _ink_for(body)
    accents = []
    for _ in range(int(rng.integers(1, 4))):
        shape = _choice(rng, ("circle", "rect", "bar", "triangle"))
        accents.append((shape, float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85)),
                        float(rng.uniform(0.05, 0.16)), _choice(rng, (trim, brand.accent, _ink_for(body)))))
    tag = f"{_choice(rng, 'ABCDEFGHKLMNPRSTVXZ')}{int(rng.integers(10, 999))}"
    return _Design(
        kind=kind, body=body, trim=trim, pattern=pattern, pattern_color=pattern_color,
        pattern_scale=float(rng.uniform(0.6, 1.6)), pattern_angle=int(rng.choice([0, 45, 90, 135])),
        accents=tuple(accents), texture_seed=int(rng.integers(0, 2**31)), tag=tag,
    )


def _official_views(brand: _Brand, rng: np.random.Generator, image_size: int) -> tuple[_View, ...]:
    aspect = _choice(rng, ((1.0, 1.0), (1.0, 1.0), (1.0, 0.75), (0.75, 1.0)))
    size = (round(image_size * aspect[0]), round(image_size * aspect[1]))
    background = "plain" if brand.studio[0] == brand.studio[1] else "vgrad"
    front = _View(size=size, background=background, bg_colors=brand.studio, scale=float(rng.uniform(0.78, 0.9)),
                  center=(0.5, 0.52))
    views = [front]
    if rng.random() < 0.5:  # a second official image: a closer, slightly turned shot
        views.append(replace(front, scale=float(rng.uniform(0.92, 1.0)), center=(float(rng.uniform(0.4, 0.6)), 0.55),
                             angle=float(rng.uniform(-8, 8)), squash=float(rng.uniform(0.85, 0.95)), shadow=True))
    return tuple(views)


def _own_photo_view(official: _View, rng: np.random.Generator) -> _View:
    """The same product photographed anew: another background, pose and light."""
    background = _choice(rng, ("plain", "vgrad", "dgrad", "two-tone", "wood", "fabric"))
    c1 = _rgb(rng.integers(40, 240, size=3))
    c2 = _rgb(rng.integers(40, 240, size=3))
    return _View(
        size=official.size, background=background, bg_colors=(c1, c2), scale=float(rng.uniform(0.6, 0.8)),
        center=(float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.45, 0.6))), angle=float(rng.uniform(-15, 15)),
        squash=float(rng.uniform(0.8, 1.0)), light=float(rng.uniform(0.15, 0.35)),
        light_angle=float(rng.uniform(0, 2 * np.pi)), shadow=True, noise=float(rng.uniform(1.5, 4.0)),
    )


def _plan_products(
    seed: int, brands: list[_Brand], per_brand: int, image_size: int, hard: bool
) -> list[_Product]:
    products: list[_Product] = []
    copied: set[str] = set()
    for b, brand in enumerate(brands):
        rng = _rng(seed, "products", b)
        kinds = [PRODUCT_KINDS[int(i)] for i in rng.permutation(len(PRODUCT_KINDS))]
        patterns = [_PATTERNS[int(i)] for i in rng.permutation(len(_PATTERNS))]
        used_kinds: set[str] = set()
        n_lookalikes = 0
        for p in range(per_brand):
            kind = next((k for k in kinds if k not in used_kinds), kinds[p % len(kinds)])
            design = _plan_design(brand, kind, patterns[p % len(patterns)], rng)
            views = _official_views(brand, rng, image_size)
            lookalike_of = None
            # Hard mode: up to half of a brand's products copy another brand's original product (same shape,
            # colours, pattern and photo set-up); only the wordmark and the logo tell them apart.
            others = [
                q for q in products
                if q.brand.slug != brand.slug and q.lookalike_of is None and q.product_id not in copied
                and q.design.kind not in used_kinds
            ]
            if hard and others and n_lookalikes < max(1, per_brand // 2) and rng.random() < 0.6:
                original = _choice(rng, others)
                design = replace(original.design, tag=design.tag)
                views = original.views
                kind = design.kind
                lookalike_of = original.product_id
                copied.add(original.product_id)
                n_lookalikes += 1
            used_kinds.add(kind)
            low, high = _PRICE_RANGES[kind]
            price = float(round(float(rng.uniform(low, high)) / 5) * 5 - 0.01 * int(rng.random() < 0.5))
            noun = _choice(rng, _KIND_NOUNS[kind])
            name = f"{_choice(rng, _STYLE_WORDS)} {noun}"
            products.append(_Product(
                brand=brand, product_id=f"{brand.slug}-{kind}-{p + 1:02d}", name=name, design=design,
                price=price, views=views, lookalike_of=lookalike_of,
            ))
    return products


def _counterfeit_title(product: _Product, profile: str, rng: np.random.Generator) -> str:
    brand = product.brand
    noun = product.name.split(" ", 1)[1]
    term = _choice(rng, COPY_WORDS)
    if profile == "hidden":
        return _choice(rng, _HIDDEN_BRAND_TITLES).format(noun=_GENERIC_NOUNS[product.design.kind])
    if profile == "misspelt":
        word = _choice(rng, brand.misspellings)
        return _choice(rng, ("{w} {n} new with tags", "{w} {p} hot sale", "NEW {w} {n}")).format(
            w=word, n=noun, p=product.name)
    if profile == "alias-replica":
        word = _choice(rng, brand.aliases)
        return _choice(rng, ("{w} {n} {t}", "{t} {w} {p}", "{w} {p} - {t} grade")).format(
            w=word, n=noun, p=product.name, t=term)
    if profile == "brand-replica":
        return _choice(rng, ("{b} {p} {t}", "{b} {n} {t} best version", "{t} {b} {p} fast shipping")).format(
            b=brand.name, n=noun, p=product.name, t=term)
    return _choice(rng, ("{b} {p}", "{b} {p} sale", "{b} {n} like new")).format(  # "brand-plain"
        b=brand.name, n=noun, p=product.name)


# Each profile fixes the risk signals a counterfeit carries, so the label follows from the generation:
# (title style, seller is unauthorized (else none given), price range as a fraction of the reference price)
_COUNTERFEIT_PROFILES: dict[str, tuple[str, bool, tuple[float, float]]] = {
    "replica-cheap": ("brand-replica", True, (0.2, 0.45)),
    "misspelt": ("misspelt", True, (0.5, 0.6)),
    "hidden-brand": ("hidden", True, (0.2, 0.6)),
    "no-seller": ("alias-replica", False, (0.2, 0.45)),
    "cheap": ("brand-plain", True, (0.2, 0.45)),
    "unauthorized": ("brand-plain", True, (0.5, 0.6)),
}


def _plan_listings(
    seed: int,
    brands: list[_Brand],
    products: list[_Product],
    listings_per_product: int,
    n_unrelated: int,
    hard: bool,
    edit_kinds: tuple[str, ...],
) -> list[_ListingPlan]:
    rng = _rng(seed, "listings")
    plans: list[_ListingPlan] = []
    edit_cycle: list[str] = []
    profile_cycle: list[str] = []
    index = 0
    for product in products:
        for _ in range(listings_per_product):
            genuine = index % 3 == 2
            index += 1
            own = hard and rng.random() < (0.4 if genuine else 0.3)
            source_view = int(rng.integers(len(product.views)))
            own_view = _own_photo_view(product.views[0], rng) if own else None
            if genuine:
                plans.append(_plan_genuine(rng, product, source_view, own_view))
                continue
            if not edit_cycle:
                edit_cycle = [edit_kinds[int(i)] for i in rng.permutation(len(edit_kinds))]
            if not profile_cycle:
                names = list(_COUNTERFEIT_PROFILES)
                profile_cycle = [names[int(i)] for i in rng.permutation(len(names))]
            profile = profile_cycle.pop()
            edit = None if own_view is not None else edit_cycle.pop()
            plans.append(_plan_counterfeit(rng, product, profile, source_view, edit, own_view))
    return plans + _plan_unrelated(rng, n_unrelated, hard)


def _plan_genuine(
    rng: np.random.Generator, product: _Product, source_view: int, own_view: _View | None
) -> _ListingPlan:
    """An authorized listing: the official photo lightly edited (or the seller's own photo), a fair price."""
    brand = product.brand
    edit = None if own_view is not None else _choice(rng, _GENUINE_EDITS)
    title = _choice(rng, _GENUINE_TITLES).format(brand=brand.name, product=product.name)
    price = round(product.price * float(rng.uniform(0.7, 1.0)), 2)
    return _ListingPlan(
        label="genuine", kind="own-photo" if own_view is not None else "genuine-copy", title=title, price=price,
        currency=brand.currency, seller=_choice(rng, brand.sellers), product=product,
        source_view=source_view, edit=edit, own_view=own_view,
    )


def _plan_counterfeit(rng: np.random.Generator, product: _Product, profile: str, source_view: int,
                      edit: str | None, own_view: _View | None) -> _ListingPlan:
    """A counterfeit listing of ``product`` made as the profile says (title style, seller, price range)."""
    brand = product.brand
    title_style, unauthorized, (low, high) = _COUNTERFEIT_PROFILES[profile]
    if unauthorized:
        pool = (*_UNAUTHORIZED_SELLERS, f"{brand.slug}-official-outlet", f"{brand.slug}_factory_store")
        seller = _choice(rng, pool)
    else:
        seller = ""
    price = round(product.price * float(rng.uniform(low, high)), 2)
    return _ListingPlan(
        label="counterfeit", kind="own-photo" if own_view is not None else f"copy-{edit}",
        title=_counterfeit_title(product, title_style, rng), price=price, currency=brand.currency,
        seller=seller, product=product, source_view=source_view, edit=edit, own_view=own_view,
    )


def _plan_unrelated(rng: np.random.Generator, n_unrelated: int, hard: bool) -> list[_ListingPlan]:
    """Listings of things that are no catalogue product (no-name look-alikes too when ``hard``)."""
    scenes = ["landscape", "still-life", "abstract", "room"] + (["no-name-product"] * 2 if hard else [])
    plans = []
    for _ in range(n_unrelated):
        scene = _choice(rng, scenes)
        title = _choice(rng, _UNRELATED_TITLES[scene])
        plans.append(_ListingPlan(
            label="unrelated", kind="unrelated", title=title, price=round(float(rng.uniform(5, 300)), 2),
            currency=_choice(rng, _CURRENCIES), seller=_choice(rng, (*_UNRELATED_SELLERS, *_UNAUTHORIZED_SELLERS[:4])),
            product=None, unrelated_scene=scene,
        ))
    return plans


_UNRELATED_TITLES = {
    "landscape": ("Mountain sunset poster", "Canvas print, lake view", "Wall art landscape 60x40"),
    "still-life": ("Ceramic mug set", "Desk lamp, adjustable", "Fruit bowl, glazed", "Potted plant, 30 cm"),
    "abstract": ("Abstract art print", "Colourful wrapping paper", "Geometric rug 120x170"),
    "room": ("Bookshelf, oak finish", "Room decor bundle", "Sofa cushion covers x2"),
    "no-name-product": ("Canvas tote bag", "Unbranded leather bag", "Perfume bottle, empty, decorative",
                        "Plain t-shirt cotton", "Sports watch, digital", "Sneakers size 42"),
}


def _has_risk_signal(plan: _ListingPlan) -> bool:
    """Whether a counterfeit carries a signal DESIGN.md names (unauthorized seller, price, replica, brand)."""
    if plan.product is None:
        return False
    brand = plan.product.brand
    title = plan.title.lower()
    unauthorized = bool(plan.seller) and plan.seller not in brand.sellers
    cheap = plan.price < 0.5 * plan.product.price
    replica = any(term.lower() in title for term in COPY_WORDS)
    return unauthorized or cheap or replica


# -- drawing -----------------------------------------------------------------------------------------------


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB, angle: float = 0.0) -> np.ndarray:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * ys / max(1, height - 1) + np.sin(angle) * xs / max(1, width - 1))
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    a, b = np.array(top, np.float32), np.array(bottom, np.float32)
    return a * (1 - t[..., None]) + b * t[..., None]


def _background(view: _View, texture_seed: int) -> Image.Image:
    width, height = view.size
    c1, c2 = view.bg_colors
    if view.background == "plain":
        return Image.new("RGB", view.size, c1)
    if view.background == "vgrad":
        arr = _gradient(view.size, c1, c2)
    elif view.background == "dgrad":
        arr = _gradient(view.size, c1, c2, angle=np.pi / 4)
    elif view.background == "two-tone":  # a wall and a table top
        arr = np.empty((height, width, 3), np.float32)
        split = int(height * 0.62)
        arr[:split] = c1
        arr[split:] = c2
    else:
        rng = np.random.default_rng(texture_seed)
        if view.background == "wood":
            xs = np.arange(width, dtype=np.float32)[None, :]
            ys = np.arange(height, dtype=np.float32)[:, None]
            grain = np.sin(xs / float(rng.uniform(3, 8)) + 3 * np.sin(ys / float(rng.uniform(20, 60))))
            t = (0.5 + 0.5 * grain)[..., None]
        else:  # fabric: fine noise
            t = rng.random((height, width, 1), dtype=np.float32)
        a, b = np.array(c1, np.float32), np.array(c2, np.float32)
        arr = a * (1 - 0.35 * t) + b * 0.35 * t
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _pattern_image(size: int, design: _Design, brand: _Brand) -> Image.Image:
    """The product's surface: its body colour with its pattern, accents and a fine texture."""
    rng = np.random.default_rng(design.texture_seed)
    body = np.array(design.body, np.float32)
    ink = np.array(design.pattern_color, np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(6.0, size * 0.09 * design.pattern_scale)
    theta = np.deg2rad(design.pattern_angle)
    u = np.cos(theta) * xs + np.sin(theta) * ys
    v = -np.sin(theta) * xs + np.cos(theta) * ys
    mask = np.zeros((size, size), np.float32)
    if design.pattern == "stripes":
        mask = ((u / period) % 1.0 < 0.35).astype(np.float32)
    elif design.pattern == "diagonal":
        mask = (((xs + ys) / period) % 1.0 < 0.25).astype(np.float32)
    elif design.pattern == "checks":
        mask = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32) * 0.8
    elif design.pattern == "chevron":
        mask = (((ys + np.abs((xs % (2 * period)) - period)) / period) % 1.0 < 0.3).astype(np.float32)
    arr = body * (1 - mask[..., None]) + ink * mask[..., None]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if design.pattern == "dots":
        step = int(period * 1.2)
        radius = max(2, int(period * 0.22))
        for row, y in enumerate(range(step // 2, size, step)):
            for x in range(step // 2 + (step // 2 if row % 2 else 0), size, step):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=design.pattern_color)
    elif design.pattern == "monogram":
        step = int(period * 1.6)
        font = load_font(max(8, int(step * 0.45)))
        letter = brand.core[0].upper()
        for row, y in enumerate(range(step // 2, size, step)):
            for col, x in enumerate(range(step // 2 + (step // 2 if row % 2 else 0), size, step)):
                if (row + col) % 2:
                    draw_text(draw, (x, y), letter, font, design.pattern_color)
                else:
                    r = step * 0.18
                    draw.regular_polygon((x, y, r), 4, fill=design.pattern_color)
    elif design.pattern == "blocks":
        cut = int(size * (0.35 + 0.3 * design.pattern_scale / 1.6))
        if design.pattern_angle in (0, 45):
            draw.rectangle((0, cut, size, size), fill=design.trim)
        else:
            draw.rectangle((cut, 0, size, size), fill=design.trim)
    for shape, ax, ay, r, color in design.accents:
        cx, cy, rad = ax * size, ay * size, r * size
        if shape == "circle":
            draw.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=color)
        elif shape == "rect":
            draw.rectangle((cx - rad, cy - rad * 0.6, cx + rad, cy + rad * 0.6), fill=color)
        elif shape == "bar":
            draw.rectangle((0, cy - rad * 0.3, size, cy + rad * 0.3), fill=color)
        else:
            draw.polygon([(cx, cy - rad), (cx + rad, cy + rad), (cx - rad, cy + rad)], fill=color)
    grain = rng.normal(0.0, 5.0, size=(size, size, 1)).astype(np.float32)
    arr = np.asarray(image, np.float32) + grain
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _logo(draw: ImageDraw.ImageDraw, brand: _Brand, cx: float, cy: float, radius: float, fill: RGB) -> None:
    shape = brand.logo_shape
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, int(radius * 0.3)))
    elif shape == "triangle":
        draw.regular_polygon((cx, cy, radius), 3, fill=fill)
    elif shape == "diamond":
        draw.regular_polygon((cx, cy, radius), 4, fill=fill)
    elif shape == "hexagon":
        draw.regular_polygon((cx, cy, radius), 6, fill=fill)
    elif shape == "square":
        draw.rectangle((cx - radius * 0.8, cy - radius * 0.8, cx + radius * 0.8, cy + radius * 0.8), fill=fill)
    elif shape == "star":
        points = []
        for i in range(10):
            r = radius if i % 2 == 0 else radius * 0.45
            a = np.pi * i / 5 - np.pi / 2
            points.append((cx + r * np.cos(a), cy + r * np.sin(a)))
        draw.polygon(points, fill=fill)
    else:  # shield
        draw.polygon([(cx - radius, cy - radius), (cx + radius, cy - radius), (cx + radius, cy + 0.1 * radius),
                      (cx, cy + radius), (cx - radius, cy + 0.1 * radius)], fill=fill)
    letter_font = load_font(max(6, int(radius * 0.9)))
    if shape != "ring":
        draw_text(draw, (cx, cy), brand.core[0].upper(), letter_font, _ink_for(fill))


def _wordmark(draw: ImageDraw.ImageDraw, brand: _Brand, cx: float, cy: float, max_width: float,
              height: float, surface: RGB) -> None:
    font = load_font(max(6, int(height)))
    text = brand.wordmark
    text_w, text_h = text_size(draw, text, font)
    if text_w > max_width:
        font = load_font(max(6, int(height * max_width / text_w)))
        text_w, text_h = text_size(draw, text, font)
    if brand.plate:
        pad = max(2, text_h // 2)
        draw.rectangle((cx - text_w / 2 - pad, cy - text_h / 2 - pad, cx + text_w / 2 + pad, cy + text_h / 2 + pad),
                       fill=brand.primary)
        color = brand.ink
    else:
        color = brand.ink if abs(_luma(brand.ink) - _luma(surface)) > 80 else _ink_for(surface)
        stroke = (max(1, text_h // 10), _ink_for(color))
        draw_text(draw, (cx, cy), text, font, color, stroke=stroke)
        return
    draw_text(draw, (cx, cy), text, font, color)


#: Where the printed parts sit on an object: (band to fill with the trim colour or None, wordmark centre,
#: logo centre, wordmark width), all as fractions of the object's size.
_Layout = tuple[tuple[float, float, float, float] | None, tuple[float, float], tuple[float, float], float]


def _shape_tote(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    for left in (0.26, 0.54):
        draw.arc((left * s, 0.1 * s, (left + 0.2) * s, 0.55 * s), 180, 360, fill=design.trim,
                 width=max(2, int(0.035 * s)))
    mdraw.polygon([(0.18 * s, 0.33 * s), (0.82 * s, 0.33 * s), (0.9 * s, 0.94 * s), (0.1 * s, 0.94 * s)], fill=255)
    return (0.18, 0.33, 0.82, 0.39), (0.5, 0.6), (0.5, 0.8), 0.6


def _shape_handbag(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    draw.arc((0.3 * s, 0.12 * s, 0.7 * s, 0.62 * s), 180, 360, fill=design.trim, width=max(2, int(0.04 * s)))
    mdraw.rounded_rectangle((0.12 * s, 0.38 * s, 0.88 * s, 0.9 * s), radius=0.08 * s, fill=255)
    return None, (0.5, 0.78), (0.5, 0.6), 0.62


def _shape_bottle(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    draw.rectangle((0.42 * s, 0.24 * s, 0.58 * s, 0.36 * s), fill=(200, 200, 205))
    draw.rounded_rectangle((0.36 * s, 0.06 * s, 0.64 * s, 0.25 * s), radius=0.03 * s, fill=design.trim)
    mdraw.rounded_rectangle((0.24 * s, 0.35 * s, 0.76 * s, 0.95 * s), radius=0.07 * s, fill=255)
    return None, (0.5, 0.66), (0.5, 0.15), 0.44


def _shape_shoebox(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    top = [(0.08 * s, 0.42 * s), (0.72 * s, 0.42 * s), (0.92 * s, 0.26 * s), (0.28 * s, 0.26 * s)]
    side = [(0.72 * s, 0.42 * s), (0.92 * s, 0.26 * s), (0.92 * s, 0.72 * s), (0.72 * s, 0.9 * s)]
    draw.polygon(top, fill=tuple(min(255, int(c * 1.15) + 10) for c in design.body))
    draw.polygon(side, fill=tuple(int(c * 0.7) for c in design.body))
    mdraw.rectangle((0.08 * s, 0.42 * s, 0.72 * s, 0.9 * s), fill=255)
    return (0.08, 0.42, 0.72, 0.5), (0.4, 0.68), (0.5, 0.34), 0.56


def _shape_watch(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    draw.rounded_rectangle((0.38 * s, 0.0, 0.62 * s, s), radius=0.05 * s, fill=design.trim)
    for y in np.arange(0.05, 0.98, 0.07):
        draw.line((0.4 * s, y * s, 0.6 * s, y * s), fill=_ink_for(design.trim), width=1)
    draw.ellipse((0.16 * s, 0.16 * s, 0.84 * s, 0.84 * s), fill=(185, 185, 192))
    draw.ellipse((0.18 * s, 0.18 * s, 0.82 * s, 0.82 * s), fill=(120, 120, 128))
    mdraw.ellipse((0.21 * s, 0.21 * s, 0.79 * s, 0.79 * s), fill=255)
    return None, (0.5, 0.38), (0.5, 0.64), 0.36


def _shape_tshirt(draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw, design: _Design, s: float) -> _Layout:
    mdraw.polygon([(0.35 * s, 0.1 * s), (0.43 * s, 0.15 * s), (0.57 * s, 0.15 * s), (0.65 * s, 0.1 * s),
                   (0.92 * s, 0.25 * s), (0.82 * s, 0.44 * s), (0.73 * s, 0.39 * s), (0.73 * s, 0.94 * s),
                   (0.27 * s, 0.94 * s), (0.27 * s, 0.39 * s), (0.18 * s, 0.44 * s), (0.08 * s, 0.25 * s)],
                  fill=255)
    return None, (0.5, 0.42), (0.5, 0.6), 0.42


_SHAPES = {"tote": _shape_tote, "handbag": _shape_handbag, "bottle": _shape_bottle, "shoebox": _shape_shoebox,
           "watch": _shape_watch}


def _watch_face(draw: ImageDraw.ImageDraw, design: _Design, s: float) -> None:
    """Hour marks and two hands, set by the design's texture seed."""
    for i in range(12):
        a = np.pi * i / 6
        r0, r1 = 0.25 * s, 0.28 * s
        draw.line((0.5 * s + r0 * np.sin(a), 0.5 * s - r0 * np.cos(a), 0.5 * s + r1 * np.sin(a),
                   0.5 * s - r1 * np.cos(a)), fill=_ink_for(design.body), width=max(1, int(0.01 * s)))
    a1, a2 = np.deg2rad(design.texture_seed % 360), np.deg2rad((design.texture_seed // 360) % 360)
    draw.line((0.5 * s, 0.5 * s, 0.5 * s + 0.2 * s * np.sin(a1), 0.5 * s - 0.2 * s * np.cos(a1)),
              fill=_ink_for(design.body), width=max(2, int(0.015 * s)))
    draw.line((0.5 * s, 0.5 * s, 0.5 * s + 0.13 * s * np.sin(a2), 0.5 * s - 0.13 * s * np.cos(a2)),
              fill=_ink_for(design.body), width=max(2, int(0.02 * s)))


def _render_object(design: _Design, brand: _Brand, size: int) -> Image.Image:
    """The product on a transparent canvas of ``size`` x ``size`` pixels, facing the camera."""
    s = float(size)
    surface = _pattern_image(size, design, brand)
    mask = Image.new("L", (size, size), 0)
    obj = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(obj)
    kind = design.kind
    band, word_at, logo_at, word_w = _SHAPES.get(kind, _shape_tshirt)(draw, ImageDraw.Draw(mask), design, s)
    obj.paste(surface, (0, 0), mask)
    if band is not None:
        draw.rectangle(tuple(v * s for v in band), fill=design.trim)
    if kind == "tshirt":
        draw.arc((0.42 * s, 0.08 * s, 0.58 * s, 0.2 * s), 0, 180, fill=design.trim, width=max(2, int(0.02 * s)))
    if kind == "watch":
        _watch_face(draw, design, s)
    if kind == "bottle":  # a label
        draw.rectangle((0.3 * s, 0.56 * s, 0.7 * s, 0.78 * s), fill=(250, 248, 240))
        _wordmark(draw, brand, word_at[0] * s, word_at[1] * s, word_w * s * 0.85, 0.06 * s, (250, 248, 240))
    else:
        _wordmark(draw, brand, word_at[0] * s, word_at[1] * s, word_w * s, 0.085 * s, design.body)
    _logo(draw, brand, logo_at[0] * s, logo_at[1] * s, 0.06 * s, brand.accent if kind != "bottle" else brand.primary)
    tag_font = load_font(max(6, int(0.035 * s)))
    tag_y = 0.74 * s if kind == "watch" else 0.9 * s
    draw_text(draw, (0.5 * s, tag_y), design.tag, tag_font, _ink_for(design.body))
    return obj


def _compose(obj: Image.Image, view: _View, texture_seed: int) -> Image.Image:
    """Place the object in a scene: background, pose, shadow, light and sensor noise."""
    canvas = _background(view, texture_seed).convert("RGBA")
    width, height = view.size
    side = max(8, round(min(width, height) * view.scale))
    posed = obj.resize((max(4, round(side * view.squash)), side), Image.Resampling.BILINEAR)
    if view.angle:
        posed = posed.rotate(view.angle, resample=Image.Resampling.BILINEAR, expand=True)
    x = round(view.center[0] * width - posed.width / 2)
    y = round(view.center[1] * height - posed.height / 2)
    if view.shadow:
        alpha = posed.getchannel("A").point(lambda a: a * 90 // 255)
        shade = Image.new("RGBA", posed.size, (0, 0, 0, 0))
        shade.putalpha(alpha.filter(ImageFilter.BoxBlur(max(1, side // 40))))
        offset = max(2, side // 30)
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        layer.paste(shade, (x + offset, y + offset))
        canvas = Image.alpha_composite(canvas, layer)
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    layer.paste(posed, (x, y))
    image = Image.alpha_composite(canvas, layer).convert("RGB")
    if view.light or view.noise:
        arr: np.ndarray = np.asarray(image, np.float32)
        if view.light:
            ramp = _gradient(view.size, (0, 0, 0), (255, 255, 255), angle=view.light_angle)[..., :1] / 255.0
            arr = arr * (1.0 - view.light + 2.0 * view.light * ramp)
        if view.noise:
            arr = arr + np.random.default_rng(texture_seed + 1).normal(0.0, view.noise, arr.shape).astype(np.float32)
        image = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    return image


def _render_product(product: _Product, view: _View) -> Image.Image:
    side = max(8, round(min(view.size) * view.scale))
    obj = _render_object(product.design, product.brand, side)
    return _compose(obj, view, product.design.texture_seed)


def _render_unrelated(scene: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A picture of something that is not a catalogue product."""
    c1, c2 = (_rgb(rng.integers(0, 256, size=3)) for _ in range(2))
    if scene == "landscape":
        return _scene_landscape(size, rng)
    if scene == "no-name-product":
        return _scene_no_name_product(size, rng, c1, c2)
    image = Image.new("RGB", size, c1)
    draw = ImageDraw.Draw(image)
    {"abstract": _scene_abstract, "room": _scene_room}.get(scene, _scene_still_life)(draw, size, rng, c2)
    return image


def _scene_landscape(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    width, height = size
    image = Image.fromarray(_gradient(size, (int(rng.integers(60, 140)), int(rng.integers(120, 200)), 235),
                                      (250, int(rng.integers(160, 230)), int(rng.integers(120, 200)))).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, sun_r = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.4) * height, rng.uniform(0.05, 0.1) * width
    draw.ellipse((sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r), fill=(255, 230, 120))
    for layer in range(int(rng.integers(2, 4))):
        base = height * (0.55 + 0.12 * layer)
        xs = np.linspace(0, width, int(rng.integers(4, 8)))
        peaks = [(float(x), float(base - rng.uniform(0.05, 0.3) * height)) for x in xs]
        shade = int(40 + 40 * layer)
        draw.polygon([(0, height), *peaks, (width, height)], fill=(shade // 2, shade + 40, shade // 2 + 20))
    return image


def _scene_abstract(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng: np.random.Generator, c2: RGB) -> None:
    width, height = size
    for _ in range(int(rng.integers(6, 14))):
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, size=2) * width)
        y0, y1 = sorted(rng.uniform(-0.1, 1.1, size=2) * height)
        fill = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x0, y0, x1 + 2, y1 + 2), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(2, 12)))


def _scene_room(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng: np.random.Generator, c2: RGB) -> None:
    width, height = size
    draw.rectangle((0, int(height * 0.7), width, height), fill=c2)  # floor
    for _ in range(int(rng.integers(2, 5))):  # furniture blocks and a window
        x0 = float(rng.uniform(0, 0.7)) * width
        w = float(rng.uniform(0.15, 0.4)) * width
        h = float(rng.uniform(0.2, 0.5)) * height
        fill = tuple(int(c) for c in rng.integers(30, 230, size=3))
        draw.rectangle((x0, height * 0.72 - h, x0 + w, height * 0.72), fill=fill)
    wx = float(rng.uniform(0.1, 0.6)) * width
    draw.rectangle((wx, height * 0.1, wx + width * 0.25, height * 0.35), fill=(200, 225, 250), outline=(250, 250, 250),
                   width=3)


def _scene_no_name_product(size: tuple[int, int], rng: np.random.Generator, c1: RGB, c2: RGB) -> Image.Image:
    kind = _choice(rng, PRODUCT_KINDS)
    body = _rgb(rng.integers(0, 256, size=3))
    nobrand = _Brand(
        name="", slug="", core=_choice(rng, "XYZQW"), aliases=(), misspellings=(), sellers=(), currency="USD",
        primary=_rgb(rng.integers(0, 256, size=3)), secondary=c2, accent=(128, 128, 128),
        ink=_ink_for(body), studio=(c1, c1), logo_shape=_choice(rng, _LOGO_SHAPES), wordmark="", plate=False,
    )
    design = _Design(kind=kind, body=body, trim=c2, pattern=_choice(rng, _PATTERNS), pattern_color=_ink_for(body),
                     pattern_scale=float(rng.uniform(0.6, 1.6)), pattern_angle=int(rng.choice([0, 45, 90])),
                     accents=(), texture_seed=int(rng.integers(0, 2**31)), tag="")
    view = _View(size=size, background=_choice(rng, ("plain", "vgrad", "wood", "two-tone")), bg_colors=(c1, c2),
                 scale=float(rng.uniform(0.6, 0.85)), center=(0.5, 0.5), angle=float(rng.uniform(-10, 10)),
                 shadow=True, light=float(rng.uniform(0.0, 0.3)), light_angle=float(rng.uniform(0, 6.28)))
    side = max(8, round(min(size) * view.scale))
    return _compose(_render_object(design, nobrand, side), view, design.texture_seed)


def _scene_still_life(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng: np.random.Generator, c2: RGB) -> None:
    """A table and a few everyday things: mugs, fruit, potted plants."""
    width, height = size
    draw.rectangle((0, int(height * 0.65), width, height), fill=c2)
    for _ in range(int(rng.integers(2, 5))):
        cx = float(rng.uniform(0.15, 0.85)) * width
        w = float(rng.uniform(0.08, 0.2)) * width
        h = float(rng.uniform(0.1, 0.35)) * height
        fill = tuple(int(c) for c in rng.integers(0, 256, size=3))
        thing = int(rng.integers(3))
        if thing == 0:  # mug
            draw.rectangle((cx - w / 2, height * 0.7 - h, cx + w / 2, height * 0.7), fill=fill)
            draw.arc((cx + w / 2 - w * 0.2, height * 0.7 - h * 0.8, cx + w / 2 + w * 0.4, height * 0.7 - h * 0.2),
                     270, 90, fill=fill, width=max(2, int(w * 0.12)))
        elif thing == 1:  # fruit
            draw.ellipse((cx - w / 2, height * 0.7 - w, cx + w / 2, height * 0.7), fill=fill)
        else:  # plant in a pot
            draw.polygon([(cx - w / 2, height * 0.7 - h * 0.4), (cx + w / 2, height * 0.7 - h * 0.4),
                          (cx + w * 0.35, height * 0.7), (cx - w * 0.35, height * 0.7)], fill=fill)
            for k in range(5):
                a = np.pi * (0.15 + 0.7 * k / 4)
                lx, ly = cx - np.cos(a) * w, height * 0.7 - h * 0.4 - np.sin(a) * h
                draw.ellipse((lx - w * 0.2, ly - w * 0.1, lx + w * 0.2, ly + w * 0.1), fill=(40, 140 + 10 * k, 60))


# -- writing -----------------------------------------------------------------------------------------------


def _price(value: float) -> str:
    return f"{value:.2f}"


def make_labeled_set(
    out_dir: str | Path,
    *,
    n_brands: int = 4,
    products_per_brand: int = 3,
    listings_per_product: int = 3,
    n_unrelated: int = 10,
    seed: int = 0,
    image_size: int = 320,
    difficulty: str = "demo",
    edit_kinds: Sequence[str] | None = None,
    overwrite: bool = False,
) -> LabeledSetInfo:
    """Write a synthetic labeled set (DESIGN.md's format) into ``out_dir`` and say what it holds.

    ``listings_per_product`` listings are made for each product, two counterfeits for every genuine one, plus
    ``n_unrelated`` unrelated listings; the defaults give 46 listings in about a second. ``image_size`` is the
    longer side of the official photos. ``difficulty="hard"`` adds look-alike products across brands,
    own-photo listings (counterfeit and genuine) and no-name products among the unrelated ones.
    ``edit_kinds`` restricts the counterfeiters' edits (default: all of :data:`knockoff.evaluate.edits.EDIT_KINDS`,
    cycled so that each is used about equally). ``out_dir`` must be empty or absent unless ``overwrite``.
    The same arguments always give byte-identical files.
    """
    kinds = _check_set_arguments(n_brands, products_per_brand, listings_per_product, n_unrelated, seed, image_size,
                                 difficulty, edit_kinds)
    root = Path(out_dir)
    prepare_set_dir(root, overwrite, ("refs", "listings"))
    seed, hard = int(seed), difficulty == "hard"

    brands = _plan_brands(seed, int(n_brands))
    products = _plan_products(seed, brands, int(products_per_brand), int(image_size), hard)
    plans = _plan_listings(seed, brands, products, int(listings_per_product), int(n_unrelated), hard, kinds)
    for plan in plans:
        if plan.label == "counterfeit" and not _has_risk_signal(plan):  # a bug in the profiles, not bad luck
            raise LabeledSetError(f"generated a counterfeit without a risk signal: {plan}")
    order = _rng(seed, "shuffle").permutation(len(plans))

    write_csv(root / "brands.csv", BRANDS_HEADER,
               [(b.name, ";".join(b.aliases), ";".join(b.sellers)) for b in brands])
    official, ref_rows = _write_references(root, products)
    listing_rows = _write_listings(root, plans, order, official, seed, int(image_size))

    info = LabeledSetInfo(
        root=root, brands_csv=root / "brands.csv", references_csv=root / "references.csv",
        listings_csv=root / "listings.csv", seed=seed, difficulty=difficulty, n_brands=len(brands),
        n_products=len(products), n_reference_images=len(ref_rows), n_listings=len(listing_rows),
        label_counts=dict(sorted(Counter(p.label for p in plans).items())),
        kind_counts=dict(sorted(Counter(p.kind for p in plans).items())),
    )
    log.info("wrote a %s labeled set to %s: %d brands, %d products, %d listings %s", difficulty, root,
             info.n_brands, info.n_products, info.n_listings, info.label_counts)
    return info


def _check_set_arguments(n_brands: int, products_per_brand: int, listings_per_product: int, n_unrelated: int,
                         seed: int, image_size: int, difficulty: str,
                         edit_kinds: Sequence[str] | None) -> tuple[str, ...]:
    """Validate :func:`make_labeled_set`'s arguments; returns the edit kinds to use."""
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"unknown difficulty {difficulty!r}; valid: {', '.join(DIFFICULTIES)}")
    for name, value, low in (("n_brands", n_brands, 1), ("products_per_brand", products_per_brand, 1),
                             ("listings_per_product", listings_per_product, 0), ("n_unrelated", n_unrelated, 0),
                             ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(image_size, (int, np.integer)) or not 64 <= image_size <= 2048:
        raise ConfigError(f"image_size must be an integer in [64, 2048], got {image_size!r}")
    kinds = tuple(EDIT_KINDS if edit_kinds is None else edit_kinds)
    unknown = [k for k in kinds if k not in EDIT_KINDS]
    if not kinds or unknown:
        raise ConfigError(f"edit_kinds must be a non-empty subset of {', '.join(EDIT_KINDS)}; got {list(kinds)}")
    return kinds


def _write_references(
    root: Path, products: list[_Product]
) -> tuple[dict[tuple[str, int], Image.Image], list[tuple[str, ...]]]:
    """Render and save every official photo; returns them by (product id, view) and the references.csv rows."""
    official: dict[tuple[str, int], Image.Image] = {}
    ref_rows: list[tuple[str, ...]] = []
    for product in products:
        folder = root / "refs" / product.brand.slug
        folder.mkdir(parents=True, exist_ok=True)
        for v, view in enumerate(product.views):
            image = _render_product(product, view)
            official[(product.product_id, v)] = image
            name = f"{product.product_id}_{'front' if v == 0 else f'alt{v}'}.png"
            image.save(folder / name, format="PNG", compress_level=6)
            ref_rows.append((product.brand.name, product.product_id, product.name,
                             f"refs/{product.brand.slug}/{name}", _price(product.price), product.brand.currency))
    write_csv(root / "references.csv", REFERENCES_HEADER, ref_rows)
    return official, ref_rows


def _listing_image(plan: _ListingPlan, official: dict[tuple[str, int], Image.Image], rng: np.random.Generator,
                   image_size: int) -> Image.Image:
    """The photo of one planned listing: an unrelated scene, the seller's own photo, or an (edited) official one."""
    if plan.unrelated_scene is not None:
        size = _choice(rng, ((image_size, image_size), (image_size, image_size * 3 // 4),
                             (image_size * 3 // 4, image_size)))
        return _render_unrelated(plan.unrelated_scene, size, rng)
    if plan.product is None:  # every plan but an unrelated one has its product
        raise LabeledSetError(f"a {plan.label} listing was planned without its product: {plan}")
    if plan.own_view is not None:
        return _render_product(plan.product, plan.own_view)
    image = official[(plan.product.product_id, plan.source_view)]
    return apply_edit(image, plan.edit, rng) if plan.edit is not None else image


def _write_listings(root: Path, plans: list[_ListingPlan], order: np.ndarray,
                    official: dict[tuple[str, int], Image.Image], seed: int, image_size: int) -> list[tuple[str, ...]]:
    """Save every listing photo in the shuffled ``order`` and write listings.csv; returns its rows."""
    (root / "listings").mkdir(exist_ok=True)
    listing_rows: list[tuple[str, ...]] = []
    for number, i in enumerate(order, start=1):
        plan = plans[int(i)]
        listing_id = f"L{number:04d}"
        image = _listing_image(plan, official, _rng(seed, "listing-image", int(i)), image_size)
        rel = f"listings/{listing_id}.jpg"
        image.save(root / rel, format="JPEG", quality=90)
        listing_rows.append((
            listing_id, rel, plan.title, _price(plan.price), plan.currency, plan.seller, plan.label,
            plan.product.product_id if plan.product is not None else "", plan.kind,
        ))
    write_csv(root / "listings.csv", LISTINGS_HEADER, listing_rows)
    return listing_rows
