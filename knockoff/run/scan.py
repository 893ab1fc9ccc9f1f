"""Batch scanning of a folder of listing photos: streaming, bounded memory, resumable.

Photos are decoded in worker processes (:mod:`knockoff.run.decode`) while the main process embeds them in
batches and decides each listing (:mod:`knockoff.run.batch`). Every decided listing is appended to
``results.jsonl`` and synced (:mod:`knockoff.run.store`), so that a scan killed at any moment (even with
SIGKILL) and started again on the same output folder skips what is done and loses nothing. What is decided
again on a rerun, and what the input held that is not a listing, is planned in :mod:`knockoff.run.job`.

``backend="ray"`` runs the same job on Ray (:mod:`knockoff.run.ray_scan`, imported only then).
"""

from __future__ import annotations

from pathlib import Path

from knockoff.decide.detector import Detector
from knockoff.decide.policy import Policy
from knockoff.errors import ConfigError
from knockoff.match.index import ReferenceIndex
from knockoff.run.batch import batches
from knockoff.run.decode import Decoder, default_workers
from knockoff.run.job import ScanJob, ScanSummary, load_index, open_job
from knockoff.run.progress import Progress
from knockoff.run.store import RESULTS_FILE
from knockoff.run.walk import collect_listings

BACKENDS = ("local", "ray")

__all__ = ["BACKENDS", "RESULTS_FILE", "ScanSummary", "collect_listings", "scan"]


def scan(
    folder: str | Path,
    index: ReferenceIndex | str | Path,
    out_dir: str | Path,
    *,
    policy: Policy | None = None,
    listings_csv: str | Path | None = None,
    workers: int | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
    detector: Detector | None = None,
    backend: str = "local",
    address: str | None = None,
) -> ScanSummary:
    """Scan a folder of listing photos into ``out_dir/results.jsonl``; resumable; returns a summary.

    ``backend``: ``"local"`` (worker processes on this machine) or ``"ray"`` (Ray Data, on the cluster at
    ``address`` or a local Ray instance; needs ``pip install 'knockoff[ray]'``). Both write the same lines.
    ``workers``: decoding processes (default: CPU count - 1, 0 decodes in this process).
    ``progress``: a progress bar on stderr (default: when stderr is a terminal); otherwise a log line
    (logger ``knockoff.run.progress``) every 10 s or 1,000 listings. ``detector``: its index and policy are
    used instead of ``index`` and ``policy``.
    Raises :class:`~knockoff.errors.NothingToScanError` when the folder holds no listing,
    :class:`~knockoff.errors.OutputLockedError` when another scan writes to ``out_dir``.
    """
    if backend == "ray":
        from knockoff.run.ray_scan import scan_with_ray

        return scan_with_ray(folder, index, out_dir, policy=policy, listings_csv=listings_csv, workers=workers,
                             batch_size=batch_size, progress=progress, detector=detector, address=address)
    if backend != "local":
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    detector = detector or Detector(load_index(index), policy)
    with open_job(folder, detector, out_dir, listings_csv) as job:
        _run(job, detector, default_workers() if workers is None else workers, batch_size, progress)
        return job.summary()


#: photos decoded ahead of the embedding, in batches: with listings of 1-2 photos the bound in listings
#: (``2 x batch_size``) is the one reached, as before; it bounds a crafted folder of 50-photo listings to a few of
#: them (at 1024 px, about 3 MB a photo) instead of ``2 x batch_size`` of them (13 GB at 64)
PHOTOS_AHEAD_BATCHES = 4


def scan_decoder(detector: Detector, workers: int, batch_size: int) -> Decoder:
    """The scan's decoder: ``2 x batch_size`` listings and ``PHOTOS_AHEAD_BATCHES x batch_size`` photos in flight."""
    return Decoder(workers, min_side=detector.index.embedder.input_size, max_side=detector.max_side,
                   max_pixels=detector.max_pixels, in_flight=2 * batch_size,
                   photos_in_flight=PHOTOS_AHEAD_BATCHES * batch_size)


def _run(job: ScanJob, detector: Detector, workers: int, batch_size: int, progress: bool | None) -> None:
    bar = Progress(len(job.todo), bar=progress)
    decoder = scan_decoder(detector, workers, batch_size)
    try:
        for batch in batches(decoder.map(job.todo), batch_size):
            job.record(detector.check_decoded(batch))
            bar.advance(len(batch))
    finally:
        decoder.close()
        bar.close()
