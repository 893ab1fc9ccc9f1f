"""One scan's job, shared by the local and the Ray backends: what to decide, where it goes, the summary.

:func:`open_job` reads the folder (:mod:`knockoff.run.walk`), opens the output folder's results store
(:mod:`knockoff.run.store`: lock, resume), and plans the run: a listing is decided again when it is new,
when its last verdict was an error, when its row or photos changed since (input fingerprint), or when the
policy changed (policy fingerprint). Resuming with another index is refused. The skipped inputs (bad rows,
unlisted photos, missing photos) are written to ``skipped.jsonl``. How the index's files were checked when it was
loaded (hashed now, or unchanged since a full check by their file stamps: ``ReferenceIndex.checked``) is recorded
beside the index's identity in ``scan.json`` (``index_check``) and in the summary. A run that fails before writing any
result leaves no output folder behind.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import Detector, Verdict
from knockoff.match.index import ReferenceIndex
from knockoff.run.store import RESULTS_FILE, SKIPPED_FILE, ResultsStore, StoredResult, escape_text
from knockoff.run.walk import Collected, collect_listings, input_fingerprint

NEEDS_A_PERSON = ("suspect", "review")
"""Verdicts a person must look at (the CLI exits 1 when there is one)."""


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did: counts over the whole results file, and what this run added and why.

    ``redecided``: listings decided again, by reason (``changed``: row or photos; ``policy``; ``error``:
    retried; ``old_format``: a line without fingerprint). ``unlisted_photos``: photos in the folder that the
    listings file does not name; ``missing_photos``: photos named by a row that do not exist (the listing is
    judged on the others, or is an error). ``stale``: results of listings no longer in the input (kept).
    """

    out_dir: Path
    total: int
    already_done: int
    decided: int
    counts: dict[str, int]
    bad_rows: tuple[str, ...] = ()
    seconds: float = 0.0
    engine: str = ""
    redecided: dict[str, int] = field(default_factory=dict)
    unlisted_photos: tuple[str, ...] = ()
    missing_photos: tuple[str, ...] = ()
    stale: int = 0
    index_check: str = ""

    @property
    def suspects(self) -> int:
        return self.counts.get("suspect", 0)

    @property
    def needs_person(self) -> int:
        """Listings a person must look at: suspects and review verdicts."""
        return sum(self.counts.get(v, 0) for v in NEEDS_A_PERSON)

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    @property
    def skipped_path(self) -> Path:
        return self.out_dir / SKIPPED_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir), "total": self.total, "already_done": self.already_done,
            "decided": self.decided, "counts": self.counts, "bad_rows": list(self.bad_rows),
            "seconds": round(self.seconds, 3), "engine": self.engine, "redecided": dict(self.redecided),
            "unlisted_photos": len(self.unlisted_photos), "missing_photos": len(self.missing_photos),
            "stale": self.stale, "needs_person": self.needs_person, "index_check": self.index_check,
            "listings_per_second": round(self.decided / self.seconds, 2) if self.seconds > 0 else None,
        }


def load_index(index: ReferenceIndex | str | Path) -> ReferenceIndex:
    """An index object, loading it from its folder when given a path: memory-mapped (a scan only reads it), so
    that a 10^6-photo index takes about 1 GB resident instead of about 5 GB, and processes share its pages."""
    return index if isinstance(index, ReferenceIndex) else ReferenceIndex.load(Path(index), mmap=True)


def index_identity(index: ReferenceIndex) -> dict[str, Any]:
    """What identifies an index for a results folder: embedder settings, reference ids, vector count."""
    ids = np.array(sorted(index.references), dtype=np.int64)
    return {"embedder": index.embedder.settings(), "references": hashlib.sha256(ids.tobytes()).hexdigest(),
            "vectors": index.vector_count}


def policy_key(detector: Detector) -> str:
    """A digest of everything besides the input that changes a verdict: the policy and the detector's limits."""
    settings = {
        "policy": detector.policy.to_dict(), "max_side": detector.max_side, "max_pixels": detector.max_pixels,
        "verifier": type(detector.verifier).__name__ if detector.verifier is not None else None,
        "keypoint_shortlist": detector.keypoint_shortlist,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]


def redecide_reason(stored: StoredResult | None, input_key: str, policy: str) -> str | None:
    """Why a listing must be decided (again), or None when its stored verdict stands."""
    if stored is None:
        return "new"
    if stored.verdict == "error":
        return "error"
    if stored.input is None or stored.policy is None:
        return "old_format"
    if stored.input != input_key:
        return "changed"
    if stored.policy != policy:
        return "policy"
    return None


@dataclass
class ScanJob:
    """A planned scan: the listings to decide, and the store their verdicts go to."""

    store: ResultsStore
    collected: Collected
    todo: list[Listing]
    input_keys: dict[str, str]
    policy: str
    already: int
    redecided: Counter[str]
    missing: list[tuple[str, Path]]
    engine: str
    started: float = field(default_factory=time.monotonic)
    decided: int = 0
    index_check: str = ""

    def record(self, verdicts: Sequence[Verdict]) -> None:
        """Append verdicts of listings of :attr:`todo` to the results."""
        self.store.append(verdicts, [self.input_keys[v.listing_id] for v in verdicts], self.policy)
        self.decided += len(verdicts)

    def summary(self) -> ScanSummary:
        current = {escape_text(listing.listing_id) for listing in self.collected.listings}
        return ScanSummary(
            self.store.out_dir, self.already + self.decided, self.already, self.decided, dict(self.store.counts()),
            self.collected.bad_rows, time.monotonic() - self.started, self.engine, dict(self.redecided),
            tuple(escape_text(str(p)) for p in self.collected.unlisted),
            tuple(escape_text(str(p)) for _, p in self.missing), len(set(self.store.results) - current),
            self.index_check,
        )


@contextmanager
def open_job(folder: str | Path, detector: Detector, out_dir: str | Path,
             listings_csv: str | Path | None = None) -> Iterator[ScanJob]:
    """Read the folder, open and lock the output folder, plan the run; close (and unlock) on leaving.

    When the run fails before any result is written into an output folder this job created, the folder is
    removed again.
    """
    started = time.monotonic()
    out = Path(out_dir)
    collected = collect_listings(folder, listings_csv, exclude=[out])
    checked = detector.index.checked
    store = ResultsStore.open(out, {"index": index_identity(detector.index), "folder": str(collected.root),
                                    "engine": detector.engine,
                                    **({"index_check": checked.to_dict()} if checked is not None else {})})
    try:
        job = _plan(store, collected, policy_key(detector), detector.engine, started)
        job.index_check = checked.describe() if checked is not None else ""
        yield job
    except BaseException:
        store.discard()
        raise
    store.close()


def _plan(store: ResultsStore, collected: Collected, policy: str, engine: str, started: float) -> ScanJob:
    todo: list[Listing] = []
    keys: dict[str, str] = {}
    missing: list[tuple[str, Path]] = []
    reasons, already = Counter[str](), 0
    for listing in collected.listings:
        key, absent = input_fingerprint(listing)
        missing.extend((listing.listing_id, path) for path in absent)
        reason = redecide_reason(store.results.get(escape_text(listing.listing_id)), key, policy)
        if reason is None:
            already += 1
            continue
        todo.append(listing)
        keys[listing.listing_id] = key
        if reason != "new":
            reasons[reason] += 1
    store.drop(escape_text(listing.listing_id) for listing in todo)
    store.write_skipped(_skipped_items(collected, missing))
    return ScanJob(store, collected, todo, keys, policy, already, reasons, missing, engine, started)


def _skipped_items(collected: Collected, missing: Sequence[tuple[str, Path]]) -> list[Mapping[str, Any]]:
    source = str(collected.listings_file or collected.root)
    items: list[Mapping[str, Any]] = [{"kind": "bad_row", "source": source, "problem": row}
                                      for row in collected.bad_rows]
    items += [{"kind": "unlisted_photo", "path": str(path), "problem": f"not named by any row of {source}"}
              for path in collected.unlisted]
    items += [{"kind": "missing_photo", "listing_id": listing_id, "path": str(path),
               "problem": "the photo named by this listing does not exist"} for listing_id, path in missing]
    return items
