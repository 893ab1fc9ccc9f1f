"""Batch scanning of a folder of listing photos: streaming, bounded memory, resumable.

Photos are decoded in worker processes while the main process embeds them in batches and decides each
listing. Every decided listing is appended to ``results.jsonl`` and flushed, so that a scan killed at any
moment (even with SIGKILL) and started again on the same output directory skips what is done and loses
nothing; a torn last line is cut off before appending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import numpy as np

from knockoff.catalog.readers import Listing, listings_from_images, read_listings
from knockoff.decide.detector import Detector, ListingImages, Verdict, decode_listing, error_verdict
from knockoff.errors import CatalogError, ConfigError, ScanError
from knockoff.catalog.images import iter_image_files
from knockoff.match.index import ReferenceIndex
from knockoff.decide.policy import Policy

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
META_FILE = "scan.json"


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did: counts over the whole results file, and what this run added."""

    out_dir: Path
    total: int
    already_done: int
    decided: int
    counts: dict[str, int]
    bad_rows: tuple[str, ...] = ()
    seconds: float = 0.0
    engine: str = ""

    @property
    def suspects(self) -> int:
        return self.counts.get("suspect", 0)

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir), "total": self.total, "already_done": self.already_done,
            "decided": self.decided, "counts": self.counts, "bad_rows": list(self.bad_rows),
            "seconds": round(self.seconds, 3), "engine": self.engine,
            "listings_per_second": round(self.decided / self.seconds, 2) if self.seconds > 0 else None,
        }


@dataclass
class _Progress:
    total: int
    enabled: bool
    bar: Any = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last_log: float = 0.0

    def __post_init__(self) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="listing", dynamic_ncols=True, file=sys.stderr)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last_log >= 30 or self.done == self.total:
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("scanned %d/%d listings (%.1f/s, about %.0f s left)", self.done, self.total, rate, left)
            self.last_log = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def collect_listings(folder: str | Path, listings_csv: str | Path | None = None) -> tuple[list[Listing], list[str]]:
    """The listings of a folder: rows of ``listings.csv`` when present, else one listing per photo.

    Returns the listings and one line for each bad row of the listings file (bad rows are skipped).
    """
    root = Path(folder)
    csv_path = Path(listings_csv) if listings_csv else root / "listings.csv"
    if listings_csv and not csv_path.is_file():
        raise CatalogError(csv_path, "listings file not found")
    if csv_path.is_file():
        problems: list[CatalogError] = []
        rows = read_listings(csv_path, problems=problems)
        return [row.listing for row in rows], [str(p) for p in problems]
    return listings_from_images(iter_image_files(root), root), []


def _open_results(path: Path) -> tuple[set[str], Counter[str]]:
    """Read what is already decided, and cut off a torn last line left by a killed scan."""
    done: set[str] = set()
    counts: Counter[str] = Counter()
    if not path.exists():
        return done, counts
    with path.open("rb+") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            log.warning("%s: cutting off a torn last line left by an interrupted scan", path)
            handle.truncate(keep)
    for number, line in enumerate(data[:keep].splitlines(), start=1):
        try:
            row = json.loads(line)
            listing_id = row["listing_id"]
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s, line %d: not a result line; ignored", path, number)
            continue
        if listing_id not in done:
            done.add(listing_id)
            counts[row.get("verdict", "error")] += 1
    return done, counts


def _load_index(index: ReferenceIndex | str | Path) -> ReferenceIndex:
    return index if isinstance(index, ReferenceIndex) else ReferenceIndex.load(Path(index))


def start_output(out_dir: Path, index: ReferenceIndex, folder: str | Path) -> None:
    """Record which index and folder an output directory holds results of; refuse to mix two."""
    ids = np.array(sorted(index.references), dtype=np.int64)
    identity = {"embedder": index.embedder.settings(), "references": hashlib.sha256(ids.tobytes()).hexdigest(),
                "vectors": index.vector_count}
    _check_meta(out_dir, {"index": identity, "folder": str(Path(folder).resolve()), "engine": index.embedder.name})


def _check_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    """Refuse to resume into an output directory that holds results of another index or policy."""
    path = out_dir / META_FILE
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            before = None
        if isinstance(before, dict) and before.get("index") != meta["index"]:
            raise ScanError(
                f"{out_dir} holds results of a scan with another index or policy; use a new output directory"
            )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class _Decoder:
    """Decodes listings in worker processes with a bounded number in flight, in submission order."""

    def __init__(self, workers: int, min_side: int, max_side: int, max_pixels: int | None, in_flight: int):
        self.kwargs = {"min_side": min_side, "max_side": max_side, "max_pixels": max_pixels}
        self.in_flight = max(in_flight, 1)
        self.pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) if workers > 0 else None
        )

    def map(self, listings: Iterable[Listing]) -> Iterator[tuple[Listing, ListingImages]]:
        if self.pool is None:
            for listing in listings:
                yield listing, decode_listing(listing, **self.kwargs)
            return
        pending: deque[tuple[Listing, Future[ListingImages]]] = deque()
        for listing in listings:
            pending.append((listing, self.pool.submit(decode_listing, listing, **self.kwargs)))
            if len(pending) >= self.in_flight:
                head, future = pending.popleft()
                yield head, future.result()
        while pending:
            head, future = pending.popleft()
            yield head, future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


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
    engine: str = "local",
    address: str | None = None,
) -> ScanSummary:
    """Scan a folder of listing photos into ``out_dir/results.jsonl``; resumable; returns a summary.

    ``engine``: ``"local"`` (worker processes on this machine) or ``"ray"`` (Ray Data, on the cluster at
    ``address`` or a local Ray instance; needs ``pip install 'knockoff[ray]'``). Both write the same lines.
    ``workers``: decoding processes (default: CPU count - 1, 0 decodes in this process).
    ``progress``: a progress bar on stderr (default: when stderr is a terminal); otherwise a log line
    every 30 s.
    """
    if engine == "ray":
        from knockoff.run.ray_scan import scan_with_ray

        return scan_with_ray(folder, index, out_dir, policy=policy, listings_csv=listings_csv, workers=workers,
                             batch_size=batch_size, progress=progress, detector=detector, address=address)
    if engine != "local":
        raise ConfigError(f"engine must be 'local' or 'ray', got {engine!r}")
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = _load_index(index)
    detector = detector or Detector(index, policy)
    start_output(out, index, folder)

    listings, bad_rows = collect_listings(folder, listings_csv)
    results_path = out / RESULTS_FILE
    done, counts = _open_results(results_path)
    already = len(done)
    todo = [listing for listing in listings if listing.listing_id not in done]
    workers = max((os.cpu_count() or 1) - 1, 1) if workers is None else workers
    progress_on = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(total=len(todo), enabled=progress_on)
    decoder = _Decoder(workers, index.embedder.input_size, detector.max_side, detector.max_pixels,
                       in_flight=2 * batch_size)
    decided = 0
    try:
        with results_path.open("a", encoding="utf-8") as sink:
            batch: list[tuple[Listing, ListingImages]] = []
            images_in_batch = 0
            for listing, loaded in decoder.map(todo):
                batch.append((listing, loaded))
                images_in_batch += len(loaded.images)
                if images_in_batch >= batch_size:
                    decided += _decide_batch(detector, batch, sink, counts)
                    bar.advance(len(batch))
                    batch, images_in_batch = [], 0
            if batch:
                decided += _decide_batch(detector, batch, sink, counts)
                bar.advance(len(batch))
    finally:
        decoder.close()
        bar.close()
    for line in bad_rows:
        log.warning("listings file: %s", line)
    return ScanSummary(out, already + decided, already, decided, dict(counts), tuple(bad_rows),
                       time.monotonic() - started, index.embedder.name)


def decide_batch(detector: Detector, batch: Sequence[tuple[Listing, ListingImages]]) -> list[Verdict]:
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


def append_results(verdicts: Sequence[Verdict], sink: IO[str], counts: Counter[str]) -> None:
    """Append one JSON line per verdict, flushed and synced, so that a kill loses at most a torn last line."""
    for verdict in verdicts:
        counts[verdict.verdict] += 1
    sink.write("".join(json.dumps(v.to_dict(), ensure_ascii=False) + "\n" for v in verdicts))
    sink.flush()
    os.fsync(sink.fileno())


def _decide_batch(
    detector: Detector, batch: list[tuple[Listing, ListingImages]], sink: IO[str], counts: Counter[str]
) -> int:
    append_results(decide_batch(detector, batch), sink, counts)
    return len(batch)
