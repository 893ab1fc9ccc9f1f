"""Exact top-k inner-product search over the vectors of a flat FAISS index, in large blocks through numpy's BLAS.

FAISS's flat search (``IndexFlatIP.search``) multiplies the queries with blocks of 1,024 stored vectors and keeps a
heap per query. At 10^5 reference photos (1.5 million vectors of the perceptual engine's 15 views,
``benchmarks/bench_scale.py --check``) that search was most of a full check's time, and on the 2 shared cores
measured it took 2.5x as long as this one (95 query views of a batch of 8 listings: 10.6-16.5 s against 4.0-6.3 s,
load average about 10; the matrix product alone, 2.7-4.2 s), with the same results.

:func:`top_k` multiplies a block of queries with a block of up to 65,536 stored vectors at a time and keeps each
query's ``k`` best: after the first block only the queries with a score above their ``k``-th best so far are
looked at again, and only their scores above it are gathered (a partial sort of the block while there are
many: the first blocks). It is exact, like FAISS's: the same vectors come back with the same scores (float32 products;
the last bit may differ from FAISS's with the summation order; equal scores may come in another order). Each block
is first copied into a 64-byte-aligned buffer (unless the stored vectors already lie so), so that an index
memory-mapped from its file (as ``scan`` and ``check`` load it) and the same index read into memory give the same
scores to the last bit; the copy costs
1.10x (95 queries) to 1.25x (15 queries) of the search without it (500,000 vectors of 227 dimensions, same run).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["flat_contents", "top_k"]

#: scores held at once (queries x stored vectors of a block): 32 MB of float32
_SCORES_AT_ONCE = 1 << 23
_MAX_BLOCK = 1 << 16
_MAX_QUERIES = 1 << 12
#: a block's new candidates are gathered one by one while no query has more than this fraction of the block
_SPARSE_FRACTION = 8


def flat_contents(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """The stored vectors ``(n, d)`` float32 and their ids ``(n,)`` int64 of a ``faiss.IndexIDMap``/``IndexIDMap2``
    over an ``IndexFlat``: views of FAISS's memory (no copy), valid while the index is not changed."""
    import faiss

    inner = faiss.downcast_index(index.index)
    n, d = int(inner.ntotal), int(inner.d)
    if n == 0:
        return np.zeros((0, d), np.float32), np.zeros(0, np.int64)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), n * d).reshape(n, d)
    ids = faiss.rev_swig_ptr(index.id_map.data(), n)
    return vectors, ids


def top_k(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the ``k`` largest inner products with ``vectors`` and the ``ids`` of those vectors, largest
    first, as FAISS's search returns them: when fewer than ``k`` vectors are
    stored, the rest of a row is id -1 with score ``-3.4e38`` (FAISS's "nothing")."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    nq = len(queries)
    scores = np.full((nq, max(k, 0)), np.float32(-np.finfo(np.float32).max))
    found = np.full((nq, max(k, 0)), -1, np.int64)
    if k <= 0 or nq == 0 or len(vectors) == 0:
        return scores, found
    for start in range(0, nq, _MAX_QUERIES):
        stop = min(nq, start + _MAX_QUERIES)
        rows = _top_positions(queries[start:stop], vectors, k)
        scores[start:stop], found[start:stop] = rows[0], np.where(rows[1] >= 0, ids[np.maximum(rows[1], 0)], -1)
    return scores, found


def _top_positions(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` for one block of queries, with positions in ``vectors`` instead of ids (-1: none)."""
    nq = len(queries)
    best = np.full((nq, k), -np.inf, np.float32)
    where = np.full((nq, k), -1, np.int64)
    block = int(min(_MAX_BLOCK, max(k, 1024, _SCORES_AT_ONCE // nq)))
    in_place = vectors.flags.c_contiguous and vectors.ctypes.data % 64 == 0 and (block * vectors.shape[1]) % 16 == 0
    scratch = None if in_place else _aligned_rows(min(block, len(vectors)), vectors.shape[1])
    for start in range(0, len(vectors), block):
        if scratch is None:  # every block already starts on a 64-byte boundary: nothing to copy
            part = vectors[start : start + block]
        else:
            part = scratch[: min(block, len(vectors) - start)]
            np.copyto(part, vectors[start : start + block])
        products = queries @ part.T  # (queries, stored vectors of the block)
        above = products > best[:, -1:]
        counts = np.count_nonzero(above, axis=1)
        rows = np.flatnonzero(counts)
        if len(rows) == 0:
            continue
        if int(counts.max()) * _SPARSE_FRACTION > products.shape[1]:  # many new candidates: the first blocks
            scores, positions = _best_of(products[rows], np.arange(products.shape[1]), k)
        else:  # few: only the scores above a query's k-th best so far are gathered
            scores, positions = _best_of(*_gathered(products, above, rows, counts[rows]), k)
        merged = np.concatenate([best[rows], scores], axis=1)
        merged_at = np.concatenate([where[rows], np.where(positions >= 0, positions + start, -1)], axis=1)
        order = np.argsort(-merged, axis=1, kind="stable")[:, :k]
        best[rows] = np.take_along_axis(merged, order, 1)
        where[rows] = np.take_along_axis(merged_at, order, 1)
    best[where < 0] = -np.finfo(np.float32).max
    return best, where


def _aligned_rows(rows: int, dim: int) -> np.ndarray:
    """An empty float32 ``(rows, dim)`` array starting on a 64-byte boundary. The stored vectors are copied into it
    block by block before the product: BLAS picks its kernels by the data's alignment, and a memory-mapped index
    file puts FAISS's vectors at whatever offset its header leaves (not even a multiple of 4 bytes), which changed
    scores in their last bits (up to 5e-7 for 1-4 queries) against the same index read into memory."""
    raw = np.empty(rows * dim * 4 + 64, np.uint8)
    offset = (-raw.ctypes.data) % 64
    return raw[offset : offset + rows * dim * 4].view(np.float32).reshape(rows, dim)


def _best_of(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``scores`` of each row (all of them when fewer; in no order) and their ``positions`` (one
    row of positions for every row, or one each)."""
    if scores.shape[1] <= k:
        return scores, np.broadcast_to(positions, scores.shape)
    keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(scores, keep, 1)
    return chosen, positions[keep] if positions.ndim == 1 else np.take_along_axis(positions, keep, 1)


def _gathered(products: np.ndarray, above: np.ndarray, rows: np.ndarray,
              counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scores of ``products`` where ``above`` holds, for ``rows``, one row each padded with -inf (column
    -1), and their columns."""
    row, column = np.nonzero(above[rows])  # row-major: each row's columns in increasing order
    slot = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    scores = np.full((len(rows), int(counts.max())), -np.inf, np.float32)
    positions = np.full(scores.shape, -1, np.int64)
    scores[row, slot] = products[rows[row], column]
    positions[row, slot] = column
    return scores, positions
