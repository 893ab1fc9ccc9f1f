"""One exception tree for everything knockoff raises on purpose."""

from __future__ import annotations

from pathlib import Path


class KnockoffError(Exception):
    """Base class of every error knockoff raises on purpose."""


class CatalogError(KnockoffError, ValueError):
    """A user file (brands, references, listings, labels) is invalid.

    The message names the file, the line and the field.
    """

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


class ImageError(KnockoffError):
    """An image file cannot be used (missing, empty, truncated, not an image, too large)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable: Ray tasks report skipped photos
        return (type(self), (self.path, self.problem))


class EmbedderError(KnockoffError):
    """An embedder cannot be created (unknown name, bad settings, missing dependency)."""


class WeightsNotFoundError(EmbedderError):
    """Model weights were looked for and not found; the message says where and how to get them."""


class ConfigError(KnockoffError, ValueError):
    """A setting, option or argument has an invalid value (also a ``ValueError``, as configuration errors are)."""


class PolicyError(ConfigError):
    """A policy file or a policy setting is invalid."""


class ReferenceIndexError(KnockoffError):
    """Base class of reference-index errors (cannot be built, used as asked, or read)."""


class IndexMismatchError(ReferenceIndexError):
    """An index is used with an embedder (or settings) other than the one that built it."""


class IndexCorruptError(ReferenceIndexError):
    """An index directory is incomplete or damaged."""


class UnknownReferenceError(ReferenceIndexError, KeyError):
    """A reference id the index does not hold (a KeyError, as a mapping's lookup raises)."""


class IndexStateError(ReferenceIndexError):
    """An index cannot do what was asked in its current state (read-only, untrained, changed on disk, empty)."""


class ScanError(KnockoffError):
    """A scan cannot start or go on (an output folder of another scan, a Ray cluster too small, a failed worker)."""


class ReportError(KnockoffError):
    """A report cannot be made (no results file)."""


class OutputExistsError(KnockoffError, FileExistsError):
    """An output folder already holds something that would be replaced without ``overwrite``."""


class LabeledSetError(KnockoffError):
    """A labeled set cannot be made, read or evaluated (no labels, no result for a listing, nothing to calibrate)."""


class RealDataMissingError(LabeledSetError):
    """A real-data folder (or its ground-truth file) is not on this machine."""


class IndexPathError(ReferenceIndexError):
    """An index cannot be written where asked (a file, or a folder that is not a knockoff index)."""


class NothingToScanError(ScanError, ValueError):
    """The scanned folder holds no listing (no photo, or every row of its listings file was refused)."""


class OutputLockedError(ScanError):
    """Another scan is writing to the same output folder; the message names its process id."""


class UnsafeOutputError(ScanError):
    """A file the scan would write is a symbolic link (or not a regular file); it is refused, not followed."""


class ResultError(KnockoffError, ValueError):
    """A verdict, or a line of a results file, is malformed (the message names the file, line and field)."""
