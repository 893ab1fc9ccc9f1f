"""The embedder interface and the registry that creates embedders from a name string."""

from __future__ import annotations

import importlib
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

#: The built-in engines: kind -> ("module:factory", description). Each module is imported (by importlib) only
#: when its engine is first created, so that this module never imports the engines it lists (no import cycle)
#: and ``import knockoff`` stays light.
BUILTIN_EMBEDDERS: dict[str, tuple[str, str]] = {
    "clip": (
        "knockoff.embedders.clip:create_clip_embedder",
        "open_clip image embeddings (default ViT-B-32/laion2b_s34b_b79k); needs the weights file, "
        "see weights/README.md",
    ),
    "perceptual": (
        "knockoff.embedders.perceptual:create_perceptual_embedder",
        "weight-free descriptor for edited copies of official photos",
    ),
}
_AUTO_DESCRIPTION = "clip when its weights are present, else perceptual"


def register_embedder(kind: str, factory: EmbedderFactory, description: str = "") -> None:
    """Register ``factory(arg: str | None, **options) -> Embedder`` under ``kind`` (it wins over a built-in)."""
    if not kind or ":" in kind or kind == "auto":
        raise EmbedderError(f"invalid embedder kind {kind!r}: it must be non-empty, without ':', and not 'auto'")
    _REGISTRY[kind] = factory
    _DESCRIPTIONS[kind] = description


def list_embedders() -> list[str]:
    """Names of the known embedder kinds: the built-in ones, the registered ones, and ``auto``."""
    return sorted({*BUILTIN_EMBEDDERS, *_REGISTRY, "auto"})


def describe_embedders() -> dict[str, str]:
    """Each known kind with a one-line description."""
    described = {kind: text for kind, (_, text) in BUILTIN_EMBEDDERS.items()}
    described.update(_DESCRIPTIONS)
    return {"auto": _AUTO_DESCRIPTION, **dict(sorted(described.items()))}


def _factory_for(kind: str) -> EmbedderFactory | None:
    """The registered factory of ``kind``, else the built-in one (its module imported now), else None."""
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    if kind not in BUILTIN_EMBEDDERS:
        return None
    module_name, _, attribute = BUILTIN_EMBEDDERS[kind][0].partition(":")
    factory: EmbedderFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


def create_embedder(name: str | Embedder = "auto", **options: Any) -> Embedder:
    """Create an embedder from a name such as ``"perceptual"``, ``"clip:ViT-B-32/laion2b_s34b_b79k"`` or ``"auto"``.

    ``auto`` picks ``clip`` when its default weights are found locally, else ``perceptual``, and logs which.
    An embedder given instead of a name is returned as it is.
    Unknown names raise :class:`EmbedderError` listing the valid ones.
    """
    if isinstance(name, Embedder):
        return name
    kind, _, arg = str(name).partition(":")
    kind = kind.strip().lower()
    if kind == "auto":
        return _create_auto(**options)
    factory = _factory_for(kind)
    if factory is None:
        raise EmbedderError(f"unknown embedder {name!r}; valid kinds: {', '.join(list_embedders())}")
    return factory(arg or None, **options)


def _create_auto(**options: Any) -> Embedder:
    from knockoff.embedders.weights import weights_available

    if weights_available(weights_dir=options.get("weights_dir")):
        log.info("auto engine: using clip (weights found)")
        return create_embedder("clip", **options)
    log.info("auto engine: no CLIP weights found locally, using the weight-free perceptual engine")
    perceptual_options = {k: v for k, v in options.items() if k not in ("weights_dir", "checkpoint", "device")}
    return create_embedder("perceptual", **perceptual_options)
