"""The files a scan writes: never through a symbolic link, and one scan at a time per output folder.

Every file is opened with ``O_NOFOLLOW``: a ``results.jsonl`` (or any other output file) that is a symbolic
link is refused with :class:`~knockoff.errors.UnsafeOutputError` instead of truncating and appending to a
file elsewhere. Whole-file writes go to a temporary file first and replace the target atomically.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import IO

from knockoff.errors import OutputLockedError, UnsafeOutputError

log = logging.getLogger(__name__)

LOCK_FILE = ".scan.lock"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _open_fd(path: Path, flags: int) -> int:
    """``os.open`` that refuses symbolic links and anything but a regular file."""
    if path.is_symlink():
        raise UnsafeOutputError(f"{path}: is a symbolic link; a scan never writes through one "
                                "(remove the link or use another output folder)")
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeOutputError(f"{path}: is a symbolic link; a scan never writes through one") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeOutputError(f"{path}: not a regular file; refused")
    return fd


def open_append(path: Path) -> IO[str]:
    """Open a text file for appending (created when missing), refusing links."""
    return os.fdopen(_open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")


def read_bytes(path: Path) -> bytes | None:
    """The bytes of a file, or None when it does not exist; refuses links."""
    if not os.path.lexists(path):
        return None
    with os.fdopen(_open_fd(path, os.O_RDONLY), "rb") as handle:
        return handle.read()


def truncate(path: Path, size: int) -> None:
    """Cut a file to ``size`` bytes, refusing links."""
    fd = _open_fd(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace a file's content atomically (a temporary file, synced, then renamed); refuses links."""
    if path.is_symlink():
        raise UnsafeOutputError(f"{path}: is a symbolic link; a scan never writes through one")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if os.path.lexists(tmp):
        tmp.unlink()
    data = content.encode("utf-8") if isinstance(content, str) else content
    with os.fdopen(_open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class FolderLock:
    """An exclusive lock on an output folder (``flock`` on a lock file holding the owner's process id).

    The kernel releases it when the process ends, even on SIGKILL, so a killed scan never blocks the next.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputLockedError` naming the process that holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            log.warning("%s: file locks are not available here; do not run two scans into it at once", self.folder)
            return
        fd = _open_fd(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise OutputLockedError(
                f"{self.folder}: another scan (process {holder}) is writing to this output folder; "
                "wait for it to end or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd

    def release(self) -> None:
        """Release the lock (closing the file releases the ``flock``)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
