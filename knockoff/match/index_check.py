"""``knockoff index verify``: every file of an index hashed against its manifest, and the files checked against
one another, without the embedder that built it (no model weights needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.embedders.base import Embedder
from knockoff.errors import EmbedderError
from knockoff.match.index import INDEX_TYPES, ReferenceIndex
from knockoff.match.manifest import read_manifest


class ManifestEmbedder(Embedder):
    """Stands for the embedder a manifest names, to check an index without loading its model; embeds nothing."""

    kind = "manifest"

    def __init__(self, settings: dict[str, Any], dim: int):
        self._settings, self._dim = dict(settings), dim

    @property
    def name(self) -> str:
        return str(self._settings.get("name"))

    @property
    def dim(self) -> int:
        return self._dim

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        raise EmbedderError(f"{self.name}: an index opened to be verified embeds nothing")


def verify_index(path: str | Path) -> ReferenceIndex:
    """Load the index at ``path`` (memory-mapped) hashing every file, whatever its file stamps say, and checking
    the files against one another; raises :class:`~knockoff.errors.IndexCorruptError` naming what is wrong. The
    index returned (its :attr:`~ReferenceIndex.checked` says what was hashed) cannot embed."""
    manifest = read_manifest(Path(path), INDEX_TYPES)
    embedder = ManifestEmbedder(manifest["embedder"], manifest["dim"])
    return ReferenceIndex.load(path, embedder, verify="full", mmap=True)
