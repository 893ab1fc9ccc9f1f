"""The reference index: every official image embedded once, searchable with FAISS, saved as a directory.

A directory holds ``index.faiss`` (the vectors), ``references.jsonl`` (one line per reference image),
``brands.json`` and ``manifest.json`` (format version, embedder settings, dimension, metric, counts and
SHA-256 checksums). Saving is atomic: a crash mid-save leaves the previous index readable.
"""

from __future__ import annotations

import hashlib
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

from knockoff.catalog import Brand, Catalog, ReferenceImage
from knockoff.errors import ImageError, IndexCorruptError, IndexMismatchError, KnockoffError
from knockoff.images import load_image

if TYPE_CHECKING:
    from knockoff.embedders.base import Embedder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_VIEW_BITS = 8  # a FAISS id is (reference id << 8) | view number: up to 256 views per reference image
_MAX_VIEWS = 1 << _VIEW_BITS
_FILES = ("index.faiss", "references.jsonl", "brands.json")


@dataclass(frozen=True)
class Hit:
    """One reference image found for a query, with its best similarity over the indexed views."""

    reference: ReferenceImage
    reference_id: int
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"reference_id": self.reference_id, "similarity": self.similarity, **self.reference.to_dict()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReferenceIndex:
    """Embedded reference images in a FAISS inner-product index, with their metadata and brands."""

    def __init__(self, embedder: Embedder, brands: Iterable[Brand] = ()):
        import faiss

        self.embedder = embedder
        self.brands: dict[str, Brand] = {b.key: b for b in brands}
        self.references: dict[int, ReferenceImage] = {}
        self._views: dict[int, int] = {}
        self._next_id = 0
        self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim))
        self.skipped: list[ImageError] = []

    # -- building -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.references)

    @property
    def vector_count(self) -> int:
        return int(self._faiss.ntotal)

    def brand(self, name: str) -> Brand | None:
        return self.brands.get(name.casefold())

    def add_brand(self, brand: Brand) -> None:
        self.brands[brand.key] = brand

    def add_vectors(self, reference: ReferenceImage, vectors: np.ndarray) -> int:
        """Add one reference image with its already-embedded views; returns its reference id."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.embedder.dim)
        if not 1 <= len(vectors) <= _MAX_VIEWS:
            raise ValueError(f"a reference image needs 1..{_MAX_VIEWS} vectors, got {len(vectors)}")
        ref_id = self._next_id
        self._next_id += 1
        ids = (np.int64(ref_id) << _VIEW_BITS) + np.arange(len(vectors), dtype=np.int64)
        self._faiss.add_with_ids(vectors, ids)
        self.references[ref_id] = reference
        self._views[ref_id] = len(vectors)
        if self.brand(reference.brand) is None:
            self.add_brand(Brand(reference.brand))
        return ref_id

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
            views: list[Any] = []
            owners: list[ReferenceImage] = []
            for ref in batch:
                try:
                    image = load_image(ref.image)
                except ImageError as error:
                    log.warning("reference skipped: %s", error)
                    self.skipped.append(error)
                    continue
                ref_views = self.embedder.reference_views(image)
                views.extend(ref_views)
                owners.extend([ref] * len(ref_views))
            if views:
                vectors = self.embedder.embed(views)
                cursor = 0
                while cursor < len(owners):
                    ref = owners[cursor]
                    end = cursor
                    while end < len(owners) and owners[end] is ref:
                        end += 1
                    self.add_vectors(ref, vectors[cursor:end])
                    added += 1
                    cursor = end
            if progress is not None:
                progress(len(batch))
        return added

    def remove_product(self, brand: str, product_id: str) -> int:
        """Remove every reference image of a product; returns how many images were removed."""
        import faiss

        doomed = [
            ref_id
            for ref_id, ref in self.references.items()
            if ref.brand.casefold() == brand.casefold() and ref.product_id == product_id
        ]
        if not doomed:
            return 0
        ids = np.concatenate(
            [(np.int64(r) << _VIEW_BITS) + np.arange(self._views[r], dtype=np.int64) for r in doomed]
        )
        self._faiss.remove_ids(faiss.IDSelectorBatch(ids))
        for ref_id in doomed:
            del self.references[ref_id]
            del self._views[ref_id]
        return len(doomed)

    # -- searching ------------------------------------------------------------------------------------

    def search(self, vectors: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """For each query vector, the ``k`` best reference images (best view each), most similar first."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.embedder.dim)
        if self.vector_count == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        max_views = max(self._views.values())
        raw_k = min(self.vector_count, k * max_views)
        scores, ids = self._faiss.search(queries, raw_k)
        results: list[list[Hit]] = []
        for row_scores, row_ids in zip(scores, ids):
            best: dict[int, float] = {}
            for score, faiss_id in zip(row_scores, row_ids):
                if faiss_id < 0:
                    continue
                ref_id = int(faiss_id) >> _VIEW_BITS
                if ref_id not in best:
                    best[ref_id] = float(score)
                if len(best) >= k:
                    break
            results.append([Hit(self.references[r], r, s) for r, s in best.items()])
        return results

    # -- saving and loading ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the index directory atomically (a crash mid-save leaves the previous one readable)."""
        import faiss

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.saving-{os.getpid()}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        faiss.write_index(self._faiss, str(staging / "index.faiss"))
        with (staging / "references.jsonl").open("w", encoding="utf-8") as handle:
            for ref_id, ref in self.references.items():
                handle.write(json.dumps({"id": ref_id, "views": self._views[ref_id], **ref.to_dict()}) + "\n")
        (staging / "brands.json").write_text(
            json.dumps([b.to_dict() for b in self.brands.values()], indent=1), encoding="utf-8"
        )
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedder": self.embedder.settings(),
            "dim": self.embedder.dim,
            "metric": "inner_product",
            "index_type": "flat",
            "count": {"references": len(self.references), "vectors": self.vector_count},
            "next_id": self._next_id,
            "checksums": {name: _sha256(staging / name) for name in _FILES},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for name in (*_FILES, "manifest.json"):
            with (staging / name).open("rb") as handle:
                os.fsync(handle.fileno())
        backup = target.with_name(f".{target.name}.previous")
        if backup.exists():
            shutil.rmtree(backup)
        if target.exists():
            os.replace(target, backup)
        os.replace(staging, target)
        if backup.exists():
            shutil.rmtree(backup)
        return target

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | str | None = None, *, verify: bool = True) -> ReferenceIndex:
        """Load an index directory; ``embedder`` defaults to the one named in its manifest.

        Raises :class:`IndexMismatchError` when the embedder differs from the one that built the index,
        :class:`IndexCorruptError` when a file is missing or damaged.
        """
        import faiss

        from knockoff.embedders.base import Embedder, create_embedder

        root = Path(path)
        backup = root.with_name(f".{root.name}.previous")
        if not (root / "manifest.json").exists() and (backup / "manifest.json").exists():
            log.warning("%s: an interrupted save left the previous index at %s; loading that", root, backup)
            root = backup
        manifest = _read_manifest(root)
        if verify:
            for name, expected in manifest.get("checksums", {}).items():
                file = root / name
                if not file.exists():
                    raise IndexCorruptError(f"{root}: file {name} is missing")
                if _sha256(file) != expected:
                    raise IndexCorruptError(f"{root}: {name} is damaged (its checksum differs from the manifest)")
        built_with = manifest["embedder"]
        if embedder is None:
            embedder = create_embedder(built_with["name"])
        elif not isinstance(embedder, Embedder):
            embedder = create_embedder(embedder)
        _check_same_embedder(root, built_with, embedder.settings())
        index = cls(embedder)
        try:
            index._faiss = faiss.read_index(str(root / "index.faiss"))
            for line in (root / "references.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                ref_id = int(row.pop("id"))
                index._views[ref_id] = int(row.pop("views"))
                index.references[ref_id] = ReferenceImage.from_dict(row)
            for data in json.loads((root / "brands.json").read_text(encoding="utf-8")):
                index.add_brand(Brand(data["name"], tuple(data["aliases"]), tuple(data["authorized_sellers"])))
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{root}: cannot read the index ({exc})") from exc
        if index._faiss.d != embedder.dim or index._faiss.ntotal != manifest["count"]["vectors"]:
            raise IndexCorruptError(f"{root}: index.faiss does not agree with the manifest (dimension or count)")
        index._next_id = int(manifest.get("next_id", max(index.references, default=-1) + 1))
        return index


def _read_manifest(root: Path) -> dict[str, Any]:
    file = root / "manifest.json"
    if not root.is_dir():
        raise IndexCorruptError(f"{root}: index directory not found")
    if not file.exists():
        raise IndexCorruptError(f"{root}: manifest.json is missing (not a knockoff index, or an incomplete save)")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{root}: manifest.json is damaged ({exc})") from exc
    if not isinstance(manifest, dict) or "embedder" not in manifest or "count" not in manifest:
        raise IndexCorruptError(f"{root}: manifest.json lacks required fields")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{root}: index format version {manifest.get('format_version')} is not supported "
            f"(this knockoff reads version {FORMAT_VERSION}); rebuild the index"
        )
    return manifest


def _check_same_embedder(root: Path, built_with: dict[str, Any], given: dict[str, Any]) -> None:
    differing = sorted(k for k in set(built_with) | set(given) if built_with.get(k) != given.get(k))
    if differing:
        detail = "; ".join(f"{k}: index has {built_with.get(k)!r}, embedder has {given.get(k)!r}" for k in differing)
        raise IndexMismatchError(
            f"{root}: the index was built with embedder {built_with.get('name')!r} but is used with "
            f"{given.get('name')!r} ({detail}); rebuild the index or load it with the embedder that built it"
        )


def build_index(
    catalog: Catalog | str | Path,
    embedder: Embedder | str = "auto",
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> ReferenceIndex:
    """Embed every reference image of a catalog (or a catalog directory) into a new :class:`ReferenceIndex`."""
    from knockoff.embedders.base import Embedder, create_embedder

    if not isinstance(catalog, Catalog):
        catalog = Catalog.from_dir(catalog)
    if not isinstance(embedder, Embedder):
        embedder = create_embedder(embedder)
    index = ReferenceIndex(embedder, catalog.brands.values())
    index.add(catalog, batch_size=batch_size, progress=progress)
    if len(index) == 0:
        raise KnockoffError("no reference image could be read; nothing to index")
    return index
