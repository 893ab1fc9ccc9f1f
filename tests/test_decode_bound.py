"""The scan's decoder bounds what is in flight by photos as well as by listings: 64 crafted rows of 50 photos
each once held 3,200 decoded photos (~13 GB at 1024 px) before the first was checked."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import MAX_PHOTOS, ListingImages
from knockoff.run.batch import batches
from knockoff.run.decode import Decoder, photo_count
from knockoff.run.scan import PHOTOS_AHEAD_BATCHES, scan_decoder

PIXEL = Image.new("RGB", (1, 1))


def _listing(i: int, photos: int) -> Listing:
    return Listing(images=tuple(Path(f"l{i}-p{j}.jpg") for j in range(photos)), listing_id=f"L{i}")


def _fake_decode(listing: Listing, **_: Any) -> ListingImages:
    """Decoding without files: one 1-pixel image a distinct photo (at most MAX_PHOTOS)."""
    return ListingImages(paths=list(listing.images), images=[PIXEL] * photo_count(listing))


class CountingPool:
    """A thread pool that records, at each submission, the listings and photos submitted and not yet taken."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(4)
        self.submitted: list[Listing] = []
        self.taken = 0
        self.peaks: list[tuple[int, int]] = []
        self._broken = False

    def submit(self, fn: Any, listing: Listing, **kwargs: Any) -> Future[ListingImages]:
        self.submitted.append(listing)
        ahead = self.submitted[self.taken:]
        self.peaks.append((len(ahead), sum(photo_count(item) for item in ahead)))
        return self.pool.submit(fn, listing, **kwargs)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _decode_all(photos: list[int], in_flight: int, photos_in_flight: int | None) -> tuple[list[str], CountingPool]:
    decoder = Decoder(0, min_side=1, max_side=8, max_pixels=None, in_flight=in_flight,
                      photos_in_flight=photos_in_flight, decode=_fake_decode)
    pool = CountingPool()
    decoder.pool = pool  # type: ignore[assignment]
    order = []
    try:
        for listing, decoded in decoder.map([_listing(i, n) for i, n in enumerate(photos)]):
            pool.taken += 1
            assert len(decoded.images) == photo_count(listing)
            order.append(listing.listing_id)
    finally:
        decoder.close()
    return order, pool


@pytest.mark.parametrize("photos, in_flight, photos_in_flight, max_listings, max_photos", [
    ([1] * 40, 8, None, 8, 8),             # listings bound only, as before
    ([1] * 40, 8, 32, 8, 8),               # one-photo listings: the listing bound is the one reached
    ([5] * 40, 8, 32, 6, 30),              # five-photo listings: the photo bound
    ([50] * 64, 64, 128, 2, 100),          # the crafted case: 2 listings of 50 in flight, not 64
    ([3, 200, 3, 3], 8, 10, 2, 50),        # one listing over the bound alone (its 200 names count as MAX_PHOTOS)
    ([60, 60, 1, 60], 4, 10, 1, 50),       # each over the bound: one at a time, no deadlock
    ([4, 4, 4, 4, 4], 8, 10, 2, 8),
])
def test_what_is_in_flight_is_bounded_in_listings_and_photos(photos, in_flight, photos_in_flight, max_listings,
                                                             max_photos):
    order, pool = _decode_all(photos, in_flight, photos_in_flight)
    assert order == [f"L{i}" for i in range(len(photos))]  # every listing, in order
    assert max(n for n, _ in pool.peaks) == max_listings
    assert max(p for _, p in pool.peaks) == max_photos


@pytest.mark.parametrize("names, expected", [
    (1, 1), (5, 5), (MAX_PHOTOS, MAX_PHOTOS), (MAX_PHOTOS + 1, MAX_PHOTOS), (10_000, MAX_PHOTOS),
])
def test_photo_count_is_the_decoded_photos_at_most(names, expected):
    assert photo_count(_listing(0, names)) == expected


def test_photo_count_counts_a_file_named_twice_once():
    assert photo_count(Listing(images=(Path("a.jpg"), Path("b.jpg"), Path("a.jpg")))) == 2


def test_the_scans_decoded_photos_not_yet_checked_stay_bounded_with_a_slow_checker():
    """The scan's own decoder and batching: photos decoded and not yet checked, at the peak, for 64 rows of 50."""
    batch_size = 32
    detector = SimpleNamespace(index=SimpleNamespace(embedder=SimpleNamespace(input_size=1)), max_side=8,
                               max_pixels=None)
    decoder = scan_decoder(detector, 0, batch_size)  # type: ignore[arg-type]
    held = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def decode(listing: Listing, **kwargs: Any) -> ListingImages:
        out = _fake_decode(listing, **kwargs)
        with lock:
            held["now"] += len(out.images)
            held["peak"] = max(held["peak"], held["now"])
        return out

    decoder.decode = decode
    decoder.pool = ThreadPoolExecutor(4)  # type: ignore[assignment]
    checked = 0
    try:
        for batch in batches(decoder.map([_listing(i, 50) for i in range(64)]), batch_size):
            time.sleep(0.005)  # a slow checker: the decoding runs ahead as far as it is let
            with lock:
                held["now"] -= sum(len(decoded.images) for _, decoded in batch)
            checked += len(batch)
    finally:
        decoder.close()
    assert checked == 64
    # in flight at most PHOTOS_AHEAD_BATCHES x batch_size photos, plus the listing being batched and checked
    assert held["peak"] <= PHOTOS_AHEAD_BATCHES * batch_size + MAX_PHOTOS
