"""Safe image loading and folder walking.

Every failure is an :class:`~knockoff.errors.ImageError` that names the file and the problem, so a batch
can record it and go on.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from knockoff.errors import ImageError

log = logging.getLogger(__name__)

FRAMES_INFO = "knockoff.frames"
"""The key, in a loaded image's ``info``, of the number of frames of an animated or multi-page file (only the first
is loaded); absent for a single image."""

DEFAULT_MAX_PIXELS = 64_000_000
"""Images larger than this many pixels are refused as possible decompression bombs."""

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jfif"}
)

# Magic numbers of the formats Pillow reads that marketplaces use; "by content, not by extension".
_SIGNATURES: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"P1", b"P2", b"P3", b"P4", b"P5", b"P6",
)


def is_regular_file(path: str | Path) -> bool:
    """Whether ``path`` is (or links to) a regular file: not a named pipe, socket, device or folder."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def looks_like_image(path: str | Path) -> bool:
    """Whether the file starts like an image format knockoff reads (checks content, not the extension).

    Only regular files are opened: a named pipe would block the caller forever.
    """
    if not is_regular_file(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # no wait even if it became a pipe
        with os.fdopen(fd, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return any(head.startswith(sig) for sig in _SIGNATURES)


def _check_regular_nonempty(path: Path) -> None:
    """Raise :class:`ImageError` unless ``path`` is a non-empty regular file (a pipe would block the reader)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(path, f"not a regular file ({_file_kind(info.st_mode)}); only regular files are read")
    if info.st_size == 0:
        raise ImageError(path, "file is empty")


def load_image(
    path: str | Path,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Image.Image:
    """Open an image as upright 8-bit RGB.

    Applies the EXIF orientation; converts palette, alpha (composited on white), CMYK, 16-bit and grayscale
    images; refuses images over ``max_pixels``. When ``min_side`` is given, a JPEG may be decoded at a reduced
    size (Pillow's draft mode) as long as its shorter side stays at least ``min_side``.
    """
    path = Path(path)
    _check_regular_nonempty(path)
    image: Image.Image | None = None
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # Pillow's warnings (e.g. corrupt EXIF) are logged with the file name
            # Pillow's own warning (above 89 M pixels) is not the limit: ``max_pixels`` is, checked just below, before
            # anything is decoded (as an error, the warning refused every photo above 89 M even with a higher limit)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            _limit_and_draft(image, path, max_pixels, min_side)
            image.load()
            image, frames = _first_frame(image)
    except ImageError:
        _close(image)
        raise
    except UnidentifiedImageError as exc:
        problem = (
            "image data is damaged (it starts like an image but cannot be decoded)"
            if looks_like_image(path)
            else "not an image Pillow can read (unknown format or not an image file)"
        )
        raise ImageError(path, problem) from exc
    except Image.DecompressionBombError as exc:
        _close(image)
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise ImageError(path, f"refused as a possible decompression bomb: over {limit:,} pixels, the most any image "
                         f"may have ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        _close(image)
        raise ImageError(path, f"image data is damaged or truncated ({exc})") from exc
    rgb, later = _upright_rgb(image, path)
    _log_warnings(path, [str(w.message) for w in caught] + later)
    if frames > 1:
        rgb.info[FRAMES_INFO] = frames
    return rgb


def _limit_and_draft(image: Image.Image, path: Path, max_pixels: int | None, min_side: int | None) -> None:
    """Refuse an opened (not yet decoded) image over ``max_pixels``; let a JPEG decode at a reduced size whose
    shorter side stays at least ``min_side`` (Pillow's draft mode)."""
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(path, f"image has {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}")
    if min_side is not None and image.format == "JPEG":
        scale = min(width, height) / max(min_side, 1)
        if scale >= 2:
            image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))


def _first_frame(image: Image.Image) -> tuple[Image.Image, int]:
    """The loaded image's (first) frame with its file closed, and how many frames the file has. Multi-frame files
    keep their file open, and so does a one-frame GIF once asked for its frames (it was left to the garbage
    collector: a ResourceWarning)."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1 or getattr(image, "fp", None) is not None:
        first = image.copy()
        image.close()
        return first, frames
    return image, frames


def _log_warnings(source: str | Path, messages: list[str]) -> None:
    """One log line per distinct warning Pillow gave about a file, naming the file."""
    for message in dict.fromkeys(messages):
        log.warning("%s: %s", source, message)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _close(image: Image.Image | None) -> None:
    if image is not None:
        image.close()


def to_rgb(image: Image.Image, *, source: str | Path = "<image>") -> Image.Image:
    """Return an upright 8-bit RGB copy of ``image`` (EXIF orientation, alpha on white, any mode)."""
    rgb, messages = _upright_rgb(image, source)
    _log_warnings(source, messages)
    return rgb


def _upright_rgb(image: Image.Image, source: str | Path) -> tuple[Image.Image, list[str]]:
    """:func:`to_rgb`, and the warnings Pillow gave while reading the EXIF orientation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a damaged EXIF block only loses orientation
            log.debug("%s: EXIF orientation ignored (%s)", source, exc)
    return _convert_rgb(image), [str(w.message) for w in caught]


def _convert_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        arr = arr / (peak / 255.0) if peak > 255 else arr
        image = Image.fromarray(arr.clip(0, 255).astype("uint8"), mode="L")
    elif mode == "F":
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        image = Image.fromarray(arr.astype("uint8"), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return image.convert("RGB")


def is_hidden(path: Path, root: Path) -> bool:
    """Whether any part of ``path`` below ``root`` is hidden (starts with a dot) or a system folder."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(part.startswith(".") or part in ("__MACOSX", "Thumbs.db", "desktop.ini") for part in parts)


def iter_image_files(
    folder: str | Path, *, by_content: bool = True, exclude: Collection[str | Path] = ()
) -> Iterator[Path]:
    """Yield the image files under ``folder`` recursively, in a stable (sorted) order.

    Hidden files and folders and system files are skipped, and so are the folders in ``exclude``. With
    ``by_content`` (the default) a regular file is taken when its extension is an image extension *or* its
    first bytes are an image signature; files with an image extension but other content are still yielded,
    so that loading reports them. Entries that are not regular files (named pipes, sockets, devices, broken
    links) are yielded too, never opened here: loading reports them, so that none is dropped silently.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ImageError(root, "not a folder")
    skip = {os.path.realpath(p) for p in exclude}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d != "__MACOSX" and os.path.realpath(os.path.join(dirpath, d)) not in skip
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if is_hidden(path, root):
                continue
            if path.suffix.lower() in IMAGE_EXTENSIONS or not is_regular_file(path):
                yield path
            elif by_content and looks_like_image(path):
                yield path
