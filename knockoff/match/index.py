"""The reference index: every official image embedded once, searchable with FAISS, saved as a directory.

A directory holds ``index.faiss`` (the vectors), the reference metadata in columns (``references_*.npy``,
memory-mapped and read lazily: :mod:`knockoff.match.reftable`; format 1's ``references.jsonl`` is refused),
``brands.json`` and ``manifest.json`` (format version, embedder settings, dimension, metric, counts and
XXH3 checksums), and, for an index built with ``read_text=True`` (``knockoff index build --text``), the text
read from every reference photo in ``texts.json`` (:mod:`knockoff.match.text_index`). With OpenCV, it also
stores what verification needs from every reference photo (:mod:`knockoff.match.refstore`) and the keypoint
shortlist over their descriptors (``shortlist.faiss``: :mod:`knockoff.match.keypoints`), built with the index and
kept up to date by ``add`` and ``remove``. Saving is atomic: a crash mid-save leaves the previous index readable.

Index types, chosen when the index is built and recorded in the manifest with their parameters:

- ``flat``: exact inner-product search (run in numpy over FAISS's stored vectors: :mod:`knockoff.match.flat_search`,
  2.5x FAISS's own flat search at 1.5 million vectors). The default, and the right choice up to about a million vectors.
- ``hnsw``: a graph over the full vectors (``faiss.IndexHNSWFlat``): about as much memory as flat plus the graph,
  much faster queries at a small recall loss. FAISS cannot remove from it: removed vectors stay in the graph,
  skipped by every search (saved in ``hnsw_removed.npy``), until they are over :data:`HNSW_COMPACT_FRACTION` of
  it, when the graph is rebuilt from the stored vectors (:meth:`ReferenceIndex.compact`; slow, logged).
- ``ivfpq``: inverted lists of product-quantized codes (``faiss.IndexIVFPQ``): a few dozen bytes a vector, so
  tens of millions fit in memory; it needs training, and its similarities are approximate (quantized).
  Vectors added before it is trained are buffered (at most ``train_size`` of them), it trains on that buffer
  as soon as it is full, or call :meth:`ReferenceIndex.train` with a sample first.
- ``auto``: flat below :data:`AUTO_FLAT_LIMIT` vectors, else hnsw while the vectors fit in
  ``memory_budget`` bytes, else ivfpq (see ``benchmarks/bench_scale.py`` for the figures behind it).

``ReferenceIndex.load(path, mmap=True)`` memory-maps the vectors (flat and hnsw storage, ivfpq inverted lists)
instead of reading them: several processes on one machine share the pages. Such an index is read-only.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from knockoff.catalog.images import load_image
from knockoff.catalog.readers import Brand, Catalog, ReferenceImage
from knockoff.errors import ConfigError, ImageError, IndexCorruptError, IndexMismatchError, IndexStateError
from knockoff.match.manifest import (
    CORE_FILES,
    FORMAT_VERSION,
    check_index_target,
    clean_stale_staging,
    checksum_matches,
    file_checksum,
    read_manifest,
)
from knockoff.match.stamps import IndexCheck, check_files, verify_mode
from knockoff.match.flat_search import flat_contents, top_k
from knockoff.match.keypoints import SHORTLIST_FILE, SHORTLIST_FILES, KeypointShortlist, ShortlistParams
from knockoff.match.reftable import ReferenceTable
from knockoff.match.refstore import FEATURE_FILES, FeatureStore, StoredFeatures, feature_settings
from knockoff.match.text import ENGINE_NAME as TEXT_ENGINE
from knockoff.match.text import PhotoText, TextReadSettings, read_text, reader_status, settings_for_names
from knockoff.match.text_index import TEXTS_FILE, ReferenceTexts, product_key

if TYPE_CHECKING:
    from knockoff.embedders.base import Embedder

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "hnsw", "ivfpq")
AUTO_FLAT_LIMIT = 1_000_000
"""``index_type="auto"`` keeps exact search below this many vectors."""
DEFAULT_MEMORY_BUDGET = 32 << 30
"""``auto`` above the flat limit picks hnsw while the raw vectors fit in this many bytes, else ivfpq."""

_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"M": 32, "efConstruction": 80, "efSearch": 128},
    # nlist 0 and m 0 mean: chosen from the dimension and the expected count when the index is made
    "ivfpq": {"nlist": 0, "m": 0, "nbits": 8, "nprobe": 32, "train_size": 0},
}
_SEARCH_PARAMS = {"hnsw": ("efSearch",), "ivfpq": ("nprobe",)}
_VIEW_BITS = 8  # a FAISS id is (reference id << 8) | view number: up to 256 views per reference image
_MAX_VIEWS = 1 << _VIEW_BITS
_FILES = CORE_FILES
HNSW_COMPACT_FRACTION = 0.2
"""An hnsw graph is rebuilt without its removed vectors once they are more than this fraction of it."""
TOMBSTONES_FILE = "hnsw_removed.npy"
_GENERATIONS = itertools.count(1)  # generation numbers, unique across every index of the process


@dataclass(frozen=True)
class Hit:
    """One reference image found for a query, with its best similarity over the indexed views."""

    reference: ReferenceImage
    reference_id: int
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"reference_id": self.reference_id, "similarity": self.similarity, **self.reference.to_dict()}


_file_checksum = file_checksum


def choose_index_type(expected_vectors: int, dim: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> str:
    """The type ``index_type="auto"`` picks: flat below :data:`AUTO_FLAT_LIMIT` vectors, else hnsw while the
    vectors (plus about 30 % for the graph) fit in ``memory_budget`` bytes, else ivfpq."""
    if expected_vectors < AUTO_FLAT_LIMIT:
        return "flat"
    return "hnsw" if expected_vectors * (4 * dim) * 1.3 <= memory_budget else "ivfpq"


def resolve_index_params(
    index_type: str, dim: int, params: dict[str, Any] | None = None, *, expected_vectors: int = 0
) -> tuple[str, dict[str, Any]]:
    """Validate an index type and its parameters; returns the concrete type and every parameter filled in.

    ``params`` may also hold ``expected_vectors`` and ``memory_budget``, used by ``auto`` and to size ivfpq.
    """
    given = dict(params or {})
    expected = int(given.pop("expected_vectors", 0) or expected_vectors)
    budget = int(given.pop("memory_budget", DEFAULT_MEMORY_BUDGET))
    if index_type == "auto":
        index_type = choose_index_type(expected, dim, budget)
    if index_type not in INDEX_TYPES:
        raise ConfigError(f"unknown index type {index_type!r}; valid: {', '.join((*INDEX_TYPES, 'auto'))}")
    defaults = _DEFAULT_PARAMS[index_type]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ConfigError(f"unknown parameter(s) for a {index_type} index: {', '.join(unknown)}; valid: {valid}")
    merged = {**defaults, **given}
    for key, value in merged.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"{index_type} parameter {key} must be an integer >= 0, got {value!r}")
        merged[key] = int(value)
    if index_type == "hnsw":
        for key in ("M", "efConstruction", "efSearch"):
            if merged[key] < 1:
                raise ConfigError(f"hnsw parameter {key} must be >= 1, got {merged[key]}")
    if index_type == "ivfpq":
        if merged["nlist"] == 0:  # about 4 sqrt(n) lists, a power of two
            merged["nlist"] = int(2 ** round(np.log2(4 * np.sqrt(max(expected, 10_000)))))
        if merged["m"] == 0:  # about 8 dimensions a sub-quantizer
            merged["m"] = max(d for d in range(1, max(dim // 8, 1) + 1) if dim % d == 0)
        if not 1 <= merged["nbits"] <= 16:
            raise ConfigError(f"ivfpq parameter nbits must be in 1..16, got {merged['nbits']}")
        if dim % merged["m"]:
            raise ConfigError(f"ivfpq parameter m ({merged['m']}) must divide the dimension {dim}")
        if merged["nprobe"] < 1:
            raise ConfigError(f"ivfpq parameter nprobe must be >= 1, got {merged['nprobe']}")
        if merged["train_size"] == 0:
            merged["train_size"] = max(40 * merged["nlist"], 40 * (1 << merged["nbits"]))
        merged["train_size"] = max(merged["train_size"], _min_training(merged))
    return index_type, merged


def _min_training(params: dict[str, Any]) -> int:
    """FAISS's k-means needs at least as many points as centroids (IVF lists and PQ codes)."""
    return max(params["nlist"], 1 << params["nbits"])


def _make_faiss(index_type: str, dim: int, params: dict[str, Any]) -> Any:
    import faiss

    if index_type == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = params["efConstruction"]
        return faiss.IndexIDMap2(inner)
    index = faiss.index_factory(
        dim, f"IVF{params['nlist']},PQ{params['m']}x{params['nbits']}", faiss.METRIC_INNER_PRODUCT
    )  # this wrapper owns the C++ object: keep it, set fields through a downcast view
    faiss.downcast_index(index).do_polysemous_training = False  # unused by our search; made training 50x slower
    return index


def _faiss_matches(index_type: str, index: Any) -> bool:
    import faiss

    if index_type == "ivfpq":
        return isinstance(faiss.downcast_index(index), faiss.IndexIVFPQ)
    if not isinstance(index, faiss.IndexIDMap2):
        return False
    inner = faiss.downcast_index(index.index)
    return isinstance(inner, faiss.IndexHNSWFlat if index_type == "hnsw" else faiss.IndexFlat)


class ReferenceIndex:
    """Embedded reference images in a FAISS inner-product index, with their metadata and brands.

    ``index_type``: ``"flat"`` (exact), ``"hnsw"``, ``"ivfpq"`` or ``"auto"`` (with ``expected_vectors`` in
    ``params``); ``params``: that type's parameters (see the module docstring); unknown ones are a ValueError.
    ``read_text``: read the text of every reference photo added (:func:`knockoff.match.text.read_text`) and
    keep it with the index (:attr:`reference_texts`). ``shortlist``: the build parameters of its keypoint
    shortlist (default: :class:`knockoff.match.keypoints.ShortlistParams`'s, the policy's defaults);
    ``expected_references``: how many photos will be added (sizes the shortlist's index from the start).
    """

    def __init__(
        self,
        embedder: Embedder,
        brands: Iterable[Brand] = (),
        *,
        index_type: str = "flat",
        params: dict[str, Any] | None = None,
        read_text: bool = False,
        shortlist: ShortlistParams | None = None,
        expected_references: int = 0,
    ):
        self.embedder = embedder
        self.brands: dict[str, Brand] = {b.key: b for b in brands}
        self.references = ReferenceTable()
        self._max_views: int | None = 0
        self._next_id = 0
        self.index_type, self.params = resolve_index_params(index_type, embedder.dim, params)
        self._faiss = _make_faiss(self.index_type, embedder.dim, self.params)
        self._apply_search_params()
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # ivfpq vectors added before training
        self._pending_count = 0
        #: hnsw only: FAISS ids removed but still in the graph, skipped by every search (sorted int64)
        self._tombstones = np.zeros(0, np.int64)
        self._read_only: str | None = None  # the directory a memory-mapped index was loaded from
        self._mapped_checksum: str | None = None
        self.skipped: list[ImageError] = []
        #: what verification needs from each reference photo (None: not stored, e.g. OpenCV missing)
        self._features: FeatureStore | None = _new_feature_store()
        #: the keypoint shortlist over the stored features (None: no features, or an index saved without one)
        self._shortlist: KeypointShortlist | None = None
        if self._features is not None:
            self._shortlist = KeypointShortlist.from_params(shortlist or ShortlistParams(),
                                                            expected_references=expected_references)
        self._generation = next(_GENERATIONS)
        self._checked: IndexCheck | None = None  # how a loaded index's files were checked
        #: the text read from each reference photo, by reference id (None: the index keeps no text)
        self._texts: dict[int, PhotoText] | None = None
        self._text_cache: tuple[int, ReferenceTexts] | None = None
        if read_text:
            reason = reader_status()
            if reason is not None:
                raise ConfigError(f"cannot read the reference photos' text: {reason}")
            self._texts = {}

    # -- building -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.references)

    @property
    def vector_count(self) -> int:
        return int(self._faiss.ntotal) - len(self._tombstones) + self._pending_count

    @property
    def is_trained(self) -> bool:
        """False only for an ivfpq index that still buffers its vectors for training."""
        return bool(self._faiss.is_trained)

    @property
    def read_only(self) -> bool:
        """True for an index loaded with ``mmap=True``: it can be searched and saved, not changed."""
        return self._read_only is not None

    @property
    def checked(self) -> IndexCheck | None:
        """How :meth:`load` checked the files against the manifest's checksums (hashed now, or unchanged since
        a full check by their file stamps); None for an index not loaded from a folder."""
        return self._checked

    @property
    def generation(self) -> int:
        """A number that changes whenever references or brands are added or removed, never reused by another
        index of this process: key any cache of the index's contents on it."""
        return self._generation

    def _changed(self) -> None:
        self._generation = next(_GENERATIONS)

    def brand(self, name: str) -> Brand | None:
        return self.brands.get(name.casefold())

    def add_brand(self, brand: Brand) -> None:
        self.brands[brand.key] = brand
        self._changed()

    def add_vectors(self, reference: ReferenceImage, vectors: np.ndarray) -> int:
        """Add one reference image with its already-embedded views; returns its reference id."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.embedder.dim)
        return self.add_vectors_batch([reference], vectors, [len(vectors)])[0]

    def add_vectors_batch(
        self, references: Sequence[ReferenceImage], vectors: np.ndarray, views: Sequence[int] | None = None
    ) -> list[int]:
        """Add many reference images at once: ``vectors`` holds their views in order, ``views[i]`` of them for
        ``references[i]`` (default one each). Returns their reference ids.

        The way to build a large index with bounded memory: embed the catalog in chunks and add each chunk;
        an ivfpq index buffers at most ``train_size`` vectors until it has trained.
        """
        self._check_writable("add to")
        refs = list(references)
        counts = np.ones(len(refs), np.int64) if views is None else np.asarray(views, dtype=np.int64).ravel()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.embedder.dim)
        if len(counts) != len(refs):
            raise ConfigError(f"got {len(refs)} references but {len(counts)} view counts")
        if len(refs) and not (counts.min() >= 1 and counts.max() <= _MAX_VIEWS):
            raise ConfigError(f"a reference image needs 1..{_MAX_VIEWS} vectors")
        if int(counts.sum()) != len(vectors):
            raise ConfigError(f"the view counts add up to {int(counts.sum())} but {len(vectors)} vectors were given")
        if not refs:
            return []
        ref_ids = np.arange(self._next_id, self._next_id + len(refs), dtype=np.int64)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        ids = (np.repeat(ref_ids, counts) << _VIEW_BITS) + (np.arange(len(vectors), dtype=np.int64) - starts)
        self._add_to_faiss(vectors, ids)
        self._next_id += len(refs)
        self._changed()
        for ref_id, ref, count in zip(ref_ids.tolist(), refs, counts.tolist()):
            self.references.add(ref_id, ref, count)
            if ref.brand.casefold() not in self.brands:
                self.add_brand(Brand(ref.brand))
        if self._max_views is not None:
            self._max_views = max(self._max_views, int(counts.max()))
        return ref_ids.tolist()

    def train(self, sample: np.ndarray) -> None:
        """Train an ivfpq index on a sample of vectors (a few tens of thousands, drawn from the whole catalog);
        vectors already buffered are then added. Flat and hnsw need no training: a no-op for them."""
        if self.index_type != "ivfpq":
            return
        self._check_writable("train")
        if self._faiss.is_trained:
            raise ConfigError("this ivfpq index is already trained")
        sample = np.ascontiguousarray(sample, dtype=np.float32).reshape(-1, self.embedder.dim)
        need = _min_training(self.params)
        if len(sample) < need:
            raise IndexStateError(
                f"an ivfpq index with nlist={self.params['nlist']} and nbits={self.params['nbits']} needs at "
                f"least {need} training vectors (about {40 * need} for good quality), got {len(sample)}; add "
                f"more references, lower nlist, or use index_type='flat'"
            )
        log.info("training ivfpq (nlist %d, m %d) on %d vectors", self.params["nlist"], self.params["m"], len(sample))
        self._faiss.train(sample)
        pending, self._pending, self._pending_count = self._pending, [], 0
        for vectors, ids in pending:
            self._faiss.add_with_ids(vectors, ids)

    def _add_to_faiss(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self._faiss.is_trained:
            self._faiss.add_with_ids(vectors, ids)
            return
        self._pending.append((vectors.copy(), ids))
        self._pending_count += len(vectors)
        if self._pending_count >= self.params["train_size"]:
            self._train_on_pending()

    def _train_on_pending(self) -> None:
        sample = np.concatenate([v for v, _ in self._pending]) if self._pending else np.zeros((0, self.embedder.dim))
        self.train(sample)

    def _ensure_ready(self) -> None:
        """Train an ivfpq index on its buffer before it is searched or saved."""
        if self._pending_count and not self._faiss.is_trained:
            self._train_on_pending()

    def _mapped_file(self) -> Path:
        """The file a read-only index is mapped from, checked to be the one it was loaded from."""
        assert self._read_only is not None
        file = Path(self._read_only) / "index.faiss"
        if not file.exists() or not checksum_matches(file, self._mapped_checksum or ""):
            raise IndexStateError(f"{file} changed since this index was memory-mapped from it; load it again")
        return file

    def _check_writable(self, action: str) -> None:
        if self._read_only is not None:
            raise IndexStateError(
                f"cannot {action} an index memory-mapped from {self._read_only}; load it with mmap=False to change it"
            )

    def set_search_params(self, **params: int) -> None:
        """Change search-time parameters: ``efSearch`` (hnsw), ``nprobe`` (ivfpq). Saved with the index."""
        allowed = _SEARCH_PARAMS.get(self.index_type, ())
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)}: not a search parameter of a {self.index_type} index "
                f"(valid: {', '.join(allowed) or 'none'})"
            )
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
            self.params[key] = int(value)
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        import faiss

        if self.index_type == "hnsw":
            faiss.downcast_index(self._faiss.index).hnsw.efSearch = self.params["efSearch"]
        elif self.index_type == "ivfpq":
            faiss.extract_index_ivf(self._faiss).nprobe = self.params["nprobe"]

    def add(
        self,
        references: Catalog | Sequence[ReferenceImage],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Embed and add reference images (a catalog also adds its brands); returns how many were added.

        Unreadable images are logged, kept in ``skipped`` and left out; the rest are added.
        """
        if isinstance(references, Catalog):
            for brand in references.brands.values():
                self.add_brand(brand)
            references = references.references
        added = 0
        for start in range(0, len(references), batch_size):
            batch = references[start : start + batch_size]
            added += self.add_prepared(prepare_batch(self.embedder, batch, features=self._features is not None,
                                                     texts=self._texts is not None))
            if progress is not None:
                progress(len(batch))
        return added

    def add_prepared(self, prepared: PreparedBatch) -> int:
        """Add a batch made by :func:`prepare_batch` (here or on a Ray worker); returns how many were added."""
        for error in prepared.skipped:
            log.warning("reference skipped: %s", error)
            self.skipped.append(error)
        if not prepared.owners:
            return 0
        ids = self.add_vectors_batch(prepared.owners, prepared.vectors, prepared.counts)
        self._keep_features(ids, prepared.features)
        self._keep_texts(ids, prepared.texts)
        return len(ids)

    def _keep_features(self, ids: Sequence[int], features: Sequence[StoredFeatures | None]) -> None:
        if self._features is None:
            return
        for ref_id, stored in zip(ids, features):
            if stored is not None:
                self._features.put(ref_id, stored)
                if self._shortlist is not None:
                    self._shortlist.add(ref_id, stored)

    def _keep_texts(self, ids: Sequence[int], texts: Sequence[PhotoText | None]) -> None:
        if self._texts is None:
            return
        for ref_id, text in zip(ids, texts):
            if text is not None:
                self._texts[ref_id] = text

    # -- text read from the reference photos -----------------------------------------------------------

    @property
    def stores_features(self) -> bool:
        """Whether the index stores the verification features of its photos (OpenCV is installed)."""
        return self._features is not None

    @property
    def reads_text(self) -> bool:
        """Whether the index keeps the text of its reference photos (built with ``read_text=True``)."""
        return self._texts is not None

    @property
    def reference_texts(self) -> ReferenceTexts | None:
        """The text read from the reference photos and each product's words (keys
        :func:`knockoff.match.text_index.product_key`), for the index's current contents; None when the index
        keeps no text."""
        if self._texts is None:
            return None
        if self._text_cache is None or self._text_cache[0] != self._generation:
            photos = {str(ref_id): text for ref_id, text in self._texts.items() if ref_id in self.references}
            product_of: dict[str, str] = {}
            descriptions: dict[str, list[str]] = {}
            for ref_id, ref in self.references.items():
                key = product_key(ref.brand, ref.product_id)
                product_of[str(ref_id)] = key
                brand = self.brand(ref.brand) or Brand(ref.brand)
                descriptions.setdefault(key, [ref.product_name, brand.name, *brand.aliases])
            self._text_cache = (self._generation, ReferenceTexts.build(photos, product_of, descriptions))
        return self._text_cache[1]

    # -- what verification needs, from the index alone -----------------------------------------------

    @property
    def feature_settings(self) -> dict[str, int] | None:
        """The verifier settings the stored reference features were computed with (None: none stored)."""
        return None if self._features is None else dict(self._features.settings)

    def reference_features_fit(self, settings: Any) -> bool:
        """Whether the stored features are those a verifier of ``settings`` (a ``VerifierSettings``; None: the
        defaults) computes."""
        if self._features is None:
            return False
        return settings is None or feature_settings(settings) == self._features.settings

    def reference_features(self, ref_id: int, settings: Any = None) -> Any:
        """The stored verification features (``knockoff.match.verify.LocalFeatures``) of a reference photo, or
        None when the index does not hold them or ``settings`` (a ``VerifierSettings``) would compute other ones:
        the caller then computes them from the photo."""
        if self._features is None:
            return None
        if settings is not None and feature_settings(settings) != self._features.settings:
            return None
        stored = self._features.get(ref_id)
        if stored is None or stored.colour is None:  # without its colours a copy could not be proven
            return None
        return stored.to_local()

    @property
    def keypoint_shortlist(self) -> KeypointShortlist | None:
        """The keypoint shortlist built with the index over its stored features (loaded, not trained again);
        None when the index stores no features, or was saved before indexes stored their shortlist."""
        return self._shortlist

    def reference_thumbnail(self, ref_id: int) -> np.ndarray | None:
        """The stored grayscale thumbnail (longer side ``thumbnail_side``) of a reference photo, or None."""
        stored = None if self._features is None else self._features.get(ref_id)
        return None if stored is None else stored.thumbnail

    def reference_vectors(self, ref_id: int) -> np.ndarray | None:
        """The indexed vectors (one a view) of a reference photo, as the index holds them; None for an ivfpq
        index (its vectors are stored quantized) or a reference id it does not hold."""
        if ref_id not in self.references or self.index_type == "ivfpq" or not self._faiss.is_trained:
            return None
        ids = (np.int64(ref_id) << _VIEW_BITS) + np.arange(self.references.views(ref_id), dtype=np.int64)
        try:
            return np.stack([self._faiss.reconstruct(int(i)) for i in ids]).astype(np.float32, copy=False)
        except RuntimeError:
            return None

    def remove_product(self, brand: str, product_id: str) -> int:
        """Remove every reference image of a product; returns how many images were removed.

        Flat and ivfpq remove in place. FAISS's HNSW cannot: its removed vectors stay in the graph, skipped by
        every search, until they are more than :data:`HNSW_COMPACT_FRACTION` of it, when the graph is rebuilt
        (:meth:`compact`; minutes on millions of vectors, logged). A memory-mapped index cannot be changed.
        """
        return self._remove_references(self.references.find(brand, product_id))

    def remove_brand(self, brand: str) -> int:
        """Remove every reference image of a brand (not the brand itself: its sellers and aliases stay);
        returns how many images were removed. As :meth:`remove_product`, without a full rebuild."""
        return self._remove_references(self.references.find(brand))

    def _remove_references(self, doomed: list[int]) -> int:
        if not doomed:
            return 0
        self._check_writable("remove from")
        ids = np.concatenate(
            [(np.int64(r) << _VIEW_BITS) + np.arange(self.references.views(r), dtype=np.int64) for r in doomed]
        )
        self._remove_ids(ids)
        if self._shortlist is not None:
            self._shortlist.remove(doomed)
        for ref_id in doomed:
            del self.references[ref_id]
            if self._features is not None:
                self._features.discard(ref_id)
            if self._texts is not None:
                self._texts.pop(ref_id, None)
        self._max_views = None
        self._changed()
        return len(doomed)

    def _remove_ids(self, ids: np.ndarray) -> None:
        import faiss

        if self._pending:
            self._pending = [(v[keep], i[keep]) for v, i in self._pending for keep in [~np.isin(i, ids)]]
            self._pending_count = sum(len(i) for _, i in self._pending)
        if self.index_type != "hnsw":
            if self._faiss.ntotal:
                self._faiss.remove_ids(faiss.IDSelectorBatch(ids))
            return
        self._tombstones = np.union1d(self._tombstones, ids)
        if len(self._tombstones) > HNSW_COMPACT_FRACTION * max(int(self._faiss.ntotal), 1):
            self.compact()

    def compact(self) -> None:
        """Rebuild an hnsw graph without the vectors removed from it (they are only skipped until then; done
        by itself once they are more than :data:`HNSW_COMPACT_FRACTION` of the graph). Nothing to do for the
        other types, which remove in place."""
        import faiss

        self._check_writable("compact")
        if self.index_type != "hnsw" or not len(self._tombstones):
            return
        ids = self._tombstones
        old_ids = faiss.vector_to_array(self._faiss.id_map)
        storage = faiss.downcast_index(self._faiss.index)
        log.warning("compacting the hnsw graph: rebuilding it over %d vectors without %d removed ones",
                    len(old_ids) - len(ids), len(ids))
        rebuilt = _make_faiss("hnsw", self.embedder.dim, self.params)
        keep = ~np.isin(old_ids, ids)
        chunk = 65536
        for start in range(0, len(old_ids), chunk):
            stop = min(start + chunk, len(old_ids))
            mask = keep[start:stop]
            if mask.any():
                rebuilt.add_with_ids(storage.reconstruct_n(start, stop - start)[mask], old_ids[start:stop][mask])
        self._faiss = rebuilt
        self._tombstones = np.zeros(0, np.int64)
        self._apply_search_params()

    # -- searching ------------------------------------------------------------------------------------

    def search(self, vectors: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """For each query vector, the ``k`` best reference images (best view each), most similar first.

        Exact for flat; approximate for hnsw and ivfpq (ivfpq similarities are estimated from its codes).
        """
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.embedder.dim)
        self._ensure_ready()
        if self.vector_count == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        if self._max_views is None:
            self._max_views = self.references.max_views() or 1
        raw_k = min(self.vector_count, k * max(self._max_views, 1))
        scores, ids = self._faiss_search(queries, raw_k)
        results: list[list[Hit]] = []
        for row_scores, row_ids in zip(scores, ids):
            best: dict[int, float] = {}
            for score, faiss_id in zip(row_scores.tolist(), row_ids.tolist()):
                if faiss_id < 0:
                    continue
                ref_id = faiss_id >> _VIEW_BITS
                if ref_id not in best:
                    best[ref_id] = score
                    if len(best) >= k:
                        break
            results.append([Hit(self.references[r], r, s) for r, s in best.items()])
        return results

    def _faiss_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's search, skipping the removed vectors still in an hnsw graph; a flat index's exact search runs
        in numpy (:mod:`knockoff.match.flat_search`: the same results, more than twice as fast)."""
        if self.index_type == "flat":
            vectors, ids = flat_contents(self._faiss)
            return top_k(queries, vectors, ids, k)
        if not len(self._tombstones):
            return self._faiss.search(queries, k)
        import faiss

        removed = faiss.IDSelectorBatch(self._tombstones)
        keep = faiss.IDSelectorNot(removed)  # both referenced here until the search returns
        params = faiss.SearchParametersHNSW(sel=keep, efSearch=self.params["efSearch"])
        return self._faiss.search(queries, k, params=params)

    # -- pickling (to ship an index to other processes, e.g. Ray actors) ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        import faiss

        return {
            "embedder": self.embedder, "brands": self.brands, "references": self.references,
            "next_id": self._next_id, "index_type": self.index_type, "params": dict(self.params),
            "faiss": np.fromfile(self._mapped_file(), np.uint8) if self._read_only else faiss.serialize_index(self._faiss),
            "pending": self._pending, "tombstones": self._tombstones, "skipped": self.skipped, "features": self._features, "texts": self._texts,
            "shortlist": self._shortlist, "checked": self._checked,
        }

    def to_state(self) -> dict[str, Any]:
        """The index as plain picklable data without its embedder (which is made again where the index is
        used, e.g. on a Ray actor); :meth:`from_state` rebuilds it."""
        return {**self.__getstate__(), "embedder": None, "embedder_settings": self.embedder.settings()}

    @classmethod
    def from_state(cls, state: dict[str, Any], embedder: Embedder) -> ReferenceIndex:
        """Rebuild an index from :meth:`to_state` with ``embedder``, which must have the settings that built it
        (:class:`IndexMismatchError` otherwise)."""
        _check_same_embedder(Path("<shipped index>"), state["embedder_settings"], embedder.settings())
        index = cls.__new__(cls)
        index.__setstate__({**state, "embedder": embedder})
        return index

    @classmethod
    def _from_state(cls, state: dict[str, Any], embedder: Embedder) -> ReferenceIndex:
        """Rebuild an index from ``__getstate__()`` output shipped without its embedder (see ray_scan)."""
        index = cls.__new__(cls)
        index.__setstate__({**state, "embedder": embedder})
        return index

    def __setstate__(self, state: dict[str, Any]) -> None:
        import faiss

        self.embedder = state["embedder"]
        self.brands = state["brands"]
        self.references = state["references"]
        self._max_views = None
        self._next_id = state["next_id"]
        self.index_type, self.params = state["index_type"], state["params"]
        self._faiss = faiss.deserialize_index(state["faiss"])
        self._apply_search_params()
        self._pending = state["pending"]
        self._pending_count = sum(len(i) for _, i in self._pending)
        self._tombstones = state.get("tombstones", np.zeros(0, np.int64))
        self._read_only = None
        self._mapped_checksum = None
        self.skipped = state["skipped"]
        self._features = state.get("features")
        self._shortlist = state.get("shortlist")
        self._generation = next(_GENERATIONS)
        self._texts = state.get("texts")
        self._text_cache = None
        self._checked = state.get("checked")

    # -- saving and loading ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the index directory atomically (a crash mid-save leaves the previous one readable).

        ``path`` must be a new or empty folder, or a knockoff index holding only index files: anything else
        raises :class:`~knockoff.errors.IndexPathError` and nothing is deleted. Staging folders left beside it
        by saves that were killed are removed.
        """
        self._ensure_ready()
        target = check_save_target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(target)
        staging = target.with_name(f".{target.name}.saving-{os.getpid()}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        files = self._write_files(staging)
        shortlist = None
        if self._shortlist is None and self._features is not None:
            self._shortlist = self._shortlist_from_features()
        if self._shortlist is not None:
            shortlist = self._shortlist.save(staging)
            files = (*files, *SHORTLIST_FILES)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedder": self.embedder.settings(),
            "dim": self.embedder.dim,
            "metric": "inner_product",
            "index_type": self.index_type,
            "index_params": dict(self.params),
            "count": {"references": len(self.references), "vectors": self.vector_count},
            "next_id": self._next_id,
            "hnsw_removed": len(self._tombstones),
            "features": None if self._features is None else {
                "settings": self._features.settings, "count": len(self._features)},
            "texts": self._texts_manifest(),
            "shortlist": shortlist,
            "checksums": {name: _file_checksum(staging / name) for name in files},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for name in (*files, "manifest.json"):
            with (staging / name).open("rb") as handle:
                os.fsync(handle.fileno())
        _swap_in(staging, target)
        return target

    def _write_files(self, staging: Path) -> tuple[str, ...]:
        """Write every file but the manifest into ``staging``; returns their names."""
        import faiss

        if self._read_only is not None:
            # a mapped ivfpq would be written as a pointer to its source file: copy the unchanged file instead
            shutil.copyfile(self._mapped_file(), staging / "index.faiss")
        else:
            faiss.write_index(self._faiss, str(staging / "index.faiss"))
        self.references.save(staging)
        if len(self._tombstones):
            np.save(staging / TOMBSTONES_FILE, self._tombstones)
        (staging / "brands.json").write_text(
            json.dumps([b.to_dict() for b in self.brands.values()], indent=1), encoding="utf-8"
        )
        files: tuple[str, ...] = (*_FILES, *((TOMBSTONES_FILE,) if len(self._tombstones) else ()))
        if self._features is not None:
            self._features.save(staging)
            files = (*files, *FEATURE_FILES)
        texts = self.reference_texts
        if texts is not None:
            texts.save(staging)
            files = (*files, TEXTS_FILE)
        return files

    def _texts_manifest(self) -> dict[str, Any] | None:
        """The manifest's ``texts`` entry: how many reference photos were read, how many could not be."""
        texts = self.reference_texts
        if texts is None:
            return None
        return {"engine": TEXT_ENGINE, "count": len(texts.photos), "unreadable": len(texts.unreadable)}

    @classmethod
    def load(
        cls, path: str | Path, embedder: Embedder | str | None = None, *, verify: bool | str = True,
        mmap: bool = False,
    ) -> ReferenceIndex:
        """Load an index directory; ``embedder`` defaults to the one named in its manifest.

        The manifest is always read and validated, and the files checked against one another. ``verify``: how
        the files are checked against the manifest's checksums (:mod:`knockoff.match.stamps`): True (or
        ``"stamps"``) hashes every file except those whose file stamps (device, inode, size, mtime, ctime)
        show them unchanged since a full check; ``"full"`` hashes every file (bit rot on disk, which changes
        no stamp, is caught only so: ``knockoff index verify``); False skips the checksums. What was done is
        in :attr:`checked` and the log.

        ``mmap=True`` memory-maps the vectors (flat and hnsw storage, ivfpq inverted lists) rather than reading
        them into memory; processes on one machine then share the pages. The index is then read-only. The
        stored reference features are always memory-mapped.

        Raises :class:`IndexMismatchError` when the embedder differs from the one that built the index,
        :class:`IndexCorruptError` when a file is missing, damaged or disagrees with the manifest.
        """
        root = Path(path)
        backup = root.with_name(f".{root.name}.previous")
        if not (root / "manifest.json").exists() and (backup / "manifest.json").exists():
            log.warning("%s: an interrupted save left the previous index at %s; loading that", root, backup)
            root = backup
        mode = verify_mode(verify)
        manifest = read_manifest(root, INDEX_TYPES)
        checked = check_files(root, manifest["checksums"], mode)
        embedder = _embedder_for(root, manifest, embedder)
        try:
            index = cls(embedder, index_type=manifest.get("index_type", "flat"), params=manifest.get("index_params"))
        except ValueError as exc:
            raise IndexCorruptError(f"{root}: manifest.json has a bad index type or parameters ({exc})") from exc
        index._read_files(root, mmap)
        index._tombstones = _read_tombstones(root, int(manifest.get("hnsw_removed", 0)))
        index._check_against(root, manifest)
        index._apply_search_params()
        if mmap:
            index._read_only = str(root)
            index._mapped_checksum = manifest["checksums"]["index.faiss"]
        index._max_views = None
        index._next_id = int(manifest.get("next_id", int(index.references.ids().max(initial=-1)) + 1))
        features = manifest.get("features")
        if features is not None:
            index._features = FeatureStore.load(root, features["settings"], index.references.ids())
        else:
            index._features = None
        index._shortlist = index._load_shortlist(root, manifest, mmap)
        index._load_texts(root, manifest.get("texts"))
        index._checked = checked
        return index

    def _shortlist_from_features(self) -> KeypointShortlist:
        """A keypoint shortlist of default parameters over the stored features (an index saved before indexes
        stored their shortlist gets one when saved again)."""
        assert self._features is not None
        log.warning("building the keypoint shortlist of %d reference photos from their stored keypoints",
                    len(self._features))
        shortlist = KeypointShortlist.from_params(ShortlistParams(), expected_references=len(self._features))
        for ref_id in self._features.ids():
            stored = self._features.get(ref_id)
            if stored is not None:
                shortlist.add(ref_id, stored)
        return shortlist

    def _load_shortlist(self, root: Path, manifest: dict[str, Any], mmap: bool) -> KeypointShortlist | None:
        """The stored keypoint shortlist (None: the index stores no features, or was saved before indexes
        stored their shortlist: the detector then builds one in memory, and says so)."""
        entry = manifest.get("shortlist")
        if self._features is None or entry is None:
            return None
        checksum = manifest["checksums"].get(SHORTLIST_FILE)
        if not all(name in manifest["checksums"] for name in SHORTLIST_FILES):
            raise IndexCorruptError(f"{root}: manifest.json lists a keypoint shortlist but no checksum of its files")
        shortlist = KeypointShortlist.load(root, entry, mmap=mmap, checksum=checksum)
        ids = shortlist.references()[:, 0]
        if not np.isin(ids, self.references.ids(), assume_unique=True).all():  # both checked to be distinct
            raise IndexCorruptError(f"{root}: the keypoint shortlist names reference photos the index lacks")
        return shortlist

    def _load_texts(self, root: Path, entry: Any) -> None:
        """The stored reference texts named by the manifest's ``texts`` entry (none: the index keeps no text)."""
        if entry is None:
            return
        if not isinstance(entry, dict) or not isinstance(entry.get("count"), int):
            raise IndexCorruptError(f"{root}: manifest.json is damaged: 'texts' must be null or an object with an "
                                    f"integer 'count'")
        stored = ReferenceTexts.load(root)
        if stored is None:
            raise IndexCorruptError(f"{root}: the manifest lists reference texts but {TEXTS_FILE} is missing")
        texts: dict[int, PhotoText] = {}
        for key, text in stored.photos.items():
            ref_id = int(key) if key.isdigit() else -1
            if ref_id not in self.references:
                raise IndexCorruptError(f"{root}: {TEXTS_FILE} names reference {key!r}, which the index lacks")
            texts[ref_id] = text
        if len(texts) != entry["count"]:
            raise IndexCorruptError(f"{root}: {TEXTS_FILE} holds {len(texts)} photos, the manifest says {entry['count']}")
        self._texts = texts
        self._text_cache = (self._generation, stored)

    def _read_files(self, root: Path, mmap: bool) -> None:
        """Read index.faiss, the reference table and brands.json; any damage is an IndexCorruptError."""
        import faiss

        # IO_FLAG_MMAP maps IVF inverted lists; IO_FLAG_MMAP_IFC maps flat codes (flat, and the hnsw storage).
        # They do not combine: with IFC the IVF reader cannot map its lists.
        flags = (faiss.IO_FLAG_MMAP if self.index_type == "ivfpq" else faiss.IO_FLAG_MMAP_IFC) if mmap else 0
        try:
            self._faiss = faiss.read_index(str(root / "index.faiss"), flags)
            self.references = ReferenceTable.load(root)
            for data in json.loads((root / "brands.json").read_text(encoding="utf-8")):
                self.add_brand(Brand(data["name"], tuple(data["aliases"]), tuple(data["authorized_sellers"])))
        except IndexCorruptError as exc:
            raise IndexCorruptError(f"{root}: {exc}") from None
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            raise IndexCorruptError(f"{root}: cannot read the index ({problem})") from exc
        except RecursionError:
            raise IndexCorruptError(f"{root}: cannot read the index (JSON nested too deeply)") from None

    def _check_against(self, root: Path, manifest: dict[str, Any]) -> None:
        """The files agree with the manifest and with each other (counts, dimension, type, ids)."""
        count = manifest["count"]
        if len(self.references) != count["references"]:
            raise IndexCorruptError(f"{root}: the reference table has {len(self.references)} references but the "
                                    f"manifest says {count['references']} (cut short or edited)")
        if manifest["dim"] != self.embedder.dim or self._faiss.d != self.embedder.dim:
            raise IndexCorruptError(f"{root}: index.faiss does not agree with the manifest (dimension)")
        total_views = self.references.total_views()
        if self.vector_count != count["vectors"] or total_views != count["vectors"]:
            raise IndexCorruptError(f"{root}: index.faiss holds {self.vector_count} vectors (not removed), the "
                                    f"references {total_views} views, the manifest says {count['vectors']}")
        if not _faiss_matches(self.index_type, self._faiss):
            raise IndexCorruptError(f"{root}: index.faiss is not a {self.index_type} index as the manifest says")
        if self.index_type != "ivfpq":
            import faiss

            faiss_ids = faiss.vector_to_array(self._faiss.id_map)
            if len(self._tombstones) and not np.isin(self._tombstones, faiss_ids).all():
                raise IndexCorruptError(f"{root}: {TOMBSTONES_FILE} names vectors index.faiss lacks")
            owners = _unique(np.setdiff1d(faiss_ids, self._tombstones) if len(self._tombstones) else faiss_ids)
            if not np.array_equal(owners, self.references.ids()):
                raise IndexCorruptError(f"{root}: index.faiss and the reference table name different reference ids")
        top = int(self.references.ids().max(initial=-1))
        if top >= 0 and top >= manifest.get("next_id", top + 1):
            raise IndexCorruptError(f"{root}: manifest.json 'next_id' is not above every reference id")


@dataclass(frozen=True)
class PreparedBatch:
    """Reference photos embedded (and their features and text computed), ready to add to an index."""

    owners: list[ReferenceImage]
    vectors: np.ndarray
    counts: list[int]
    features: list[StoredFeatures | None]
    texts: list[PhotoText | None]
    skipped: list[ImageError]


def prepare_batch(embedder: Embedder, batch: Sequence[ReferenceImage], *, features: bool,
                  texts: bool) -> PreparedBatch:
    """Load, embed and (``features``) extract the verification features and (``texts``) read the text of a
    batch of reference photos; unreadable ones are listed in ``skipped``. Pure: runs anywhere (Ray tasks)."""
    views: list[Any] = []
    prepared = PreparedBatch([], np.zeros((0, embedder.dim), np.float32), [], [], [], [])
    for ref in batch:
        try:
            image = load_image(ref.image)
        except ImageError as error:
            prepared.skipped.append(error)
            continue
        ref_views = embedder.reference_views(image)
        views.extend(ref_views)
        prepared.owners.append(ref)
        prepared.counts.append(len(ref_views))
        prepared.features.append(StoredFeatures.from_local(_verifier().features(image)) if features else None)
        prepared.texts.append(read_text(image, settings_for_names(TextReadSettings(), (ref.brand, ref.product_name)))
                              if texts else None)
    if not views:
        return prepared
    return PreparedBatch(prepared.owners, np.asarray(embedder.embed(views), np.float32), prepared.counts,
                         prepared.features, prepared.texts, prepared.skipped)


@functools.lru_cache(maxsize=1)
def _verifier() -> Any:
    from knockoff.match.verify import GeometricVerifier

    return GeometricVerifier()


def check_save_target(path: str | Path) -> Path:
    """Raise :class:`~knockoff.errors.IndexPathError` unless an index may be saved at ``path``: a new or empty
    folder, or a knockoff index holding only index files (call it before a long build)."""
    return check_index_target(path, (*FEATURE_FILES, TEXTS_FILE, TOMBSTONES_FILE, *SHORTLIST_FILES))


def _unique(faiss_ids: np.ndarray) -> np.ndarray:
    """The sorted reference ids owning FAISS ids (no sort when they are in order, as an index built in one go)."""
    owners = faiss_ids >> _VIEW_BITS
    if len(owners) and not np.all(owners[1:] >= owners[:-1]):
        owners = np.sort(owners)  # as np.unique, without its hash table (seconds at 10^6 ids)
    return owners[np.concatenate(([True], owners[1:] != owners[:-1]))] if len(owners) else owners


def _read_tombstones(root: Path, count: int) -> np.ndarray:
    """The removed vectors an hnsw index's graph still holds (the manifest's ``hnsw_removed`` of them)."""
    if not count:
        return np.zeros(0, np.int64)
    try:
        ids = np.load(root / TOMBSTONES_FILE, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{root}: cannot read {TOMBSTONES_FILE} ({exc})") from exc
    if ids.dtype != np.int64 or ids.shape != (count,) or np.any(np.diff(ids) <= 0) or np.any(ids < 0):
        raise IndexCorruptError(f"{root}: {TOMBSTONES_FILE} must hold {count} increasing int64 ids (the "
                                f"manifest's hnsw_removed)")
    return ids


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames, keeping the previous one aside until done."""
    backup = target.with_name(f".{target.name}.previous")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        os.replace(target, backup)
    os.replace(staging, target)
    if backup.exists():
        shutil.rmtree(backup)


def _embedder_for(root: Path, manifest: dict[str, Any], embedder: Embedder | str | None) -> Embedder:
    """The embedder to load with: the manifest's, or the one given, checked to be the same."""
    from knockoff.embedders.base import Embedder, create_embedder

    built_with = manifest["embedder"]
    if embedder is None:
        embedder = create_embedder(built_with["name"])
    elif not isinstance(embedder, Embedder):
        embedder = create_embedder(embedder)
    _check_same_embedder(root, built_with, embedder.settings())
    return embedder


def _new_feature_store() -> FeatureStore | None:
    """An empty store of reference features when OpenCV can compute them, else None."""
    from knockoff.match.verify import VerifierSettings, opencv_available

    if not opencv_available():
        log.info("OpenCV is not installed: the index stores no keypoints (verification needs OpenCV anyway)")
        return None
    return FeatureStore(feature_settings(VerifierSettings()))


def _check_same_embedder(root: Path, built_with: dict[str, Any], given: dict[str, Any]) -> None:
    differing = sorted(k for k in set(built_with) | set(given) if built_with.get(k) != given.get(k))
    if differing:
        detail = "; ".join(f"{k}: index has {built_with.get(k)!r}, embedder has {given.get(k)!r}" for k in differing)
        raise IndexMismatchError(
            f"{root}: the index was built with embedder {built_with.get('name')!r} but is used with "
            f"{given.get('name')!r} ({detail}); rebuild the index or load it with the embedder that built it"
        )


def empty_index_for(
    catalog: Catalog,
    embedder: Embedder | str = "auto",
    *,
    index_type: str = "auto",
    index_params: dict[str, Any] | None = None,
    read_text: bool = False,
    shortlist: ShortlistParams | None = None,
) -> ReferenceIndex:
    """A new index with the catalog's brands, its type and keypoint shortlist sized for the catalog (``auto``,
    ``ivfpq``), no photo."""
    from knockoff.embedders.base import Embedder, create_embedder

    if not isinstance(embedder, Embedder):
        embedder = create_embedder(embedder)
    params = dict(index_params or {})
    if index_type in ("auto", "ivfpq") and "expected_vectors" not in params:
        probe = Image.new("RGB", (2 * embedder.input_size, 2 * embedder.input_size))
        params["expected_vectors"] = len(catalog.references) * len(embedder.reference_views(probe))
    return ReferenceIndex(embedder, catalog.brands.values(), index_type=index_type, params=params,
                          read_text=read_text, shortlist=shortlist, expected_references=len(catalog.references))


def build_index(
    catalog: Catalog | str | Path,
    embedder: Embedder | str = "auto",
    *,
    index_type: str = "auto",
    index_params: dict[str, Any] | None = None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    read_text: bool = False,
    shortlist: ShortlistParams | None = None,
) -> ReferenceIndex:
    """Embed every reference image of a catalog (or a catalog directory) into a new :class:`ReferenceIndex`.

    ``index_type``: ``"auto"`` (flat below a million vectors, counted from the catalog and the embedder's views
    per image), ``"flat"``, ``"hnsw"`` or ``"ivfpq"``; ``index_params``: that type's parameters.
    ``read_text``: also read and keep the text of every reference photo (slow: about a second a photo on 2
    cores; needs ``rapidocr``), so that text read in listing photos can be matched to products.
    ``shortlist``: the keypoint shortlist's build parameters (default: the policy's defaults).
    """
    if not isinstance(catalog, Catalog):
        catalog = Catalog.from_dir(catalog)
    index = empty_index_for(catalog, embedder, index_type=index_type, index_params=index_params,
                            read_text=read_text, shortlist=shortlist)
    index.add(catalog, batch_size=batch_size, progress=progress)
    if len(index) == 0:
        raise IndexStateError("no reference image could be read; nothing to index")
    return index
