"""Checking an index's files against its manifest without reading every byte at every load: file stamps.

Hashing the files of a 10^6-photo index (about 11 GB) takes seconds when they are in the page cache and half a
minute when they come from disk. After a file's hash matched its manifest checksum, its *stamp* is recorded:
``st_dev``, ``st_ino``, ``st_size``, ``st_mtime_ns`` and ``st_ctime_ns``, taken with ``fstat`` before and after
hashing (when they differ, the file changed while it was read, and no stamp is kept). A later load whose file
has the same stamp, for the same checksum, skips hashing it. Rewriting a file in place changes its ctime, which
no user can set back (restoring the mtime with ``os.utime`` is not enough); replacing or copying it changes the
inode or the device as well. A file changed less than :data:`SETTLE_NS` before its hash began is not stamped,
so that a change within the same tick of the file system's clock cannot keep its times (git's "racy" entries).

What a stamp does not catch: damage that changes no stamp, such as bit rot on the disk, or a tool that
rewrites a file and resets the clock. ``knockoff index verify PATH`` and ``ReferenceIndex.load(...,
verify="full")`` hash every file whatever the stamps say. Checksums, and so stamps, guard against damaged or
half-copied files, not against an adversary who can write the index's files (or the user's cache).

Stamps live outside the index folder, which may be read-only or shared between machines: one small JSON file
per index folder (keyed by its real path) in ``$XDG_CACHE_HOME/knockoff/index-stamps`` (default
``~/.cache/knockoff/index-stamps``; ``$KNOCKOFF_STAMP_DIR`` overrides it), written atomically (a temporary file, then ``os.replace``), so that two
processes loading at once leave one whole file or the other. Where they cannot be read or written, every load
hashes every file, and says so in the log. The manifest itself is always read and validated: a stamp only
stands for the hash of a file the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from knockoff.errors import ConfigError, IndexCorruptError
from knockoff.match.manifest import hash_checked

log = logging.getLogger(__name__)

STORE_VERSION = 1
SETTLE_NS = 2_000_000_000
"""A file whose mtime or ctime is less than this (2 s) before its hash began is not stamped: a change in the same
tick of the file system's clock (or of a file server's clock a little behind) could keep the same times."""
PRUNE_AFTER_S = 60 * 86_400
"""Stamp files not written for this long (60 days) are removed when another is written (indexes deleted since)."""
MODES = ("stamps", "full", "none")
_STAMP_FIELDS = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def verify_mode(verify: bool | str) -> str:
    """``ReferenceIndex.load``'s ``verify`` as a mode: True or "stamps" (hash the files whose stamps changed),
    "full" (hash every file), False or "none" (hash nothing)."""
    if verify is True:
        return "stamps"
    if verify is False:
        return "none"
    if isinstance(verify, str) and verify in MODES:
        return verify
    raise ConfigError(f"verify must be True, False, 'full', 'stamps' or 'none', got {verify!r}")


def stamp_dir() -> Path:
    """Where stamps are kept: ``$KNOCKOFF_STAMP_DIR`` when set, else ``$XDG_CACHE_HOME/knockoff/index-stamps``
    (default ``~/.cache/knockoff/index-stamps``)."""
    if os.environ.get("KNOCKOFF_STAMP_DIR"):
        return Path(os.environ["KNOCKOFF_STAMP_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "knockoff" / "index-stamps"


def _stamp(st: os.stat_result) -> list[int]:
    return [int(getattr(st, name)) for name in _STAMP_FIELDS]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class IndexCheck:
    """How a load checked the index's files against its manifest.

    ``mode``: "stamps", "full" or "none" (see :func:`verify_mode`); ``hashed``: the files hashed now;
    ``unchanged``: the files not hashed because their stamps showed them unchanged since a full check (the
    oldest such check at ``checked_at``, ISO 8601 UTC); ``stamps``: the stamp file used, or why none could be
    (``stamp_problem``); ``seconds``: the time the check took.
    """

    mode: str
    hashed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    checked_at: str | None = None
    stamps: str | None = None
    stamp_problem: str | None = None
    seconds: float = 0.0
    at: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"IndexCheck.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.unchanged and self.checked_at is None:
            raise ConfigError("IndexCheck: files taken as unchanged need the time of their full check")

    def describe(self) -> str:
        """In words: "hashed now", "unchanged since a full check at <time>, by file stamps", or a mix."""
        if self.mode == "none":
            return "checksums not checked (verify=False)"
        if not self.unchanged:
            return f"hashed now ({len(self.hashed)} files)"
        since = f"unchanged since a full check at {self.checked_at}, by file stamps"
        if not self.hashed:
            return f"{since} ({len(self.unchanged)} files; `knockoff index verify` hashes them all)"
        return f"{len(self.hashed)} files hashed now ({', '.join(self.hashed)}), {len(self.unchanged)} {since}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "summary": self.describe(), "hashed": list(self.hashed),
                "unchanged": list(self.unchanged), "checked_at": self.checked_at, "stamps": self.stamps,
                "stamp_problem": self.stamp_problem, "seconds": round(self.seconds, 3), "at": self.at}


def _store_path(root: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return stamp_dir() / f"{key}.json"


def _read_store(path: Path, root: Path) -> dict[str, Any]:
    """The stamps recorded for ``root`` by file name ({} when none, or when the file is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        log.info("%s: index stamps unreadable (%s); hashing the index files", path, exc)
        return {}
    ok = (isinstance(data, dict) and data.get("version") == STORE_VERSION
          and data.get("index") == os.path.realpath(root) and isinstance(data.get("files"), dict))
    return data["files"] if ok else {}


def _entry_matches(entry: Any, expected: str, st: os.stat_result) -> bool:
    return (isinstance(entry, dict) and entry.get("checksum") == expected and entry.get("stamp") == _stamp(st)
            and isinstance(entry.get("checked_at"), str))


def _write_store(path: Path, root: Path, files: dict[str, Any]) -> str | None:
    """Write the stamps atomically; None when done, else why not (logged)."""
    data = {"version": STORE_VERSION, "index": os.path.realpath(root), "files": files}
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(data, indent=1))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        problem = f"cannot write index stamps into {path.parent} ({exc.strerror or exc})"
        log.warning("%s: %s; every load of this index hashes all its files", root, problem)
        return problem
    _prune(path)
    return None


def _touch(store: Path) -> None:
    """Mark a stamp file as used (so that :func:`_prune` keeps it)."""
    try:
        os.utime(store)
    except OSError:
        pass


def _prune(written: Path) -> None:
    """Remove stamp files not written for :data:`PRUNE_AFTER_S` (their index is most likely gone)."""
    limit = time.time() - PRUNE_AFTER_S
    try:
        for other in written.parent.glob("*.json"):
            if other != written and other.stat().st_mtime < limit:
                other.unlink(missing_ok=True)
    except OSError:
        pass


def _hash_one(root: Path, name: str, expected: str, started_ns: int) -> dict[str, Any] | None:
    """Hash a file against its checksum (IndexCorruptError naming it when it differs); its new stamp entry, or
    None when it may not be stamped (changed while hashed, or too recently)."""
    matches, st = hash_checked(root / name, expected)
    if not matches:
        raise IndexCorruptError(f"{root}: {name} is damaged (its checksum differs from the manifest)")
    if st is None or max(st.st_mtime_ns, st.st_ctime_ns) > started_ns - SETTLE_NS:
        return None
    return {"checksum": expected, "stamp": _stamp(st), "checked_at": _now()}


def check_files(root: Path, checksums: dict[str, str], mode: str) -> IndexCheck:
    """Check the files a manifest lists (name -> checksum) as ``mode`` says; raises
    :class:`~knockoff.errors.IndexCorruptError` naming a missing or damaged file."""
    started, started_ns = time.perf_counter(), time.time_ns()
    if mode == "none":
        return IndexCheck("none")
    store = _store_path(root)
    recorded = _read_store(store, root) if mode == "stamps" else {}
    kept: dict[str, Any] = {}
    hashed, unchanged = [], []
    for name, expected in checksums.items():
        file = root / name
        try:
            st = os.stat(file)
        except OSError:
            st = None
        if st is None or not file.is_file():
            raise IndexCorruptError(f"{root}: file {name} is missing")
        if _entry_matches(recorded.get(name), expected, st):
            kept[name] = recorded[name]
            unchanged.append(name)
            continue
        entry = _hash_one(root, name, expected, started_ns)
        hashed.append(name)
        if entry is not None:
            kept[name] = entry
    problem = None
    if hashed:
        problem = _write_store(store, root, kept)
    else:
        _touch(store)
    oldest = min((kept[name]["checked_at"] for name in unchanged), default=None)
    check = IndexCheck(mode, tuple(hashed), tuple(unchanged), oldest, str(store), problem,
                       time.perf_counter() - started)
    log.info("%s: index files %s, in %.1f s", root, check.describe(), check.seconds)
    return check
