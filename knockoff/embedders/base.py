"""The embedder interface and the registry that creates embedders from a name string."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from knockoff.errors import EmbedderError

log = logging.getLogger(__name__)


class Embedder(ABC):
    """Turns images into L2-normalized float32 vectors that FAISS can search by inner product.

    Subclasses set ``kind`` (the registry name), and implement :attr:`name`, :attr:`dim`,
    :meth:`settings` and :meth:`embed`.
    """

    kind: str = ""

    #: The shorter side an image needs for this embedder; loaders may decode JPEGs at reduced size down to it.
    input_size: int = 224

    @property
    @abstractmethod
    def name(self) -> str:
        """The full name that :func:`create_embedder` accepts to make this embedder again."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each embedding vector."""

    def settings(self) -> dict[str, Any]:
        """What an index must record to be searched with the same embedder (compared on load)."""
        return {"name": self.name, "dim": self.dim}

    @abstractmethod
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images; returns a float32 array of shape ``(len(images), dim)`` with unit-norm rows."""

    def reference_views(self, image: Image.Image) -> list[Image.Image]:
        """The images indexed for one reference photo: the photo itself, plus regions where an engine wants them.

        Each view becomes one row of the index that points back to the same reference image, so that a
        listing showing only part of the photo (a crop, a collage) can still find it.
        """
        return [image]

    def query_views(self, image: Image.Image) -> list[Image.Image]:
        """The images searched for one listing photo; the best hit over all views counts."""
        return [image]

    def embed_one(self, image: Image.Image) -> np.ndarray:
        """Embed a single image; returns shape ``(dim,)``."""
        return self.embed([image])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


EmbedderFactory = Callable[..., Embedder]
_REGISTRY: dict[str, EmbedderFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_embedder(kind: str, factory: EmbedderFactory, description: str = "") -> None:
    """Register ``factory(arg: str | None, **options) -> Embedder`` under ``kind``."""
    if not kind or ":" in kind:
        raise ValueError(f"invalid embedder kind {kind!r}")
    _REGISTRY[kind] = factory
    _DESCRIPTIONS[kind] = description


def _ensure_builtins() -> None:
    # The built-in engines register themselves on import; importing here keeps `import knockoff` light.
    from knockoff.embedders import clip, perceptual  # noqa: F401


def list_embedders() -> list[str]:
    """Names of the registered embedder kinds (plus ``auto``)."""
    _ensure_builtins()
    return sorted([*_REGISTRY, "auto"])


def describe_embedders() -> dict[str, str]:
    """Each registered kind with a one-line description."""
    _ensure_builtins()
    return {"auto": "clip when its weights are present, else perceptual", **dict(sorted(_DESCRIPTIONS.items()))}


def create_embedder(name: str = "auto", **options: Any) -> Embedder:
    """Create an embedder from a name such as ``"perceptual"``, ``"clip:ViT-B-32/laion2b_s34b_b79k"`` or ``"auto"``.

    ``auto`` picks ``clip`` when its default weights are found locally, else ``perceptual``, and logs which.
    Unknown names raise :class:`EmbedderError` listing the valid ones.
    """
    _ensure_builtins()
    if isinstance(name, Embedder):
        return name
    kind, _, arg = str(name).partition(":")
    kind = kind.strip().lower()
    if kind == "auto":
        return _create_auto(**options)
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise EmbedderError(f"unknown embedder {name!r}; valid kinds: {', '.join(list_embedders())}")
    return factory(arg or None, **options)


def _create_auto(**options: Any) -> Embedder:
    from knockoff.embedders.clip import default_weights_available

    if default_weights_available(options.get("weights_dir")):
        log.info("auto engine: using clip (weights found)")
        return create_embedder("clip", **options)
    log.info("auto engine: no CLIP weights found locally, using the weight-free perceptual engine")
    perceptual_options = {k: v for k, v in options.items() if k not in ("weights_dir", "checkpoint", "device")}
    return create_embedder("perceptual", **perceptual_options)
