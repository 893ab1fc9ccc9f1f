"""Labeled sets made from real public images (the folders described in ``shared/data/real/SOURCES.md``).

Two kinds of set, both written in DESIGN.md's labeled-set format into a directory you choose:

- :func:`make_copy_set`: the copy-detection groups of ``threatexchange-pdq``, ``jenssegers-imagehash`` and
  ``imagededup``. In each group the original is the reference (one product per group); the edited versions are
  ``counterfeit`` listings (``kind`` is the edit, grouped: ``copy-resize``, ``copy-rotate-flip``, ...; separate
  photos of the same scene or object are ``own-photo``); the distractors and hard negatives (another photo of
  the same room) are ``unrelated``. Listings with the same bytes as an earlier listing are left out, and so are
  files the ground truth marks undecodable.
- :func:`make_grocery_set`: the Grocery Store Dataset's packaged products. Each product's official ("iconic")
  image is the reference, under its brand; the in-store phone photos of a split are ``counterfeit`` listings of
  that product (kind ``own-photo``). A test of recognising a product in a new photo, which the perceptual
  engine is not built for.

Listings have no title or price; the counterfeits (and unrelated listings) are sold by sellers the brands do not
authorize, so a visual match is enough to flag them: these sets measure the visual matching.

The images are copied (hard-linked where the filesystem allows) into the set directory, because the catalog
reader refuses image paths that leave it, symlinks included. Write the sets outside the project's checkout
(a temporary directory): the real images must not be committed.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.errors import ConfigError, RealDataMissingError
from knockoff.evaluate.setfiles import BRANDS_HEADER, LISTINGS_HEADER, REFERENCES_HEADER, prepare_set_dir, write_csv

__all__ = [
    "COPY_SOURCES",
    "GROCERY_SOURCE",
    "RealDataMissingError",
    "RealSetInfo",
    "classify_relation",
    "make_copy_set",
    "make_grocery_set",
]

log = logging.getLogger(__name__)

COPY_SOURCES: tuple[str, ...] = ("threatexchange-pdq", "jenssegers-imagehash", "imagededup")
GROCERY_SOURCE = "grocerystore"
OFFICIAL_SELLER = "official-store"
_LISTINGS_HEADER = (*LISTINGS_HEADER, "source", "relation")


@dataclass(frozen=True)
class RealSetInfo:
    """What a real-set builder wrote."""

    root: Path
    name: str
    sources: tuple[str, ...]
    n_references: int
    n_listings: int
    label_counts: dict[str, int] = field(default_factory=dict)
    kind_counts: dict[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root), "name": self.name, "sources": list(self.sources),
            "n_references": self.n_references, "n_listings": self.n_listings,
            "label_counts": dict(self.label_counts), "kind_counts": dict(self.kind_counts),
            "skipped": list(self.skipped),
        }


# Edit relation (free text in groundtruth.csv) -> kind; the first pattern that matches wins.
_KIND_RULES: tuple[tuple[str, str], ...] = (
    (r"different photo|separate photo|not a pixel copy", "own-photo"),
    (r"mode conversion|grayscale|rgba|alpha channel", "copy-colour-mode"),
    (r"letterbox|border", "copy-border"),
    (r"watermark|copyright", "copy-watermark"),
    (r"\bcrop", "copy-crop"),
    (r"rotat|flip|dihedral|transpose", "copy-rotate-flip"),
    (r"identical|same jpeg bytes|^original", "copy-exact"),
    (r"shrink|resize|thumbnail|square", "copy-resize"),
    (r"blur|sharpen|contrast|saturation", "copy-filter"),
    (r"re-encode|jpeg quality|webp", "copy-recompress"),
)


def classify_relation(relation: str) -> str:
    """The ``kind`` of an edited copy from its ground-truth relation text (``copy-other`` when unknown)."""
    text = relation.strip().lower()
    for pattern, kind in _KIND_RULES:
        if re.search(pattern, text):
            return kind
    return "copy-other"


def _check_folder(real_root: str | Path, source: str, groundtruth: str) -> tuple[Path, Path]:
    folder = Path(real_root) / source
    truth = folder / groundtruth
    if not folder.is_dir():
        raise RealDataMissingError(f"real data folder {folder} is not here; see shared/data/real/SOURCES.md")
    if not truth.is_file():
        raise RealDataMissingError(f"{truth} is missing: the folder {folder} has no ground truth")
    return folder, truth


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def _place(source_file: Path, root: Path, relative: str) -> str:
    """Put a real image into the set (hard link, else copy); returns its path relative to the set."""
    target = root / "images" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.link(source_file, target)
        except OSError:
            shutil.copy2(source_file, target)
    return (Path("images") / relative).as_posix()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _info(root: Path, name: str, sources: Sequence[str], n_refs: int, listing_rows: list[tuple[Any, ...]],
          skipped: list[str]) -> RealSetInfo:
    labels = Counter(str(r[6]) for r in listing_rows)
    kinds = Counter(str(r[8]) for r in listing_rows)
    info = RealSetInfo(root, name, tuple(sources), n_refs, len(listing_rows), dict(sorted(labels.items())),
                       dict(sorted(kinds.items())), tuple(skipped))
    log.info("wrote the %s set to %s: %d references, %d listings %s (%d skipped)", name, root, n_refs,
             len(listing_rows), info.label_counts, len(skipped))
    return info


def make_copy_set(
    out_dir: str | Path,
    real_root: str | Path,
    sources: Sequence[str] = COPY_SOURCES,
    *,
    overwrite: bool = False,
) -> RealSetInfo:
    """Write a labeled set from the copy-detection groups of ``sources`` (folders under ``real_root``).

    Raises :class:`RealDataMissingError` when a source folder or its ``groundtruth.csv`` is absent.
    """
    unknown = [s for s in sources if s not in COPY_SOURCES]
    if unknown or not sources:
        raise ConfigError(f"sources must be a non-empty subset of {', '.join(COPY_SOURCES)}; got {list(sources)}")
    folders = {source: _check_folder(real_root, source, "groundtruth.csv") for source in sources}
    writer = _CopySetWriter(prepare_set_dir(out_dir, overwrite, ("images",)))
    for source, (folder, truth) in folders.items():
        for group, rows in _copy_groups(source, folder, truth, writer.skipped).items():
            writer.add_group(source, folder, group, rows)
    return writer.finish(sources)


def _copy_groups(source: str, folder: Path, truth: Path, skipped: list[str]) -> dict[str, list[dict[str, str]]]:
    """The ground truth's rows by group, without the undecodable or absent files (each noted in ``skipped``)."""
    groups: dict[str, list[dict[str, str]]] = {}
    for row in _read_rows(truth):
        row["relation"] = row.get("relation") or row.get("relation_to_group_original", "")
        if row.get("decodable", "yes").lower() == "no":
            skipped.append(f"{source}/{row['path']}: not decodable ({row['relation']})")
            continue
        if not (folder / row["path"]).is_file():
            skipped.append(f"{source}/{row['path']}: file not found")
            continue
        groups.setdefault(row["group"], []).append(row)
    return groups


class _CopySetWriter:
    """Collects the rows of a copy set (one brand and reference per group, its copies as counterfeit listings)."""

    def __init__(self, root: Path):
        self.root = root
        self.brand_rows: list[tuple[str, str, str]] = []
        self.ref_rows: list[tuple[str, str, str, str, str, str]] = []
        self.listing_rows: list[tuple[Any, ...]] = []
        self.skipped: list[str] = []
        self.seen: dict[str, str] = {}
        self.sellers = iter(range(1, 10_000))

    def add_group(self, source: str, folder: Path, group: str, rows: list[dict[str, str]]) -> None:
        """One group: distractors and hard negatives become unrelated listings, else a reference and its copies."""
        relation = [r["relation"].lower() for r in rows]
        if group.startswith("distractor") or all(t.startswith("distinct image") for t in relation):
            for row in rows:
                self.add_listing(source, row, folder / row["path"], "unrelated", "", "unrelated")
            return
        if all("hard negative vs" in t for t in relation):
            for row in rows:
                self.add_listing(source, row, folder / row["path"], "unrelated", "", "hard-negative")
            return
        originals = [r for r, t in zip(rows, relation) if t.startswith("original")]
        reference = originals[0] if originals else rows[0]
        brand = f"{source}-{group}"
        product_id = f"{source}:{group}"
        image = _place(folder / reference["path"], self.root, f"{source}/{reference['path']}")
        self.brand_rows.append((brand, "", OFFICIAL_SELLER))
        self.ref_rows.append((brand, product_id, group, image, "", ""))
        for row in rows:
            if row is not reference:
                self.add_listing(source, row, folder / row["path"], "counterfeit", product_id,
                                 classify_relation(row["relation"]))

    def add_listing(self, source: str, row: dict[str, str], file: Path, label: str, product_id: str,
                    kind: str) -> None:
        """One listing, unless a listing with the same bytes is already there (noted in ``skipped``)."""
        digest = _digest(file)
        if digest in self.seen:
            self.skipped.append(f"{source}/{row['path']}: same bytes as listing {self.seen[digest]}")
            return
        listing_id = f"{source}:{row['path']}"
        self.seen[digest] = listing_id
        image = _place(file, self.root, f"{source}/{row['path']}")
        seller = f"reseller-{next(self.sellers):03d}" if label == "counterfeit" else "other-shop"
        self.listing_rows.append((listing_id, image, "", "", "", seller, label, product_id, kind, source,
                                  row.get("relation") or row.get("relation_to_group_original", "")))

    def finish(self, sources: Sequence[str]) -> RealSetInfo:
        """Write the three CSV files; returns what the set holds."""
        write_csv(self.root / "brands.csv", BRANDS_HEADER, self.brand_rows)
        write_csv(self.root / "references.csv", REFERENCES_HEADER, self.ref_rows)
        write_csv(self.root / "listings.csv", _LISTINGS_HEADER, self.listing_rows)
        return _info(self.root, "real-copies", sources, len(self.ref_rows), self.listing_rows, self.skipped)


def make_grocery_set(
    out_dir: str | Path,
    real_root: str | Path,
    *,
    split: str = "val",
    max_listings: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> RealSetInfo:
    """Write a labeled set from the Grocery Store Dataset: iconic images as references, store photos of
    ``split`` (``val``: 100 photos; ``train``: 864) as counterfeit own-photo listings of their product.

    ``max_listings``: a random sample (drawn with ``seed``) of at most that many store photos.
    Raises :class:`RealDataMissingError` when the folder or ``groundtruth_packages.csv`` is absent.
    """
    if split not in ("train", "val"):
        raise ConfigError(f"split must be 'train' or 'val', got {split!r}")
    if max_listings is not None and max_listings < 1:
        raise ConfigError(f"max_listings must be >= 1, got {max_listings}")
    folder, truth = _check_folder(real_root, GROCERY_SOURCE, "groundtruth_packages.csv")
    rows = _read_rows(truth)
    root = prepare_set_dir(out_dir, overwrite, ("images",))
    skipped: list[str] = []
    products: dict[str, tuple[str, str]] = {}  # product -> (brand, iconic path)
    for row in rows:
        products.setdefault(row["product"], (row["brand"], row["iconic_reference_image"]))
    brands = sorted({brand for brand, _ in products.values()})
    ref_rows = []
    for product, (brand, iconic) in sorted(products.items()):
        if not (folder / iconic).is_file():
            skipped.append(f"{GROCERY_SOURCE}/{iconic}: iconic image not found")
            continue
        image = _place(folder / iconic, root, f"{GROCERY_SOURCE}/{iconic}")
        ref_rows.append((brand, product, product.replace("-", " "), image, "", ""))
    if not ref_rows:
        raise RealDataMissingError(f"{folder}: no iconic image found")
    indexed = {r[1] for r in ref_rows}
    photos = [r for r in rows if r["split"] == split and r["product"] in indexed]
    if max_listings is not None and len(photos) > max_listings:
        keep = np.sort(np.random.default_rng(seed).choice(len(photos), max_listings, replace=False))
        photos = [photos[int(i)] for i in keep]
    listing_rows: list[tuple[Any, ...]] = []
    for number, row in enumerate(photos, start=1):
        if not (folder / row["path"]).is_file():
            skipped.append(f"{GROCERY_SOURCE}/{row['path']}: file not found")
            continue
        image = _place(folder / row["path"], root, f"{GROCERY_SOURCE}/{row['path']}")
        listing_rows.append((f"{GROCERY_SOURCE}:{row['path']}", image, "", "", "", f"grocer-{number:03d}",
                             "counterfeit", row["product"], "own-photo", GROCERY_SOURCE, "store photo"))
    write_csv(root / "brands.csv", BRANDS_HEADER, [(b, "", OFFICIAL_SELLER) for b in brands])
    write_csv(root / "references.csv", REFERENCES_HEADER, ref_rows)
    write_csv(root / "listings.csv", _LISTINGS_HEADER, listing_rows)
    return _info(root, f"real-grocery-{split}", (GROCERY_SOURCE,), len(ref_rows), listing_rows, skipped)
