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


class EmbedderError(KnockoffError):
    """An embedder cannot be created (unknown name, bad settings, missing dependency)."""


class WeightsNotFoundError(EmbedderError):
    """Model weights were looked for and not found; the message says where and how to get them."""


class IndexError_(KnockoffError):
    """Base class of reference-index errors (named with a trailing underscore to not shadow IndexError)."""


class IndexMismatchError(IndexError_):
    """An index is used with an embedder (or settings) other than the one that built it."""


class IndexCorruptError(IndexError_):
    """An index directory is incomplete or damaged."""


class PolicyError(KnockoffError, ValueError):
    """A policy file is invalid."""


class ResultError(KnockoffError, ValueError):
    """A verdict, or a line of a results file, is malformed (the message names the file, line and field)."""
