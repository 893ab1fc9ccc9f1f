"""Photo thumbnails for the page: a small one for the list and a large one for the side-by-side view.

Each photo is decoded once (JPEG in Pillow's draft mode) and written as two JPEG files under
``<report>/thumbs/s/`` and ``<report>/thumbs/l/``, named by a hash of the photo's path, size and modification
time: a rebuilt report reuses them, and a photo shared by many listings (an official photo) is made once.
In a one-file report they are data URIs instead. A missing or unreadable photo gets no thumbnail and its
problem is shown in its place.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from knockoff.catalog.images import load_image
from knockoff.errors import ConfigError, ImageError

log = logging.getLogger(__name__)

SMALL = 160
LARGE = 640
_QUALITY = 80


@dataclass(frozen=True)
class Photo:
    """A photo as the page refers to it: its thumbnail key (None: no thumbnail), its full size, a problem."""

    key: str | None
    width: int
    height: int
    problem: str

    def to_json(self, name: str) -> list[object]:
        return [self.key, self.width, self.height, name, self.problem]


def resolve(image: str, base_dir: Path | None) -> Path:
    """A photo path as given, or under ``base_dir`` when it is relative and not found as given."""
    path = Path(image)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        candidate = base_dir / path
        if candidate.exists():
            return candidate
    return path


def full_size(path: Path) -> tuple[int, int] | None:
    """The size of the photo as :func:`load_image` gives it at full resolution (EXIF orientation applied)."""
    try:
        with warnings.catch_warnings():  # only the header is read: a large photo is no bomb here (the scan judged it)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, KeyError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def photo_key(path: Path) -> str | None:
    """A name for the photo's thumbnails that changes when the file does; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    text = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _jpeg(image: Image.Image, size: int) -> bytes:
    copy = image.copy()
    copy.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=_QUALITY, optimize=True)
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    """A JPEG as a data URI."""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


class Thumbnails:
    """Makes the thumbnails of a report: files under ``folder`` (``s/`` and ``l/``), or data URIs when
    ``folder`` is None (:attr:`inline` maps each key to its small and large URI)."""

    def __init__(self, folder: Path | None, base_dir: Path | None, small: int = SMALL, large: int = LARGE):
        if not 16 <= small <= large:
            raise ConfigError(f"thumbnail sizes must be 16 <= small <= large, got {small} and {large}")
        self.folder, self.base_dir, self.small, self.large = folder, base_dir, small, large
        self.inline: dict[str, tuple[str, str]] = {}
        self._seen: dict[str, Photo] = {}
        self.made = self.reused = 0
        self.seconds = 0.0

    def paths(self, key: str) -> tuple[Path, Path]:
        if self.folder is None:
            raise ConfigError("a one-file report keeps its thumbnails inline: no paths")
        return (self.folder / "s" / key[:2] / f"{key}.jpg", self.folder / "l" / key[:2] / f"{key}.jpg")

    def photo(self, image: str) -> Photo:
        """The :class:`Photo` of a photo path (made once per path and report)."""
        if not image:
            return Photo(None, 0, 0, "no photo")
        if image not in self._seen:
            started = time.perf_counter()
            self._seen[image] = self._make(resolve(image, self.base_dir))
            self.seconds += time.perf_counter() - started
        return self._seen[image]

    def _make(self, path: Path) -> Photo:
        key, size = photo_key(path), full_size(path)
        if key is not None and size is not None and self.folder is not None and all(
                p.exists() for p in self.paths(key)):
            self.reused += 1
            return Photo(key, size[0], size[1], "")
        try:
            image = load_image(path, min_side=self.large)
        except ImageError as error:
            return Photo(None, 0, 0, error.problem)
        key = key or hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        width, height = size or image.size
        small, large = _jpeg(image, self.small), _jpeg(image, self.large)
        if self.folder is None:
            self.inline[key] = (data_uri(small), data_uri(large))
        else:
            for target, data in zip(self.paths(key), (small, large)):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        self.made += 1
        return Photo(key, width, height, "")
