"""An index directory on disk: its manifest (validated field by field), checksums, and where one may be written.

Whatever a manifest holds, reading it raises :class:`~knockoff.errors.IndexCorruptError` with the directory
and the field, never a raw ``TypeError``/``KeyError``/``RecursionError``. An index is written only into a
new (or empty) folder or over an existing knockoff index that holds nothing but index files
(:func:`check_index_target`): never over a catalog or any other folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from knockoff.errors import IndexCorruptError, IndexPathError

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""2: reference metadata in columns (match/reftable.py); 1 had references.jsonl and is refused."""
CORE_FILES = ("index.faiss", "references_rows.npy", "references_price.npy", "references_text.npy", "brands.json")
"""Files every index has; the manifest's checksums must cover them."""
MANIFEST = "manifest.json"
_OLD_FILES = ("references.jsonl",)  # of format 1: an old index may be overwritten
MAX_MANIFEST_BYTES = 16 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_STAGING = re.compile(r"^\.(?P<name>.+)\.saving-(?P<pid>\d+)$")


CHECKSUM_PREFIX = "xxh3-128:"
"""How a manifest's checksums are written: the file's XXH3 128-bit hash. Checksums guard against damaged or
half-copied files, not against an adversary (who could rewrite the manifest beside them), so a
non-cryptographic hash serves; it reads at memory speed, about 12x SHA-256 here, which keeps a checked
load of a 10^6-photo index (~11 GB) in seconds. Manifests written before it carry bare SHA-256 hex."""
_XXH3 = re.compile(r"^xxh3-128:[0-9a-f]{32}$")
_HASH_BLOCK = 1 << 24


def sha256(path: Path) -> str:
    """The SHA-256 of a file, hex (the checksum of manifests written before XXH3)."""
    with path.open("rb") as handle:
        return _sha256_of(handle)


def _sha256_of(handle: Any) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def xxh3_128(path: Path) -> str:
    """The XXH3 128-bit hash of a file, hex; read through memory maps of one block at a time, with no copy. (One
    map of the whole file would leave every page of it in the process's resident memory: 6.4 GB for the
    keypoints of 10^6 reference photos.)"""
    with path.open("rb") as handle:
        return _xxh3_of(handle.fileno())


def _xxh3_of(fd: int) -> str:
    import mmap

    import xxhash

    digest = xxhash.xxh3_128()
    size = os.fstat(fd).st_size
    for start in range(0, size, _HASH_BLOCK):
        length = min(_HASH_BLOCK, size - start)
        with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=start) as mapped:
            with memoryview(mapped) as view:
                digest.update(view)
    return digest.hexdigest()


def file_checksum(path: Path) -> str:
    """The checksum a manifest records for a file: ``xxh3-128:`` and the hash, hex."""
    return CHECKSUM_PREFIX + xxh3_128(path)


def checksum_matches(path: Path, expected: str) -> bool:
    """Whether ``path`` has the ``expected`` checksum, in either form a manifest may hold (XXH3 or SHA-256)."""
    return hash_checked(path, expected)[0]


_SAME_FILE = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def hash_checked(path: Path, expected: str) -> tuple[bool, os.stat_result | None]:
    """Whether ``path`` has the ``expected`` checksum (XXH3 or SHA-256), and the file's ``fstat`` when it was
    the same before and after hashing (None when it changed while it was read)."""
    with path.open("rb") as handle:
        before = os.fstat(handle.fileno())
        if expected.startswith(CHECKSUM_PREFIX):
            matches = CHECKSUM_PREFIX + _xxh3_of(handle.fileno()) == expected
        else:
            matches = _sha256_of(handle) == expected
        after = os.fstat(handle.fileno())
    same = all(getattr(before, name) == getattr(after, name) for name in _SAME_FILE)
    return matches, before if same else None


def is_checksum(value: Any) -> bool:
    """Whether ``value`` is a checksum as a manifest writes it (XXH3, or SHA-256 from older manifests)."""
    return isinstance(value, str) and bool(_XXH3.match(value) or _HEX64.match(value))


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _field_problems(manifest: dict[str, Any], index_types: tuple[str, ...]) -> list[str]:
    """What is wrong with the manifest's fields, in words (empty when nothing)."""
    problems = []
    embedder = manifest.get("embedder")
    if not isinstance(embedder, dict) or not isinstance(embedder.get("name"), str):
        problems.append("'embedder' must be an object with a 'name'")
    if not _is_int(manifest.get("dim"), 1):
        problems.append("'dim' must be an integer >= 1")
    count = manifest.get("count")
    if not isinstance(count, dict) or not all(_is_int(count.get(k)) for k in ("references", "vectors")):
        problems.append("'count' must be an object with integer 'references' and 'vectors'")
    if manifest.get("index_type", "flat") not in index_types:
        problems.append(f"'index_type' must be one of {', '.join(index_types)}")
    if not isinstance(manifest.get("index_params", {}), dict):
        problems.append("'index_params' must be an object")
    if not _is_int(manifest.get("hnsw_removed", 0)):
        problems.append("'hnsw_removed' must be an integer >= 0")
    if "next_id" in manifest and not _is_int(manifest["next_id"]):
        problems.append("'next_id' must be an integer >= 0")
    if manifest.get("metric", "inner_product") != "inner_product":
        problems.append("'metric' must be 'inner_product'")
    features = manifest.get("features")
    if features is not None and not (isinstance(features, dict) and isinstance(features.get("settings"), dict)
                                     and _is_int(features.get("count"))):
        problems.append("'features' must be null or an object with 'settings' and an integer 'count'")
    problems.extend(_checksum_problems(manifest.get("checksums")))
    return problems


def _checksum_problems(checksums: Any) -> list[str]:
    if not isinstance(checksums, dict):
        return ["'checksums' must be an object"]
    problems = []
    for name, value in checksums.items():
        if not is_checksum(value):
            problems.append(f"checksum of {name!r} is neither an XXH3-128 nor a SHA-256")
        if "/" in name or "\\" in name or name.startswith(".") or name == MANIFEST:
            problems.append(f"{name!r} is not a file of the index")
    missing = [name for name in CORE_FILES if name not in checksums]
    if missing:
        problems.append(f"'checksums' lacks {', '.join(missing)}")
    return problems


def read_manifest(root: Path, index_types: tuple[str, ...]) -> dict[str, Any]:
    """The validated manifest of an index directory."""
    file = root / MANIFEST
    if not root.is_dir():
        raise IndexCorruptError(f"{root}: index directory not found")
    if not file.is_file():
        raise IndexCorruptError(f"{root}: manifest.json is missing (not a knockoff index, or an incomplete save)")
    try:
        if file.stat().st_size > MAX_MANIFEST_BYTES:
            raise IndexCorruptError(f"{root}: manifest.json is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{root}: manifest.json is damaged ({exc})") from exc
    except RecursionError:
        raise IndexCorruptError(f"{root}: manifest.json is damaged (nested too deeply)") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{root}: manifest.json must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise IndexCorruptError(
            f"{root}: index format version {version!r} is not supported "
            f"(this knockoff reads version {FORMAT_VERSION}); rebuild the index"
        )
    problems = _field_problems(manifest, index_types)
    if problems:
        raise IndexCorruptError(f"{root}: manifest.json is damaged: {'; '.join(problems)}")
    return manifest


def verify_checksums(root: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there, with its checksum: every byte hashed (a load may instead rely on
    file stamps: :func:`knockoff.match.stamps.check_files`)."""
    for name, expected in manifest["checksums"].items():
        file = root / name
        if not file.is_file():
            raise IndexCorruptError(f"{root}: file {name} is missing")
        if not checksum_matches(file, expected):
            raise IndexCorruptError(f"{root}: {name} is damaged (its checksum differs from the manifest)")


def is_index_dir(path: Path) -> bool:
    """Whether ``path`` holds a knockoff index manifest (of any format version)."""
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "format_version" in data and "checksums" in data


def check_index_target(path: str | Path, extra_files: tuple[str, ...] = ()) -> Path:
    """Where an index may be written: a new or empty folder, or an existing knockoff index holding only index
    files (``CORE_FILES``, ``extra_files``, the manifest). Anything else raises :class:`IndexPathError`, so that
    saving never deletes a catalog or other files."""
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise IndexPathError(f"{target}: exists and is not a folder; give a new folder or an existing index")
    if not target.exists():
        return target
    try:
        names = sorted(p.name for p in target.iterdir())
    except OSError as exc:
        raise IndexPathError(f"{target}: cannot list the folder ({exc.strerror or exc})") from exc
    if not names:
        return target
    if not is_index_dir(target):
        raise IndexPathError(f"{target}: the folder exists and is not a knockoff index (no index manifest.json); "
                             f"it would be replaced: give a new folder")
    allowed = {MANIFEST, *CORE_FILES, *extra_files, *_OLD_FILES}
    foreign = [name for name in names if name not in allowed]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise IndexPathError(f"{target}: this index folder also holds other files ({shown}), which saving "
                             f"would delete; move them or give a new folder")
    return target


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_staging(target: Path) -> list[Path]:
    """Remove ``.NAME.saving-<pid>`` folders beside ``target`` left by saves whose process is gone."""
    removed: list[Path] = []
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = _STAGING.match(sibling.name)
        if match is None or match["name"] != target.name or not sibling.is_dir() or sibling.is_symlink():
            continue
        if not _pid_alive(int(match["pid"])):
            log.info("removing %s, left by an interrupted save", sibling)
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed
