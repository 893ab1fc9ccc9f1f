"""Writing report files: atomically (a temporary name in the same folder, renamed when complete)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TextIO


class atomic_writer:
    """A text file written to a temporary name in the same folder and renamed into place when complete."""

    def __init__(self, path: Path, newline: str | None = None):
        self.path = path
        self.newline = newline
        self._handle: TextIO | None = None
        self._tmp = ""

    def __enter__(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline=self.newline)
        return self._handle

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle is not None:
            self._handle.close()
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(text)
    return path
