"""The results store of a scan's output folder: ``results.jsonl``, appended, resumable, one writer at a time.

One JSON line per decided listing (:meth:`knockoff.Verdict.to_dict` plus ``"schema": 2`` and a
``"fingerprint"``: digests of the listing's input and of the policy that decided it). Lines are appended,
flushed and synced, so that a scan killed at any moment loses at most a torn last line, which is cut off
when the store is opened again. Lines written before the schema key existed (schema 1) are read as well.

The store holds a lock on the folder (:class:`knockoff.run.files.FolderLock`), refuses to write through
symbolic links, and refuses a folder that holds results of another index (``scan.json``).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.decide.detector import Verdict
from knockoff.errors import ScanError
from knockoff.run.files import LOCK_FILE, FolderLock, open_append, read_bytes, truncate, write_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
RESULTS_FILE = "results.jsonl"
META_FILE = "scan.json"
SKIPPED_FILE = "skipped.jsonl"


@dataclass(frozen=True)
class StoredResult:
    """What the store knows of a decided listing: its verdict and the fingerprints it was decided with."""

    listing_id: str
    verdict: str
    input: str | None = None
    policy: str | None = None
    schema: int = 1


def escape_text(text: str) -> str:
    """``text`` as valid UTF-8: the bytes of a file name that were not UTF-8 (which Python keeps as lone
    surrogates) become backslash escapes, e.g. ``caf\\xe9.jpg``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def escape_strings(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists) passed through :func:`escape_text`."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, Mapping):
        return {escape_text(str(k)): escape_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_strings(v) for v in value]
    return value


def result_line(verdict: Verdict, input_key: str, policy_key: str) -> str:
    """One line of ``results.jsonl`` for a verdict (valid UTF-8 whatever the file names)."""
    row = {"schema": SCHEMA_VERSION, **verdict.to_dict(), "fingerprint": {"input": input_key, "policy": policy_key}}
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(escape_strings(row), ensure_ascii=False)
    return text + "\n"


def parse_line(line: bytes) -> StoredResult | None:
    """A stored result from one line (schema 1 or 2), or None when the line is not a result."""
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("listing_id"), str):
        return None
    fingerprint = row.get("fingerprint")
    fingerprint = fingerprint if isinstance(fingerprint, dict) else {}
    schema = row.get("schema", 1)
    return StoredResult(row["listing_id"], str(row.get("verdict", "error")), fingerprint.get("input"),
                        fingerprint.get("policy"), schema if isinstance(schema, int) else 1)


class ResultsStore:
    """The results of one output folder. Open it with :meth:`open`; close it (or use ``with``) to unlock."""

    def __init__(self, out_dir: Path, *, created: bool = False):
        self.out_dir = out_dir
        self.path = out_dir / RESULTS_FILE
        self.created = created
        self.results: dict[str, StoredResult] = {}
        self.appended = 0
        self._lock = FolderLock(out_dir)
        self._sink: Any = None

    @classmethod
    def open(cls, out_dir: str | Path, identity: Mapping[str, Any]) -> ResultsStore:
        """Create the folder if needed, lock it, check that it holds results of the same ``identity``
        (refused otherwise), and read what is decided."""
        out = Path(out_dir)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        store = cls(out, created=created)
        try:
            store._lock.acquire()
            store._check_identity(dict(identity))
            store._read()
        except BaseException:
            store.discard()
            raise
        return store

    def _check_identity(self, identity: dict[str, Any]) -> None:
        path = self.out_dir / META_FILE
        data = read_bytes(path)
        try:
            before = json.loads(data) if data else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            before = None
        if isinstance(before, dict) and before.get("index") != identity.get("index"):
            raise ScanError(f"{self.out_dir} holds results of a scan with another index (another embedder or other "
                            "references); use a new output folder")
        write_atomic(path, json.dumps(escape_strings(identity), indent=1))

    def _read(self) -> None:
        data = read_bytes(self.path) or b""
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            log.warning("%s: cutting off a torn last line left by an interrupted scan", self.path)
            truncate(self.path, keep)
        for number, line in enumerate(data[:keep].splitlines(), start=1):
            stored = parse_line(line)
            if stored is None:
                log.warning("%s, line %d: not a result line; ignored", self.path, number)
                continue
            self.results[stored.listing_id] = stored  # the latest line of a listing wins

    def counts(self) -> Counter[str]:
        """Verdicts over every listing in the file (its latest line)."""
        return Counter(stored.verdict for stored in self.results.values())

    def drop(self, listing_ids: Iterable[str]) -> int:
        """Remove the lines of these listings (about to be decided again), atomically; returns how many."""
        drop = {i for i in listing_ids if i in self.results}
        if not drop:
            return 0
        kept = []
        for line in (read_bytes(self.path) or b"").splitlines(keepends=True):
            stored = parse_line(line)
            if stored is None or stored.listing_id not in drop:
                kept.append(line)
        write_atomic(self.path, b"".join(kept))
        for listing_id in drop:
            del self.results[listing_id]
        return len(drop)

    def append(self, verdicts: Sequence[Verdict], input_keys: Sequence[str], policy_key: str) -> None:
        """Append one line per verdict, flushed and synced, so that a kill loses at most a torn last line."""
        if self._sink is None:
            self._sink = open_append(self.path)
        lines = [result_line(v, key, policy_key) for v, key in zip(verdicts, input_keys, strict=True)]
        self._sink.write("".join(lines))
        self._sink.flush()
        os.fsync(self._sink.fileno())
        for verdict, key in zip(verdicts, input_keys):
            listing_id = escape_text(verdict.listing_id)
            self.results[listing_id] = StoredResult(listing_id, verdict.verdict, key, policy_key, SCHEMA_VERSION)
        self.appended += len(lines)

    def write_skipped(self, items: Sequence[Mapping[str, Any]]) -> Path:
        """Write ``skipped.jsonl``: what this scan's input held that is not a decided listing."""
        path = self.out_dir / SKIPPED_FILE
        rows = [{"schema": SCHEMA_VERSION, **escape_strings(dict(item))} for item in items]
        write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        return path

    def close(self) -> None:
        """Close the results file and release the folder's lock."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self._lock.release()

    def discard(self) -> None:
        """Close; and when this store created its folder and wrote no result, remove the folder again
        (a failed run leaves no output folder behind)."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self.created and self.appended == 0:
            for name in (RESULTS_FILE, META_FILE, SKIPPED_FILE, LOCK_FILE):
                if os.path.lexists(self.out_dir / name):
                    (self.out_dir / name).unlink()
        self._lock.release()
        if self.created and self.appended == 0:
            try:
                self.out_dir.rmdir()
            except OSError as exc:  # something else was put there meanwhile: leave it
                log.debug("%s: not removed (%s)", self.out_dir, exc)

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
