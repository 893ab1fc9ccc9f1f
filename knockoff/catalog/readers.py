"""Brands, reference products and listings; reading and validating the files users write.

Every problem in a user file is a :class:`~knockoff.errors.CatalogError` naming the file, the line and the
field. Readers skip a bad row (logging one line for it and keeping it in ``problems``) unless ``strict``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knockoff.errors import CatalogError, ConfigError

log = logging.getLogger(__name__)

_CURRENCY = re.compile(r"^[A-Z]{3}$")


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
        for ref in read_references(references, sink=sink, check_images=check_images):
            if catalog.brand(ref.brand) is None:
                catalog.add_brand(Brand(ref.brand))
            catalog.references.append(ref)
        if not catalog.references:
            raise CatalogError(references, "no usable reference rows")
        return catalog


class _ProblemSink:
    """Collects row problems: raises in strict mode, else logs one line each and keeps them."""

    def __init__(self, problems: list[CatalogError] | None = None, strict: bool = False):
        self.problems = problems if problems is not None else []
        self.strict = strict

    def report(self, error: CatalogError) -> None:
        if self.strict:
            raise error
        log.warning("skipped: %s", error)
        self.problems.append(error)


def _rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) from a CSV or JSON Lines file, checking the header first."""
    if not path.is_file():
        raise CatalogError(path, "file not found")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, {"__error__": f"not valid JSON ({exc.msg})"}
                    continue
                if not isinstance(row, dict):
                    yield number, {"__error__": "a line must be a JSON object"}
                    continue
                yield number, {str(k): ("" if v is None else str(v)) for k, v in row.items()}
        return
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CatalogError(path, f"cannot read file ({exc})") from exc
    with handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise CatalogError(path, f"missing column(s) {', '.join(missing)}; the header is {header}", line=1)
        reader.fieldnames = header
        try:
            for row in reader:
                clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not any(clean.values()):
                    continue
                if None in row:
                    clean["__error__"] = "more fields than the header has"
                yield reader.line_num, clean
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CatalogError(path, f"cannot parse ({exc})", line=reader.line_num) from exc


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _parse_price(path: Path, line: int, value: str) -> float | None:
    if not value:
        return None
    # "1,299.90" (thousands separator) and "12,50" (decimal comma) are both read as written.
    text = value.replace(",", "") if "." in value else value.replace(",", ".")
    try:
        price = float(text)
    except ValueError:
        raise CatalogError(path, f"not a number: {value!r}", line=line, field="price") from None
    if not math.isfinite(price) or price < 0:
        raise CatalogError(path, f"must be a number >= 0, got {value!r}", line=line, field="price")
    return price


def _parse_currency(path: Path, line: int, value: str) -> str | None:
    if not value:
        return None
    code = value.upper()
    if not _CURRENCY.match(code):
        raise CatalogError(path, f"expected a 3-letter code like USD, got {value!r}", line=line, field="currency")
    return code


def resolve_inside(base: Path, relative: str, *, path: Path, line: int, field_name: str) -> Path:
    """Resolve ``relative`` against ``base`` and refuse paths that escape it."""
    if not relative:
        raise CatalogError(path, "is empty", line=line, field=field_name)
    candidate = Path(relative)
    if candidate.is_absolute():
        raise CatalogError(path, f"must be a path relative to the file, got {relative!r}", line=line, field=field_name)
    root = base.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise CatalogError(path, f"path {relative!r} escapes the directory {root}", line=line, field=field_name)
    return resolved


def read_brands(path: str | Path, *, strict: bool = True, sink: _ProblemSink | None = None) -> list[Brand]:
    """Read ``brands.csv``: ``brand, aliases, authorized_sellers`` (lists separated by ``;``)."""
    path = Path(path)
    sink = sink or _ProblemSink(strict=strict)
    brands: dict[str, Brand] = {}
    for line, row in _rows(path, ["brand"]):
        try:
            if "__error__" in row:
                raise CatalogError(path, row["__error__"], line=line)
            name = row.get("brand", "")
            if not name:
                raise CatalogError(path, "is empty", line=line, field="brand")
            if name.casefold() in brands:
                raise CatalogError(path, f"brand {name!r} is listed twice", line=line, field="brand")
            brands[name.casefold()] = Brand(
                name, _split_list(row.get("aliases", "")), _split_list(row.get("authorized_sellers", ""))
            )
        except CatalogError as error:
            sink.report(error)
    return list(brands.values())


def read_references(
    path: str | Path, *, strict: bool = True, sink: _ProblemSink | None = None, check_images: bool = True
) -> list[ReferenceImage]:
    """Read ``references.csv`` / ``.jsonl``: ``brand, product_id, product_name, image, price, currency``."""
    path = Path(path)
    sink = sink or _ProblemSink(strict=strict)
    refs: list[ReferenceImage] = []
    seen: set[Path] = set()
    for line, row in _rows(path, ["brand", "product_id", "image"]):
        try:
            if "__error__" in row:
                raise CatalogError(path, row["__error__"], line=line)
            for required in ("brand", "product_id"):
                if not row.get(required):
                    raise CatalogError(path, "is empty", line=line, field=required)
            image = resolve_inside(path.parent, row.get("image", ""), path=path, line=line, field_name="image")
            if check_images and not image.is_file():
                raise CatalogError(path, f"image file not found: {image}", line=line, field="image")
            if image in seen:
                raise CatalogError(path, f"image {row['image']!r} is listed twice", line=line, field="image")
            price = _parse_price(path, line, row.get("price", ""))
            currency = _parse_currency(path, line, row.get("currency", ""))
            label = Path(row["image"]).as_posix()
            seen.add(image)
            refs.append(
                ReferenceImage(
                    brand=row["brand"],
                    product_id=row["product_id"],
                    product_name=row.get("product_name", "") or row["product_id"],
                    image=image,
                    price=price,
                    currency=currency,
                    label=label,
                )
            )
        except CatalogError as error:
            sink.report(error)
    return refs


def read_listings(
    path: str | Path,
    *,
    strict: bool = False,
    problems: list[CatalogError] | None = None,
    check_images: bool = False,
) -> list[LabeledListing]:
    """Read ``listings.csv`` (``listing_id, image, title, price, currency, seller``; several images with ``;``).

    Optional ground-truth columns ``label``, ``product_id`` and ``kind`` are kept on each
    :class:`LabeledListing`. Bad rows are skipped with a logged line (kept in ``problems``) unless ``strict``.
    """
    path = Path(path)
    sink = _ProblemSink(problems, strict)
    out: list[LabeledListing] = []
    ids: set[str] = set()
    for line, row in _rows(path, ["image"]):
        try:
            if "__error__" in row:
                raise CatalogError(path, row["__error__"], line=line)
            names = _split_list(row.get("image", ""))
            if not names:
                raise CatalogError(path, "is empty", line=line, field="image")
            images = tuple(
                resolve_inside(path.parent, name, path=path, line=line, field_name="image") for name in names
            )
            if check_images:
                for image in images:
                    if not image.is_file():
                        raise CatalogError(path, f"image file not found: {image}", line=line, field="image")
            listing_id = row.get("listing_id") or names[0]
            if listing_id in ids:
                raise CatalogError(path, f"listing_id {listing_id!r} is used twice", line=line, field="listing_id")
            price = _parse_price(path, line, row.get("price", ""))
            currency = _parse_currency(path, line, row.get("currency", ""))
            label = row.get("label", "").lower() or None
            if label is not None and label not in LABELS:
                raise CatalogError(path, f"must be one of {', '.join(LABELS)}, got {label!r}", line=line, field="label")
            ids.add(listing_id)
            listing = Listing(
                images=images,
                title=row.get("title", ""),
                price=price,
                currency=currency,
                seller=row.get("seller") or None,
                listing_id=listing_id,
            )
            out.append(LabeledListing(listing, label or "", row.get("product_id") or None, row.get("kind") or None))
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
