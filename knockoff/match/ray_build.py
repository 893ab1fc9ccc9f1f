"""``knockoff index build --backend ray``: embed the reference photos and extract their features in Ray tasks.

The catalog is cut into batches; each Ray task runs :func:`knockoff.match.index.prepare_batch` (load, embed,
keypoints, text) and the driver adds the results in catalog order, so the index is the same as a local build
(same reference ids, vectors, features; compared in tests/test_ray_build.py). Ray is started here (all local
CPUs) unless it is already running, and stopped again if it was started here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knockoff.catalog.readers import Catalog
from knockoff.errors import IndexStateError
from knockoff.match.index import ReferenceIndex, empty_index_for, prepare_batch
from knockoff.match.keypoints import ShortlistParams

if TYPE_CHECKING:
    from knockoff.embedders.base import Embedder

log = logging.getLogger(__name__)


def build_index_ray(
    catalog: Catalog | str | Path,
    embedder: Embedder | str = "auto",
    *,
    index_type: str = "auto",
    batch_size: int = 32,
    read_text: bool = False,
    progress: Callable[[int], None] | None = None,
    shortlist: ShortlistParams | None = None,
) -> ReferenceIndex:
    """As :func:`knockoff.match.index.build_index`, the photos embedded in Ray tasks (``batch_size`` a task)."""
    import ray

    if not isinstance(catalog, Catalog):
        catalog = Catalog.from_dir(catalog)
    index = empty_index_for(catalog, embedder, index_type=index_type, read_text=read_text, shortlist=shortlist)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(_prepare)
        shipped = ray.put(index.embedder)
        refs = catalog.references
        futures = [task.remote(shipped, refs[start : start + batch_size], index.stores_features, read_text)
                   for start in range(0, len(refs), batch_size)]
        for future in futures:  # in catalog order: the same reference ids as a local build
            prepared = ray.get(future)
            index.add_prepared(prepared)
            if progress is not None:
                progress(len(prepared.owners) + len(prepared.skipped))
    finally:
        if started:
            ray.shutdown()
    if len(index) == 0:
        raise IndexStateError("no reference image could be read; nothing to index")
    return index


def _prepare(embedder: Any, batch: list[Any], features: bool, texts: bool) -> Any:
    return prepare_batch(embedder, batch, features=features, texts=texts)
