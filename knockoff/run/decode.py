"""Decoding listing photos in worker processes, in submission order, with a bounded number in flight.

What is in flight is bounded in listings and in photos: a listing may name up to
:data:`~knockoff.decide.detector.MAX_PHOTOS` photos, so a bound in listings alone let a few crafted rows of 50
large photos each hold gigabytes of decoded pixels. A listing whose photos alone exceed the photo bound is still
decoded, alone.

Workers die with the scan: on Linux the kernel kills a worker when its parent dies (``PR_SET_PDEATHSIG``),
and everywhere a watchdog thread in each worker exits when the parent process is gone, so that a scan killed
with SIGKILL leaves no decoding worker (nor the resource tracker, which ends when the workers do). Workers
ignore SIGINT: Ctrl-C stops the scan in the main process, which shuts the pool down.

A worker that dies while decoding (killed, out of memory, a crash in an image library) breaks the pool: the
pool is started again, the listings that were in flight are decoded again one at a time, and the one that
kills a worker alone is recorded as an error; the scan goes on.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import MAX_PHOTOS, ListingImages, decode_listing
from knockoff.errors import ConfigError

log = logging.getLogger(__name__)

WORKER_DIED = ("the decoding worker died while decoding this listing (killed, out of memory, or a crash in an "
               "image library); its photos were not judged")
_PR_SET_PDEATHSIG = 1
_WATCH_S = 1.0


def default_workers() -> int:
    """Decoding processes by default: the CPU count minus one (the main process embeds), at least one."""
    return max((os.cpu_count() or 1) - 1, 1)


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: ignore SIGINT, and end when the parent process ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError) as exc:  # pragma: no cover - no prctl: the watchdog still runs
            log.debug("prctl(PR_SET_PDEATHSIG) not available: %s", exc)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="knockoff-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(_WATCH_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def photo_count(listing: Listing) -> int:
    """The photos of ``listing`` that decoding may hold at once (each file once, at most ``MAX_PHOTOS``; at
    least 1, so that listings without photos are bounded too)."""
    return max(min(len(dict.fromkeys(listing.images)), MAX_PHOTOS), 1)


def _nothing() -> None:
    """A task that only makes the pool spawn a worker."""


def _shut_down(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without hanging: a broken pool's live workers are killed first.

    When a worker dies, the standard library terminates the workers it knows of and then joins them all; a worker
    it spawned meanwhile is joined without being told to stop, which blocks ``shutdown`` forever.
    """
    if getattr(pool, "_broken", False):
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


class Decoder:
    """Decodes listings in ``workers`` processes (0: in this process), yielding them in submission order.

    At most ``in_flight`` listings and ``photos_in_flight`` photos (:func:`photo_count`, default: no bound) are
    submitted and not yet taken; a listing with more photos than that is submitted when nothing else is.
    """

    def __init__(self, workers: int, *, min_side: int, max_side: int, max_pixels: int | None, in_flight: int,
                 photos_in_flight: int | None = None, decode: Callable[..., ListingImages] | None = None):
        if workers < 0:
            raise ConfigError(f"workers must be >= 0, got {workers}")
        self.workers = workers
        self.kwargs: dict[str, Any] = {"min_side": min_side, "max_side": max_side, "max_pixels": max_pixels}
        self.in_flight = max(in_flight, 1)
        self.photos_in_flight = None if photos_in_flight is None else max(photos_in_flight, 1)
        self.decode = decode or decode_listing
        self.restarts = 0
        self.pool = self._start() if workers > 0 else None

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                   initializer=_die_with_parent, initargs=(os.getpid(),))
        # Every worker is spawned now, not on demand by a later submit(): in CPython 3.11 a worker spawned by
        # submit() while the pool's manager thread handles a dead worker races with it ("dictionary changed size
        # during iteration" in that thread, seen in CI).
        for _ in range(self.workers):
            pool.submit(_nothing)
        return pool

    def _restart(self) -> None:
        if self.pool is not None:
            _shut_down(self.pool)
        self.restarts += 1
        self.pool = self._start()

    def _submit(self, listing: Listing) -> Future[ListingImages]:
        if self.pool is None:
            self.pool = self._start()
        decode: Callable[..., ListingImages] = self.decode
        return self.pool.submit(decode, listing, **self.kwargs)

    def _submit_or_broken(self, listing: Listing) -> Future[ListingImages]:
        """Submit; a pool that broke before this submission gives a future holding that error."""
        try:
            return self._submit(listing)
        except BrokenProcessPool as exc:
            failed: Future[ListingImages] = Future()
            failed.set_exception(exc)
            return failed

    def map(self, listings: Iterable[Listing]) -> Iterator[tuple[Listing, ListingImages]]:
        """Decode ``listings``; yields ``(listing, decoded)`` in their order."""
        if self.pool is None:
            for listing in listings:
                yield listing, self.decode(listing, **self.kwargs)
            return
        pending: deque[tuple[Listing, Future[ListingImages]]] = deque()
        for listing in listings:
            while pending and self._full(pending, photo_count(listing)):
                yield from self._take(pending)
            pending.append((listing, self._submit_or_broken(listing)))
        while pending:
            yield from self._take(pending)

    def _full(self, pending: deque[tuple[Listing, Future[ListingImages]]], photos: int) -> bool:
        """Whether a listing of ``photos`` photos must wait for the oldest in flight to be taken."""
        if len(pending) >= self.in_flight:
            return True
        if self.photos_in_flight is None:
            return False
        return sum(photo_count(listing) for listing, _ in pending) + photos > self.photos_in_flight

    def _take(self, pending: deque[tuple[Listing, Future[ListingImages]]]) -> Iterator[tuple[Listing, ListingImages]]:
        listing, future = pending.popleft()
        try:
            decoded = future.result()
        except BrokenProcessPool:
            decoded = None
        if decoded is not None:
            yield listing, decoded
            return
        suspects = [listing] + [item for item, _ in pending]
        pending.clear()
        log.warning("a decoding worker died; decoding the %d listings in flight again, one at a time", len(suspects))
        self._restart()
        for item in suspects:
            yield item, self._decode_alone(item)

    def _decode_alone(self, listing: Listing) -> ListingImages:
        try:
            return self._submit(listing).result()
        except BrokenProcessPool:
            log.warning("%s: %s", listing.listing_id, WORKER_DIED)
            self._restart()
            return ListingImages(problems=[WORKER_DIED], skipped=[str(p) for p in listing.images])

    def close(self) -> None:
        """Stop the workers (pending work is cancelled)."""
        if self.pool is not None:
            _shut_down(self.pool)
            self.pool = None
