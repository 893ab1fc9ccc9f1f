"""The files of a labeled set (DESIGN.md's format), shared by the synthetic and the real-image set builders."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knockoff.errors import OutputExistsError

BRANDS_HEADER: tuple[str, ...] = ("brand", "aliases", "authorized_sellers")
REFERENCES_HEADER: tuple[str, ...] = ("brand", "product_id", "product_name", "image", "price", "currency")
LISTINGS_HEADER: tuple[str, ...] = (
    "listing_id", "image", "title", "price", "currency", "seller", "label", "product_id", "kind",
)
SET_FILES: tuple[str, ...] = ("brands.csv", "references.csv", "listings.csv")


def prepare_set_dir(out_dir: str | Path, overwrite: bool, image_folders: Sequence[str]) -> Path:
    """Make ``out_dir`` ready for a new set: created, or emptied of an old set's files when ``overwrite``.

    A non-empty folder without ``overwrite``, or a file in the way, raises :class:`OutputExistsError`.
    Only the set's CSV files and its ``image_folders`` are removed; anything else there stays.
    """
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{root} is not empty; pass overwrite=True to replace a labeled set there")
        for name in image_folders:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
        for name in SET_FILES:
            (root / name).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a header and rows as UTF-8 CSV with ``\\n`` line ends (byte-identical for the same rows)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
