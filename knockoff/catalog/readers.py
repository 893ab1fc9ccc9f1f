"""Brands, reference products and listings; reading and validating the files users write.

Every problem in a user file is a :class:`~knockoff.errors.CatalogError` naming the file, the line and the
field. Readers skip a bad row (logging one line for it and keeping it in ``problems``) unless ``strict``.
How the files are read (encodings, columns, one row per line) is in :mod:`knockoff.catalog.tables`; how prices
are read in :mod:`knockoff.catalog.prices`. When ``brands.csv`` is given, every brand of the references must be
listed in it.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knockoff.catalog.prices import parse_currency, parse_price
from knockoff.catalog.tables import Row, table_rows, text
from knockoff.errors import CatalogError, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Brand:
    """A brand: its name, other names it goes by (aliases, common misspellings) and its authorized sellers.

    An empty ``authorized_sellers`` means the brand did not list its sellers (the seller signal is then unknown).
    """

    name: str
    aliases: tuple[str, ...] = ()
    authorized_sellers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("brand name is empty")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "authorized_sellers", tuple(self.authorized_sellers))

    @property
    def key(self) -> str:
        return self.name.casefold()

    def is_authorized(self, seller: str | None) -> bool | None:
        """True/False when the brand lists its sellers and the seller is known; None when it can't be told."""
        if not self.authorized_sellers or not seller:
            return None
        wanted = seller.strip().casefold()
        return any(s.strip().casefold() == wanted for s in self.authorized_sellers)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": list(self.aliases), "authorized_sellers": list(self.authorized_sellers)}


@dataclass(frozen=True)
class ReferenceImage:
    """One official image of a reference product."""

    brand: str
    product_id: str
    product_name: str
    image: Path
    price: float | None = None
    currency: str | None = None
    label: str = ""
    """Short display name of the image: its path as the references file gives it, e.g. ``acme/tote_front.jpg``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "image", Path(self.image))
        if not self.label:
            object.__setattr__(self, "label", f"{self.brand.lower()}/{self.image.name}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "product_id": self.product_id,
            "product_name": self.product_name,
            "image": str(self.image),
            "price": self.price,
            "currency": self.currency,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceImage:
        return cls(
            brand=data["brand"],
            product_id=data["product_id"],
            product_name=data.get("product_name", ""),
            image=Path(data["image"]),
            price=data.get("price"),
            currency=data.get("currency"),
            label=data.get("label", ""),
        )


@dataclass(frozen=True)
class Listing:
    """A marketplace listing: one or more photos, and optionally a title, price, currency and seller."""

    images: tuple[Path, ...]
    title: str = ""
    price: float | None = None
    currency: str | None = None
    seller: str | None = None
    listing_id: str = ""

    def __post_init__(self) -> None:
        images = (self.images,) if isinstance(self.images, (str, Path)) else tuple(self.images)
        if not images:
            raise ConfigError("a listing needs at least one image")
        object.__setattr__(self, "images", tuple(Path(p) for p in images))
        if self.price is not None:
            price = float(self.price)
            if not math.isfinite(price) or price < 0:
                raise ConfigError(f"price must be a finite number >= 0, got {self.price!r}")
            object.__setattr__(self, "price", price)
        if self.currency is not None:
            object.__setattr__(self, "currency", self.currency.strip().upper() or None)
        if not self.listing_id:
            object.__setattr__(self, "listing_id", str(self.images[0]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing_id,
            "images": [str(p) for p in self.images],
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "seller": self.seller,
        }


@dataclass(frozen=True)
class LabeledListing:
    """A listing of a labeled set with its ground truth."""

    listing: Listing
    label: str
    product_id: str | None = None
    kind: str | None = None


LABELS = ("counterfeit", "genuine", "unrelated")


@dataclass
class Catalog:
    """What the brand owner knows: brands and the official images of their reference products."""

    brands: dict[str, Brand] = field(default_factory=dict)
    references: list[ReferenceImage] = field(default_factory=list)
    problems: list[CatalogError] = field(default_factory=list)

    def brand(self, name: str) -> Brand | None:
        """The brand called ``name`` (case-insensitive), or None."""
        return self.brands.get(name.casefold())

    def add_brand(self, brand: Brand) -> None:
        self.brands[brand.key] = brand

    @property
    def products(self) -> dict[tuple[str, str], list[ReferenceImage]]:
        grouped: dict[tuple[str, str], list[ReferenceImage]] = {}
        for ref in self.references:
            grouped.setdefault((ref.brand, ref.product_id), []).append(ref)
        return grouped

    @classmethod
    def from_dir(cls, path: str | Path, *, strict: bool = False, check_images: bool = True) -> Catalog:
        """Read ``brands.csv`` (optional) and ``references.csv`` or ``references.jsonl`` from a directory."""
        root = Path(path)
        if not root.is_dir():
            raise CatalogError(root, "catalog directory not found")
        refs = root / "references.csv"
        if not refs.exists() and (root / "references.jsonl").exists():
            refs = root / "references.jsonl"
        brands = root / "brands.csv"
        return cls.from_files(refs, brands if brands.exists() else None, strict=strict, check_images=check_images)

    @classmethod
    def from_files(
        cls,
        references: str | Path,
        brands: str | Path | None = None,
        *,
        strict: bool = False,
        check_images: bool = True,
    ) -> Catalog:
        """Read a references file (CSV or JSON Lines) and an optional brands CSV."""
        catalog = cls()
        sink = _ProblemSink(catalog.problems, strict)
        if brands is not None:
            for brand in read_brands(brands, sink=sink):
                catalog.add_brand(brand)
        listed = list(catalog.brands.values()) if brands is not None else None
        for ref in read_references(references, sink=sink, check_images=check_images, brands=listed):
            if catalog.brand(ref.brand) is None:
                catalog.add_brand(Brand(ref.brand))
            catalog.references.append(ref)
        if not catalog.references:
            raise CatalogError(references, "no usable reference rows")
        return catalog


class _ProblemSink:
    """Collects row problems: raises in strict mode, else logs one line each and keeps them.

    This is the one place a bad row of a user file is logged; callers that keep ``problems`` (the scan, the
    CLI) count or store them but do not log them again.
    """

    def __init__(self, problems: list[CatalogError] | None = None, strict: bool = False):
        self.problems = problems if problems is not None else []
        self.strict = strict

    def report(self, error: CatalogError) -> None:
        if self.strict:
            raise error
        log.warning("skipped: %s", error)
        self.problems.append(error)


BRAND_COLUMNS = ("brand", "aliases", "authorized_sellers")
REFERENCE_COLUMNS = ("brand", "product_id", "product_name", "image", "price", "currency")
LISTING_COLUMNS = ("listing_id", "image", "title", "price", "currency", "seller")
LABEL_COLUMNS = ("label", "product_id", "kind", "source", "relation")
"""Optional ground-truth columns of a labeled set's listings.csv (``source`` and ``relation``: where a real
set's listing comes from, kept for the record)."""


def _good_rows(path: Path, known: Sequence[str], required: Sequence[str],
               sink: _ProblemSink) -> Iterator[tuple[int, Row]]:
    """The rows of a table; bad ones go to ``sink``."""
    for line, row in table_rows(path, known, required):
        if isinstance(row, CatalogError):
            sink.report(row)
        else:
            yield line, row


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def resolve_inside(base: Path, relative: str, *, path: Path, line: int, field_name: str) -> Path:
    """Resolve ``relative`` against ``base`` and refuse paths that escape it."""
    if not relative:
        raise CatalogError(path, "is empty", line=line, field=field_name)
    candidate = Path(relative)
    if candidate.is_absolute():
        raise CatalogError(path, f"must be a path relative to the file, got {relative!r}", line=line, field=field_name)
    root = base.resolve()
    try:
        resolved = (root / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise CatalogError(path, f"path {relative!r} cannot be resolved ({exc})", line=line, field=field_name) from None
    if resolved != root and root not in resolved.parents:
        raise CatalogError(path, f"path {relative!r} escapes the directory {root}", line=line, field=field_name)
    return resolved


def read_brands(path: str | Path, *, strict: bool = True, sink: _ProblemSink | None = None) -> list[Brand]:
    """Read ``brands.csv``: ``brand, aliases, authorized_sellers`` (lists separated by ``;``)."""
    path = Path(path)
    sink = sink or _ProblemSink(strict=strict)
    brands: dict[str, Brand] = {}
    for line, row in _good_rows(path, BRAND_COLUMNS, ["brand"], sink):
        try:
            name = text(row, "brand")
            if not name:
                raise CatalogError(path, "is empty", line=line, field="brand")
            if name.casefold() in brands:
                raise CatalogError(path, f"brand {name!r} is listed twice", line=line, field="brand")
            brands[name.casefold()] = Brand(
                name, _split_list(text(row, "aliases")), _split_list(text(row, "authorized_sellers"))
            )
        except CatalogError as error:
            sink.report(error)
    return list(brands.values())


def _known_brand(path: Path, line: int, name: str, brands: dict[str, Brand] | None) -> str:
    """The brand's name as ``brands.csv`` spells it; an error naming the closest one when it is not listed."""
    if brands is None:
        return name
    brand = brands.get(name.casefold())
    if brand is not None:
        return brand.name
    names = [b.name for b in brands.values()]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CatalogError(path, f"brand {name!r} is not in brands.csv{hint}; add it there or fix the name",
                       line=line, field="brand")


def _reference(path: Path, line: int, row: Row, brands: dict[str, Brand] | None, check_images: bool) -> ReferenceImage:
    for required in ("brand", "product_id"):
        if not text(row, required):
            raise CatalogError(path, "is empty", line=line, field=required)
    brand = _known_brand(path, line, text(row, "brand"), brands)
    image = resolve_inside(path.parent, text(row, "image"), path=path, line=line, field_name="image")
    if check_images and not image.is_file():
        raise CatalogError(path, f"image file not found: {image}", line=line, field="image")
    return ReferenceImage(
        brand=brand,
        product_id=text(row, "product_id"),
        product_name=text(row, "product_name") or text(row, "product_id"),
        image=image,
        price=parse_price(path, line, row.get("price", "")),
        currency=parse_currency(path, line, text(row, "currency")),
        label=Path(text(row, "image")).as_posix(),
    )


def read_references(
    path: str | Path,
    *,
    strict: bool = True,
    sink: _ProblemSink | None = None,
    check_images: bool = True,
    brands: Iterable[Brand] | None = None,
) -> list[ReferenceImage]:
    """Read ``references.csv`` / ``.jsonl``: ``brand, product_id, product_name, image, price, currency``.

    ``brands``: the brands of ``brands.csv``; a row naming another brand is then a bad row (not a new brand).
    """
    path = Path(path)
    sink = sink or _ProblemSink(strict=strict)
    known = None if brands is None else {b.key: b for b in brands}
    refs: list[ReferenceImage] = []
    seen: set[Path] = set()
    for line, row in _good_rows(path, REFERENCE_COLUMNS, ["brand", "product_id", "image"], sink):
        try:
            ref = _reference(path, line, row, known, check_images)
            if ref.image in seen:
                raise CatalogError(path, f"image {ref.label!r} is listed twice", line=line, field="image")
            seen.add(ref.image)
            refs.append(ref)
        except CatalogError as error:
            sink.report(error)
    return refs


def _labeled_listing(path: Path, line: int, row: Row, check_images: bool) -> LabeledListing:
    names = _split_list(text(row, "image"))
    if not names:
        raise CatalogError(path, "is empty", line=line, field="image")
    images = tuple(resolve_inside(path.parent, name, path=path, line=line, field_name="image") for name in names)
    if check_images:
        for image in images:
            if not image.is_file():
                raise CatalogError(path, f"image file not found: {image}", line=line, field="image")
    price = parse_price(path, line, row.get("price", ""))
    currency = parse_currency(path, line, text(row, "currency"))
    label = text(row, "label").lower() or None
    if label is not None and label not in LABELS:
        raise CatalogError(path, f"must be one of {', '.join(LABELS)}, got {label!r}", line=line, field="label")
    listing = Listing(images=images, title=text(row, "title"), price=price, currency=currency,
                      seller=text(row, "seller") or None, listing_id=text(row, "listing_id") or names[0])
    return LabeledListing(listing, label or "", text(row, "product_id") or None, text(row, "kind") or None)


def read_listings(
    path: str | Path,
    *,
    strict: bool = False,
    problems: list[CatalogError] | None = None,
    check_images: bool = False,
) -> list[LabeledListing]:
    """Read ``listings.csv`` (``listing_id, image, title, price, currency, seller``; several images with ``;``).

    Optional ground-truth columns ``label``, ``product_id`` and ``kind`` are kept on each
    :class:`LabeledListing`. Bad rows are skipped with one logged line each (kept in ``problems``) unless
    ``strict``; an unknown column stops the reading (:class:`CatalogError`).
    """
    path = Path(path)
    sink = _ProblemSink(problems, strict)
    out: list[LabeledListing] = []
    ids: set[str] = set()
    for line, row in _good_rows(path, LISTING_COLUMNS + LABEL_COLUMNS, ["image"], sink):
        try:
            item = _labeled_listing(path, line, row, check_images)
            listing_id = item.listing.listing_id
            if listing_id in ids:
                raise CatalogError(path, f"listing_id {listing_id!r} is used twice", line=line, field="listing_id")
            ids.add(listing_id)
            out.append(item)
        except CatalogError as error:
            sink.report(error)
    return out


def listings_from_images(paths: Iterable[str | Path], root: str | Path | None = None) -> list[Listing]:
    """One listing per photo, identified by its path relative to ``root`` when given."""
    out = []
    for path in paths:
        path = Path(path)
        listing_id = path.relative_to(root).as_posix() if root is not None else str(path)
        out.append(Listing(images=(path,), listing_id=listing_id))
    return out
