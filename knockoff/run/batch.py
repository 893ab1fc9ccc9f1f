"""Deciding decoded listings in batches: one embedding call for every photo of a batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import Detector, ListingImages, Verdict, error_verdict

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


def decide_batch(detector: Detector, batch: Sequence[Decoded]) -> list[Verdict]:
    """Embed every photo of a batch of decoded listings in one call and decide each listing."""
    images = [image for _, loaded in batch for image in loaded.images]
    vectors = detector.embed(images) if images else []
    hits = detector.search(vectors) if images else []
    verdicts = []
    cursor = 0
    for listing, loaded in batch:
        n = len(loaded.images)
        verdicts.append(
            detector.decide(listing, loaded, vectors[cursor : cursor + n], hits[cursor : cursor + n]) if n
            else error_verdict(listing, loaded.problems, detector.engine)
        )
        cursor += n
    return verdicts
