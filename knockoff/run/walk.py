"""What a scan reads from a folder: its listings, the bad rows of its listings file, and the photos that
no listing names. Nothing is dropped silently: every photo of the folder is either in a listing or listed
as unlisted, and every refused row is kept with its reason."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from knockoff.catalog.images import iter_image_files
from knockoff.catalog.readers import Listing, listings_from_images, read_listings
from knockoff.errors import CatalogError, NothingToScanError

LISTINGS_FILE = "listings.csv"


@dataclass(frozen=True)
class Collected:
    """The listings of a folder, and what the scan could not turn into a listing."""

    root: Path
    listings: tuple[Listing, ...]
    bad_rows: tuple[str, ...] = ()
    unlisted: tuple[Path, ...] = ()
    listings_file: Path | None = None


def collect_listings(
    folder: str | Path, listings_csv: str | Path | None = None, *, exclude: Iterable[str | Path] = ()
) -> Collected:
    """The listings of a folder: rows of ``listings.csv`` when present, else one listing per photo.

    The folder is resolved first (a folder reached through a symbolic link scans like the real one).
    Bad rows of the listings file are skipped and kept with their reason; photos in the folder that no
    accepted row names are kept as ``unlisted``; folders in ``exclude`` (e.g. the scan's own output) are not
    walked. Raises :class:`NothingToScanError` when there is no listing at all, saying why.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise NothingToScanError(f"{folder}: not a folder")
    csv_path = Path(listings_csv).resolve() if listings_csv else root / LISTINGS_FILE
    if listings_csv and not csv_path.is_file():
        raise CatalogError(csv_path, "listings file not found")
    if not csv_path.is_file():
        found = listings_from_images(iter_image_files(root, exclude=tuple(exclude)), root)
        if not found:
            raise NothingToScanError(f"{root}: no photos to scan (searched recursively; hidden files are skipped)")
        return Collected(root, tuple(found))
    problems: list[CatalogError] = []
    rows = read_listings(csv_path, problems=problems)
    bad = tuple(str(p) for p in problems)
    if not rows:
        reason = f"every row was refused ({len(bad)} bad rows; the first: {bad[0]})" if bad else "it has no rows"
        raise NothingToScanError(f"{csv_path}: nothing to scan, {reason}")
    listings = tuple(row.listing for row in rows)
    return Collected(root, listings, bad, _unlisted(root, listings, exclude), csv_path)


def _unlisted(root: Path, listings: Iterable[Listing], exclude: Iterable[str | Path]) -> tuple[Path, ...]:
    """The photos under ``root`` that no listing names."""
    named = {os.path.realpath(image) for listing in listings for image in listing.images}
    return tuple(p for p in iter_image_files(root, exclude=tuple(exclude)) if os.path.realpath(p) not in named)


def input_fingerprint(listing: Listing) -> tuple[str, tuple[Path, ...]]:
    """A digest of a listing's row and of its photos' size and modification time; and its missing photos.

    A listing is decided again on a rerun when this digest changes (an edited row, a replaced photo).
    """
    digest = hashlib.sha256(json.dumps(listing.to_dict(), ensure_ascii=True, sort_keys=True).encode("ascii"))
    missing = []
    for path in listing.images:
        try:
            info = os.stat(path)
        except OSError:
            missing.append(path)
            digest.update(b"\0missing")
            continue
        digest.update(f"\0{info.st_size}:{info.st_mtime_ns}".encode("ascii"))
    return digest.hexdigest()[:32], tuple(missing)
