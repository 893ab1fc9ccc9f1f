"""A cache folder for model files that knockoff derives on the user's machine (never shipped in the repository).

Each cached file holds a header line with the SHA-256 of its payload, then the payload; a file whose payload does
not match its header (cut short by a crash, overwritten by hand, a disk error) is detected, logged and built
again. Files are written to a temporary file in the same folder, then renamed over the cached name
(``os.replace``, atomic on POSIX), so that two processes deriving the same file at once each leave a whole file
and a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["CACHE_ENV", "MAGIC", "cache_dir", "cached_or_built", "read_cached", "write_cached"]

log = logging.getLogger(__name__)

CACHE_ENV = "KNOCKOFF_CACHE_DIR"
MAGIC = b"knockoff-cached-model v1 sha256="


def cache_dir() -> Path:
    """Where derived models are kept: ``$KNOCKOFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/knockoff``, else
    ``~/.cache/knockoff``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "knockoff"


def read_cached(path: Path) -> bytes | None:
    """The payload of the cached file at ``path``; None when there is none, or when it is damaged (logged: it
    will be built again)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the cached model %s (%s); building it again", path, exc)
        return None
    header, _, payload = data.partition(b"\n")
    if not header.startswith(MAGIC) or header[len(MAGIC):].decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
        log.warning("the cached model %s is damaged (its checksum does not match); building it again", path)
        return None
    return payload


def write_cached(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` with its checksum header, atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n")
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def cached_or_built(path: Path, build: Callable[[], bytes]) -> bytes:
    """The payload cached at ``path``, or ``build()``'s, then cached there. A cache that cannot be written
    (read-only home, full disk) is logged and the built payload returned all the same."""
    payload = read_cached(path)
    if payload is not None:
        return payload
    payload = build()
    try:
        write_cached(path, payload)
    except OSError as exc:
        log.warning("cannot cache the derived model at %s (%s); it will be derived again next time", path, exc)
    return payload
