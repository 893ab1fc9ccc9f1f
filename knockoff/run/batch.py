"""Batches of decoded listings, so that every photo of a batch is embedded in one call (``Detector.check_decoded``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import ListingImages

Decoded = tuple[Listing, ListingImages]


def batches(decoded: Iterable[Decoded], images_per_batch: int) -> Iterator[list[Decoded]]:
    """Group decoded listings into batches of about ``images_per_batch`` photos (a listing is never split)."""
    batch: list[Decoded] = []
    images = 0
    for item in decoded:
        batch.append(item)
        images += len(item[1].images)
        if images >= images_per_batch:
            yield batch
            batch, images = [], 0
    if batch:
        yield batch
